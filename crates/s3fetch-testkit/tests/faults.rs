//! Fault injection and full-object checksums, observed over HTTP with aws-sdk-s3.

mod common;

use std::collections::BTreeSet;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use aws_sdk_s3::config::retry::RetryConfig;
use aws_sdk_s3::config::ResponseChecksumValidation;
use aws_sdk_s3::operation::get_object::GetObjectOutput;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{ChecksumMode, ChecksumType};
use aws_sdk_s3::Client;
use common::{code, status};
use s3fetch_testkit::checksum::{crc64nvme, crc64nvme_header};
use s3fetch_testkit::{FaultKind, FaultPlan, FaultRule, ServerOptions, TestServer};

const BUCKET: &str = "faults";

/// Deterministic, non-repeating-looking bytes.
fn data(len: usize, seed: u8) -> Vec<u8> {
    let mut x = u32::from(seed) | 0x9e37_0000;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x.to_le_bytes()[0]
        })
        .collect()
}

async fn server_with(plan: FaultPlan) -> TestServer {
    started(ServerOptions {
        faults: plan,
        ..Default::default()
    })
    .await
}

/// [`server_with`], over HTTPS when `tls`.
async fn server_over(tls: bool, plan: FaultPlan) -> TestServer {
    started(ServerOptions {
        faults: plan,
        tls,
        ..Default::default()
    })
    .await
}

/// GetObject of `key` in [`BUCKET`], asking for its checksum.
async fn get_with_checksum(c: &Client, key: &str) -> GetObjectOutput {
    c.get_object()
        .bucket(BUCKET)
        .key(key)
        .checksum_mode(ChecksumMode::Enabled)
        .send()
        .await
        .unwrap()
}

/// A server with `options` and the bucket [`BUCKET`].
async fn started(options: ServerOptions) -> TestServer {
    let server = TestServer::start_with(options).await.unwrap();
    server.create_bucket(BUCKET);
    server
}

/// A client that makes a single attempt per call and (unless asked) no checksum validation.
fn one_shot(server: &TestServer) -> Client {
    let c = common::client(server);
    Client::from_conf(
        c.config()
            .to_builder()
            .retry_config(RetryConfig::disabled())
            .response_checksum_validation(ResponseChecksumValidation::WhenRequired)
            .build(),
    )
}

/// A client retrying (3 attempts) with a short backoff.
fn retrying(server: &TestServer) -> Client {
    let c = common::client(server);
    Client::from_conf(
        c.config()
            .to_builder()
            .retry_config(
                RetryConfig::standard()
                    .with_max_attempts(3)
                    .with_initial_backoff(Duration::from_millis(5)),
            )
            .build(),
    )
}

/// Reads a body chunk by chunk: (bytes received, the error that ended it, if any).
async fn drain(mut body: ByteStream) -> (Vec<u8>, Option<String>) {
    let mut got = Vec::new();
    while let Some(chunk) = body.next().await {
        match chunk {
            Ok(c) => got.extend_from_slice(&c),
            Err(e) => return (got, Some(format!("{e:?}"))),
        }
    }
    (got, None)
}

fn rule(kind: FaultKind) -> FaultRule {
    FaultRule::new(kind, 1.0)
}

async fn checksums_on_whole_gets_and_heads_only_on(tls: bool) {
    let server = server_over(tls, FaultPlan::default()).await;
    let body = data(700_000, 1);
    server.put_object(BUCKET, "obj", &body);
    server.put_object(BUCKET, "empty", b"");
    let want = crc64nvme_header(crc64nvme(&body));
    let c = common::client(&server); // default: the SDK validates response checksums

    let r = get_with_checksum(&c, "obj").await;
    assert_eq!(r.checksum_crc64_nvme(), Some(want.as_str()));
    assert_eq!(r.checksum_type(), Some(&ChecksumType::FullObject));
    assert_eq!(r.body.collect().await.unwrap().into_bytes(), body);

    let h = c
        .head_object()
        .bucket(BUCKET)
        .key("obj")
        .checksum_mode(ChecksumMode::Enabled)
        .send()
        .await
        .unwrap();
    assert_eq!(h.checksum_crc64_nvme(), Some(want.as_str()));
    assert_eq!(h.checksum_type(), Some(&ChecksumType::FullObject));

    // Without checksum mode (and with the SDK not adding it): no headers.
    let plain = one_shot(&server);
    let h = plain.head_object().bucket(BUCKET).key("obj").send().await;
    let h = h.unwrap();
    assert_eq!(h.checksum_crc64_nvme(), None);
    assert_eq!(h.checksum_type(), None);
    let r = plain.get_object().bucket(BUCKET).key("obj").send().await;
    assert_eq!(r.unwrap().checksum_crc64_nvme(), None);

    // Ranged GETs carry no checksum, even with checksum mode (the SDK adds it by default).
    for c in [&c, &plain] {
        let r = c
            .get_object()
            .bucket(BUCKET)
            .key("obj")
            .range("bytes=1000-1999")
            .checksum_mode(ChecksumMode::Enabled)
            .send()
            .await
            .unwrap();
        assert_eq!(r.checksum_crc64_nvme(), None);
        assert_eq!(r.checksum_type(), None);
        assert_eq!(
            r.body.collect().await.unwrap().into_bytes(),
            body[1000..2000]
        );
    }

    // The empty object's CRC is 0; the SDK validates it too.
    let r = c.get_object().bucket(BUCKET).key("empty").send().await;
    let r = r.unwrap();
    assert_eq!(r.checksum_crc64_nvme(), Some("AAAAAAAAAAA="));
    assert!(r.body.collect().await.unwrap().into_bytes().is_empty());
}

