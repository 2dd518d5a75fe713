//! GetObject / HeadObject / PutObject / DeleteObject and bucket operations over HTTP.

mod common;

use common::{client, code, status};
use s3fetch_testkit::TestServer;

fn pattern(n: usize) -> Vec<u8> {
    (0..n).map(|i| u8::try_from(i % 251).unwrap()).collect()
}

async fn get_range(
    c: &aws_sdk_s3::Client,
    key: &str,
    range: &str,
) -> (Option<String>, i64, Vec<u8>) {
    let out = c
        .get_object()
        .bucket("objs")
        .key(key)
        .range(range)
        .send()
        .await
        .unwrap();
    let cr = out.content_range().map(str::to_owned);
    let len = out.content_length().unwrap();
    let body = out.body.collect().await.unwrap().into_bytes().to_vec();
    (cr, len, body)
}

#[tokio::test]
async fn range_gets() {
    let server = TestServer::start().await;
    server.create_bucket("objs");
    let data = pattern(1000);
    server.put_object("objs", "k", data.clone());
    let c = client(&server);

    let full = c.get_object().bucket("objs").key("k").send().await.unwrap();
    assert_eq!(full.content_length(), Some(1000));
    assert!(full.content_range().is_none());
    assert_eq!(full.accept_ranges(), Some("bytes"));
    assert!(full.last_modified().is_some());
    let etag = full.e_tag().unwrap().to_owned();
    assert_eq!(full.body.collect().await.unwrap().into_bytes(), data);

    assert_eq!(
        get_range(&c, "k", "bytes=0-9").await,
        (Some("bytes 0-9/1000".into()), 10, data[..10].to_vec())
    );
    assert_eq!(
        get_range(&c, "k", "bytes=990-").await,
        (Some("bytes 990-999/1000".into()), 10, data[990..].to_vec())
    );
    assert_eq!(
        get_range(&c, "k", "bytes=-5").await,
        (Some("bytes 995-999/1000".into()), 5, data[995..].to_vec())
    );
    assert_eq!(
        get_range(&c, "k", "bytes=995-5000").await.2,
        data[995..].to_vec()
    );
    assert_eq!(get_range(&c, "k", "bytes=-5000").await.2, data);

    let err = c
        .get_object()
        .bucket("objs")
        .key("k")
        .range("bytes=1000-")
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&err), "InvalidRange");
    assert_eq!(status(&err), 416);

    // HEAD reports the same metadata; a ranged HEAD reports the range length.
    let head = c
        .head_object()
        .bucket("objs")
        .key("k")
        .send()
        .await
        .unwrap();
    assert_eq!(head.content_length(), Some(1000));
    assert_eq!(head.e_tag(), Some(etag.as_str()));
    let head = c
        .head_object()
        .bucket("objs")
        .key("k")
        .range("bytes=10-19")
        .send()
        .await
        .unwrap();
    assert_eq!(head.content_length(), Some(10));
}

#[tokio::test]
async fn large_object_streams_in_chunks() {
    let server = TestServer::start().await;
    server.create_bucket("objs");
    let data = pattern(3 * 1024 * 1024 + 17);
    server.put_object("objs", "big", data.clone());
    let c = client(&server);
    let out = c
        .get_object()
        .bucket("objs")
        .key("big")
        .send()
        .await
        .unwrap();
    assert_eq!(out.body.collect().await.unwrap().into_bytes(), data);
    let (cr, len, body) = get_range(&c, "big", "bytes=100000-2000000").await;
    assert_eq!(
        cr.as_deref(),
        Some(format!("bytes 100000-2000000/{}", data.len()).as_str())
    );
    assert_eq!(len, 1_900_001);
    assert_eq!(body, data[100_000..=2_000_000]);
    // Streaming store API, never holding the whole object.
    let meta = server
        .store()
        .put_object_from_reader("objs", "streamed", std::io::Cursor::new(data.clone()))
        .unwrap();
    assert_eq!(meta.size, data.len() as u64);
    let out = c
        .get_object()
        .bucket("objs")
        .key("streamed")
        .range("bytes=-300000")
        .send()
        .await
        .unwrap();
    assert_eq!(
        out.body.collect().await.unwrap().into_bytes(),
        data[data.len() - 300_000..]
    );
}

