//! `--max-memory`: a download and `cat` under a small cap give the right bytes; a cap below
//! 16 MiB or one part is a usage error that says the least it takes.

use crate::common::TestEnv;

const MIB: usize = 1 << 20;

fn bytes(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u32).wrapping_mul(2_654_435_761).to_le_bytes()[3] ^ seed)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cat_and_a_download_under_max_memory_give_the_bytes() {
    let env = TestEnv::start().await;
    env.server().create_bucket("bkt");
    let big = bytes(40 * MIB + 3, 1);
    env.server().put_object("bkt", "d/big.bin", &big);
    for i in 0..20u8 {
        env.server()
            .put_object("bkt", &format!("d/s/{i}"), bytes(100_000, i));
    }
    let parts = ["--part-size", "2MiB", "--multipart-threshold", "4MiB"];
    let mut args = vec!["cat", "s3://bkt/d/big.bin", "--max-memory", "16MiB"];
    args.extend(parts);
    let run = env.run(&args).await;
    run.assert_success();
    assert!(run.stdout_bytes() == big.as_slice(), "bytes differ");

    let mut args = vec!["s3://bkt/d/", "-q", "--max-memory", "16MiB"];
    args.extend(parts);
    env.fetch(&args).await.assert_success();
    assert!(env.read("big.bin") == big, "big.bin differs");
    for i in 0..20u8 {
        assert!(env.read(&format!("s/{i}")) == bytes(100_000, i), "s/{i}");
    }
    env.assert_no_temp_files();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cap_too_small_is_a_usage_error_that_says_the_least() {
    let env = TestEnv::start().await;
    for (args, says) in [
        (
            vec!["s3://bkt/d/", "--max-memory", "8MiB"],
            "at least 16MiB",
        ),
        (
            vec![
                "cat",
                "s3://bkt/d/",
                "--max-memory",
                "32MiB",
                "--part-size",
                "64MiB",
            ],
            "at least 64MiB",
        ),
        (
            vec!["cat", "s3://bkt/d/", "--max-memory", "lots"],
            "not a size",
        ),
    ] {
        env.run(&args)
            .await
            .assert_exit(2)
            .assert_stderr_contains("max")
            .assert_stderr_contains(says);
    }
}