#[tokio::test]
async fn ignore_range_serves_the_whole_object_with_its_checksum() {
    let options = ServerOptions {
        range_returns_full_object: true,
        ..Default::default()
    };
    let server = started(options).await;
    let body = data(5000, 2);
    server.put_object(BUCKET, "obj", &body);
    let c = common::client(&server);
    let r = c
        .get_object()
        .bucket(BUCKET)
        .key("obj")
        .range("bytes=10-19")
        .checksum_mode(ChecksumMode::Enabled)
        .send()
        .await
        .unwrap();
    assert_eq!(r.content_length(), Some(5000));
    assert_eq!(r.content_range(), None);
    let want = crc64nvme_header(crc64nvme(&body));
    assert_eq!(r.checksum_crc64_nvme(), Some(want.as_str()));
    assert_eq!(r.body.collect().await.unwrap().into_bytes(), body);
}

#[tokio::test]
async fn a_server_without_checksums_sends_none() {
    let options = ServerOptions {
        checksums: false,
        ..Default::default()
    };
    let server = started(options).await;
    server.put_object(BUCKET, "obj", data(5000, 3));
    let c = common::client(&server);
    let r = get_with_checksum(&c, "obj").await;
    assert_eq!(r.checksum_crc64_nvme(), None);
    assert_eq!(r.checksum_type(), None);
    let head = c.head_object().bucket(BUCKET).key("obj");
    let r = head
        .checksum_mode(ChecksumMode::Enabled)
        .send()
        .await
        .unwrap();
    assert_eq!(r.checksum_crc64_nvme(), None);
    // The ETag is still the object's MD5: what a client can check instead.
    assert_eq!(r.e_tag().map(|e| e.len()), Some(34));
}

async fn slow_down_internal_error_forbidden_on(tls: bool) {
    let server = server_over(tls, FaultPlan::default()).await;
    server.put_object(BUCKET, "slow", b"s");
    server.put_object(BUCKET, "broken", b"b");
    server.put_object(BUCKET, "secret", b"x");
    server.put_object(BUCKET, "fine", b"f");
    let c = one_shot(&server);
    // Faults can be switched on at runtime.
    server.set_faults(
        FaultPlan::new(1)
            .with(rule(FaultKind::SlowDown).key("slow"))
            .with(rule(FaultKind::InternalError).key("broken"))
            .with(rule(FaultKind::Forbidden).key_prefix("sec")),
    );
    for (key, want_status, want_code) in [
        ("slow", 503, "SlowDown"),
        ("broken", 500, "InternalError"),
        ("secret", 403, "AccessDenied"),
    ] {
        let e = c.get_object().bucket(BUCKET).key(key).send().await;
        let e = e.unwrap_err();
        assert_eq!((status(&e), code(&e).as_str()), (want_status, want_code));
        let e = c.head_object().bucket(BUCKET).key(key).send().await;
        assert_eq!(status(&e.unwrap_err()), want_status, "HEAD {key}");
    }
    let ok = c.get_object().bucket(BUCKET).key("fine").send().await;
    assert_eq!(
        &ok.unwrap().body.collect().await.unwrap().into_bytes()[..],
        b"f"
    );
    let counts = server.fault_counts();
    assert_eq!(counts["slow_down"], 2);
    assert_eq!(counts["internal_error"], 2);
    assert_eq!(counts["forbidden"], 2);
    // Faulted requests count under their operation.
    assert_eq!(server.request_counts().get, 4);
    assert_eq!(server.request_counts().head, 3);

    server.set_faults(FaultPlan::default());
    let ok = c.get_object().bucket(BUCKET).key("slow").send().await;
    assert!(ok.is_ok());
}

