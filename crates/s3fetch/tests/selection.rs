//! Choosing what to fetch: include/exclude globs (in order, with the regex), size and time
//! limits from the listing, and the narrowed listing — against the test kit's S3 server
//! over HTTP, with request counts taken at the server.

mod common;

use std::collections::BTreeSet;
use std::path::Path;
use std::time::{Duration, SystemTime};

use s3fetch::{DownloadOptions, Error, S3Uri, Summary};
use s3fetch_testkit::fixtures::files;
use s3fetch_testkit::TestServer;

const HOUR: Duration = Duration::from_secs(3600);

/// Bucket `bkt` under `d/`: `a.txt` (5 bytes, 1 h old), `b.csv` (2 KiB, 48 h old),
/// `logs/2024-01.json` (3 bytes, 10 h old), `logs/2023-12.json` (3 bytes, 1,000 h old),
/// `tmp/x.txt` (1 byte, now), and 1,500 keys under `d/other/` (two pages of a listing).
async fn server() -> TestServer {
    let server = TestServer::start().await;
    server.create_bucket("bkt");
    let now = SystemTime::now();
    server.put_object_at("bkt", "d/a.txt", "alpha", now - HOUR);
    server.put_object_at("bkt", "d/b.csv", vec![b'b'; 2048], now - 48 * HOUR);
    server.put_object_at("bkt", "d/logs/2024-01.json", "{1}", now - 10 * HOUR);
    server.put_object_at("bkt", "d/logs/2023-12.json", "{2}", now - 1000 * HOUR);
    server.put_object("bkt", "d/tmp/x.txt", "x");
    for i in 0..1500 {
        server.put_object("bkt", &format!("d/other/{i:04}"), "o");
    }
    server
}

fn options(server: &TestServer, dir: &Path) -> DownloadOptions {
    DownloadOptions::new(S3Uri::parse("s3://bkt/d/").unwrap())
        .download_dir(dir)
        .client_options(common::client_options(server))
}

/// The files a run with `options` writes (into a fresh directory), and its summary.
async fn selected(
    server: &TestServer,
    options: impl FnOnce(DownloadOptions) -> DownloadOptions,
) -> (BTreeSet<String>, Summary) {
    let dir = tempfile::tempdir().unwrap();
    let run = s3fetch::download(options(self::options(server, dir.path())));
    let summary = tokio::time::timeout(Duration::from_secs(60), run)
        .await
        .expect("the run finishes")
        .expect("the run starts");
    let got = files(dir.path())
        .into_iter()
        .filter(|f| !f.starts_with("other/"))
        .collect();
    (got, summary)
}

