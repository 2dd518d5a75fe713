//! Test controls: list gate, request counters, latency, persistence across restarts.

mod common;

use std::time::{Duration, Instant};

use common::{client, list_all};
use s3fetch_testkit::{GenerateOptions, ServerOptions, TestServer};

async fn with_keys(n: usize) -> TestServer {
    let server = TestServer::start().await;
    server.create_bucket("gated");
    server
        .store()
        .put_objects("gated", (0..n).map(|i| (format!("k{i:05}"), vec![1u8; 3])))
        .unwrap();
    server
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_gate_holds_later_pages() {
    let server = with_keys(2500).await;
    let gate = server.gate_list_pages();
    assert!(!gate.is_open());
    let c = client(&server);

    // First pages are never held.
    let first = c.list_objects_v2().bucket("gated").send().await.unwrap();
    assert_eq!(first.contents().len(), 1000);

    let c2 = c.clone();
    let mut task =
        tokio::spawn(async move { list_all(&c2, "gated", None, None, None, None).await });
    tokio::time::timeout(Duration::from_secs(10), gate.wait_for_waiting(1))
        .await
        .expect("second page should reach the gate");
    // Held, not let through: the gate counts every request that passes it.
    assert_eq!(gate.passed(), 0);
    // And it stays held. No event says that a request will never finish, so this gives one a
    // bounded time to (wrongly) finish: the wait can miss a slow leak, never fail a good gate.
    let leaked = tokio::time::timeout(Duration::from_millis(500), &mut task).await;
    assert!(leaked.is_err(), "the held listing finished");
    assert_eq!(gate.waiting(), 1);
    assert_eq!(gate.passed(), 0);
    // A start-after request is held too.
    let c3 = c.clone();
    let sa = tokio::spawn(async move {
        c3.list_objects_v2()
            .bucket("gated")
            .start_after("k00010")
            .send()
            .await
    });
    tokio::time::timeout(Duration::from_secs(10), gate.wait_for_waiting(2))
        .await
        .unwrap();

    gate.open();
    let listing = tokio::time::timeout(Duration::from_secs(10), task)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(listing.keys.len(), 2500);
    assert_eq!(listing.pages, 3);
    let after = sa.await.unwrap().unwrap();
    assert_eq!(after.contents()[0].key(), Some("k00011"));
    assert_eq!(gate.waiting(), 0);
    assert!(gate.passed() >= 3);
}

#[tokio::test]
async fn request_counts_by_operation() {
    let server = with_keys(5).await;
    let c = client(&server);
    server.reset_request_counts();
    let list = c.list_objects_v2().bucket("gated").send().await.unwrap();
    for o in list.contents() {
        c.get_object()
            .bucket("gated")
            .key(o.key().unwrap())
            .send()
            .await
            .unwrap();
    }
    c.head_object()
        .bucket("gated")
        .key("k00000")
        .send()
        .await
        .unwrap();
    let counts = server.request_counts();
    assert_eq!(counts.list, 1);
    assert_eq!(counts.get, 5);
    assert_eq!(counts.head, 1);
    assert_eq!(counts.put, 0);
    assert_eq!(counts.http_requests, 7);
    assert_eq!(counts.by_op.get("ListObjectsV2"), Some(&1));
    server.reset_request_counts();
    assert_eq!(server.request_counts().http_requests, 0);
}

#[tokio::test]
async fn latency_options() {
    let server = TestServer::start_with(ServerOptions {
        get_latency: Duration::from_millis(150),
        list_latency: Duration::from_millis(120),
        ..Default::default()
    })
    .await
    .unwrap();
    server.create_bucket("slow");
    server.put_object("slow", "k", b"v");
    let c = client(&server);
    c.list_buckets().send().await.unwrap(); // warm up the connection
    let t = Instant::now();
    c.get_object().bucket("slow").key("k").send().await.unwrap();
    assert!(t.elapsed() >= Duration::from_millis(150));
    let t = Instant::now();
    c.head_object()
        .bucket("slow")
        .key("k")
        .send()
        .await
        .unwrap();
    assert!(t.elapsed() >= Duration::from_millis(150));
    let t = Instant::now();
    c.list_objects_v2().bucket("slow").send().await.unwrap();
    assert!(t.elapsed() >= Duration::from_millis(120));
    let t = Instant::now();
    c.list_buckets().send().await.unwrap();
    assert!(t.elapsed() < Duration::from_millis(120));
}

#[tokio::test]
async fn persistence_across_restarts() {
    let dir = tempfile::tempdir().unwrap();
    let store = s3fetch_testkit::Store::open(dir.path()).unwrap();
    let report = s3fetch_testkit::generate(&store, &GenerateOptions::default()).unwrap();
    store.create_bucket("empty-bucket").unwrap();
    drop(store);

    let opts = ServerOptions {
        data_dir: Some(dir.path().to_owned()),
        ..Default::default()
    };
    let server = TestServer::start_with(opts.clone()).await.unwrap();
    let c = client(&server);
    let before = list_all(&c, "sample", None, None, None, None).await;
    assert_eq!(before.keys.len() as u64, report.objects);
    assert!(before
        .keys
        .iter()
        .any(|k| k.starts_with("datasets/images/")));
    c.put_object()
        .bucket("sample")
        .key("added/over-http.txt")
        .body(b"new".to_vec().into())
        .send()
        .await
        .unwrap();
    c.delete_object()
        .bucket("sample")
        .key("README.txt")
        .send()
        .await
        .unwrap();
    let etag = c
        .head_object()
        .bucket("sample")
        .key("models/checkpoint-2.bin")
        .send()
        .await
        .unwrap()
        .e_tag()
        .unwrap()
        .to_owned();
    server.shutdown().await;

    let server = TestServer::start_with(opts).await.unwrap();
    let c = client(&server);
    let after = list_all(&c, "sample", None, None, None, None).await;
    let mut expected: Vec<String> = before
        .keys
        .into_iter()
        .filter(|k| k != "README.txt")
        .collect();
    expected.push("added/over-http.txt".to_owned());
    expected.sort();
    assert_eq!(after.keys, expected);
    let head = c
        .head_object()
        .bucket("sample")
        .key("models/checkpoint-2.bin")
        .send()
        .await
        .unwrap();
    assert_eq!(head.e_tag(), Some(etag.as_str()));
    assert_eq!(head.content_length(), Some(4 * 1024 * 1024));
    let buckets = c.list_buckets().send().await.unwrap();
    let names: Vec<&str> = buckets.buckets().iter().filter_map(|b| b.name()).collect();
    assert_eq!(names, ["empty-bucket", "sample"]);
}