#[tokio::test]
async fn not_found_then_success_on_retry() {
    let server =
        server_with(FaultPlan::new(3).with(rule(FaultKind::NotFound).max_per_request(1))).await;
    server.put_object(BUCKET, "k", b"here");
    let c = one_shot(&server);
    let e = c.get_object().bucket(BUCKET).key("k").send().await;
    let e = e.unwrap_err();
    assert_eq!((status(&e), code(&e).as_str()), (404, "NoSuchKey"));
    let r = c.get_object().bucket(BUCKET).key("k").send().await;
    assert_eq!(
        &r.unwrap().body.collect().await.unwrap().into_bytes()[..],
        b"here"
    );
    // HEAD is its own request: its first attempt is hit too.
    let e = c.head_object().bucket(BUCKET).key("k").send().await;
    assert_eq!(status(&e.unwrap_err()), 404);
    assert!(c.head_object().bucket(BUCKET).key("k").send().await.is_ok());
    // So is each range.
    let ranged = |r: &'static str| c.get_object().bucket(BUCKET).key("k").range(r).send();
    assert_eq!(status(&ranged("bytes=1-2").await.unwrap_err()), 404);
    assert!(ranged("bytes=1-2").await.is_ok());
    assert_eq!(server.fault_counts()["not_found"], 3);
}

#[tokio::test]
async fn ranged_rules_hit_only_requests_with_a_range() {
    let plan = FaultPlan::parse("internal_error=1@ranged,seed=5").unwrap();
    let server = server_with(plan).await;
    let body = data(1000, 3);
    server.put_object(BUCKET, "k", &body);
    let c = one_shot(&server);
    // Whole-object GETs, HEADs and lists pass.
    let r = c.get_object().bucket(BUCKET).key("k").send().await;
    assert_eq!(r.unwrap().body.collect().await.unwrap().into_bytes(), body);
    assert!(c.head_object().bucket(BUCKET).key("k").send().await.is_ok());
    assert!(c.list_objects_v2().bucket(BUCKET).send().await.is_ok());
    // Every range fails, the first one too.
    for range in ["bytes=0-499", "bytes=500-999"] {
        let e = c
            .get_object()
            .bucket(BUCKET)
            .key("k")
            .range(range)
            .send()
            .await;
        assert_eq!(status(&e.unwrap_err()), 500, "{range}");
    }
    assert_eq!(server.fault_counts()["internal_error"], 2);
}

async fn reset_before_head_on(tls: bool) {
    let server = server_over(
        tls,
        FaultPlan::new(0).with(rule(FaultKind::ResetBeforeHead).max_per_request(1)),
    )
    .await;
    server.put_object(BUCKET, "a", b"aaa");
    server.put_object(BUCKET, "b", b"bbb");
    let e = one_shot(&server)
        .get_object()
        .bucket(BUCKET)
        .key("a")
        .send()
        .await
        .unwrap_err();
    assert!(e.raw_response().is_none(), "got a response: {e:?}");
    assert!(e.as_service_error().is_none());
    let msg = format!("{e:?}");
    assert!(
        msg.contains("DispatchFailure") || msg.contains("ResponseError"),
        "{msg}"
    );
    // A retrying client gets through on the second attempt.
    let r = retrying(&server)
        .get_object()
        .bucket(BUCKET)
        .key("b")
        .send()
        .await
        .unwrap();
    assert_eq!(&r.body.collect().await.unwrap().into_bytes()[..], b"bbb");
    assert_eq!(server.fault_counts()["reset_before_head"], 2);
    assert_eq!(server.request_counts().get, 3);
}