fn set<const N: usize>(items: [&str; N]) -> BTreeSet<String> {
    items.iter().map(|s| s.to_string()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn include_and_exclude_apply_in_order_the_last_match_deciding() {
    let server = server().await;
    // aws cli's idiom: everything out, then some back in.
    let (got, summary) = selected(&server, |o| o.exclude("**").include("*.txt")).await;
    assert_eq!(got, set(["a.txt"]), "`*` stays within one segment");
    assert_eq!(summary.objects_found, 1);
    // The reverse order: the exclude comes last and wins.
    let (got, _) = selected(&server, |o| o.include("*.txt").exclude("**")).await;
    assert_eq!(got, set([]));
    // A first include leaves out what no rule matches; `**` crosses segments.
    let (got, _) = selected(&server, |o| o.include("**/*.txt").exclude("tmp/**")).await;
    assert_eq!(got, set(["a.txt"]));
    let (got, _) = selected(&server, |o| o.include("**/*.txt")).await;
    assert_eq!(got, set(["a.txt", "tmp/x.txt"]));
    // Excludes alone keep the rest.
    let (got, summary) = selected(&server, |o| o.exclude("other/**").exclude("*.csv")).await;
    assert_eq!(
        got,
        set([
            "a.txt",
            "logs/2023-12.json",
            "logs/2024-01.json",
            "tmp/x.txt"
        ])
    );
    assert_eq!(summary.objects_found, 4);
    // With the regex: both must pass.
    let (got, _) = selected(&server, |o| o.include("logs/*").regex("2024")).await;
    assert_eq!(got, set(["logs/2024-01.json"]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_include_s_literal_head_narrows_the_listing_to_one_request() {
    let server = server().await;
    server.reset_request_counts();
    let (got, _) = selected(&server, |o| o.include("logs/2024-*")).await;
    assert_eq!(got, set(["logs/2024-01.json"]));
    assert_eq!(
        server.request_counts().list,
        1,
        "only d/logs/2024- is listed, not the 1,500 keys beside it"
    );
    server.reset_request_counts();
    let (got, _) = selected(&server, |o| o.include("**/2024-*")).await;
    assert_eq!(got, set(["logs/2024-01.json"]));
    assert!(
        server.request_counts().list > 1,
        "no literal head: all listed"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sizes_and_times_come_from_the_listing_without_extra_requests() {
    let server = server().await;
    let now = SystemTime::now();
    server.reset_request_counts();
    let (got, _) = selected(&server, |o| o.exclude("other/**").min_size(4)).await;
    assert_eq!(got, set(["a.txt", "b.csv"]));
    let counts = server.request_counts();
    assert_eq!(
        (counts.head, counts.get),
        (0, 2),
        "a GET per selected object, no HEAD"
    );
    let (got, _) = selected(&server, |o| o.exclude("other/**").max_size(3)).await;
    assert_eq!(
        got,
        set(["logs/2023-12.json", "logs/2024-01.json", "tmp/x.txt"])
    );
    let (got, _) = selected(&server, |o| o.min_size(3).max_size(5).exclude("other/**")).await;
    assert_eq!(
        got,
        set(["a.txt", "logs/2023-12.json", "logs/2024-01.json"])
    );

    let (got, _) = selected(&server, |o| {
        o.exclude("other/**").newer_than(now - 24 * HOUR)
    })
    .await;
    assert_eq!(got, set(["a.txt", "logs/2024-01.json", "tmp/x.txt"]));
    let (got, _) = selected(&server, |o| {
        o.older_than(now - 24 * HOUR).exclude("other/**")
    })
    .await;
    assert_eq!(got, set(["b.csv", "logs/2023-12.json"]));
    let (got, _) = selected(&server, |o| {
        o.newer_than(now - 100 * HOUR)
            .older_than(now - 5 * HOUR)
            .exclude("other/**")
    })
    .await;
    assert_eq!(got, set(["b.csv", "logs/2024-01.json"]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_from_applies_the_limits_after_each_head() {
    let server = server().await;
    let list = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(list.path(), "d/a.txt\nd/b.csv\nd/tmp/x.txt\n").unwrap();
    let keys = list.path().to_owned();
    server.reset_request_counts();
    let (got, summary) = selected(&server, |mut o| {
        o.keys_from = Some(keys);
        o.min_size(2).include("*")
    })
    .await;
    assert_eq!(
        got,
        set(["a.txt", "b.csv"]),
        "tmp/x.txt: the glob; x: 1 byte"
    );
    assert_eq!((summary.objects_found, summary.objects_downloaded), (2, 2));
    let counts = server.request_counts();
    assert_eq!((counts.list, counts.head, counts.get), (0, 2, 2));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_globs_and_limits_are_refused_before_any_request() {
    let server = server().await;
    server.reset_request_counts();
    let dir = tempfile::tempdir().unwrap();
    let check = |o: DownloadOptions| async move {
        let err = s3fetch::download(o).await.unwrap_err();
        match err {
            Error::InvalidOption { option, .. } => option,
            other => panic!("{other}"),
        }
    };
    let base = || options(&server, dir.path());
    assert_eq!(check(base().include("a").exclude("[z")).await, "exclude");
    assert_eq!(check(base().include("{a")).await, "include");
    assert_eq!(check(base().min_size(10).max_size(9)).await, "min_size");
    let now = SystemTime::now();
    assert_eq!(
        check(base().newer_than(now).older_than(now - HOUR)).await,
        "newer_than"
    );
    assert_eq!(server.request_counts().http_requests, 0);
}

/// Archived objects: skipped (reason `archived`, no request) unless restored; with
/// `include_archived` tried, and failing as S3 answers (`InvalidObjectState`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn archived_objects_are_skipped_unless_restored_or_included() {
    let server = server().await;
    server.archive_key("bkt", "d/a.txt", "GLACIER", false);
    server.archive_key("bkt", "d/b.csv", "DEEP_ARCHIVE", false);
    server.archive_key("bkt", "d/tmp/x.txt", "GLACIER", true);
    server.archive_key("bkt", "d/logs/2024-01.json", "GLACIER_IR", false);
    let only_ours = |o: DownloadOptions| o.exclude("other/**");
    server.reset_request_counts();
    let (got, summary) = selected(&server, only_ours).await;
    assert_eq!(
        got,
        set(["logs/2023-12.json", "logs/2024-01.json", "tmp/x.txt"]),
        "the restored one and instant retrieval download"
    );
    assert_eq!((summary.objects_skipped, summary.objects_archived), (2, 2));
    assert!(summary.failures.is_empty(), "{:?}", summary.failures);
    assert_eq!(
        server.request_counts().get,
        3,
        "no GET for an archived object"
    );

    let (got, summary) = selected(&server, |o| only_ours(o).include_archived(true)).await;
    assert_eq!(got.len(), 3);
    let mut failed: Vec<_> = summary
        .failures
        .iter()
        .map(|f| (f.key.as_str(), f.error.code()))
        .collect();
    failed.sort();
    assert_eq!(
        failed,
        [
            ("d/a.txt", Some("InvalidObjectState")),
            ("d/b.csv", Some("InvalidObjectState"))
        ]
    );

    // Without a listing (`keys_from`), the GET's answer tells: skipped, not failed.
    let list = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(list.path(), "d/a.txt\nd/tmp/x.txt\n").unwrap();
    let keys = list.path().to_owned();
    let (got, summary) = selected(&server, |mut o| {
        o.keys_from = Some(keys);
        o
    })
    .await;
    assert_eq!(got, set(["tmp/x.txt"]));
    assert_eq!((summary.objects_archived, summary.failures.len()), (1, 0));
}

/// N shards take the selection between them: each key once, the union all of it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shards_split_the_selection_exactly() {
    let server = server().await;
    let (all, _) = selected(&server, |o| o).await;
    let everything = |dir: &Path| files(dir).into_iter().collect::<BTreeSet<String>>();
    for count in [1, 3, 4] {
        let mut union = BTreeSet::new();
        let mut total = 0;
        for index in 0..count {
            let dir = tempfile::tempdir().unwrap();
            let shard = s3fetch::Shard::new(index, count).unwrap();
            let run = s3fetch::download(options(&server, dir.path()).shard(shard));
            let summary = run.await.unwrap();
            assert_eq!(summary.shard, Some(shard));
            let got = everything(dir.path());
            total += got.len();
            assert!(
                count == 1 || got.len() < 1505,
                "{index}/{count} took everything"
            );
            union.extend(got);
        }
        assert_eq!(total, 1505, "{count} shards: every key once");
        assert_eq!(union.len(), 1505);
        assert!(all.iter().all(|f| union.contains(f)));
    }
}

/// An S3 Inventory report instead of a listing: the same files as the listing, no LIST
/// request, sizes and times from the report (filters need no HEAD).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_inventory_run_equals_a_listing_run_without_a_list_request() {
    let server = server().await;
    server.create_bucket("inv");
    let manifest = server.put_inventory("bkt", "inv", "bkt/daily/2024-06-01", 400);
    let inventory = S3Uri::parse(&format!("s3://inv/{manifest}")).unwrap();
    let (listed, _) = selected(&server, |o| o).await;
    server.reset_request_counts();
    let (got, summary) = selected(&server, |o| o.inventory(inventory.clone())).await;
    assert_eq!(got, listed);
    assert_eq!(summary.objects_downloaded, 1505);
    let counts = server.request_counts();
    assert_eq!(counts.list, 0, "no LIST request");
    assert_eq!(counts.head, 0, "sizes from the report");
    assert_eq!(
        counts.get,
        1505 + 1 + 4,
        "the objects, the manifest, 4 data files"
    );

    // Filters and sync apply as to a listing.
    let (got, _) = selected(&server, |o| {
        o.inventory(inventory.clone())
            .min_size(4)
            .exclude("other/**")
    })
    .await;
    assert_eq!(got, set(["a.txt", "b.csv"]));
    let dir = tempfile::tempdir().unwrap();
    let sync = || {
        options(&server, dir.path())
            .inventory(inventory.clone())
            .sync(true)
    };
    s3fetch::download(sync()).await.unwrap();
    server.reset_request_counts();
    let summary = s3fetch::download(sync()).await.unwrap();
    assert_eq!(summary.objects_skipped, 1505);
    assert_eq!(server.request_counts().get, 5, "only the report");

    // A report of another bucket, a manifest that is not there, keys_from as well.
    server.create_bucket("two");
    server.put_object("two", "k", "v");
    let other = server.put_inventory("two", "inv", "two/daily", 10);
    let dir = tempfile::tempdir().unwrap();
    let run = |uri: &str| {
        let o = options(&server, dir.path()).inventory(S3Uri::parse(uri).unwrap());
        s3fetch::download(o)
    };
    let err = run(&format!("s3://inv/{other}")).await.unwrap_err();
    assert!(matches!(err, Error::Inventory { .. }), "{err}");
    assert!(err.to_string().contains("not \"bkt\""), "{err}");
    let err = run("s3://inv/missing/manifest.json").await.unwrap_err();
    assert_eq!(err.code(), Some("NoSuchKey"), "{err}");
    let err = run("s3://inv/").await.unwrap_err();
    assert!(
        matches!(
            err,
            Error::InvalidOption {
                option: "inventory",
                ..
            }
        ),
        "{err}"
    );
}

/// Range shards from a plan: each lists only its own keys (the shards' LIST requests add up
/// to about one listing's), the union is exact, and a plan from an inventory is exact with
/// no LIST request at all.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn range_shards_list_only_their_own_keys() {
    let server = TestServer::start().await;
    server.create_bucket("bkt");
    let mut keys = BTreeSet::new();
    for (folder, n) in [("a", 4000), ("b", 500), ("c", 3500)] {
        for i in 0..n {
            let key = format!("r/{folder}/{i:05}.bin");
            server.put_object("bkt", &key, "r");
            keys.insert(key);
        }
    }
    let uri = S3Uri::parse("s3://bkt/r/").unwrap();
    let run = |dir: &Path, options: DownloadOptions| {
        s3fetch::download(
            options
                .download_dir(dir)
                .client_options(common::client_options(&server)),
        )
    };
    let dir = tempfile::tempdir().unwrap();
    server.reset_request_counts();
    run(dir.path(), DownloadOptions::new(uri.clone()).dry_run(true))
        .await
        .unwrap();
    let unsharded = server.request_counts().list;

    let mut plan_options = s3fetch::PlanOptions::new(uri.clone(), 4);
    plan_options.client_options = common::client_options(&server);
    server.reset_request_counts();
    let plan = plan_options.clone().run().await.unwrap();
    assert_eq!(server.request_counts().list, plan.list_requests);
    assert!(plan.list_requests <= 16, "{plan:?}");
    assert_eq!(plan.shards(), 4);

    server.create_bucket("inv");
    let manifest = server.put_inventory("bkt", "inv", "bkt/daily", 3000);
    let inventory = S3Uri::parse(&format!("s3://inv/{manifest}")).unwrap();
    server.reset_request_counts();
    let exact = plan_options.inventory(inventory).run().await.unwrap();
    assert_eq!((server.request_counts().list, exact.list_requests), (0, 0));
    assert!(exact.exact);
    assert_eq!(exact.estimated_objects, vec![2000; 4]);

    for plan in [plan, exact] {
        server.reset_request_counts();
        let mut union = BTreeSet::new();
        let mut total = 0;
        for index in 0..4 {
            let dir = tempfile::tempdir().unwrap();
            let shard = s3fetch::Shard::new(index, 4).unwrap();
            let options = DownloadOptions::new(uri.clone())
                .shard(shard)
                .plan(plan.clone());
            let summary = run(dir.path(), options).await.unwrap();
            assert_eq!(summary.shard_range, Some(plan.range(index)));
            let got: BTreeSet<String> = files(dir.path())
                .into_iter()
                .map(|f| format!("r/{f}"))
                .collect();
            assert!(got.iter().all(|k| plan.range(index).contains(k)));
            total += got.len();
            union.extend(got);
        }
        assert_eq!((total, &union), (keys.len(), &keys), "every key once");
        let sharded = server.request_counts().list;
        println!(
            "{} plan: {} LIST; shards {sharded}, unsharded {unsharded}",
            plan.source, plan.list_requests
        );
        assert!(
            sharded <= unsharded + 2 * 4,
            "4 range shards sent {sharded} LIST requests, one listing {unsharded}"
        );
    }
}

/// A plan goes with a range shard of its own URI and N, and range shards need a plan.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn range_shard_options_are_checked() {
    let server = server().await;
    let dir = tempfile::tempdir().unwrap();
    let plan = s3fetch::Plan::from_json(
        r#"{"s3fetch_plan": 1, "uri": "s3://bkt/d/", "shards": 2, "splits": ["d/m"]}"#,
    )
    .unwrap();
    let shard = |k, n| s3fetch::Shard::new(k, n).unwrap();
    let cases: [(DownloadOptions, &str); 5] = [
        (
            options(&server, dir.path()).plan(plan.clone()),
            "needs a shard",
        ),
        (
            options(&server, dir.path())
                .shard(shard(0, 2))
                .shard_by(s3fetch::ShardBy::Range),
            "s3fetch plan",
        ),
        (
            options(&server, dir.path())
                .shard(shard(0, 3))
                .plan(plan.clone()),
            "has 2 shards",
        ),
        (
            options(&server, dir.path())
                .shard(shard(0, 2))
                .shard_by(s3fetch::ShardBy::Hash)
                .plan(plan.clone()),
            "by hash",
        ),
        (
            DownloadOptions::new(S3Uri::parse("s3://bkt/e/").unwrap())
                .download_dir(dir.path())
                .shard(shard(0, 2))
                .plan(plan),
            "was made for s3://bkt/d/",
        ),
    ];
    for (options, says) in cases {
        let error = s3fetch::download(options).await.unwrap_err();
        assert!(matches!(error, Error::InvalidOption { .. }), "{error:?}");
        assert!(error.to_string().contains(says), "{error}");
    }
}