#[tokio::test]
async fn conditional_and_missing() {
    let server = TestServer::start().await;
    server.create_bucket("objs");
    server.put_object("objs", "k", b"hello");
    let c = client(&server);
    let etag = server.store().head_object("objs", "k").unwrap().etag();
    assert_eq!(etag, "\"5d41402abc4b2a76b9719d911017c592\"");

    let ok = c
        .get_object()
        .bucket("objs")
        .key("k")
        .if_match(&etag)
        .send()
        .await
        .unwrap();
    assert_eq!(ok.e_tag(), Some(etag.as_str()));
    let err = c
        .get_object()
        .bucket("objs")
        .key("k")
        .if_match("\"0123\"")
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&err), "PreconditionFailed");
    assert_eq!(status(&err), 412);
    let err = c
        .head_object()
        .bucket("objs")
        .key("k")
        .if_match("\"0123\"")
        .send()
        .await
        .unwrap_err();
    assert_eq!(status(&err), 412);

    let err = c
        .get_object()
        .bucket("objs")
        .key("nope")
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&err), "NoSuchKey");
    assert_eq!(status(&err), 404);
    let err = c
        .head_object()
        .bucket("objs")
        .key("nope")
        .send()
        .await
        .unwrap_err();
    assert_eq!(status(&err), 404);
    let err = c
        .get_object()
        .bucket("nobucket")
        .key("k")
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&err), "NoSuchBucket");
    assert_eq!(status(&err), 404);
}

#[tokio::test]
async fn put_delete_and_bucket_ops() {
    let server = TestServer::start().await;
    let c = client(&server);
    c.create_bucket()
        .bucket("made-by-http")
        .send()
        .await
        .unwrap();
    let err = c
        .create_bucket()
        .bucket("made-by-http")
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&err), "BucketAlreadyOwnedByYou");
    c.head_bucket().bucket("made-by-http").send().await.unwrap();
    let err = c.head_bucket().bucket("absent").send().await.unwrap_err();
    assert_eq!(status(&err), 404);
    let loc = c
        .get_bucket_location()
        .bucket("made-by-http")
        .send()
        .await
        .unwrap();
    assert!(loc
        .location_constraint()
        .is_none_or(|l| l.as_str().is_empty()));
    server.create_bucket("other");
    let buckets = c.list_buckets().send().await.unwrap();
    let names: Vec<&str> = buckets.buckets().iter().filter_map(|b| b.name()).collect();
    assert_eq!(names, ["made-by-http", "other"]);

    let body = pattern(70_000);
    let put = c
        .put_object()
        .bucket("made-by-http")
        .key("dir/file.bin")
        .body(body.clone().into())
        .send()
        .await
        .unwrap();
    let meta = server
        .store()
        .head_object("made-by-http", "dir/file.bin")
        .unwrap();
    assert_eq!(put.e_tag(), Some(meta.etag().as_str()));
    assert_eq!(
        server
            .store()
            .get_object("made-by-http", "dir/file.bin")
            .unwrap(),
        body
    );

    c.delete_object()
        .bucket("made-by-http")
        .key("dir/file.bin")
        .send()
        .await
        .unwrap();
    let err = c
        .get_object()
        .bucket("made-by-http")
        .key("dir/file.bin")
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&err), "NoSuchKey");
    // Deleting a missing key succeeds, like S3.
    c.delete_object()
        .bucket("made-by-http")
        .key("dir/file.bin")
        .send()
        .await
        .unwrap();
    let err = c
        .put_object()
        .bucket("absent")
        .key("k")
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&err), "NoSuchBucket");
}
