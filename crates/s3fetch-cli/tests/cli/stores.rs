//! The `s3fetch` binary against stores that behave as real ones do: a bucket in another
//! region, requester pays, listings out of order, an S3 Express directory bucket (the test
//! kit's emulations, see its "Quirks"). Exit codes, messages and files.

use std::collections::BTreeSet;

use s3fetch_testkit::ServerOptions;

use crate::common::{run, TestEnv};

const EXPRESS: &str = "data--usw2-az1--x-s3";

/// An environment whose buckets each hold 40 keys in four folders, a file `a` beside `a/b`.
async fn env(options: ServerOptions, buckets: &[&str]) -> TestEnv {
    let env = TestEnv::start_with(options).await;
    for bucket in buckets {
        env.server().create_bucket(bucket);
        for i in 0..40 {
            env.server()
                .put_object(bucket, &format!("p/{}/k{i:02}.txt", i % 4), format!("{i}"));
        }
        env.server().put_object(bucket, "p/a", "file a");
        env.server().put_object(bucket, "p/a/b", "under a");
    }
    env
}

/// The files a download of `p/` leaves: the file `a` wins over the folder `a/`.
fn expected() -> BTreeSet<String> {
    let mut files: BTreeSet<String> = (0..40).map(|i| format!("{}/k{i:02}.txt", i % 4)).collect();
    files.insert("a".into());
    files
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bucket_in_another_region_just_works_with_one_debug_note() {
    let env = env(
        ServerOptions {
            bucket_regions: vec![("west".into(), "us-west-2".into())],
            ..ServerOptions::default()
        },
        &["west"],
    )
    .await;
    // The default region (the test kit's, us-east-1), no --region.
    env.server().reset_request_counts();
    let out = env.fetch(&["s3://west/p/", "--debug"]).await;
    let stderr = out.stderr();
    assert_eq!(out.code(), Some(1), "a/b is the one conflict: {stderr}");
    assert_eq!(env.files(), expected());
    let notes = stderr
        .lines()
        .filter(|l| l.contains("the bucket is in another region"))
        .count();
    assert_eq!(notes, 1, "{stderr}");
    assert_eq!(env.server().request_counts().of("ListObjectsV2"), 2);
    env.assert_no_temp_files();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requester_pays_needs_the_flag_and_the_hint_says_so() {
    let env = env(
        ServerOptions {
            requester_pays: vec!["paid".into()],
            ..ServerOptions::default()
        },
        &["paid"],
    )
    .await;
    env.fetch(&["s3://paid/p/"])
        .await
        .assert_exit(1)
        .assert_stderr_contains("AccessDenied")
        .assert_stderr_contains("--request-payer requester");
    env.fetch(&["s3://paid/p/", "--request-payer", "requester"])
        .await
        .assert_exit(1);
    assert_eq!(env.files(), expected());
    // `s3fetch plan` sends it too.
    env.run(&[
        "plan",
        "s3://paid/p/",
        "--shards",
        "2",
        "--request-payer",
        "requester",
    ])
    .await
    .assert_success();
    // Only `requester` pays.
    env.run(&["s3://paid/p/", "--request-payer", "owner"])
        .await
        .assert_exit(2)
        .assert_stderr_contains("requester");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_that_lists_out_of_order_is_listed_again_with_one_warning() {
    let env = env(
        ServerOptions {
            unordered: vec!["unordered".into()],
            ignore_start_after: vec!["ignoring".into()],
            ..ServerOptions::default()
        },
        &["unordered", "ignoring"],
    )
    .await;
    for (bucket, seen) in [("unordered", "out of order"), ("ignoring", "ignored where")] {
        for concurrency in ["64", "1"] {
            let dir = tempfile::tempdir().unwrap();
            let mut cmd = env.command();
            cmd.args([
                &format!("s3://{bucket}/p/"),
                "--list-concurrency",
                concurrency,
            ])
            .arg("--download-dir")
            .arg(dir.path());
            env.server().reset_request_counts();
            let out = run(cmd).await;
            let stderr = out.stderr();
            assert_eq!(out.code(), Some(1), "a/b is the one conflict: {stderr}");
            assert_eq!(
                s3fetch_testkit::fixtures::files(dir.path()),
                expected(),
                "{bucket}, {concurrency}"
            );
            assert_eq!(env.server().request_counts().get, 41, "each object once");
            let warnings = stderr
                .lines()
                .filter(|l| l.starts_with("warning: "))
                .count();
            // One listing page holds every key here: a store out of order shows itself in
            // it; one that ignores StartAfter is never asked with it (many pages: the
            // engine's tests).
            let expected = usize::from(bucket == "unordered");
            assert_eq!(warnings, expected, "{bucket}, {concurrency}: {stderr}");
            assert!(expected == 0 || stderr.contains(seen), "{stderr}");
            assert!(stderr.contains("p/a/b"), "the conflict is named: {stderr}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_directory_bucket_downloads_and_refuses_what_cannot_work_there() {
    let env = env(
        ServerOptions {
            directory_buckets: vec![EXPRESS.into()],
            ..ServerOptions::default()
        },
        &[],
    )
    .await;
    let server = env.server();
    for i in 0..40 {
        server.put_object(EXPRESS, &format!("p/{}/k{i:02}.txt", i % 4), format!("{i}"));
    }
    server.put_object(EXPRESS, "p/a", "file a");
    server.put_object(EXPRESS, "p/a/b", "under a");
    let out = env.fetch(&[&format!("s3://{EXPRESS}/p/")]).await;
    let stderr = out.stderr();
    assert_eq!(out.code(), Some(1), "a/b is the one conflict: {stderr}");
    assert_eq!(env.files(), expected());
    assert!(
        !stderr.contains("WARN"),
        "no order is expected of it: {stderr}"
    );
    for (args, says) in [
        (vec!["--delimiter", "-"], "--delimiter must be \"/\""),
        (
            vec!["--shard", "0/2", "--shard-by", "range"],
            "use hash shards",
        ),
        (vec!["--request-payer", "requester"], "no requester-pays"),
    ] {
        let mut cmd = env.command();
        cmd.arg(format!("s3://{EXPRESS}/p/")).args(&args);
        run(cmd).await.assert_exit(2).assert_stderr_contains(says);
    }
    env.run(&["plan", &format!("s3://{EXPRESS}/p/"), "--shards", "2"])
        .await
        .assert_exit(2)
        .assert_stderr_contains("directory bucket");
}
