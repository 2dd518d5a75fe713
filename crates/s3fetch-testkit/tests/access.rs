//! Authentication and access control: bad keys, bad signatures, denied buckets/keys,
//! anonymous access to private and public buckets.
//!
//! Every test is a table of requests and the answer each must get, checked in order;
//! answers are written `STATUS CODE` (`403 AccessDenied`; a HEAD error has no body, so
//! no code: `403 -`), `200 keys=N` for a listing and `200 BODY` for a GET.

mod common;

use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_s3::Client;
use common::{anonymous_client, client, client_with};
use s3fetch_testkit::TestServer;

async fn server() -> TestServer {
    let server = TestServer::start().await;
    for b in ["private", "locked", "pub"] {
        server.create_bucket(b);
        server.put_object(b, "a.txt", b"a");
        server.put_object(b, "secret.txt", b"s");
    }
    server
}

/// One request of a table.
#[derive(Debug, Clone, Copy)]
enum Request {
    List(&'static str),
    Get(&'static str, &'static str),
    Head(&'static str, &'static str),
    HeadBucket(&'static str),
    Put(&'static str, &'static str),
    ListBuckets,
}

use Request::{Get, Head, HeadBucket, List, ListBuckets, Put};

/// A failed call as `STATUS CODE`.
fn failure<E: ProvideErrorMetadata>(
    err: &SdkError<E, aws_sdk_s3::config::http::HttpResponse>,
) -> String {
    let status = err.raw_response().map_or(0, |r| r.status().as_u16());
    let code = err.as_service_error().and_then(|e| e.code()).unwrap_or("-");
    format!("{status} {code}")
}

/// Sends `request` and describes its answer (see the module documentation).
async fn answer(c: &Client, request: Request) -> String {
    match request {
        List(bucket) => match c.list_objects_v2().bucket(bucket).send().await {
            Ok(list) => format!("200 keys={}", list.key_count().unwrap_or(-1)),
            Err(e) => failure(&e),
        },
        Get(bucket, key) => match c.get_object().bucket(bucket).key(key).send().await {
            Ok(got) => {
                let body = got.body.collect().await.unwrap().into_bytes();
                format!("200 {}", String::from_utf8_lossy(&body))
            }
            Err(e) => failure(&e),
        },
        Head(bucket, key) => match c.head_object().bucket(bucket).key(key).send().await {
            Ok(_) => "200".to_owned(),
            Err(e) => failure(&e),
        },
        HeadBucket(bucket) => match c.head_bucket().bucket(bucket).send().await {
            Ok(_) => "200".to_owned(),
            Err(e) => failure(&e),
        },
        Put(bucket, key) => {
            let put = c.put_object().bucket(bucket).key(key);
            match put.body(b"x".to_vec().into()).send().await {
                Ok(_) => "200".to_owned(),
                Err(e) => failure(&e),
            }
        }
        ListBuckets => match c.list_buckets().send().await {
            Ok(_) => "200".to_owned(),
            Err(e) => failure(&e),
        },
    }
}

/// Sends every request of `table` in order and checks its answer.
async fn expect(c: &Client, table: &[(Request, &str)]) {
    for &(request, want) in table {
        assert_eq!(answer(c, request).await, want, "{request:?}");
    }
}

#[tokio::test]
async fn unknown_access_key_is_invalid_access_key_id() {
    let server = server().await;
    let c = client_with(&server.endpoint(), "nobody", "whatever");
    expect(
        &c,
        &[
            (List("private"), "403 InvalidAccessKeyId"),
            (Get("private", "a.txt"), "403 InvalidAccessKeyId"),
        ],
    )
    .await;
}

#[tokio::test]
async fn wrong_secret_is_signature_does_not_match() {
    let server = server().await;
    let c = client_with(&server.endpoint(), server.access_key(), "wrong-secret");
    expect(
        &c,
        &[
            (List("private"), "403 SignatureDoesNotMatch"),
            (Get("private", "a.txt"), "403 SignatureDoesNotMatch"),
        ],
    )
    .await;
}

#[tokio::test]
async fn denied_bucket_and_key() {
    let server = server().await;
    server.deny_bucket("locked");
    server.deny_key("private", "secret.txt");
    let c = client(&server);
    expect(
        &c,
        &[
            (List("locked"), "403 AccessDenied"),
            (Get("locked", "a.txt"), "403 AccessDenied"),
            (HeadBucket("locked"), "403 -"),
            (Get("private", "secret.txt"), "403 AccessDenied"),
            (Head("private", "secret.txt"), "403 -"),
            // The rest of the bucket still works, and the denied key is still listed.
            (Get("private", "a.txt"), "200 a"),
            (List("private"), "200 keys=2"),
        ],
    )
    .await;

    server.allow_bucket("locked");
    server.allow_key("private", "secret.txt");
    expect(
        &c,
        &[
            (Get("locked", "a.txt"), "200 a"),
            (Get("private", "secret.txt"), "200 s"),
        ],
    )
    .await;
}

#[tokio::test]
async fn anonymous_access() {
    let server = server().await;
    server.set_public("pub", true);
    let anon = anonymous_client(&server);
    expect(
        &anon,
        &[
            (List("private"), "403 AccessDenied"),
            (Get("private", "a.txt"), "403 AccessDenied"),
            (ListBuckets, "403 AccessDenied"),
            (List("pub"), "200 keys=2"),
            (Get("pub", "a.txt"), "200 a"),
            (Head("pub", "a.txt"), "200"),
            (Put("pub", "new"), "403 AccessDenied"),
            // A missing key in a public bucket is a plain NoSuchKey.
            (Get("pub", "missing"), "404 NoSuchKey"),
        ],
    )
    .await;

    server.set_public("pub", false);
    expect(&anon, &[(Get("pub", "a.txt"), "403 AccessDenied")]).await;
    // Signed requests to a public bucket work as usual.
    expect(&client(&server), &[(Get("pub", "a.txt"), "200 a")]).await;
}
