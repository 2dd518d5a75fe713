//! `s3fetch cat`: one object or a prefix to stdout, raw or as tar, against the test kit;
//! `| tar -x` and `| head` run for real.

use std::collections::BTreeMap;
use std::process::{Command, Stdio};

use s3fetch_testkit::FaultPlan;

use crate::common::{self, TestEnv};

/// Bytes that differ at every offset (so a misplaced part shows).
fn bytes(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u32).wrapping_mul(2_654_435_761).to_le_bytes()[3] ^ seed)
        .collect()
}

/// A bucket `bkt` holding `objects`.
async fn env_with(objects: &BTreeMap<&str, Vec<u8>>) -> TestEnv {
    let env = TestEnv::start().await;
    env.server().create_bucket("bkt");
    for (key, body) in objects {
        env.server().put_object("bkt", key, body);
    }
    env
}

/// Small parts, so that a few MiB take many ranged GETs.
const SMALL_PARTS: [&str; 4] = ["--part-size", "64KiB", "--multipart-threshold", "256KiB"];

fn dataset() -> BTreeMap<&'static str, Vec<u8>> {
    BTreeMap::from([
        ("data/a.txt", b"first\n".to_vec()),
        ("data/big.bin", bytes(3 << 20, 1)),
        ("data/empty", Vec::new()),
        ("data/sub/deep/c.txt", b"third\n".to_vec()),
        ("data/sub/mid.bin", bytes(700_000, 2)),
        ("other/x", b"not selected".to_vec()),
    ])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_object_comes_whole_in_ranged_parts_in_order() {
    let objects = dataset();
    let env = env_with(&objects).await;
    let mut args = vec!["cat", "s3://bkt/data/big.bin"];
    args.extend(SMALL_PARTS);
    let run = env.run(&args).await;
    run.assert_success();
    assert!(
        run.stdout_bytes() == objects["data/big.bin"].as_slice(),
        "bytes differ"
    );
    // 48 parts, the first sent beside the one HEAD (for the URI and the checksum): no
    // listing, no request twice.
    let counts = env.server().request_counts();
    assert_eq!(counts.list, 0);
    assert_eq!(counts.head, 1);
    assert_eq!(counts.get, 48);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_small_object_takes_one_head_and_one_get() {
    let objects = dataset();
    let env = env_with(&objects).await;
    let run = env.run(&["cat", "s3://bkt/data/sub/mid.bin"]).await;
    run.assert_success();
    assert!(
        run.stdout_bytes() == objects["data/sub/mid.bin"].as_slice(),
        "bytes differ"
    );
    let counts = env.server().request_counts();
    assert_eq!((counts.head, counts.get, counts.list), (1, 1, 0));
    // An empty object: its first part cannot be asked for (416), it comes whole.
    let run = env.run(&["cat", "s3://bkt/data/empty"]).await;
    run.assert_success();
    assert!(run.stdout_bytes().is_empty());
    // A body that fails its checksum in that first (ranged) answer is asked for again,
    // whole.
    env.server()
        .set_faults(FaultPlan::parse("corrupt=1@ranged@key=data/sub/mid.bin,seed=1").unwrap());
    env.server().reset_request_counts();
    let run = env.run(&["cat", "s3://bkt/data/sub/mid.bin"]).await;
    run.assert_success();
    assert!(
        run.stdout_bytes() == objects["data/sub/mid.bin"].as_slice(),
        "bytes differ"
    );
    assert_eq!(env.server().request_counts().get, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_prefix_comes_in_key_order_filtered() {
    let objects = dataset();
    let env = env_with(&objects).await;
    let mut args = vec!["cat", "s3://bkt/data/", "--exclude", "sub/deep/**"];
    args.extend(SMALL_PARTS);
    let run = env.run(&args).await;
    run.assert_success();
    let expected: Vec<u8> = [
        "data/a.txt",
        "data/big.bin",
        "data/empty",
        "data/sub/mid.bin",
    ]
    .iter()
    .flat_map(|k| objects[k].clone())
    .collect();
    assert!(run.stdout_bytes() == expected.as_slice(), "bytes differ");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_that_is_no_object_is_a_prefix() {
    let objects = dataset();
    let env = env_with(&objects).await;
    let run = env.run(&["cat", "s3://bkt/data/sub/deep"]).await;
    run.assert_success();
    assert_eq!(run.stdout(), "third\n");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tar_extracts_to_the_tree_a_download_writes() {
    let mut objects = dataset();
    let long = format!("data/{}/{}.txt", "d".repeat(90), "n".repeat(60));
    objects.insert(Box::leak(long.into_boxed_str()), b"long name".to_vec());
    let env = env_with(&objects).await;
    env.fetch(&["s3://bkt/data/"]).await.assert_success();
    let out = tempfile::tempdir().unwrap();
    let mut cmd = env.command();
    cmd.args(["cat", "s3://bkt/data/", "--format", "tar"])
        .args(SMALL_PARTS);
    let mut shell = common::wrapper("bash", &cmd);
    shell.arg("-c").arg(format!(
        "set -o pipefail; \"$0\" \"$@\" | tar -x -C {}",
        out.path().display()
    ));
    shell.arg(cmd.get_program()).args(cmd.get_args());
    common::run(shell).await.assert_success();
    let extracted = s3fetch_testkit::fixtures::tree(out.path());
    assert_eq!(extracted.len(), 6);
    assert!(extracted == env.tree(), "the trees differ");
    for path in extracted.keys() {
        // To the second: tar's times are whole seconds.
        let mtime = |root: &std::path::Path| {
            let modified = std::fs::metadata(root.join(path))
                .unwrap()
                .modified()
                .unwrap();
            modified
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_secs()
        };
        assert_eq!(mtime(out.path()), mtime(env.dir()), "{path}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reader_that_closes_the_pipe_ends_the_run_quietly() {
    let big = bytes(16 << 20, 3);
    let objects = BTreeMap::from([("big.bin", big.clone())]);
    let env = env_with(&objects).await;
    let mut cmd = env.command();
    cmd.args(["cat", "s3://bkt/big.bin"]).args(SMALL_PARTS);
    // A window of 1 MiB: most parts are never asked for.
    cmd.env("S3FETCH_CAT_MEMORY_MIB", "1");
    let mut shell = common::wrapper("bash", &cmd);
    shell.arg("-c").arg(
        "\"$0\" \"$@\" | head -c 10; status=(\"${PIPESTATUS[@]}\"); echo; echo \"exit ${status[0]}\"",
    );
    shell.arg(cmd.get_program()).args(cmd.get_args());
    shell.stderr(Stdio::piped());
    let run = common::run(shell).await;
    run.assert_success();
    let out = run.stdout_bytes();
    assert_eq!(&out[..10], &big[..10]);
    assert!(run.stdout().ends_with("\nexit 0\n"), "{:?}", run.stdout());
    assert_eq!(run.stderr(), "", "not quiet");
    let gets = env.server().request_counts().get;
    assert!(gets < 100, "{gets} of 256 parts were asked for");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_corrupt_object_fails_naming_its_key() {
    let objects = dataset();
    let env = env_with(&objects).await;
    env.server()
        .set_faults(FaultPlan::parse("corrupt=1@key=data/big.bin,seed=1").unwrap());
    let mut args = vec!["cat", "s3://bkt/data/"];
    args.extend(SMALL_PARTS);
    let run = env.run(&args).await;
    run.assert_exit(1).assert_stderr_contains("data/big.bin");
    assert!(
        run.stderr().contains("checksum mismatch"),
        "{}",
        run.stderr()
    );
    // What came before it is whole.
    assert!(run.stdout_bytes().starts_with(b"first\n"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_small_object_that_fails_is_left_out_and_named() {
    let objects = dataset();
    let env = env_with(&objects).await;
    env.server().deny_key("bkt", "data/a.txt");
    let run = env.run(&["cat", "s3://bkt/data/", "--format", "raw"]).await;
    run.assert_exit(1).assert_stderr_contains("data/a.txt");
    let expected: Vec<u8> = [
        "data/big.bin",
        "data/empty",
        "data/sub/deep/c.txt",
        "data/sub/mid.bin",
    ]
    .iter()
    .flat_map(|k| objects[k].clone())
    .collect();
    assert!(run.stdout_bytes() == expected.as_slice(), "bytes differ");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nothing_selected_writes_nothing_and_says_so() {
    let env = env_with(&dataset()).await;
    let run = env
        .run(&["cat", "s3://bkt/data/", "--regex", "nothing"])
        .await;
    run.assert_success()
        .assert_stderr_contains("no objects under s3://bkt/data/ matched");
    assert!(run.stdout_bytes().is_empty());
}

#[test]
fn bad_input_is_a_usage_error() {
    let home = tempfile::tempdir().unwrap();
    let mut cmd = common::s3fetch(home.path());
    cmd.args(["cat", "s3://bkt/x", "--format", "zip"]);
    common::run_blocking(cmd).assert_exit(2);
    let mut cmd: Command = common::s3fetch(home.path());
    cmd.args(["cat", "not-a-uri"]);
    common::run_blocking(cmd).assert_exit(2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_from_a_file_come_sorted_each_sized_by_its_head() {
    let objects = dataset();
    let env = env_with(&objects).await;
    let keys = env.dir().join("keys.txt");
    std::fs::write(&keys, "data/sub/mid.bin\ndata/a.txt\ndata/big.bin\n").unwrap();
    let mut args = vec![
        "cat",
        "s3://bkt/data/",
        "--keys-from",
        keys.to_str().unwrap(),
    ];
    args.extend(SMALL_PARTS);
    let run = env.run(&args).await;
    run.assert_success();
    let expected: Vec<u8> = ["data/a.txt", "data/big.bin", "data/sub/mid.bin"]
        .iter()
        .flat_map(|k| objects[k].clone())
        .collect();
    assert!(run.stdout_bytes() == expected.as_slice(), "bytes differ");
    assert_eq!(env.server().request_counts().list, 0);
}
