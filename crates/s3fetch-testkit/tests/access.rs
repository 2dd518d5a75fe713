//! Authentication and access control: bad keys, bad signatures, denied buckets/keys,
//! anonymous access to private and public buckets.

mod common;

use common::{anonymous_client, client, client_with, code, status};
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

#[tokio::test]
async fn unknown_access_key_is_invalid_access_key_id() {
    let server = server().await;
    let c = client_with(&server.endpoint(), "nobody", "whatever");
    let err = c
        .list_objects_v2()
        .bucket("private")
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&err), "InvalidAccessKeyId");
    assert_eq!(status(&err), 403);
    let err = c
        .get_object()
        .bucket("private")
        .key("a.txt")
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&err), "InvalidAccessKeyId");
}

#[tokio::test]
async fn wrong_secret_is_signature_does_not_match() {
    let server = server().await;
    let c = client_with(&server.endpoint(), server.access_key(), "wrong-secret");
    let err = c
        .list_objects_v2()
        .bucket("private")
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&err), "SignatureDoesNotMatch");
    assert_eq!(status(&err), 403);
    let err = c
        .get_object()
        .bucket("private")
        .key("a.txt")
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&err), "SignatureDoesNotMatch");
}

#[tokio::test]
async fn denied_bucket_and_key() {
    let server = server().await;
    server.deny_bucket("locked");
    server.deny_key("private", "secret.txt");
    let c = client(&server);
    let err = c
        .list_objects_v2()
        .bucket("locked")
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&err), "AccessDenied");
    assert_eq!(status(&err), 403);
    let err = c
        .get_object()
        .bucket("locked")
        .key("a.txt")
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&err), "AccessDenied");
    let err = c.head_bucket().bucket("locked").send().await.unwrap_err();
    assert_eq!(status(&err), 403);

    let err = c
        .get_object()
        .bucket("private")
        .key("secret.txt")
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&err), "AccessDenied");
    assert_eq!(status(&err), 403);
    let err = c
        .head_object()
        .bucket("private")
        .key("secret.txt")
        .send()
        .await
        .unwrap_err();
    assert_eq!(status(&err), 403);
    // The rest of the bucket still works, and the denied key is still listed.
    c.get_object()
        .bucket("private")
        .key("a.txt")
        .send()
        .await
        .unwrap();
    let list = c.list_objects_v2().bucket("private").send().await.unwrap();
    assert_eq!(list.key_count(), Some(2));

    server.allow_bucket("locked");
    server.allow_key("private", "secret.txt");
    c.get_object()
        .bucket("locked")
        .key("a.txt")
        .send()
        .await
        .unwrap();
    c.get_object()
        .bucket("private")
        .key("secret.txt")
        .send()
        .await
        .unwrap();
}

#[tokio::test]
async fn anonymous_access() {
    let server = server().await;
    server.set_public("pub", true);
    let anon = anonymous_client(&server);
    let err = anon
        .list_objects_v2()
        .bucket("private")
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&err), "AccessDenied");
    let err = anon
        .get_object()
        .bucket("private")
        .key("a.txt")
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&err), "AccessDenied");
    let err = anon.list_buckets().send().await.unwrap_err();
    assert_eq!(code(&err), "AccessDenied");

    let list = anon.list_objects_v2().bucket("pub").send().await.unwrap();
    assert_eq!(list.key_count(), Some(2));
    let body = anon
        .get_object()
        .bucket("pub")
        .key("a.txt")
        .send()
        .await
        .unwrap();
    assert_eq!(
        body.body.collect().await.unwrap().into_bytes().as_ref(),
        b"a"
    );
    anon.head_object()
        .bucket("pub")
        .key("a.txt")
        .send()
        .await
        .unwrap();
    let err = anon
        .put_object()
        .bucket("pub")
        .key("new")
        .body(b"x".to_vec().into())
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&err), "AccessDenied");
    // Missing key in a public bucket is a plain NoSuchKey.
    let err = anon
        .get_object()
        .bucket("pub")
        .key("missing")
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&err), "NoSuchKey");

    server.set_public("pub", false);
    let err = anon
        .get_object()
        .bucket("pub")
        .key("a.txt")
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&err), "AccessDenied");
    // Signed requests to a public bucket work as usual.
    client(&server)
        .get_object()
        .bucket("pub")
        .key("a.txt")
        .send()
        .await
        .unwrap();
}