async fn cut_body_after_n_bytes_on(tls: bool) {
    let server = server_over(
        tls,
        FaultPlan::new(0).with(rule(FaultKind::CutBodyAfter { bytes: 100_000 }).key_prefix("cut")),
    )
    .await;
    let body = data(1_000_000, 3);
    server.put_object(BUCKET, "cut", &body);
    server.put_object(BUCKET, "cut-small", b"0123456789");
    let c = one_shot(&server);
    let r = c
        .get_object()
        .bucket(BUCKET)
        .key("cut")
        .send()
        .await
        .unwrap();
    // The head arrived intact.
    assert_eq!(r.content_length(), Some(1_000_000));
    let etag = server.store().head_object(BUCKET, "cut").unwrap().etag();
    assert_eq!(r.e_tag(), Some(etag.as_str()));
    let (got, err) = drain(r.body).await;
    assert_eq!(got.len(), 100_000);
    assert_eq!(got, body[..100_000]);
    assert!(err.is_some());

    // Ranged GETs are cut too, counting from the range start.
    let r = c
        .get_object()
        .bucket(BUCKET)
        .key("cut")
        .range("bytes=500000-")
        .send()
        .await
        .unwrap();
    let (got, err) = drain(r.body).await;
    assert_eq!(got, body[500_000..600_000]);
    assert!(err.is_some());

    // N is clamped to the length − 1: the body is always incomplete.
    let r = c.get_object().bucket(BUCKET).key("cut-small").send().await;
    let (got, err) = drain(r.unwrap().body).await;
    assert_eq!(&got[..], b"012345678");
    assert!(err.is_some());
    assert_eq!(server.fault_counts()["cut_body_after"], 3);
}

#[tokio::test]
async fn stall_body_is_noticed_by_a_client_timeout() {
    let server = server_with(
        FaultPlan::new(0)
            .with(
                rule(FaultKind::StallBody {
                    after_bytes: 1000,
                    duration: Duration::from_millis(1500),
                    abort: false,
                })
                .key("stall"),
            )
            .with(
                rule(FaultKind::StallBody {
                    after_bytes: 10,
                    duration: Duration::from_millis(200),
                    abort: true,
                })
                .key("abort"),
            ),
    )
    .await;
    let body = data(300_000, 4);
    server.put_object(BUCKET, "stall", &body);
    server.put_object(BUCKET, "abort", &body);
    let c = one_shot(&server);

    let r = c.get_object().bucket(BUCKET).key("stall").send().await;
    let mut stream = r.unwrap().body;
    let mut got = Vec::new();
    let t0 = Instant::now();
    let mut timed_out = false;
    loop {
        match tokio::time::timeout(Duration::from_millis(400), stream.next()).await {
            Err(_) => {
                timed_out = true;
                break;
            }
            Ok(Some(chunk)) => got.extend_from_slice(&chunk.unwrap()),
            Ok(None) => break,
        }
    }
    assert!(timed_out, "no stall noticed");
    assert_eq!(got, body[..1000]);
    // `continue`: the rest arrives after the stall.
    while let Some(chunk) = stream.next().await {
        got.extend_from_slice(&chunk.unwrap());
    }
    assert!(t0.elapsed() >= Duration::from_millis(1400));
    assert_eq!(got, body);

    // `abort`: the connection is aborted after the stall.
    let r = c.get_object().bucket(BUCKET).key("abort").send().await;
    let t0 = Instant::now();
    let (got, err) = drain(r.unwrap().body).await;
    assert_eq!(got, body[..10]);
    assert!(err.is_some());
    assert!(t0.elapsed() >= Duration::from_millis(150));
    assert_eq!(server.fault_counts()["stall_body"], 2);
}

async fn corrupt_keeps_length_and_headers_and_fails_checksum_validation_on(tls: bool) {
    let server = server_over(tls, FaultPlan::new(0).with(rule(FaultKind::Corrupt))).await;
    let body = data(600_000, 5);
    server.put_object(BUCKET, "obj", &body);
    let plain = one_shot(&server);
    let head = plain.head_object().bucket(BUCKET).key("obj").send().await;
    let head = head.unwrap();
    let r = plain.get_object().bucket(BUCKET).key("obj").send().await;
    let r = r.unwrap();
    assert_eq!(r.content_length(), Some(600_000));
    assert_eq!(r.e_tag(), head.e_tag());
    let got = r.body.collect().await.unwrap().into_bytes();
    assert_eq!(got.len(), body.len());
    assert_ne!(&got[..], &body[..]);
    let diff = got.iter().zip(&body).filter(|(a, b)| a != b).count();
    assert!((1..100).contains(&diff), "{diff} bytes differ");

    // With checksum mode the checksum header is the original one and the SDK rejects the
    // body.
    let c = common::client(&server);
    let r = get_with_checksum(&c, "obj").await;
    let want = crc64nvme_header(crc64nvme(&body));
    assert_eq!(r.checksum_crc64_nvme(), Some(want.as_str()));
    let err = r.body.collect().await.unwrap_err();
    let msg = format!("{err:?}");
    assert!(msg.to_lowercase().contains("checksum"), "{msg}");
    assert_eq!(server.fault_counts()["corrupt"], 2);
}

