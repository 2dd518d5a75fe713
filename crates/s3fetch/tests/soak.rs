//! Soak: many objects with every fault kind mixed in, through the engine against the test
//! kit's server. No object may be lost (missing without a reported reason) or corrupt (on disk
//! with the wrong bytes). The short variants run in CI; the full ones, whose figures are in
//! RELIABILITY.md, with `cargo test --release -p s3fetch --test soak -- --ignored --nocapture`.

use std::collections::BTreeMap;
use std::time::Duration;

use s3fetch::aws_sdk_s3::config::{Credentials, Region};
use s3fetch::aws_sdk_s3::{self, Client};
use s3fetch::{DownloadOptions, RetryPolicy, S3Uri};
use s3fetch_testkit::fixtures::temporary_files;
use s3fetch_testkit::{FaultPlan, TestServer};

/// 1 % of requests (per attempt) for each transient kind, 1 % of keys for good for the
/// permanent ones.
const FAULTS: &str = "slow_down=0.01,internal_error=0.01,reset_before_head=0.01,\
    cut_body_after=0.01:2000,stall_body=0.01:3s:1000,corrupt=0.01,list_slow_down=0.01,\
    etag_change=0.01,not_found=0.01@sticky,forbidden=0.01@sticky,seed=42";

fn body(seed: usize, len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| {
            ((i as u64)
                .wrapping_mul(0x9E37_79B9_7F4A_7C15)
                .wrapping_add(seed as u64)
                >> 29) as u8
        })
        .collect()
}

struct Soak {
    objects: usize,
    /// Object sizes cycle through these.
    sizes: &'static [usize],
    part_size: u64,
}

async fn soak(name: &str, soak: Soak) {
    let server = TestServer::start().await;
    server.create_bucket("bkt");
    let objects: BTreeMap<String, Vec<u8>> = (0..soak.objects)
        .map(|i| {
            (
                format!("soak/{i:06}"),
                body(i, soak.sizes[i % soak.sizes.len()]),
            )
        })
        .collect();
    server
        .store()
        .put_objects(
            "bkt",
            objects.iter().map(|(k, v)| (k.as_str(), v.as_slice())),
        )
        .unwrap();
    server.set_faults(FaultPlan::parse(FAULTS).unwrap());
    let dir = tempfile::tempdir().unwrap();
    let client = Client::from_conf(
        aws_sdk_s3::Config::builder()
            .behavior_version_latest()
            .endpoint_url(server.endpoint())
            .region(Region::new("us-east-1"))
            .credentials_provider(Credentials::new(
                server.access_key(),
                server.secret_key(),
                None,
                None,
                "t",
            ))
            .force_path_style(true)
            .build(),
    );
    let mut options = DownloadOptions::new(S3Uri::parse("s3://bkt/soak/").unwrap())
        .download_dir(dir.path())
        .client(client)
        .multipart_threshold(soak.part_size)
        .part_size(soak.part_size)
        .concurrent_downloads(64);
    options.retry = RetryPolicy {
        retries: 8,
        base_delay: Duration::from_millis(20),
        idle_timeout: Duration::from_secs(1),
        ..RetryPolicy::default()
    };
    let summary = tokio::time::timeout(Duration::from_secs(600), s3fetch::download(options))
        .await
        .expect("the soak finishes")
        .expect("the listing survives its faults");

    let reported: BTreeMap<&str, String> = summary
        .failures
        .iter()
        .map(|f| (f.key.as_str(), f.error.code().unwrap_or("other").to_owned()))
        .collect();
    let (mut lost, mut corrupt, mut exact) = (0, 0, 0);
    for (key, expected) in &objects {
        let path = dir.path().join(key.strip_prefix("soak/").unwrap());
        match std::fs::read(&path) {
            Ok(bytes) if &bytes == expected => exact += 1,
            Ok(_) => corrupt += 1,
            Err(_) if reported.contains_key(key.as_str()) => {}
            Err(_) => lost += 1,
        }
    }
    let temps = temporary_files(dir.path()).len();
    let mut by_reason: BTreeMap<&str, usize> = BTreeMap::new();
    for reason in reported.values() {
        *by_reason.entry(reason).or_default() += 1;
    }
    let bytes: usize = objects.values().map(Vec::len).sum();
    println!(
        "\n## soak `{name}`: {} objects, {:.1} MiB",
        objects.len(),
        bytes as f64 / 1048576.0
    );
    println!("| figure | value |\n|---|---|");
    println!(
        "| HTTP requests | {} |",
        server.request_counts().http_requests
    );
    for (kind, n) in server.fault_counts() {
        println!("| faults injected: {kind} | {n} |");
    }
    println!("| retries | {} |", summary.retries);
    println!("| resumed downloads | {} |", summary.resumes);
    println!("| throttled (SlowDown seen) | {} |", summary.throttled);
    println!("| checksums verified | {} |", summary.verified);
    println!("| objects downloaded byte-exact | {exact} |");
    println!(
        "| objects reported failed | {} {by_reason:?} |",
        reported.len()
    );
    println!("| objects lost | {lost} |");
    println!("| objects corrupt | {corrupt} |");
    println!("| temporary files left | {temps} |");
    println!("| wall time | {:.1} s |", summary.elapsed.as_secs_f64());

    assert_eq!(lost, 0, "objects lost");
    assert_eq!(corrupt, 0, "objects corrupt");
    assert_eq!(temps, 0, "temporary files left");
    assert_eq!(exact + reported.len(), objects.len());
    // Only the faults that are permanent by design may fail an object.
    for reason in reported.values() {
        assert!(
            [
                "NoSuchKey",
                "NotFound",
                "AccessDenied",
                "PreconditionFailed"
            ]
            .contains(&reason.as_str()),
            "an object failed for a transient reason: {reason}"
        );
    }
    assert!(summary.retries + summary.resumes > 0);
    assert!(summary.verified > 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn soak_short() {
    soak(
        "short",
        Soak {
            objects: 800,
            sizes: &[700, 5_000, 40_000, 300_000],
            part_size: 64 * 1024,
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn soak_short_large_objects() {
    soak(
        "short-large",
        Soak {
            objects: 6,
            sizes: &[3 * 1024 * 1024 + 11],
            part_size: 256 * 1024,
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "minutes long: run with --release -- --ignored --nocapture"]
async fn soak_full() {
    soak(
        "10k",
        Soak {
            objects: 10_000,
            sizes: &[700, 5_000, 40_000, 300_000],
            part_size: 64 * 1024,
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "minutes long: run with --release -- --ignored --nocapture"]
async fn soak_full_large_objects() {
    soak(
        "large",
        Soak {
            objects: 16,
            sizes: &[24 * 1024 * 1024 + 5],
            part_size: 1024 * 1024,
        },
    )
    .await;
}
