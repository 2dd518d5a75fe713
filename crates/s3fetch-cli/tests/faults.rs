//! The real `s3fetch` binary against the test kit's server with injected faults: every object
//! that can be downloaded ends byte-exact on disk, the ones that cannot are reported, and no
//! temporary file is ever left behind.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::{Command, Output};

use s3fetch_testkit::{FaultPlan, TestServer};

/// Objects of three sizes: small (one buffered GET), medium (one streamed GET) and large
/// (ranged parts with the flags in [`s3fetch`]).
fn objects() -> BTreeMap<String, Vec<u8>> {
    let mut objects = BTreeMap::new();
    let body = |seed: u32, len: u32| -> Vec<u8> {
        (0..len)
            .map(|i| (i.wrapping_mul(2_654_435_761).wrapping_add(seed) >> 13) as u8)
            .collect()
    };
    for i in 0..120 {
        objects.insert(format!("small/{i:04}.bin"), body(i, 500 + i * 97));
    }
    for i in 0..12 {
        objects.insert(
            format!("medium/{i:02}.bin"),
            body(1000 + i, 300_000 + i * 20_011),
        );
    }
    for i in 0..3 {
        objects.insert(format!("large/{i}.bin"), body(2000 + i, 2_500_000 + i * 7));
    }
    objects
}

async fn server(objects: &BTreeMap<String, Vec<u8>>) -> TestServer {
    let server = TestServer::start().await;
    server.create_bucket("bkt");
    server
        .store()
        .put_objects(
            "bkt",
            objects.iter().map(|(k, v)| (k.as_str(), v.as_slice())),
        )
        .unwrap();
    server
}

