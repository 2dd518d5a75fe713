//! The real `s3fetch` binary against the test kit's S3 server over HTTP.

mod common;

use std::collections::BTreeSet;
use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;

use common::s3fetch;
use s3fetch_testkit::fixtures::{
    assert_no_temp_files, files, is_partial_file, is_temporary_file, output, temporary_files, text,
};
use s3fetch_testkit::TestServer;

/// A server with bucket `bkt`: `data/00000.txt`..`data/00029.txt` ("object N"),
/// `data/sub/deep.json`, a directory marker `data/dir/`.
async fn server() -> TestServer {
    let server = TestServer::start().await;
    server.create_bucket("bkt");
    for i in 0..30 {
        server.put_object("bkt", &format!("data/{i:05}.txt"), format!("object {i}"));
    }
    server.put_object("bkt", "data/sub/deep.json", b"{}");
    server.put_object("bkt", "data/dir/", Vec::new());
    server
}

fn stdout_lines(out: &Output) -> BTreeSet<String> {
    text(&out.stdout).lines().map(str::to_owned).collect()
}

fn expected_keys() -> BTreeSet<String> {
    let mut keys: BTreeSet<String> = (0..30).map(|i| format!("data/{i:05}.txt")).collect();
    keys.insert("data/sub/deep.json".into());
    keys
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn simple_mode_prints_every_downloaded_key() {
    let server = server().await;
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = s3fetch(&server);
    cmd.args(["s3://bkt/data/", "--download-dir"])
        .arg(dir.path());
    let out = output(cmd).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(
        text(&out.stdout).lines().count(),
        31,
        "one line per key, none lost"
    );
    assert_eq!(stdout_lines(&out), expected_keys());
    assert!(!text(&out.stdout).contains("Progress Summary"));
    assert_eq!(
        std::fs::read(dir.path().join("00007.txt")).unwrap(),
        b"object 7"
    );
    assert!(dir.path().join("sub/deep.json").is_file());
    assert!(text(&out.stderr).is_empty(), "{}", text(&out.stderr));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn detailed_mode_adds_the_summary() {
    let server = server().await;
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = s3fetch(&server);
    cmd.args([
        "s3://bkt/data/",
        "--progress",
        "detailed",
        "-r",
        r"\.txt$",
        "--download-dir",
    ])
    .arg(dir.path());
    let out = output(cmd).await;
    assert_eq!(out.status.code(), Some(0));
    let stdout = text(&out.stdout);
    assert!(stdout.contains("data/00029.txt\n"));
    for line in [
        "Progress Summary:",
        "  Objects found: 30",
        "  Objects downloaded: 30",
        "  Total data: 260 B",
        "  Average speed: ",
        "  Total time: ",
    ] {
        assert!(stdout.contains(line), "{line:?} missing in {stdout}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_update_mode_rewrites_one_status_line() {
    let server = server().await;
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = s3fetch(&server);
    cmd.args([
        "s3://bkt/data/",
        "--progress",
        "live-update",
        "--download-dir",
    ])
    .arg(dir.path());
    let out = output(cmd).await;
    assert_eq!(out.status.code(), Some(0));
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains("\r[Found: 31 | Downloaded: 31 | Speed: "),
        "{stdout:?}"
    );
    assert!(!stdout.contains("data/00001.txt"), "no per-object lines");
    assert!(stdout.contains("Objects downloaded: 31"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fancy_mode_ends_with_the_summary() {
    let server = server().await;
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = s3fetch(&server);
    cmd.args(["s3://bkt/data/", "--progress", "fancy", "--download-dir"])
        .arg(dir.path());
    let out = output(cmd).await;
    assert_eq!(out.status.code(), Some(0));
    let stdout = text(&out.stdout);
    assert!(!stdout.contains("data/00001.txt"), "no per-object lines");
    assert!(stdout.contains("Objects downloaded: 31"), "{stdout}");
    assert_eq!(files(dir.path()).len(), 31);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quiet_prints_nothing_on_stdout() {
    let server = server().await;
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = s3fetch(&server);
    cmd.args(["s3://bkt/data/", "-q", "--download-dir"])
        .arg(dir.path());
    let out = output(cmd).await;
    assert_eq!(out.status.code(), Some(0));
    assert!(out.stdout.is_empty());
    assert_eq!(files(dir.path()).len(), 31);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dry_run_prints_keys_and_writes_nothing() {
    let server = server().await;
    let dir = tempfile::tempdir().unwrap();
    for flag in ["--dry-run", "--list-only"] {
        let mut cmd = s3fetch(&server);
        cmd.args(["s3://bkt/data/", flag, "--download-dir"])
            .arg(dir.path());
        let out = output(cmd).await;
        assert_eq!(out.status.code(), Some(0));
        assert_eq!(stdout_lines(&out), expected_keys());
        assert_eq!(
            std::fs::read_dir(dir.path()).unwrap().count(),
            0,
            "no files, no directories"
        );
    }
    assert_eq!(server.request_counts().get, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn download_dir_defaults_to_the_current_directory() {
    let server = server().await;
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = s3fetch(&server);
    cmd.args(["s3://bkt/data/sub/", "-q"])
        .current_dir(dir.path());
    let out = output(cmd).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(files(dir.path()), ["deep.json".to_owned()].into());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_match_is_success_with_a_note() {
    let server = server().await;
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = s3fetch(&server);
    cmd.args(["s3://bkt/data/", "-r", "nothing-matches", "--download-dir"])
        .arg(dir.path());
    let out = output(cmd).await;
    assert_eq!(out.status.code(), Some(0));
    assert!(out.stdout.is_empty());
    assert!(
        text(&out.stderr).contains("no objects under s3://bkt/data/ matched"),
        "{}",
        text(&out.stderr)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn usage_errors_exit_2_with_a_clear_message() {
    let server = server().await;
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap().to_owned();
    let missing = dir.path().join("missing");
    let m = missing.to_str().unwrap().to_owned();
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (
            vec!["bkt/data", "--download-dir", &d],
            "must start with s3://",
        ),
        (
            vec!["s3://", "--download-dir", &d],
            "bucket name is missing",
        ),
        (
            vec!["s3://bkt", "-r", "a(b", "--download-dir", &d],
            "invalid regex \"a(b\"",
        ),
        (
            vec!["s3://bkt", "-r", "(?<=a", "--download-dir", &d],
            "invalid regex \"(?<=a\"",
        ),
        (
            vec!["s3://bkt", "--download-dir", &m],
            "does not exist: create it first (mkdir -p",
        ),
        (
            vec![
                "s3://bkt",
                "-q",
                "--progress",
                "fancy",
                "--download-dir",
                &d,
            ],
            "cannot be used with",
        ),
        (
            vec!["s3://bkt", "-c", "0", "--download-dir", &d],
            "--concurrent-downloads must be at least 1",
        ),
        (
            vec!["s3://bkt", "--idle-timeout=-3", "--download-dir", &d],
            "--idle-timeout must be more than 0",
        ),
        (
            vec!["s3://bkt", "--list-concurrency", "0", "--download-dir", &d],
            "--list-concurrency must be at least 1",
        ),
        (
            vec!["s3://bkt", "--delimiter", "", "--download-dir", &d],
            "--delimiter must not be empty",
        ),
        (
            vec!["s3://bkt", "--progress", "loud", "--download-dir", &d],
            "invalid value 'loud'",
        ),
        (
            vec![
                "s3://bkt",
                "--include",
                "a",
                "--exclude",
                "[z",
                "--download-dir",
                &d,
            ],
            "--exclude \"[z\": unclosed character class",
        ),
        (
            vec![
                "s3://bkt",
                "--newer-than",
                "yesterday",
                "--download-dir",
                &d,
            ],
            "\"yesterday\" is not a time (examples: 2024-06-01",
        ),
        (
            vec![
                "s3://bkt",
                "--min-size",
                "2KiB",
                "--max-size",
                "1KiB",
                "--download-dir",
                &d,
            ],
            "--min-size 2048 bytes is more than the maximum size (1024 bytes)",
        ),
        (
            vec![
                "s3://bkt",
                "--newer-than",
                "1d",
                "--older-than",
                "2d",
                "--download-dir",
                &d,
            ],
            "--newer-than is not earlier than the older-than limit",
        ),
        (
            vec![
                "s3://bkt",
                "--endpoint-url",
                "ftp://x",
                "--download-dir",
                &d,
            ],
            "http://",
        ),
    ];
    for (args, needle) in cases {
        let mut cmd = s3fetch(&server);
        cmd.args(&args);
        let out = output(cmd).await;
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(needle), "{args:?}: {stderr}");
        assert!(!stderr.contains("panicked") && !stderr.contains("backtrace"));
    }
    assert!(
        !missing.exists(),
        "the download dir is never created silently"
    );
    assert_eq!(
        server.request_counts().http_requests,
        0,
        "usage errors send no request"
    );
}

/// `--include` and `--exclude` take effect in the order they are given on the command line
/// (clap hands them over as two lists); sizes and ages reach the engine.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn globs_apply_in_command_line_order_and_limits_reach_the_engine() {
    let server = server().await;
    let when = std::time::SystemTime::now() - Duration::from_secs(10 * 86_400);
    server.put_object_at("bkt", "data/sub/old.json", "{ }", when);
    let keys = |args: &[&str]| {
        let mut cmd = s3fetch(&server);
        cmd.args(["s3://bkt/data/", "--dry-run"]).args(args);
        let label = format!("{args:?}");
        async move {
            let out = output(cmd).await;
            let stderr = text(&out.stderr);
            assert_eq!(out.status.code(), Some(0), "{label}: {stderr}");
            stdout_lines(&out)
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
    let server = server().await;
    server.archive_key("bkt", "data/00003.txt", "DEEP_ARCHIVE", false);
    let dir = tempfile::tempdir().unwrap();
    let out = fetch_into(
        &server,
        dir.path(),
        &["s3://bkt/data/", "--progress", "detailed"],
    )
    .await;
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(stderr.contains("note: 1 archived object(s)"), "{stderr}");
    assert!(
        stdout.contains("data/00003.txt (skipped: archived)"),
        "{stdout}"
    );
    assert!(
        stdout.contains("Objects skipped: 1 (archived: 1)"),
        "{stdout}"
    );
    assert!(!dir.path().join("00003.txt").exists());

    let json = fetch_into(
        &server,
        dir.path(),
        &["s3://bkt/data/0000", "--output", "json"],
    )
    .await;
    let skipped: Vec<serde_json::Value> = text(&json.stdout)
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|l| l["event"] == "skipped")
        .collect();
    assert_eq!(skipped.len(), 1);
    assert_eq!(skipped[0]["reason"], "archived");

    let out = fetch_into(
        &server,
        dir.path(),
        &["s3://bkt/data/", "--include-archived", "-q"],
    )
    .await;
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("data/00003.txt") && stderr.contains("InvalidObjectState"),
        "{stderr}"
    );
}

/// `--shard auto` with each orchestrator's variables: it says which it used, and the shards
/// of one job take every key once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shard_auto_reads_each_orchestrators_variables() {
    let server = server().await;
    let run = |env: Vec<(&str, String)>, args: &[&str]| {
        let mut cmd = s3fetch(&server);
        cmd.args(["s3://bkt/data/", "--dry-run"])
            .args(args)
            .envs(env);
        output(cmd)
    };
    let all = stdout_lines(&run(Vec::new(), &[]).await);
    assert_eq!(all.len(), 31);
    type Env = fn(u32) -> Vec<(&'static str, String)>;
    let orchestrators: [(&str, Env, &[&str]); 3] = [
        (
            "Kubernetes",
            |k| vec![("JOB_COMPLETION_INDEX", k.to_string())],
            &["--shard-count", "3"],
        ),
        (
            "AWS Batch",
            |k| {
                vec![
                    ("AWS_BATCH_JOB_ARRAY_INDEX", k.to_string()),
                    ("AWS_BATCH_JOB_ARRAY_SIZE", "3".into()),
                ]
            },
            &[],
        ),
        (
            "Slurm",
            |k| {
                vec![
                    ("SLURM_ARRAY_TASK_ID", (k + 1).to_string()),
                    ("SLURM_ARRAY_TASK_MIN", "1".into()),
                    ("SLURM_ARRAY_TASK_COUNT", "3".into()),
                ]
            },
            &[],
        ),
    ];
    for (name, env, extra) in orchestrators {
        let mut union = BTreeSet::new();
        let mut total = 0;
        for k in 0..3 {
            let args: Vec<&str> = ["--shard", "auto"].iter().chain(extra).copied().collect();
            let out = run(env(k), &args).await;
            let stderr = text(&out.stderr);
            assert_eq!(out.status.code(), Some(0), "{name}: {stderr}");
            assert!(
                stderr.contains(&format!("note: shard {k}/3 (from ")) && stderr.contains(name),
                "{stderr}"
            );
            let keys = stdout_lines(&out);
            total += keys.len();
            union.extend(keys);
        }
        assert_eq!((total, &union), (31, &all), "{name}");
    }

    // The same split as --shard K/N, and the JSON summary says which shard it was.
    let out = run(Vec::new(), &["--shard", "1/3", "--output", "json"]).await;
    let summary: serde_json::Value =
        serde_json::from_str(text(&out.stdout).lines().last().unwrap()).unwrap();
    assert_eq!(
        summary["shard"],
        serde_json::json!({"index": 1, "count": 3, "by": "hash"})
    );
    for (args, needle) in [
        (&["--shard", "auto"][..], "none of JOB_COMPLETION_INDEX"),
        (&["--shard", "3/3"][..], "K must be less than N"),
        (&["--shard", "x"][..], "is not K/N"),
    ] {
        let out = run(Vec::new(), args).await;
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(needle), "{args:?}: {stderr}");
    }
    let out = run(
        vec![("JOB_COMPLETION_INDEX", "0".into())],
        &["--shard", "auto"],
    )
    .await;
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("--shard-count"),
        "{}",
        text(&out.stderr)
    );
}

/// `--inventory`: the objects of an S3 Inventory report, no LIST request; a report that
/// cannot be read ends the run with exit 1 and says why.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inventory_replaces_the_listing() {
    let server = server().await;
    server.create_bucket("inv");
    let manifest = server.put_inventory("bkt", "inv", "reports/bkt", 10);
    let dir = tempfile::tempdir().unwrap();
    server.reset_request_counts();
    let inventory = format!("s3://inv/{manifest}");
    let out = fetch_into(
        &server,
        dir.path(),
        &["s3://bkt/data/", "--inventory", &inventory],
    )
    .await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(stdout_lines(&out), expected_keys());
    assert_eq!(server.request_counts().list, 0);

    server.put_object(
        "inv",
        "reports/bad/manifest.json",
        r#"{"fileFormat":"ORC"}"#,
    );
    let out = fetch_into(
        &server,
        dir.path(),
        &[
            "s3://bkt/data/",
            "--inventory",
            "s3://inv/reports/bad/manifest.json",
        ],
    )
    .await;
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("only CSV inventories can be read"),
        "{stderr}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listing_errors_exit_1_with_the_code_and_a_hint() {
    let server = server().await;
    server.create_bucket("private");
    server.deny_bucket("private");
    let dir = tempfile::tempdir().unwrap();
    // (uri, an environment variable to override, the expected S3 error code)
    let cases = [
        ("s3://nosuch", ("UNUSED", ""), "NoSuchBucket"),
        ("s3://private", ("UNUSED", ""), "AccessDenied"),
        (
            "s3://bkt",
            ("AWS_ACCESS_KEY_ID", "nobody"),
            "InvalidAccessKeyId",
        ),
        (
            "s3://bkt",
            ("AWS_SECRET_ACCESS_KEY", "wrong"),
            "SignatureDoesNotMatch",
        ),
    ];
    for (uri, (k, v), code) in cases {
        let mut cmd = s3fetch(&server);
        cmd.args([uri, "--download-dir"]).arg(dir.path());
        cmd.env(k, v);
        let out = output(cmd).await;
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{uri}: {stderr}");
        assert!(
            stderr.contains(code) && stderr.contains("hint: "),
            "{uri}: {stderr}"
        );
        assert!(!stderr.contains("panicked"));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partial_failure_exits_1_and_names_each_failed_key() {
    let server = server().await;
    server.put_object("bkt", "data/zz-denied", b"x");
    server.deny_key("bkt", "data/zz-denied");
    // Key `data/00005.txt/x` needs a directory where key `data/00005.txt` is a file.
    server.put_object("bkt", "data/00005.txt/x", b"x");
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("00003.txt/blocker")).unwrap();
    let mut cmd = s3fetch(&server);
    cmd.args(["s3://bkt/data/", "--download-dir"])
        .arg(dir.path());
    let out = output(cmd).await;
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("\"data/00003.txt\"") && stderr.contains("directory is in the way"),
        "{stderr}"
    );
    assert!(
        stderr.contains("data/zz-denied") && stderr.contains("AccessDenied"),
        "{stderr}"
    );
    assert!(
        stderr.contains("\"data/00005.txt/x\"")
            && stderr.contains("key \"data/00005.txt\" is downloaded to")
            && stderr.contains("where this key needs a directory"),
        "{stderr}"
    );
    assert!(stderr.contains("error: 3 of 33 objects failed"), "{stderr}");
    assert_eq!(text(&out.stdout).lines().count(), 30);
    assert!(dir.path().join("00005.txt").is_file());
    assert_no_temp_files(dir.path());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tuning_flags_reach_the_engine() {
    let server = server().await;
    let body: Vec<u8> = (0..2 * 1024 * 1024).map(|i: u32| (i % 251) as u8).collect();
    server.put_object("bkt", "big/blob", &body);
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = s3fetch(&server);
    cmd.args([
        "s3://bkt/big/",
        "-q",
        "--multipart-threshold",
        "1MiB",
        "--part-size",
        "256KiB",
    ])
    .arg("--download-dir")
    .arg(dir.path());
    let out = output(cmd).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(std::fs::read(dir.path().join("blob")).unwrap() == body);
    assert_eq!(server.request_counts().get, 8, "eight ranged parts");

    server.reset_request_counts();
    let mut cmd = s3fetch(&server);
    cmd.args([
        "s3://bkt/data/",
        "-q",
        "--dry-run",
        "--list-concurrency",
        "1",
    ])
    .arg("--download-dir")
    .arg(dir.path());
    let out = output(cmd).await;
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(
        server.request_counts().list,
        1,
        "page by page, no sub-folder probe"
    );

    let mut cmd = s3fetch(&server);
    cmd.args(["s3://bkt/", "--part-size", "8 parsecs"]);
    let out = output(cmd).await;
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("unknown size unit"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn threads_is_a_deprecated_alias() {
    let server = server().await;
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = s3fetch(&server);
    cmd.args(["s3://bkt/data/", "-q", "-t", "3", "--download-dir"])
        .arg(dir.path());
    let out = output(cmd).await;
    assert_eq!(out.status.code(), Some(0));
    assert!(text(&out.stderr).contains("warning: -t/--threads is deprecated"));
    assert_eq!(files(dir.path()).len(), 31);

    let mut cmd = s3fetch(&server);
    cmd.args([
        "s3://bkt/data/",
        "-q",
        "-c",
        "1001",
        "--dry-run",
        "--download-dir",
    ])
    .arg(dir.path());
    let out = output(cmd).await;
    assert!(text(&out.stderr).contains("warning: 1001 concurrent downloads"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn endpoint_flag_and_unsigned_requests() {
    let server = server().await;
    server.create_bucket("pub");
    server.put_object("pub", "open/file", b"public");
    server.set_public("pub", true);
    let dir = tempfile::tempdir().unwrap();
    // No credentials anywhere: --no-sign-request must not look for any.
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_s3fetch"));
    cmd.env_clear()
        .env("HOME", dir.path())
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .args([
            "s3://pub/open/",
            "--no-sign-request",
            "--endpoint-url",
            &server.endpoint(),
        ])
        .arg("--download-dir")
        .arg(dir.path());
    let out = output(cmd).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(std::fs::read(dir.path().join("file")).unwrap(), b"public");
    // Unsigned requests to a private bucket are refused.
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_s3fetch"));
    cmd.env_clear()
        .env("HOME", dir.path())
        .args([
            "s3://bkt/",
            "--no-sign-request",
            "--endpoint-url",
            &server.endpoint(),
        ])
        .arg("--download-dir")
        .arg(dir.path());
    let out = output(cmd).await;
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("AccessDenied"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn interrupt_exits_130_and_leaves_only_complete_files() {
    let server = TestServer::start().await;
    server.create_bucket("bkt");
    for i in 0..2500 {
        server.put_object("bkt", &format!("k/{i:05}"), format!("object {i}"));
    }
    let gate = server.gate_list_pages(); // the listing stalls after page 1
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = s3fetch(&server);
    cmd.args(["s3://bkt/k/", "-q", "--download-dir"])
        .arg(dir.path())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped());
    let child = cmd.spawn().unwrap();
    tokio::time::timeout(Duration::from_secs(30), gate.wait_for_waiting(1))
        .await
        .unwrap();
    // Let page 1's downloads land, then interrupt.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let status = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let out = tokio::task::spawn_blocking(move || child.wait_with_output().unwrap())
        .await
        .unwrap();
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(130), "{stderr}");
    assert!(stderr.contains("interrupted"), "{stderr}");
    let landed = files(dir.path());
    assert!(landed.len() < 2500);
    for file in &landed {
        assert!(!is_temporary_file(file), "temp file left: {file}");
        let i: usize = file.parse().unwrap();
        assert_eq!(
            std::fs::read(dir.path().join(file)).unwrap(),
            format!("object {i}").as_bytes()
        );
    }
    gate.open();
}

#[test]
fn help_lists_examples_and_exit_codes() {
    let out = Command::new(env!("CARGO_BIN_EXE_s3fetch"))
        .arg("--help")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let help = text(&out.stdout);
    for needle in [
        "Examples:",
        "Exit codes:",
        "130",
        "--endpoint-url",
        "--no-sign-request",
        "--dry-run",
    ] {
        assert!(help.contains(needle), "{needle}");
    }
    let out = Command::new(env!("CARGO_BIN_EXE_s3fetch"))
        .arg("--version")
        .output()
        .unwrap();
    assert!(text(&out.stdout).starts_with("s3fetch "));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_or_expired_credentials_exit_1_with_a_hint() {
    let server = server().await;
    let home = tempfile::tempdir().unwrap();
    std::fs::create_dir(home.path().join(".aws")).unwrap();
    std::fs::write(
        home.path().join(".aws/config"),
        "[profile sso-user]\nsso_start_url = https://sso.invalid/start\nsso_region = us-east-1\n\
         sso_account_id = 123456789012\nsso_role_name = Reader\nregion = us-east-1\n",
    )
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let bare = || {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_s3fetch"));
        cmd.env_clear()
            .env("HOME", home.path())
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .args([
                "s3://bkt/",
                "--endpoint-url",
                &server.endpoint(),
                "--download-dir",
            ])
            .arg(dir.path());
        cmd
    };
    let out = output(bare()).await;
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("no credentials found"), "{stderr}");
    assert!(
        stderr.contains("hint: no usable AWS credentials"),
        "{stderr}"
    );

    // An SSO profile whose token cache is empty (never signed in, or expired and cleared).
    let mut cmd = bare();
    cmd.args(["--profile", "sso-user"]);
    let out = tokio::time::timeout(Duration::from_secs(60), output(cmd))
        .await
        .expect("no hang");
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("sso/cache"), "{stderr}");
    assert!(stderr.contains("aws sso login"), "{stderr}");
    assert_eq!(server.request_counts().list, 0, "nothing unsigned was sent");
}

/// An endpoint given for S3 alone (`AWS_ENDPOINT_URL_S3`, or a profile's `services` section)
/// is where every request goes, GETs sent without the SDK included.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_endpoint_given_for_s3_alone_is_used_for_every_request() {
    let server = server().await;
    let home = tempfile::tempdir().unwrap();
    let config = home.path().join("config");
    std::fs::write(
        &config,
        format!(
            "[default]\nservices = local\n[services local]\ns3 =\n  endpoint_url = {}\n",
            server.endpoint()
        ),
    )
    .unwrap();
    for by_profile in [false, true] {
        let dir = tempfile::tempdir().unwrap();
        let mut cmd = s3fetch(&server);
        cmd.env_remove("AWS_ENDPOINT_URL");
        if by_profile {
            cmd.env("AWS_CONFIG_FILE", &config);
        } else {
            cmd.env("AWS_ENDPOINT_URL_S3", server.endpoint());
        }
        cmd.args(["s3://bkt/data/", "-q", "--download-dir"])
            .arg(dir.path());
        let out = output(cmd).await;
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(0), "profile {by_profile}: {stderr}");
        assert_eq!(
            std::fs::read_to_string(dir.path().join("00000.txt")).unwrap(),
            "object 0",
            "profile {by_profile}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_low_open_file_limit_lowers_concurrency_instead_of_failing() {
    let server = TestServer::start().await;
    server.create_bucket("bkt");
    server
        .store()
        .put_objects(
            "bkt",
            (0..1500).map(|i| (format!("many/{i:04}"), format!("object {i}"))),
        )
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = s3fetch(&server);
    cmd.env_remove("PATH");
    let mut sh = Command::new("sh");
    sh.envs(cmd.get_envs().filter_map(|(k, v)| Some((k, v?))))
        .arg("-c")
        .arg(r#"ulimit -n 256 && exec "$0" "$@""#)
        .arg(env!("CARGO_BIN_EXE_s3fetch"))
        .args(["s3://bkt/many/", "-q", "-c", "1000", "--download-dir"])
        .arg(dir.path());
    let out = output(sh).await;
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(stderr.contains("open-file limit"), "{stderr}");
    assert_eq!(files(dir.path()).len(), 1500);
}

/// A slow server with two large objects (ranged parts) and a few small ones, and the binary
/// started on it; returns once a temporary file shows that parts are in flight.
async fn interrupted_mid_download() -> (TestServer, tempfile::TempDir, std::process::Child) {
    let server = TestServer::start_with(s3fetch_testkit::ServerOptions {
        bandwidth_bytes_per_sec: Some(1024 * 1024),
        ..s3fetch_testkit::ServerOptions::default()
    })
    .await
    .unwrap();
    server.create_bucket("bkt");
    for i in 0..2u8 {
        server.put_object("bkt", &format!("big/{i}.bin"), vec![i; 16 * 1024 * 1024]);
    }
    for i in 0..4 {
        server.put_object("bkt", &format!("big/small-{i}"), format!("small {i}"));
    }
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = s3fetch(&server);
    cmd.args(["s3://bkt/big/", "-q", "--part-size", "1MiB"])
        .args(["--multipart-threshold", "1MiB", "--download-dir"])
        .arg(dir.path())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped());
    let child = cmd.spawn().unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while temporary_files(dir.path()).is_empty() {
        assert!(std::time::Instant::now() < deadline, "no download started");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    (server, dir, child)
}

fn signal(child: &std::process::Child, signal: &str) {
    let status = Command::new("kill")
        .args([signal, &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

/// Waits for `child` (at most `limit`) and checks what an interrupted run must leave: exit
/// code 130, only whole files under final names, no temporary file but the large objects'
/// resumable partial files (and their journals).
async fn left_clean(child: std::process::Child, dir: &Path, limit: Duration) -> String {
    let out = tokio::time::timeout(
        limit,
        tokio::task::spawn_blocking(move || child.wait_with_output().unwrap()),
    )
    .await
    .expect("the interrupted run exits promptly")
    .unwrap();
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(130), "{stderr}");
    let landed = files(dir);
    assert!(
        !landed.contains("0.bin") || !landed.contains("1.bin"),
        "the large objects cannot both have finished"
    );
    for file in &landed {
        if is_partial_file(file) {
            continue;
        }
        assert!(!is_temporary_file(file), "temp file left: {file}");
        let body = std::fs::read(dir.join(file)).unwrap();
        let want = match file.strip_prefix("small-") {
            Some(i) => format!("small {i}").into_bytes(),
            None => vec![file[..1].parse::<u8>().unwrap(); 16 * 1024 * 1024],
        };
        assert!(body == want, "{file} is not whole");
    }
    stderr
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_mid_download_removes_temporary_files_and_exits_130() {
    let (_server, dir, child) = interrupted_mid_download().await;
    signal(&child, "-TERM");
    let stderr = left_clean(child, dir.path(), Duration::from_secs(10)).await;
    assert!(stderr.contains("no temporary files were left"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_interrupt_quits_at_once_and_still_removes_temporary_files() {
    let (_server, dir, child) = interrupted_mid_download().await;
    signal(&child, "-INT");
    signal(&child, "-INT");
    let stderr = left_clean(child, dir.path(), Duration::from_secs(10)).await;
    // Either the run had already stopped cleanly, or the second signal quit it.
    assert!(
        stderr.contains("no temporary files were left") || stderr.contains("quitting now"),
        "{stderr}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_with_a_private_ca_and_an_untrusted_certificate() {
    let server = TestServer::start_with(s3fetch_testkit::ServerOptions {
        tls: true,
        ..Default::default()
    })
    .await
    .unwrap();
    server.create_bucket("bkt");
    server.put_object("bkt", "tls/a.txt", b"over https");
    let ca = server.ca_file().expect("a TLS server has a CA").to_owned();
    assert!(server.endpoint().starts_with("https://"));
    // Trusted through AWS_CA_BUNDLE (set by aws_env for a TLS server), or --ca-bundle.
    for flag in [false, true] {
        let dir = tempfile::tempdir().unwrap();
        let mut cmd = s3fetch(&server);
        if flag {
            cmd.env_remove("AWS_CA_BUNDLE").arg("--ca-bundle").arg(&ca);
        }
        cmd.args(["s3://bkt/tls/", "--download-dir"])
            .arg(dir.path());
        let out = output(cmd).await;
        assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
        assert_eq!(
            std::fs::read(dir.path().join("a.txt")).unwrap(),
            b"over https"
        );
    }
    // Not trusted: one clear error with the fix, at once (not retried), exit 1.
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = s3fetch(&server);
    cmd.env_remove("AWS_CA_BUNDLE")
        .args(["s3://bkt/tls/", "--download-dir"])
        .arg(dir.path());
    let started = std::time::Instant::now();
    let out = output(cmd).await;
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("invalid peer certificate"), "{stderr}");
    assert!(
        stderr.contains("hint:") && stderr.contains("--ca-bundle"),
        "{stderr}"
    );
    assert!(started.elapsed() < Duration::from_secs(5), "not retried");
    assert!(files(dir.path()).is_empty());
    // A bundle that is not one is a usage error before any request.
    let not_pem = dir.path().join("not.pem");
    std::fs::write(&not_pem, "hello").unwrap();
    let mut cmd = s3fetch(&server);
    cmd.arg("--ca-bundle")
        .arg(&not_pem)
        .args(["s3://bkt/tls/", "--download-dir"])
        .arg(dir.path());
    let out = output(cmd).await;
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("--ca-bundle") && stderr.contains("no PEM certificate"),
        "{stderr}"
    );
}

/// The command with `args` (S3_URI first) into `dir`, run to completion.
async fn fetch_into(server: &TestServer, dir: &Path, args: &[&str]) -> Output {
    let mut cmd = s3fetch(server);
    cmd.args(args).arg("--download-dir").arg(dir);
    output(cmd).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sync_run_over_complete_files_sends_no_get_and_counts_them_skipped() {
    let server = server().await;
    let dir = tempfile::tempdir().unwrap();
    let first = fetch_into(&server, dir.path(), &["s3://bkt/data/", "-q"]).await;
    assert_eq!(first.status.code(), Some(0), "{}", text(&first.stderr));

    for flag in ["--sync", "--skip-existing"] {
        server.reset_request_counts();
        let out = fetch_into(&server, dir.path(), &["s3://bkt/data/", flag]).await;
        assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
        assert_eq!(server.request_counts().get, 0, "{flag}: no GET");
        assert_eq!(
            text(&out.stdout),
            "",
            "{flag}: simple mode prints no skipped key"
        );
    }
    std::fs::write(dir.path().join("00001.txt"), "changed, longer").unwrap();
    let out = fetch_into(
        &server,
        dir.path(),
        &["s3://bkt/data/", "--sync", "--progress", "detailed"],
    )
    .await;
    let stdout = text(&out.stdout);
    assert!(stdout.contains("data/00001.txt\n"), "{stdout}");
    assert!(
        stdout.contains("data/00002.txt (skipped: up to date)"),
        "{stdout}"
    );
    assert!(
        stdout.contains("Objects downloaded: 1\n  Objects skipped: 30\n"),
        "{stdout}"
    );
    assert_eq!(
        std::fs::read(dir.path().join("00001.txt")).unwrap(),
        b"object 1"
    );
}

/// Where the file system has no extended attributes (the test seam `S3FETCH_TEST_NO_XATTR`
/// stands in for one), `--compare etag` keeps its records in `.s3fetch-etags.jsonl` in the
/// download directory, and they still tell a rewrite that size and time miss.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compare_etag_falls_back_to_an_index_file_without_extended_attributes() {
    let server = server().await;
    let when = std::time::SystemTime::now() - Duration::from_secs(3600);
    server.put_object_at("bkt", "data/00001.txt", "object 1", when);
    let dir = tempfile::tempdir().unwrap();
    let sync = |server: &TestServer| {
        let mut cmd = s3fetch(server);
        cmd.env("S3FETCH_TEST_NO_XATTR", "1")
            .args(["s3://bkt/data/", "-q", "--sync", "--compare", "etag"])
            .arg("--download-dir")
            .arg(dir.path());
        output(cmd)
    };
    let out = sync(&server).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let index = std::fs::read_to_string(dir.path().join(".s3fetch-etags.jsonl")).unwrap();
    let records: Vec<serde_json::Value> = index
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(records.len(), 31, "one line per file: {index}");
    assert!(records
        .iter()
        .any(|r| r["path"] == "00001.txt" && r["etag"].as_str().unwrap().starts_with('"')));

    server.reset_request_counts();
    let out = sync(&server).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(server.request_counts().get, 0, "the index is read back");

    // Rewritten with the same size and LastModified: only the recorded ETag tells.
    server.put_object_at("bkt", "data/00001.txt", "OBJECT 1", when);
    server.reset_request_counts();
    let out = sync(&server).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(server.request_counts().get, 1);
    assert_eq!(
        std::fs::read(dir.path().join("00001.txt")).unwrap(),
        b"OBJECT 1"
    );

    // A file put in place by other means (a new inode, its time kept) carries no record.
    let (original, copy) = (dir.path().join("00002.txt"), dir.path().join("copy"));
    std::fs::copy(&original, &copy).unwrap();
    let time = std::fs::metadata(&original).unwrap().modified().unwrap();
    std::fs::File::options()
        .write(true)
        .open(&copy)
        .unwrap()
        .set_modified(time)
        .unwrap();
    std::fs::rename(&copy, &original).unwrap();
    server.reset_request_counts();
    let out = sync(&server).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(server.request_counts().get, 1, "the copy is fetched again");
    assert_no_temp_files(dir.path());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn files_keep_the_objects_time_unless_no_preserve_mtime() {
    let server = server().await;
    let hour_ago = std::time::SystemTime::now() - Duration::from_secs(3600);
    server.put_object_at("bkt", "data/old.txt", "old", hour_ago);
    let mtime = |dir: &Path| {
        std::fs::metadata(dir.join("old.txt"))
            .unwrap()
            .modified()
            .unwrap()
    };
    let kept = tempfile::tempdir().unwrap();
    fetch_into(&server, kept.path(), &["s3://bkt/data/old", "-q"]).await;
    let off = mtime(kept.path())
        .duration_since(hour_ago)
        .unwrap_or_else(|e| e.duration());
    assert!(off < Duration::from_millis(1), "{off:?}");
    let now = tempfile::tempdir().unwrap();
    fetch_into(
        &server,
        now.path(),
        &["s3://bkt/data/old", "-q", "--no-preserve-mtime"],
    )
    .await;
    assert!(mtime(now.path()) > hour_ago + Duration::from_secs(3000));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn output_json_prints_one_object_per_event_and_nothing_else() {
    let server = server().await;
    server.deny_key("bkt", "data/00004.txt");
    let dir = tempfile::tempdir().unwrap();
    let out = fetch_into(&server, dir.path(), &["s3://bkt/data/", "--output", "json"]).await;
    assert_eq!(out.status.code(), Some(1), "exit codes as in text mode");
    let lines: Vec<serde_json::Value> = text(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l:?}: {e}")))
        .collect();
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
        text(&out.stderr).contains("data/00004.txt"),
        "errors still on stderr"
    );

    // With --dry-run: the found objects and the summary, nothing written.
    let empty = tempfile::tempdir().unwrap();
    let out = fetch_into(
        &server,
        empty.path(),
        &["s3://bkt/data/sub", "--output", "json", "--dry-run"],
    )
    .await;
    let events: Vec<String> = text(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["event"].to_string())
        .collect();
    assert_eq!(events, ["\"found\"", "\"summary\""]);
    assert!(files(empty.path()).is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_keys_then_keys_from_stdin_reruns_only_the_failures() {
    let server = server().await;
    server.deny_key("bkt", "data/00004.txt");
    server.deny_key("bkt", "data/sub/deep.json");
    let dir = tempfile::tempdir().unwrap();
    let list = dir.path().join("failed.txt");
    let out = tempfile::tempdir().unwrap();
    let first = fetch_into(
        &server,
        out.path(),
        &[
            "s3://bkt/data/",
            "-q",
            "--failed-keys",
            list.to_str().unwrap(),
        ],
    )
    .await;
    assert_eq!(first.status.code(), Some(1));
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
    let mut cmd = s3fetch(&server);
    cmd.args(["s3://bkt/data/", "--keys-from", "-", "--download-dir"])
        .arg(out.path())
        .stdin(std::fs::File::open(&list).unwrap());
    let rerun = output(cmd).await;
    assert_eq!(rerun.status.code(), Some(0), "{}", text(&rerun.stderr));
    assert_eq!(stdout_lines(&rerun), failed.into_iter().collect());
    assert_eq!(server.request_counts().list, 0);
    assert_eq!(files(out.path()).len(), 31);

    std::fs::write(&list, "data/00001.txt\nelsewhere/x\n").unwrap();
    let bad = fetch_into(
        &server,
        out.path(),
        &["s3://bkt/data/", "--keys-from", list.to_str().unwrap()],
    )
    .await;
    let stderr = text(&bad.stderr);
    assert_eq!(bad.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("--keys-from") && stderr.contains("line 2"),
        "{stderr}"
    );
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
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while journals(dir).iter().filter(|&&parts| parts > 0).count() < objects {
        assert!(
            std::time::Instant::now() < deadline,
            "no part was journaled"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_run_is_resumed_by_the_next_and_leaves_nothing_behind() {
    let (server, dir, mut child) = interrupted_mid_download().await;
    until_journaled(dir.path(), 2).await;
    signal(&child, "-KILL");
    child.wait().unwrap();
    let done = journaled(dir.path());
    let partials: Vec<String> = files(dir.path())
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
    std::fs::write(dir.path().join(format!(".s3fetch-{dead}-9.tmp")), "x").unwrap();

    server.reset_request_counts();
    let mut args: Vec<&str> = BIG_RUN.iter().copied().filter(|a| *a != "-q").collect();
    args.extend(["--output", "json"]);
    let out = fetch_into(&server, dir.path(), &args).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let gets = server.request_counts().get;
    let summary: serde_json::Value =
        serde_json::from_str(text(&out.stdout).lines().last().unwrap()).unwrap();
    // A retry or a resumed body (a loaded machine) is one more GET, and says so.
    let again = summary["retries"].as_u64().unwrap() + summary["resumes"].as_u64().unwrap();
    // 32 parts in all and the small objects' GETs (4): the parts journaled before the kill
    // are not fetched again.
    assert!(
        gets <= 32 + 4 - done as u64 + again,
        "{gets} GETs with {done} parts journaled ({again} retried): finished parts were fetched again"
    );
    for i in 0..2u8 {
        let body = std::fs::read(dir.path().join(format!("{i}.bin"))).unwrap();
        assert!(body == vec![i; 16 * 1024 * 1024], "{i}.bin is byte-exact");
    }
    assert_no_temp_files(dir.path());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_resume_removes_partial_files_and_starts_over() {
    let (server, dir, child) = interrupted_mid_download().await;
    until_journaled(dir.path(), 1).await;
    signal(&child, "-TERM");
    let stderr = left_clean(child, dir.path(), Duration::from_secs(10)).await;
    assert!(
        stderr.contains("large object(s) partly downloaded were kept to resume"),
        "{stderr}"
    );
    assert!(files(dir.path()).iter().any(|f| is_partial_file(f)));
    server.reset_request_counts();
    let out = fetch_into(
        &server,
        dir.path(),
        &[&BIG_RUN[..], &["--no-resume"]].concat(),
    )
    .await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(
        server.request_counts().get,
        32 + 4,
        "every part fetched again"
    );
    assert_no_temp_files(dir.path());
}

/// `s3fetch plan` prints a plan; `--shard K/N --plan` shards by its key ranges (each key
/// once, the range in the JSON summary); the flags are checked against the plan.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plan_and_range_shards() {
    let server = server().await;
    let work = tempfile::tempdir().unwrap();
    let plan_file = work.path().join("plan.json");
    let mut cmd = s3fetch(&server);
    cmd.args(["plan", "s3://bkt/data/", "--shards", "3"]);
    let out = output(cmd).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let plan: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(plan["shards"], 3);
    assert_eq!(plan["exact"], true, "one page: every key seen");
    assert_eq!(plan["list_requests"], 1);
    assert!(text(&out.stderr).contains("plan: 3 shards of s3://bkt/data/"));
    std::fs::write(&plan_file, &out.stdout).unwrap();

    let mut union = BTreeSet::new();
    let mut total = 0;
    for k in 0..3 {
        let mut cmd = s3fetch(&server);
        cmd.args(["s3://bkt/data/", "--dry-run", "--output", "json", "--plan"])
            .arg(&plan_file)
            .args(["--shard", &format!("{k}/3")]);
        let out = output(cmd).await;
        assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
        assert!(text(&out.stderr).contains(&format!("note: shard {k}/3: keys (")));
        let lines: Vec<serde_json::Value> = text(&out.stdout)
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        let summary = lines.last().unwrap();
        assert_eq!(summary["shard"]["by"], "range");
        assert_eq!(summary["shard"]["index"], k);
        let keys: Vec<String> = lines
            .iter()
            .filter(|l| l["event"] == "found")
            .map(|l| l["key"].as_str().unwrap().to_owned())
            .collect();
        assert!((10..=11).contains(&keys.len()), "{k}: {keys:?}");
        total += keys.len();
        union.extend(keys);
    }
    assert_eq!((total, union), (31, expected_keys()));

    let bad_plan = work.path().join("bad.json");
    std::fs::write(&bad_plan, "{\"splits\": []}").unwrap();
    let cases: [(&[&str], &str); 6] = [
        (&["--shard", "0/4", "--plan", "P"], "--plan has 3 shards"),
        (&["--shard", "0/3", "--shard-by", "range"], "s3fetch plan"),
        (
            &["--shard", "0/3", "--shard-by", "hash", "--plan", "P"],
            "by hash",
        ),
        (
            &["--shard", "0/3", "--plan", "BAD"],
            "is not an s3fetch plan",
        ),
        (
            &["--shard", "0/3", "--plan", "/nonexistent/plan.json"],
            "--plan /nonexistent",
        ),
        (&["--plan", "P"], "--shard"),
    ];
    for (args, says) in cases {
        let mut cmd = s3fetch(&server);
        cmd.args(["s3://bkt/data/", "--dry-run"]);
        for arg in args {
            match *arg {
                "P" => cmd.arg(&plan_file),
                "BAD" => cmd.arg(&bad_plan),
                _ => cmd.arg(arg),
            };
        }
        let out = output(cmd).await;
        assert_eq!(
            out.status.code(),
            Some(2),
            "{args:?}: {}",
            text(&out.stderr)
        );
        assert!(
            text(&out.stderr).contains(says),
            "{args:?}: {}",
            text(&out.stderr)
        );
    }
    // Another prefix than the plan's; `plan` without --shards.
    let mut cmd = s3fetch(&server);
    cmd.args(["s3://bkt/data/sub/", "--shard", "0/3", "--plan"])
        .arg(&plan_file);
    let out = output(cmd).await;
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("was made for s3://bkt/data/"));
    let mut cmd = s3fetch(&server);
    cmd.args(["plan", "s3://bkt/data/"]);
    let out = output(cmd).await;
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("--shards"));
}
