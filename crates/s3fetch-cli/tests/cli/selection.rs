//! Which objects a run takes: `--include`/`--exclude`, sizes and ages, archived objects, a
//! filter that matches nothing, `--keys-from` (after `--failed-keys`), `--inventory`.

use std::collections::BTreeSet;
use std::time::{Duration, SystemTime};

use crate::common::run;
use crate::{expected_keys, with_data};

/// `--include` and `--exclude` take effect in the order they are given on the command line
/// (clap hands them over as two lists); sizes and ages reach the engine.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn globs_apply_in_command_line_order_and_limits_reach_the_engine() {
    let env = with_data().await;
    let when = SystemTime::now() - Duration::from_secs(10 * 86_400);
    env.server()
        .put_object_at("bkt", "data/sub/old.json", "{ }", when);
    let keys = |args: &[&str]| {
        let mut cmd = env.command();
        cmd.args(["s3://bkt/data/", "--dry-run"]).args(args);
        async move {
            let out = run(cmd).await;
            out.assert_success();
            out.stdout_lines()
        }
    };
    let sub: BTreeSet<String> = ["data/sub/deep.json", "data/sub/old.json"]
        .map(String::from)
        .into();
    assert_eq!(keys(&["--exclude", "**", "--include", "sub/**"]).await, sub);
    assert!(keys(&["--include", "sub/**", "--exclude", "**"])
        .await
        .is_empty());
    assert_eq!(
        keys(&[
            "--include=sub/**",
            "--exclude",
            "*.txt",
            "--include",
            "0000[12].txt"
        ])
        .await,
        sub.iter()
            .cloned()
            .chain(["data/00001.txt".into(), "data/00002.txt".into()])
            .collect()
    );
    assert_eq!(
        keys(&["--include", "sub/*", "--older-than", "2d"]).await,
        ["data/sub/old.json".to_string()].into()
    );
    assert_eq!(
        keys(&[
            "--include",
            "sub/*",
            "--newer-than",
            "2d",
            "--min-size",
            "2"
        ])
        .await,
        ["data/sub/deep.json".to_string()].into(),
        "{{}}: 2 bytes, and --min-size is inclusive"
    );
    assert!(keys(&[
        "--include",
        "sub/*",
        "--newer-than",
        "2d",
        "--min-size",
        "3"
    ])
    .await
    .is_empty());
}

/// An archived object is skipped with a note, exit 0; `--include-archived` tries it and it
/// fails as S3 answers, exit 1; JSON lines say why it was skipped.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn archived_objects_are_skipped_with_a_note_unless_included() {
    let env = with_data().await;
    env.server()
        .archive_key("bkt", "data/00003.txt", "DEEP_ARCHIVE", false);
    let out = env
        .fetch(&["s3://bkt/data/", "--progress", "detailed"])
        .await;
    out.assert_success()
        .assert_stderr_contains("note: 1 archived object(s)")
        .assert_stdout_contains("data/00003.txt (skipped: archived)")
        .assert_stdout_contains("Objects skipped: 1 (archived: 1)");
    assert!(!env.dir().join("00003.txt").exists());

    let json = env.fetch(&["s3://bkt/data/0000", "--output", "json"]).await;
    let skipped: Vec<serde_json::Value> = json
        .json_lines()
        .into_iter()
        .filter(|l| l["event"] == "skipped")
        .collect();
    assert_eq!(skipped.len(), 1);
    assert_eq!(skipped[0]["reason"], "archived");

    let out = env
        .fetch(&["s3://bkt/data/", "--include-archived", "-q"])
        .await;
    out.assert_exit(1)
        .assert_stderr_contains("data/00003.txt")
        .assert_stderr_contains("InvalidObjectState");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_match_is_success_with_a_note() {
    let env = with_data().await;
    let out = env
        .fetch(&["s3://bkt/data/", "-r", "nothing-matches"])
        .await;
    out.assert_success();
    assert!(out.stdout().is_empty());
    out.assert_stderr_contains("no objects under s3://bkt/data/ matched");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_keys_then_keys_from_stdin_reruns_only_the_failures() {
    let env = with_data().await;
    let server = env.server();
    server.deny_key("bkt", "data/00004.txt");
    server.deny_key("bkt", "data/sub/deep.json");
    let work = tempfile::tempdir().unwrap();
    let list = work.path().join("failed.txt");
    let first = env
        .fetch(&[
            "s3://bkt/data/",
            "-q",
            "--failed-keys",
            list.to_str().unwrap(),
        ])
        .await;
    first.assert_exit(1);
    let mut failed: Vec<String> = std::fs::read_to_string(&list)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect();
    failed.sort();
    assert_eq!(failed, ["data/00004.txt", "data/sub/deep.json"]);

    server.allow_key("bkt", "data/00004.txt");
    server.allow_key("bkt", "data/sub/deep.json");
    server.reset_request_counts();
    let mut cmd = env.command();
    cmd.args(["s3://bkt/data/", "--keys-from", "-", "--download-dir"])
        .arg(env.dir())
        .stdin(std::fs::File::open(&list).unwrap());
    let rerun = run(cmd).await;
    rerun.assert_success();
    assert_eq!(rerun.stdout_lines(), failed.into_iter().collect());
    assert_eq!(server.request_counts().list, 0);
    assert_eq!(env.files().len(), 31);

    std::fs::write(&list, "data/00001.txt\nelsewhere/x\n").unwrap();
    let bad = env
        .fetch(&["s3://bkt/data/", "--keys-from", list.to_str().unwrap()])
        .await;
    bad.assert_exit(2)
        .assert_stderr_contains("--keys-from")
        .assert_stderr_contains("line 2");
}

/// `--inventory`: the objects of an S3 Inventory report, no LIST request; a report that
/// cannot be read ends the run with exit 1 and says why.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inventory_replaces_the_listing() {
    let env = with_data().await;
    let server = env.server();
    server.create_bucket("inv");
    let manifest = server.put_inventory("bkt", "inv", "reports/bkt", 10);
    server.reset_request_counts();
    let inventory = format!("s3://inv/{manifest}");
    let out = env
        .fetch(&["s3://bkt/data/", "--inventory", &inventory])
        .await;
    out.assert_success();
    assert_eq!(out.stdout_lines(), expected_keys());
    assert_eq!(server.request_counts().list, 0);

    server.put_object(
        "inv",
        "reports/bad/manifest.json",
        r#"{"fileFormat":"ORC"}"#,
    );
    let out = env
        .fetch(&[
            "s3://bkt/data/",
            "--inventory",
            "s3://inv/reports/bad/manifest.json",
        ])
        .await;
    out.assert_exit(1)
        .assert_stderr_contains("only CSV inventories can be read");
}
