//! Interrupted runs: Ctrl-C and SIGTERM (exit 130, only whole files left, a large object's
//! resumable partial file kept), a second Ctrl-C, and the next run resuming what a killed
//! one left.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use s3fetch_testkit::fixtures::{files, is_partial_file, is_temporary_file, temporary_files};
use s3fetch_testkit::ServerOptions;

use crate::common::{until, Running, Signal, TestEnv};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn interrupt_exits_130_and_leaves_only_complete_files() {
    let env = TestEnv::start().await;
    let server = env.server();
    server.create_bucket("bkt");
    for i in 0..2500 {
        server.put_object("bkt", &format!("k/{i:05}"), format!("object {i}"));
    }
    let gate = server.gate_list_pages(); // the listing stalls after page 1
    let running = env.spawn(&["s3://bkt/k/", "-q"]);
    tokio::time::timeout(Duration::from_secs(30), gate.wait_for_waiting(1))
        .await
        .unwrap();
    // Interrupt once page 1's downloads have begun to land.
    until(Duration::from_secs(30), "a downloaded file", || {
        env.files().iter().any(|f| !is_temporary_file(f))
    })
    .await;
    running.signal(Signal::INT);
    let out = running.wait(Duration::from_secs(30)).await;
    out.assert_exit(130).assert_stderr_contains("interrupted");
    let landed = env.files();
    assert!(!landed.is_empty(), "the files that landed stay");
    assert!(landed.len() < 2500);
    for file in &landed {
        assert!(!is_temporary_file(file), "temp file left: {file}");
        let i: usize = file.parse().unwrap();
        assert_eq!(env.read(file), format!("object {i}").as_bytes());
    }
    gate.open();
}

/// The flags of [`interrupted_mid_download`]'s run, to run it again.
const BIG_RUN: [&str; 6] = [
    "s3://bkt/big/",
    "-q",
    "--part-size",
    "1MiB",
    "--multipart-threshold",
    "1MiB",
];

/// A slow server with two large objects (ranged parts) and a few small ones, and the binary
/// started on it; returns once a temporary file shows that parts are in flight.
async fn interrupted_mid_download() -> (TestEnv, Running) {
    let env = TestEnv::start_with(ServerOptions {
        bandwidth_bytes_per_sec: Some(1024 * 1024),
        ..ServerOptions::default()
    })
    .await;
    let server = env.server();
    server.create_bucket("bkt");
    for i in 0..2u8 {
        server.put_object("bkt", &format!("big/{i}.bin"), vec![i; 16 * 1024 * 1024]);
    }
    for i in 0..4 {
        server.put_object("bkt", &format!("big/small-{i}"), format!("small {i}"));
    }
    let running = env.spawn(&BIG_RUN);
    until(Duration::from_secs(30), "a download started", || {
        !temporary_files(env.dir()).is_empty()
    })
    .await;
    (env, running)
}

