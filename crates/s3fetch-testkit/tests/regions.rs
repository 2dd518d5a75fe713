//! Buckets in other regions (`ServerOptions::bucket_regions`): requests signed for the
//! wrong region are refused as S3 refuses them, for every operation a downloader sends,
//! through `s3s`'s ListObjectsV2 handler and the fast path alike.

mod common;

use aws_sdk_s3::error::SdkError;
use aws_sdk_s3::Client;
use common::{anonymous_client, client, client_in_region, code, error_body, error_header, status};
use s3fetch_testkit::{ServerOptions, TestServer};

const WEST: &str = "west-bucket";
const DIR: &str = "west--usw2-az1--x-s3";

async fn server(fast_list: bool) -> TestServer {
    let server = TestServer::start_with(ServerOptions {
        fast_list,
        bucket_regions: vec![
            (WEST.into(), "us-west-2".into()),
            (DIR.into(), "us-west-2".into()),
        ],
        directory_buckets: vec![DIR.into()],
        ..Default::default()
    })
    .await
    .unwrap();
    for b in [WEST, "home"] {
        server.create_bucket(b);
        server.put_object(b, "a.txt", b"a");
    }
    server
}

/// The status, code, `x-amz-bucket-region` and body of a refused call.
#[derive(Debug)]
struct Refused {
    status: u16,
    code: String,
    region: Option<String>,
    body: String,
}

fn refused<E: aws_sdk_s3::error::ProvideErrorMetadata + std::fmt::Debug>(
    err: &SdkError<E, aws_sdk_s3::config::http::HttpResponse>,
) -> Refused {
    Refused {
        status: status(err),
        code: code(err),
        region: error_header(err, "x-amz-bucket-region"),
        body: error_body(err),
    }
}

/// Every operation a downloader sends for `bucket`, refused or not.
async fn refusals(c: &Client, bucket: &str) -> Vec<(&'static str, Refused)> {
    let mut out = Vec::new();
    let e = c.list_objects_v2().bucket(bucket).send().await.unwrap_err();
    out.push(("ListObjectsV2", refused(&e)));
    let e = c.list_objects().bucket(bucket).send().await.unwrap_err();
    out.push(("ListObjects", refused(&e)));
    let e = c
        .get_object()
        .bucket(bucket)
        .key("a.txt")
        .send()
        .await
        .unwrap_err();
    out.push(("GetObject", refused(&e)));
    let e = c
        .head_object()
        .bucket(bucket)
        .key("a.txt")
        .send()
        .await
        .unwrap_err();
    out.push(("HeadObject", refused(&e)));
    let e = c.head_bucket().bucket(bucket).send().await.unwrap_err();
    out.push(("HeadBucket", refused(&e)));
    out
}

#[tokio::test]
async fn signed_for_us_east_1_is_a_permanent_redirect() {
    for fast_list in [true, false] {
        let server = server(fast_list).await;
        let c = client(&server); // signs for us-east-1
        for (op, r) in refusals(&c, WEST).await {
            assert_eq!(r.status, 301, "{op}: {r:?}");
            assert_eq!(r.region.as_deref(), Some("us-west-2"), "{op}");
            if op.starts_with("Head") {
                assert_eq!(r.body, "", "{op}: HEAD errors have no body");
            } else {
                assert_eq!(r.code, "PermanentRedirect", "{op}");
                assert!(
                    r.body
                        .contains("<Endpoint>west-bucket.s3.us-west-2.amazonaws.com</Endpoint>")
                        && r.body.contains("<Bucket>west-bucket</Bucket>")
                        && r.body.contains("<Message>"),
                    "{op}: {}",
                    r.body
                );
            }
        }
        // Every refusal counted under its operation; nothing else reached the handlers.
        let counts = server.request_counts();
        for op in [
            "ListObjectsV2",
            "ListObjects",
            "GetObject",
            "HeadObject",
            "HeadBucket",
        ] {
            assert_eq!(counts.of(op), 1, "{op}: {counts:?}");
        }
        // Other buckets are unaffected.
        c.get_object()
            .bucket("home")
            .key("a.txt")
            .send()
            .await
            .unwrap();
    }
}