// The tests above over HTTP and over HTTPS: faults reach a TLS client the same way.

#[tokio::test]
async fn checksums_on_whole_gets_and_heads_only() {
    checksums_on_whole_gets_and_heads_only_on(false).await;
}

#[tokio::test]
async fn checksums_on_whole_gets_and_heads_only_over_tls() {
    checksums_on_whole_gets_and_heads_only_on(true).await;
}

#[tokio::test]
async fn slow_down_internal_error_forbidden() {
    slow_down_internal_error_forbidden_on(false).await;
}

#[tokio::test]
async fn slow_down_internal_error_forbidden_over_tls() {
    slow_down_internal_error_forbidden_on(true).await;
}

#[tokio::test]
async fn reset_before_head() {
    reset_before_head_on(false).await;
}

#[tokio::test]
async fn reset_before_head_over_tls() {
    reset_before_head_on(true).await;
}

#[tokio::test]
async fn cut_body_after_n_bytes() {
    cut_body_after_n_bytes_on(false).await;
}

#[tokio::test]
async fn cut_body_after_n_bytes_over_tls() {
    cut_body_after_n_bytes_on(true).await;
}

#[tokio::test]
async fn corrupt_keeps_length_and_headers_and_fails_checksum_validation() {
    corrupt_keeps_length_and_headers_and_fails_checksum_validation_on(false).await;
}

#[tokio::test]
async fn corrupt_keeps_length_and_headers_and_fails_checksum_validation_over_tls() {
    corrupt_keeps_length_and_headers_and_fails_checksum_validation_on(true).await;
}

#[tokio::test]
async fn etag_change_on_later_ranges() {
    let server = server_with(FaultPlan::new(0).with(rule(FaultKind::EtagChange))).await;
    let body = data(10_000, 6);
    server.put_object(BUCKET, "obj", &body);
    let etag = server.store().head_object(BUCKET, "obj").unwrap().etag();
    let c = one_shot(&server);
    let get = |range: &'static str, if_match: bool| {
        let mut g = c.get_object().bucket(BUCKET).key("obj").range(range);
        if if_match {
            g = g.if_match(&etag);
        }
        g.send()
    };
    // The first part (from byte 0) is never hit.
    let first = get("bytes=0-4999", true).await.unwrap();
    assert_eq!(first.e_tag(), Some(etag.as_str()));
    // Later parts: If-Match fails as if the object had been replaced...
    let e = get("bytes=5000-9999", true).await.unwrap_err();
    assert_eq!((status(&e), code(&e).as_str()), (412, "PreconditionFailed"));
    // ... and without If-Match they come with another ETag.
    let r = get("bytes=5000-9999", false).await.unwrap();
    assert!(r.e_tag().is_some_and(|e| e != etag), "{:?}", r.e_tag());
    // Whole-object GETs are not ranged: untouched.
    let whole = c
        .get_object()
        .bucket(BUCKET)
        .key("obj")
        .if_match(&etag)
        .send()
        .await;
    assert_eq!(whole.unwrap().e_tag(), Some(etag.as_str()));
    assert_eq!(server.fault_counts()["etag_change"], 2);
}

#[tokio::test]
async fn list_slow_down() {
    let server =
        server_with(FaultPlan::new(0).with(rule(FaultKind::ListSlowDown).max_per_request(1))).await;
    server.put_object(BUCKET, "k", b"v");
    let e = one_shot(&server)
        .list_objects_v2()
        .bucket(BUCKET)
        .send()
        .await
        .unwrap_err();
    assert_eq!((status(&e), code(&e).as_str()), (503, "SlowDown"));
    // The retry of the same page passes; a retrying client sees one failure per page.
    let page = one_shot(&server)
        .list_objects_v2()
        .bucket(BUCKET)
        .send()
        .await;
    assert_eq!(page.unwrap().key_count(), Some(1));
    let page = retrying(&server)
        .list_objects_v2()
        .bucket(BUCKET)
        .prefix("k")
        .send()
        .await;
    assert_eq!(page.unwrap().key_count(), Some(1));
    // GETs are unaffected.
    assert!(one_shot(&server)
        .get_object()
        .bucket(BUCKET)
        .key("k")
        .send()
        .await
        .is_ok());
    assert_eq!(server.fault_counts()["list_slow_down"], 2);
    assert_eq!(server.request_counts().list, 4);
}