/// Waits for `running` (at most `limit`) and checks what an interrupted run must leave: exit
/// code 130, only whole files under final names, no temporary file but the large objects'
/// resumable partial files (and their journals). Returns its stderr.
async fn left_clean(env: &TestEnv, running: Running, limit: Duration) -> String {
    let out = running.wait(limit).await;
    out.assert_exit(130);
    let landed = env.files();
    assert!(
        !landed.contains("0.bin") || !landed.contains("1.bin"),
        "the large objects cannot both have finished"
    );
    for file in &landed {
        if is_partial_file(file) {
            continue;
        }
        assert!(!is_temporary_file(file), "temp file left: {file}");
        let body = env.read(file);
        let want = match file.strip_prefix("small-") {
            Some(i) => format!("small {i}").into_bytes(),
            None => vec![file[..1].parse::<u8>().unwrap(); 16 * 1024 * 1024],
        };
        assert!(body == want, "{file} is not whole");
    }
    out.stderr()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_mid_download_removes_temporary_files_and_exits_130() {
    let (env, running) = interrupted_mid_download().await;
    running.signal(Signal::TERM);
    let stderr = left_clean(&env, running, Duration::from_secs(10)).await;
    assert!(stderr.contains("no temporary files were left"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_interrupt_quits_at_once_and_still_removes_temporary_files() {
    let (env, running) = interrupted_mid_download().await;
    running.signal(Signal::INT);
    running.signal(Signal::INT);
    let stderr = left_clean(&env, running, Duration::from_secs(10)).await;
    // Either the run had already stopped cleanly, or the second signal quit it.
    assert!(
        stderr.contains("no temporary files were left") || stderr.contains("quitting now"),
        "{stderr}"
    );
}

/// Parts listed as finished in each journal of a partial file under `dir`.
fn journals(dir: &Path) -> Vec<usize> {
    files(dir)
        .iter()
        .filter(|f| is_partial_file(f) && f.ends_with(".json"))
        .filter_map(|f| std::fs::read(dir.join(f)).ok())
        .filter_map(|bytes| serde_json::from_slice::<serde_json::Value>(&bytes).ok())
        .map(|journal| journal["done"].as_array().map_or(0, Vec::len))
        .collect()
}

/// Parts listed as finished in the journals of the partial files under `dir`.
fn journaled(dir: &Path) -> usize {
    journals(dir).iter().sum()
}

/// Waits (at most 30 s) until `objects` journals under `dir` list a finished part each (1 MiB
/// at 1 MiB/s per connection in [`interrupted_mid_download`], all parts at once).
async fn until_journaled(dir: &Path, objects: usize) {
    until(Duration::from_secs(30), "a journaled part", || {
        journals(dir).iter().filter(|&&parts| parts > 0).count() >= objects
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_run_is_resumed_by_the_next_and_leaves_nothing_behind() {
    let (env, running) = interrupted_mid_download().await;
    until_journaled(env.dir(), 2).await;
    running.signal(Signal::KILL);
    running.wait(Duration::from_secs(10)).await;
    let done = journaled(env.dir());
    let partials: Vec<String> = env
        .files()
        .into_iter()
        .filter(|f| is_partial_file(f))
        .collect();
    assert_eq!(
        partials.len(),
        4,
        "two partial files and their journals: {partials:?}"
    );
    // A plain temporary file of the killed process, as a small object would leave it.
    let dead = {
        let mut child = Command::new("true").spawn().unwrap();
        child.wait().unwrap();
        child.id()
    };
    std::fs::write(env.dir().join(format!(".s3fetch-{dead}-9.tmp")), "x").unwrap();

    env.server().reset_request_counts();
    let mut args: Vec<&str> = BIG_RUN.iter().copied().filter(|a| *a != "-q").collect();
    args.extend(["--output", "json"]);
    let out = env.fetch(&args).await;
    out.assert_success();
    let gets = env.server().request_counts().get;
    let summary: serde_json::Value =
        serde_json::from_str(out.stdout().lines().last().unwrap()).unwrap();
    // A retry or a resumed body (a loaded machine) is one more GET, and says so.
    let again = summary["retries"].as_u64().unwrap() + summary["resumes"].as_u64().unwrap();
    // 32 parts in all and the small objects' GETs (4): the parts journaled before the kill
    // are not fetched again.
    assert!(
        gets <= 32 + 4 - done as u64 + again,
        "{gets} GETs with {done} parts journaled ({again} retried): finished parts were fetched again"
    );
    for i in 0..2u8 {
        let body = env.read(&format!("{i}.bin"));
        assert!(body == vec![i; 16 * 1024 * 1024], "{i}.bin is byte-exact");
    }
    env.assert_no_temp_files();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_resume_removes_partial_files_and_starts_over() {
    let (env, running) = interrupted_mid_download().await;
    until_journaled(env.dir(), 1).await;
    running.signal(Signal::TERM);
    let stderr = left_clean(&env, running, Duration::from_secs(10)).await;
    assert!(
        stderr.contains("large object(s) partly downloaded were kept to resume"),
        "{stderr}"
    );
    assert!(env.files().iter().any(|f| is_partial_file(f)));
    env.server().reset_request_counts();
    env.fetch(&[&BIG_RUN[..], &["--no-resume"]].concat())
        .await
        .assert_success();
    assert_eq!(
        env.server().request_counts().get,
        32 + 4,
        "every part fetched again"
    );
    env.assert_no_temp_files();
}
