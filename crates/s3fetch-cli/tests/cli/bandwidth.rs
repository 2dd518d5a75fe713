//! `--max-bandwidth`: all bodies together keep to the rate (±10 % over the run), through the
//! lean GET path and the SDK's, whole objects and ranged parts alike; bad rates are usage
//! errors that say what a rate looks like.

use std::time::Instant;

use crate::common::{run, TestEnv};

const MIB: usize = 1 << 20;

/// A bucket of `total_mib` MiB: objects of 8 MiB (one GET each) and the rest as one large
/// object (ranged parts); bytes that do not compress, so nothing is smaller on the wire.
async fn with_objects(total_mib: usize) -> TestEnv {
    let env = TestEnv::start().await;
    env.server().create_bucket("bkt");
    let mut seed = 0x9E37_79B9_7F4A_7C15_u64;
    let mut bytes = |n: usize| -> Vec<u8> {
        (0..n)
            .map(|_| {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                seed as u8
            })
            .collect()
    };
    let large = total_mib - 3 * 8;
    for i in 0..3 {
        env.server()
            .put_object("bkt", &format!("data/{i}.bin"), bytes(8 * MIB));
    }
    env.server()
        .put_object("bkt", "data/large.bin", bytes(large * MIB));
    env
}

/// Downloads `total_mib` MiB at `rate_mib` MiB/s (the GET path as `get` says) and checks the
/// rate the whole run kept, from the command's start to its end.
async fn assert_rate_kept(total_mib: usize, rate_mib: usize, get: &str) {
    let env = with_objects(total_mib).await;
    let mut cmd = env.command();
    cmd.env("S3FETCH_GET", get)
        .args(["s3://bkt/data/", "-q", "--max-bandwidth"])
        .arg(format!("{rate_mib}MiB/s"))
        .arg("--download-dir")
        .arg(env.dir());
    let started = Instant::now();
    run(cmd).await.assert_success();
    let elapsed = started.elapsed().as_secs_f64();
    let written: u64 = env
        .files()
        .iter()
        .map(|f| std::fs::metadata(env.dir().join(f)).unwrap().len())
        .sum();
    assert_eq!(written, (total_mib * MIB) as u64);
    let rate = written as f64 / elapsed / MIB as f64;
    eprintln!("{get}: {rate:.3} MiB/s over {elapsed:.2} s (cap {rate_mib} MiB/s)");
    assert!(
        (rate / rate_mib as f64 - 1.0).abs() <= 0.10,
        "{get}: {rate:.2} MiB/s over {elapsed:.1} s, not {rate_mib} MiB/s ±10 %"
    );
}

/// 50 MiB at 5 MiB/s: a 10-second window.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_bandwidth_holds_the_rate_of_lean_gets() {
    assert_rate_kept(50, 5, "lean").await;
}

/// 32 MiB at 8 MiB/s through the SDK's GETs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_bandwidth_holds_the_rate_of_the_sdks_gets() {
    assert_rate_kept(32, 8, "sdk").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_rate_is_a_usage_error_that_shows_rates() {
    let env = TestEnv::start().await;
    for (rate, says) in [
        ("fast", "examples: 100MB/s"),
        ("0", "out of range"),
        ("100Mb/s", "say B for bytes or bit for bits"),
    ] {
        env.run(&["s3://bkt/data/", "--max-bandwidth", rate])
            .await
            .assert_exit(2)
            .assert_stderr_contains("--max-bandwidth")
            .assert_stderr_contains(says);
    }
}