/// Which of `keys` fail a single attempt each.
async fn failing_keys(server: &TestServer, keys: &[String]) -> BTreeSet<String> {
    let c = one_shot(server);
    let mut failed = BTreeSet::new();
    for k in keys {
        if c.get_object().bucket(BUCKET).key(k).send().await.is_err() {
            failed.insert(k.clone());
        }
    }
    failed
}

async fn server_with_keys(plan: FaultPlan, keys: &[String]) -> TestServer {
    let s = server_with(plan).await;
    s.store()
        .put_objects(BUCKET, keys.iter().map(|k| (k.clone(), b"x")))
        .unwrap();
    s
}

#[tokio::test]
async fn decisions_are_deterministic() {
    let keys: Vec<String> = (0..120).map(|i| format!("dir/key-{i:03}")).collect();
    let plan = |seed| FaultPlan::new(seed).with(FaultRule::new(FaultKind::SlowDown, 0.25));
    let (a, b, other) = (
        server_with_keys(plan(7), &keys).await,
        server_with_keys(plan(7), &keys).await,
        server_with_keys(plan(8), &keys).await,
    );
    let fa = failing_keys(&a, &keys).await;
    let fb = failing_keys(&b, &keys).await;
    assert_eq!(fa, fb);
    assert!((10..60).contains(&fa.len()), "{}", fa.len());
    assert_eq!(a.fault_counts()["slow_down"], fa.len() as u64);
    assert_ne!(failing_keys(&other, &keys).await, fa);
    // Second attempts are decided afresh (and again identically on both servers).
    let (sa, sb) = (failing_keys(&a, &keys).await, failing_keys(&b, &keys).await);
    assert_eq!(sa, sb);
    assert_ne!(sa, fa);

    // `sticky`: the same keys fail on every attempt.
    let sticky_plan = FaultPlan::new(7).with(FaultRule::new(FaultKind::SlowDown, 0.25).sticky());
    let sticky = server_with_keys(sticky_plan, &keys).await;
    let f1 = failing_keys(&sticky, &keys).await;
    assert!(!f1.is_empty());
    assert_eq!(failing_keys(&sticky, &keys).await, f1);
}

#[tokio::test]
async fn serve_binary_takes_a_fault_spec_and_reports_counts() {
    let dir = tempfile::tempdir().unwrap();
    let stats = dir.path().join("stats.json");
    let data_dir = dir.path().join("data");
    {
        let store = s3fetch_testkit::Store::open(&data_dir).unwrap();
        store.create_bucket(BUCKET).unwrap();
        store.put_object(BUCKET, "k", b"v").unwrap();
        store.put_object(BUCKET, "ok", b"v").unwrap();
    }
    let mut child = Command::new(env!("CARGO_BIN_EXE_s3fetch-testkit"))
        .args(["serve", "--port", "0", "--data"])
        .arg(&data_dir)
        .args(["--faults", "forbidden=1@key=k,slow_down=0@max=1,seed=3"])
        .arg("--no-checksums")
        .arg("--stats-file")
        .arg(&stats)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let endpoint = common::endpoint_line(stdout).await;
    let c = common::client_with(
        &endpoint,
        s3fetch_testkit::DEFAULT_ACCESS_KEY,
        s3fetch_testkit::DEFAULT_SECRET_KEY,
    );
    let e = c
        .get_object()
        .bucket(BUCKET)
        .key("k")
        .send()
        .await
        .unwrap_err();
    assert_eq!(status(&e), 403);
    let ok = get_with_checksum(&c, "ok").await;
    assert_eq!(ok.checksum_crc64_nvme(), None, "--no-checksums");
    let killed = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let out = tokio::task::spawn_blocking(move || child.wait_with_output())
        .await
        .unwrap()
        .unwrap();
    assert!(out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    let json = std::fs::read_to_string(&stats).unwrap();
    assert!(
        json.starts_with("{\"fault_counts\":{\"forbidden\":1}"),
        "{json}"
    );
    assert!(json.contains("\"GetObject\":2"), "{json}");
    assert!(stderr.contains(json.trim()), "{stderr}");

    // Bad specs are rejected up front.
    let out = Command::new(env!("CARGO_BIN_EXE_s3fetch-testkit"))
        .args(["serve", "--data"])
        .arg(&data_dir)
        .args(["--faults", "slow_down=2"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("probability"));
}