/// Runs the binary over the whole bucket with small parts and short timeouts.
async fn s3fetch(server: &TestServer, dir: &Path, extra: &[&str]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_s3fetch"));
    cmd.env_clear()
        .env("HOME", dir)
        .env("AWS_ACCESS_KEY_ID", server.access_key())
        .env("AWS_SECRET_ACCESS_KEY", server.secret_key())
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .args([
            "s3://bkt/",
            "--endpoint-url",
            &server.endpoint(),
            "--download-dir",
        ])
        .arg(dir)
        .args(["--part-size", "512KiB"])
        .args(["--idle-timeout", "1", "--progress", "detailed", "-c", "16"])
        .args(extra);
    for (flag, default) in [("--multipart-threshold", "1MiB"), ("--retries", "8")] {
        if !extra.contains(&flag) {
            cmd.args([flag, default]);
        }
    }
    tokio::task::spawn_blocking(move || cmd.output().unwrap())
        .await
        .unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Every file under `dir` with its contents.
fn files(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<String, Vec<u8>>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let entry = entry.unwrap();
            if entry.file_type().unwrap().is_dir() {
                walk(root, &entry.path(), out);
            } else {
                let rel = entry
                    .path()
                    .strip_prefix(root)
                    .unwrap()
                    .to_str()
                    .unwrap()
                    .to_owned();
                out.insert(rel, std::fs::read(entry.path()).unwrap());
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(dir, dir, &mut out);
    out
}

/// Keys named in `error:` lines on stderr.
fn failed_keys(stderr: &str, objects: &BTreeMap<String, Vec<u8>>) -> BTreeSet<String> {
    stderr
        .lines()
        .filter(|l| l.starts_with("error: "))
        .flat_map(|l| {
            objects
                .keys()
                .filter(|k| l.contains(&format!("bkt/{k}")))
                .cloned()
        })
        .collect()
}

/// With `plan`, every object still arrives byte-exact (the faults are transient), the run
/// exits 0, the faults really happened and were retried.
async fn survives(spec: &str, kind: &str) {
    let objects = objects();
    let server = server(&objects).await;
    server.set_faults(FaultPlan::parse(spec).unwrap());
    let dir = tempfile::tempdir().unwrap();
    let out = s3fetch(&server, dir.path(), &[]).await;
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert_eq!(out.status.code(), Some(0), "{spec}: {stderr}");
    let injected = server.fault_counts().get(kind).copied().unwrap_or(0);
    assert!(
        injected > 0,
        "{spec}: no {kind} fault was injected: {:?}",
        server.fault_counts()
    );
    assert!(stdout.contains("Retries: "), "{spec}: {stdout}");
    let landed = files(dir.path());
    assert_eq!(
        landed.len(),
        objects.len(),
        "{spec}: {:?}",
        landed
            .keys()
            .filter(|k| k.contains(".s3fetch-"))
            .collect::<Vec<_>>()
    );
    for (key, body) in &objects {
        assert!(landed.get(key) == Some(body), "{spec}: {key} differs");
    }
}

/// With `plan`, the objects it breaks for good are reported (exit 1) and every other object
/// is byte-exact; broken ones leave no file.
async fn reports(spec: &str, kind: &str, needle: &str) -> BTreeSet<String> {
    let objects = objects();
    let server = server(&objects).await;
    server.set_faults(FaultPlan::parse(spec).unwrap());
    let dir = tempfile::tempdir().unwrap();
    let out = s3fetch(&server, dir.path(), &[]).await;
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{spec}: {stderr}");
    assert!(
        server.fault_counts().get(kind).copied().unwrap_or(0) > 0,
        "{spec}"
    );
    assert!(stderr.contains(needle), "{spec}: {stderr}");
    let failed = failed_keys(&stderr, &objects);
    assert!(!failed.is_empty(), "{spec}: {stderr}");
    assert!(
        stderr.contains(&format!(
            "error: {} of {} objects failed",
            failed.len(),
            objects.len()
        )),
        "{spec}: {stderr}"
    );
    let landed = files(dir.path());
    for (key, body) in &objects {
        match failed.contains(key) {
            true => assert!(
                !landed.contains_key(key),
                "{spec}: {key} failed but has a file"
            ),
            false => assert!(landed.get(key) == Some(body), "{spec}: {key} differs"),
        }
    }
    assert_eq!(
        landed.len(),
        objects.len() - failed.len(),
        "{spec}: stray files"
    );
    failed
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_down_is_retried_with_backoff() {
    survives("slow_down=0.3@max=2,seed=1", "slow_down").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn internal_errors_are_retried() {
    survives("internal_error=0.3@max=2,seed=2", "internal_error").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connection_resets_are_retried() {
    survives("reset_before_head=0.3@max=2,seed=3", "reset_before_head").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bodies_cut_midway_are_resumed() {
    survives("cut_body_after=0.5:3000@max=2,seed=4", "cut_body_after").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stalled_bodies_are_abandoned_and_resumed() {
    // Stalls of two minutes: only `--idle-timeout 1` (see `s3fetch`) makes this finish soon.
    let started = std::time::Instant::now();
    survives("stall_body=0.1:120s:2000@max=1,seed=5", "stall_body").await;
    assert!(
        started.elapsed() < std::time::Duration::from_secs(25),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn corrupted_bodies_fail_verification_and_are_fetched_again() {
    survives("corrupt=0.3@max=1,seed=6", "corrupt").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn throttled_listing_is_retried() {
    survives("list_slow_down=0.6@max=2,seed=7", "list_slow_down").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_deleted_after_listing_are_reported() {
    reports("not_found=0.05@sticky,seed=8", "not_found", "NoSuchKey").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forbidden_keys_are_reported() {
    reports("forbidden=0.05@sticky,seed=9", "forbidden", "AccessDenied").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn persistent_corruption_is_never_renamed_into_place() {
    let failed = reports(
        "corrupt=1@key=small/0007.bin@key=medium/03.bin@key=large/1.bin,seed=10",
        "corrupt",
        "checksum mismatch",
    )
    .await;
    let expected: BTreeSet<String> = ["large/1.bin", "medium/03.bin", "small/0007.bin"]
        .map(String::from)
        .into();
    assert_eq!(failed, expected);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_object_replaced_between_parts_is_reported() {
    let failed = reports(
        "etag_change=1@key=large/2.bin,seed=11",
        "etag_change",
        "PreconditionFailed",
    )
    .await;
    assert_eq!(failed, ["large/2.bin".to_owned()].into());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_that_ignores_range_is_detected() {
    // Some S3-compatible stores answer a Range request with the whole object.
    let objects = objects();
    let server = TestServer::start_with(s3fetch_testkit::ServerOptions {
        range_returns_full_object: true,
        ..Default::default()
    })
    .await
    .unwrap();
    server.create_bucket("bkt");
    server
        .store()
        .put_objects(
            "bkt",
            objects.iter().map(|(k, v)| (k.as_str(), v.as_slice())),
        )
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let out = s3fetch(&server, dir.path(), &[]).await;
    let stderr = text(&out.stderr);
    // Large objects fail with a clear message naming the cause; everything else arrives.
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("may ignore Range requests"), "{stderr}");
    // With parts above every object's size, the same store works.
    let dir = tempfile::tempdir().unwrap();
    let out = s3fetch(&server, dir.path(), &["--multipart-threshold", "1GiB"]).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(files(dir.path()), objects);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retries_flag_sets_how_often_a_request_is_tried() {
    let objects = objects();
    // Every GET of this key fails twice, then succeeds (a fresh server for each run: the
    // server counts attempts per key).
    let plan = || FaultPlan::parse("internal_error=1@max=2@key=small/0003.bin").unwrap();
    let server1 = server(&objects).await;
    server1.set_faults(plan());
    let dir = tempfile::tempdir().unwrap();
    let out = s3fetch(&server1, dir.path(), &["--retries", "1"]).await;
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("small/0003.bin"));
    let server = server(&objects).await;
    server.set_faults(plan());
    let dir = tempfile::tempdir().unwrap();
    let out = s3fetch(&server, dir.path(), &["--retries", "2"]).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(files(dir.path()), objects);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn checksum_mode_disabled_skips_verification() {
    let objects = objects();
    let server = server(&objects).await;
    server.set_faults(FaultPlan::parse("corrupt=1@key=small/0005.bin").unwrap());
    let dir = tempfile::tempdir().unwrap();
    let out = s3fetch(&server, dir.path(), &["--checksum-mode", "disabled"]).await;
    // Nothing checks the bytes: the corrupted object lands as received.
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let landed = files(dir.path());
    assert_eq!(landed.len(), objects.len());
    assert_ne!(landed["small/0005.bin"], objects["small/0005.bin"]);
    assert_eq!(
        landed["small/0005.bin"].len(),
        objects["small/0005.bin"].len()
    );
}