#[tokio::test]
async fn signed_for_another_wrong_region_is_authorization_header_malformed() {
    for fast_list in [true, false] {
        let server = server(fast_list).await;
        let c = client_in_region(&server, "eu-west-1");
        for (op, r) in refusals(&c, WEST).await {
            assert_eq!(r.status, 400, "{op}: {r:?}");
            assert_eq!(r.region.as_deref(), Some("us-west-2"), "{op}");
            if op.starts_with("Head") {
                assert_eq!(r.body, "", "{op}");
            } else {
                assert_eq!(r.code, "AuthorizationHeaderMalformed", "{op}");
                assert!(
                    r.body.contains(
                        "<Message>The authorization header is malformed; the region 'eu-west-1' \
                         is wrong; expecting 'us-west-2'</Message>"
                    ) && r.body.contains("<Region>us-west-2</Region>"),
                    "{op}: {}",
                    r.body
                );
            }
        }
        assert_eq!(server.request_counts().list, 2);
    }
}

#[tokio::test]
async fn signed_for_the_bucket_region_works_and_reports_it() {
    let server = server(true).await;
    let c = client_in_region(&server, "us-west-2");
    let list = c.list_objects_v2().bucket(WEST).send().await.unwrap();
    assert_eq!(list.key_count(), Some(1));
    c.list_objects().bucket(WEST).send().await.unwrap();
    c.get_object()
        .bucket(WEST)
        .key("a.txt")
        .send()
        .await
        .unwrap();
    c.head_object()
        .bucket(WEST)
        .key("a.txt")
        .send()
        .await
        .unwrap();
    let head = c.head_bucket().bucket(WEST).send().await.unwrap();
    assert_eq!(head.bucket_region(), Some("us-west-2"));
    // ListBuckets and GetBucketLocation answer from any region.
    let east = client(&server);
    let buckets = east.list_buckets().send().await.unwrap();
    let region_of = |name: &str| {
        buckets
            .buckets()
            .iter()
            .find(|b| b.name() == Some(name))
            .and_then(|b| b.bucket_region())
            .map(str::to_owned)
    };
    assert_eq!(region_of(WEST).as_deref(), Some("us-west-2"));
    assert_eq!(region_of("home").as_deref(), Some("us-east-1"));
    for c in [&east, &client_in_region(&server, "eu-west-1")] {
        let loc = c.get_bucket_location().bucket(WEST).send().await.unwrap();
        assert_eq!(
            loc.location_constraint().map(|l| l.as_str()),
            Some("us-west-2")
        );
    }
    let loc = east
        .get_bucket_location()
        .bucket("home")
        .send()
        .await
        .unwrap();
    assert_eq!(
        loc.location_constraint().map(|l| l.as_str()).unwrap_or(""),
        ""
    );
}

#[tokio::test]
async fn unsigned_requests_are_served() {
    let server = server(true).await;
    server.set_public(WEST, true);
    let anon = anonymous_client(&server);
    let list = anon.list_objects_v2().bucket(WEST).send().await.unwrap();
    assert_eq!(list.key_count(), Some(1));
    anon.get_object()
        .bucket(WEST)
        .key("a.txt")
        .send()
        .await
        .unwrap();
}

#[tokio::test]
async fn create_session_is_refused_too() {
    let server = server(true).await;
    // CreateSession signed (by the SDK, for `s3express`) with the client's region.
    let e = client(&server)
        .create_session()
        .bucket(DIR)
        .send()
        .await
        .unwrap_err();
    let r = refused(&e);
    assert_eq!(
        (r.status, r.code.as_str()),
        (301, "PermanentRedirect"),
        "{r:?}"
    );
    let e = client_in_region(&server, "eu-west-1")
        .create_session()
        .bucket(DIR)
        .send()
        .await
        .unwrap_err();
    let r = refused(&e);
    assert_eq!(
        (r.status, r.code.as_str(), r.region.as_deref()),
        (400, "AuthorizationHeaderMalformed", Some("us-west-2")),
        "{r:?}"
    );
    assert_eq!(server.request_counts().of("CreateSession"), 2);
    let ok = client_in_region(&server, "us-west-2")
        .create_session()
        .bucket(DIR)
        .send()
        .await
        .unwrap();
    assert!(ok.credentials().is_some());
}
