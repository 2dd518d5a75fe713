//! What a run prints and where its files go: the progress modes, `--quiet`, `--dry-run`,
//! `--output json`, the default download directory; snapshots of the summary and the JSON
//! lines.

use std::time::{Duration, SystemTime};

use crate::common::{assert_snapshot, run, TestEnv};
use crate::{expected_keys, with_data};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn simple_mode_prints_every_downloaded_key() {
    let env = with_data().await;
    let out = env.fetch(&["s3://bkt/data/"]).await;
    out.assert_success();
    assert_eq!(
        out.stdout().lines().count(),
        31,
        "one line per key, none lost"
    );
    assert_eq!(out.stdout_lines(), expected_keys());
    assert!(!out.stdout().contains("Progress Summary"));
    assert_eq!(env.read("00007.txt"), b"object 7");
    assert!(env.dir().join("sub/deep.json").is_file());
    assert!(out.stderr().is_empty(), "{}", out.stderr());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn detailed_mode_adds_the_summary() {
    let env = with_data().await;
    let out = env
        .fetch(&["s3://bkt/data/", "--progress", "detailed", "-r", r"\.txt$"])
        .await;
    out.assert_success();
    for line in [
        "data/00029.txt\n",
        "Progress Summary:",
        "  Objects found: 30",
        "  Objects downloaded: 30",
        "  Total data: 260 B",
        "  Average speed: ",
        "  Total time: ",
    ] {
        out.assert_stdout_contains(line);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_update_mode_rewrites_one_status_line() {
    let env = with_data().await;
    let out = env
        .fetch(&["s3://bkt/data/", "--progress", "live-update"])
        .await;
    out.assert_success();
    out.assert_stdout_contains("\r[Found: 31 | Downloaded: 31 | Speed: ");
    assert!(
        !out.stdout().contains("data/00001.txt"),
        "no per-object lines"
    );
    out.assert_stdout_contains("Objects downloaded: 31");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fancy_mode_ends_with_the_summary() {
    let env = with_data().await;
    let out = env.fetch(&["s3://bkt/data/", "--progress", "fancy"]).await;
    out.assert_success();
    assert!(
        !out.stdout().contains("data/00001.txt"),
        "no per-object lines"
    );
    out.assert_stdout_contains("Objects downloaded: 31");
    assert_eq!(env.files().len(), 31);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quiet_prints_nothing_on_stdout() {
    let env = with_data().await;
    let out = env.fetch(&["s3://bkt/data/", "-q"]).await;
    out.assert_success();
    assert!(out.stdout().is_empty());
    assert_eq!(env.files().len(), 31);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dry_run_prints_keys_and_writes_nothing() {
    let env = with_data().await;
    for flag in ["--dry-run", "--list-only"] {
        let out = env.fetch(&["s3://bkt/data/", flag]).await;
        out.assert_success();
        assert_eq!(out.stdout_lines(), expected_keys());
        assert_eq!(
            std::fs::read_dir(env.dir()).unwrap().count(),
            0,
            "no files, no directories"
        );
    }
    assert_eq!(env.server().request_counts().get, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn download_dir_defaults_to_the_current_directory() {
    let env = with_data().await;
    let mut cmd = env.command();
    cmd.args(["s3://bkt/data/sub/", "-q"])
        .current_dir(env.dir());
    run(cmd).await.assert_success();
    assert_eq!(env.files(), ["deep.json".to_owned()].into());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn output_json_prints_one_object_per_event_and_nothing_else() {
    let env = with_data().await;
    env.server().deny_key("bkt", "data/00004.txt");
    let out = env.fetch(&["s3://bkt/data/", "--output", "json"]).await;
    assert_eq!(
        out.code(),
        Some(1),
        "exit codes as in text mode: {}",
        out.stderr()
    );
    let lines = out.json_lines();
    let count = |event: &str| lines.iter().filter(|l| l["event"] == event).count();
    assert_eq!(
        (count("found"), count("downloaded"), count("failed")),
        (31, 30, 1)
    );
    let failed = lines.iter().find(|l| l["event"] == "failed").unwrap();
    assert_eq!(failed["key"], "data/00004.txt");
    assert_eq!(failed["error"]["code"], "AccessDenied");
    let downloaded = lines
        .iter()
        .find(|l| l["event"] == "downloaded" && l["key"] == "data/00007.txt")
        .unwrap();
    assert_eq!(downloaded["size"], 8);
    assert!(downloaded["path"].as_str().unwrap().ends_with("/00007.txt"));
    let summary = lines.last().unwrap();
    assert_eq!(summary["event"], "summary");
    assert_eq!(
        (&summary["downloaded"], &summary["failed"]),
        (&30.into(), &1.into())
    );
    assert!(
        out.stderr().contains("data/00004.txt"),
        "errors still on stderr"
    );

    // With --dry-run: the found objects and the summary, nothing written.
    let empty = tempfile::tempdir().unwrap();
    let out = env
        .fetch_into(
            empty.path(),
            &["s3://bkt/data/sub", "--output", "json", "--dry-run"],
        )
        .await;
    let events: Vec<String> = out
        .json_lines()
        .iter()
        .map(|l| l["event"].to_string())
        .collect();
    assert_eq!(events, ["\"found\"", "\"summary\""]);
    assert!(s3fetch_testkit::fixtures::files(empty.path()).is_empty());
}

/// A bucket whose run has every kind of outcome: objects downloaded (one in a sub-folder),
/// one skipped (archived), one failed (denied); all modified 2024-06-01T12:00:00Z.
async fn with_every_outcome() -> TestEnv {
    let env = TestEnv::start().await;
    let server = env.server();
    let june_first = SystemTime::UNIX_EPOCH + Duration::from_secs(1_717_243_200);
    server.create_bucket("bkt");
    for (key, body) in [
        ("logs/a.txt", "first"),
        ("logs/b/c.json", "{\"c\": 3}"),
        ("logs/cold.bin", "archived"),
        ("logs/denied.txt", "no"),
    ] {
        server.put_object_at("bkt", key, body, june_first);
    }
    server.archive_key("bkt", "logs/cold.bin", "GLACIER", false);
    server.deny_key("bkt", "logs/denied.txt");
    env
}

/// `text` with the environment's download directory and endpoint, which change from run to
/// run, named instead.
fn placeholders(env: &TestEnv, text: &str) -> String {
    text.replace(env.dir().to_str().unwrap(), "[DIR]")
        .replace(&env.server().endpoint(), "[ENDPOINT]")
}

/// `lines` sorted, each ending in a newline: for lines that come in the order downloads
/// finish, which varies from run to run.
fn sorted(lines: &[&str]) -> String {
    let mut lines = lines.to_vec();
    lines.sort_unstable();
    lines.iter().map(|l| format!("{l}\n")).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_detailed_summary_is_as_in_its_snapshot() {
    let env = with_every_outcome().await;
    let out = env
        .fetch(&["s3://bkt/logs/", "--progress", "detailed"])
        .await;
    out.assert_exit(1);
    let stdout = out.stdout();
    let (objects, summary) = stdout.split_once("\nProgress Summary:").expect("a summary");
    let objects: Vec<&str> = objects.lines().collect();
    let text = format!(
        "--- stdout (object lines sorted) ---\n{}\nProgress Summary:{summary}--- stderr ---\n{}",
        sorted(&objects),
        out.stderr(),
    );
    assert_snapshot(
        "summary",
        &placeholders(&env, &text),
        &[
            (r"Average speed: .*/s", "Average speed: [RATE]/s"),
            (
                r"Total time: [0-9.]+ seconds",
                "Total time: [SECONDS] seconds",
            ),
        ],
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_lines_are_as_in_their_snapshot() {
    let env = with_every_outcome().await;
    let out = env.fetch(&["s3://bkt/logs/", "--output", "json"]).await;
    out.assert_exit(1);
    let stdout = out.stdout();
    let (events, summary) = stdout
        .trim_end()
        .rsplit_once('\n')
        .expect("events, then the summary");
    let events: Vec<&str> = events.lines().collect();
    let text = format!(
        "--- events (sorted) ---\n{}--- summary ---\n{summary}\n",
        sorted(&events)
    );
    assert_snapshot(
        "json_lines",
        &placeholders(&env, &text),
        &[(r#""seconds":[0-9.e-]+"#, r#""seconds":[SECONDS]"#)],
    );
}
