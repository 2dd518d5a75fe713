//! Requester-pays buckets (`ServerOptions::requester_pays`): every request without
//! `x-amz-request-payer: requester`, and every anonymous one, gets 403 AccessDenied.

mod common;

use aws_sdk_s3::types::{RequestCharged, RequestPayer};
use aws_sdk_s3::Client;
use common::{anonymous_client, client, code, status};
use s3fetch_testkit::{ServerOptions, TestServer};

const RP: &str = "pays";

async fn server(fast_list: bool) -> TestServer {
    let server = TestServer::start_with(ServerOptions {
        fast_list,
        requester_pays: vec![RP.into()],
        public_buckets: vec![RP.into()],
        ..Default::default()
    })
    .await
    .unwrap();
    server.create_bucket(RP);
    server.put_object(RP, "a.txt", b"a");
    server
}

/// `STATUS CODE` of each request a downloader sends (`-`: no code, a HEAD), `200` when it
/// succeeds; `pay` adds `x-amz-request-payer: requester`.
async fn answers(c: &Client, pay: bool) -> Vec<String> {
    let payer = pay.then_some(RequestPayer::Requester);
    let fail = |s: u16, c: String| {
        format!(
            "{s} {}",
            if c.starts_with("<no code") {
                "-".into()
            } else {
                c
            }
        )
    };
    let mut out = Vec::new();
    out.push(
        match c
            .list_objects_v2()
            .bucket(RP)
            .set_request_payer(payer.clone())
            .send()
            .await
        {
            Ok(o) => {
                assert_eq!(o.request_charged(), Some(&RequestCharged::Requester));
                "200".to_owned()
            }
            Err(e) => fail(status(&e), code(&e)),
        },
    );
    out.push(
        match c
            .list_objects()
            .bucket(RP)
            .set_request_payer(payer.clone())
            .send()
            .await
        {
            Ok(_) => "200".to_owned(),
            Err(e) => fail(status(&e), code(&e)),
        },
    );
    let get = c
        .get_object()
        .bucket(RP)
        .key("a.txt")
        .set_request_payer(payer.clone());
    out.push(match get.send().await {
        Ok(o) => {
            assert_eq!(o.request_charged(), Some(&RequestCharged::Requester));
            "200".to_owned()
        }
        Err(e) => fail(status(&e), code(&e)),
    });
    let head = c
        .head_object()
        .bucket(RP)
        .key("a.txt")
        .set_request_payer(payer);
    out.push(match head.send().await {
        Ok(_) => "200".to_owned(),
        Err(e) => fail(status(&e), code(&e)),
    });
    // HeadBucket has no RequestPayer parameter: add the header by hand.
    let mut hb = c.head_bucket().bucket(RP).customize();
    if pay {
        hb = hb.mutate_request(|r| {
            r.headers_mut().insert("x-amz-request-payer", "requester");
        });
    }
    out.push(match hb.send().await {
        Ok(_) => "200".to_owned(),
        Err(e) => fail(status(&e), code(&e)),
    });
    out
}

#[tokio::test]
async fn requests_must_agree_to_pay() {
    for fast_list in [true, false] {
        let server = server(fast_list).await;
        let c = client(&server);
        let denied = [
            "403 AccessDenied",
            "403 AccessDenied",
            "403 AccessDenied",
            "403 -",
            "403 -",
        ];
        assert_eq!(answers(&c, false).await, denied);
        assert_eq!(answers(&c, true).await, ["200"; 5]);
        let counts = server.request_counts();
        assert_eq!(
            (counts.list, counts.get, counts.head, counts.head_bucket),
            (4, 2, 2, 2)
        );
    }
}

#[tokio::test]
async fn anonymous_requests_are_denied_even_when_public() {
    let server = server(true).await;
    let anon = anonymous_client(&server);
    let denied = [
        "403 AccessDenied",
        "403 AccessDenied",
        "403 AccessDenied",
        "403 -",
        "403 -",
    ];
    assert_eq!(answers(&anon, false).await, denied);
    assert_eq!(answers(&anon, true).await, denied);
}
