//! Errors and exit codes: usage errors (2) before any request, a failed listing (1) with the
//! S3 code and a hint, objects that fail (1) each named while the others download.

use crate::common::run;
use crate::with_data;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn usage_errors_exit_2_with_a_clear_message() {
    let env = with_data().await;
    let d = env.dir().to_str().unwrap().to_owned();
    let missing = env.dir().join("missing");
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
        let out = env.run(&args).await;
        out.assert_exit(2).assert_stderr_contains(needle);
        let stderr = out.stderr();
        assert!(
            !stderr.contains("panicked") && !stderr.contains("backtrace"),
            "{stderr}"
        );
    }
    assert!(
        !missing.exists(),
        "the download dir is never created silently"
    );
    assert_eq!(
        env.server().request_counts().http_requests,
        0,
        "usage errors send no request"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listing_errors_exit_1_with_the_code_and_a_hint() {
    let env = with_data().await;
    env.server().create_bucket("private");
    env.server().deny_bucket("private");
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
        let mut cmd = env.command();
        cmd.args([uri, "--download-dir"]).arg(env.dir()).env(k, v);
        let out = run(cmd).await;
        out.assert_exit(1)
            .assert_stderr_contains(code)
            .assert_stderr_contains("hint: ");
        assert!(!out.stderr().contains("panicked"));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partial_failure_exits_1_and_names_each_failed_key() {
    let env = with_data().await;
    let server = env.server();
    server.put_object("bkt", "data/zz-denied", b"x");
    server.deny_key("bkt", "data/zz-denied");
    // Key `data/00005.txt/x` needs a directory where key `data/00005.txt` is a file.
    server.put_object("bkt", "data/00005.txt/x", b"x");
    std::fs::create_dir_all(env.dir().join("00003.txt/blocker")).unwrap();
    let out = env.fetch(&["s3://bkt/data/"]).await;
    out.assert_exit(1);
    for needle in [
        "\"data/00003.txt\"",
        "directory is in the way",
        "data/zz-denied",
        "AccessDenied",
        "\"data/00005.txt/x\"",
        "key \"data/00005.txt\" is downloaded to",
        "where this key needs a directory",
        "error: 3 of 33 objects failed",
    ] {
        out.assert_stderr_contains(needle);
    }
    assert_eq!(out.stdout().lines().count(), 30);
    assert!(env.dir().join("00005.txt").is_file());
    env.assert_no_temp_files();
}
