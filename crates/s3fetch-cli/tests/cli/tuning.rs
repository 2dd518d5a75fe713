//! Tuning flags: part size and threshold, listing concurrency, the deprecated `--threads`,
//! and a low open-file limit.

use crate::common::{run, wrapper, TestEnv};
use crate::with_data;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tuning_flags_reach_the_engine() {
    let env = with_data().await;
    let body: Vec<u8> = (0..2 * 1024 * 1024).map(|i: u32| (i % 251) as u8).collect();
    env.server().put_object("bkt", "big/blob", &body);
    env.fetch(&[
        "s3://bkt/big/",
        "-q",
        "--multipart-threshold",
        "1MiB",
        "--part-size",
        "256KiB",
    ])
    .await
    .assert_success();
    assert!(env.read("blob") == body);
    assert_eq!(env.server().request_counts().get, 8, "eight ranged parts");

    env.server().reset_request_counts();
    env.fetch(&[
        "s3://bkt/data/",
        "-q",
        "--dry-run",
        "--list-concurrency",
        "1",
    ])
    .await
    .assert_success();
    assert_eq!(
        env.server().request_counts().list,
        1,
        "page by page, no sub-folder probe"
    );

    env.run(&["s3://bkt/", "--part-size", "8 parsecs"])
        .await
        .assert_exit(2)
        .assert_stderr_contains("unknown size unit");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn threads_is_a_deprecated_alias() {
    let env = with_data().await;
    env.fetch(&["s3://bkt/data/", "-q", "-t", "3"])
        .await
        .assert_success()
        .assert_stderr_contains("warning: -t/--threads is deprecated");
    assert_eq!(env.files().len(), 31);

    env.fetch(&["s3://bkt/data/", "-q", "-c", "1001", "--dry-run"])
        .await
        .assert_stderr_contains("warning: 1001 concurrent downloads");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_low_open_file_limit_lowers_concurrency_instead_of_failing() {
    let env = TestEnv::start().await;
    env.server().create_bucket("bkt");
    env.server()
        .store()
        .put_objects(
            "bkt",
            (0..1500).map(|i| (format!("many/{i:04}"), format!("object {i}"))),
        )
        .unwrap();
    let mut cmd = env.command();
    cmd.args(["s3://bkt/many/", "-q", "-c", "1000", "--download-dir"])
        .arg(env.dir());
    let mut sh = wrapper("sh", &cmd);
    sh.arg("-c")
        .arg(r#"ulimit -n 256 && exec "$0" "$@""#)
        .arg(cmd.get_program())
        .args(cmd.get_args());
    run(sh)
        .await
        .assert_success()
        .assert_stderr_contains("open-file limit");
    assert_eq!(env.files().len(), 1500);
}
