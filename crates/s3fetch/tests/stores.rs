//! The engine against stores that behave as real ones do and the plain test server does not:
//! buckets in other regions, requester pays, listings out of order or without `StartAfter`,
//! S3 Express directory buckets (each emulated by the test kit, see its "Quirks").

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use s3fetch::{DownloadOptions, Error, PlanOptions, RequestPayer, S3Uri, Shard, ShardBy, Summary};
use s3fetch_testkit::fixtures::{assert_no_temp_files, tree};
use s3fetch_testkit::{ServerOptions, TestServer};

async fn server(options: ServerOptions) -> TestServer {
    TestServer::start_with(options)
        .await
        .expect("the server starts")
}

/// Objects of a small dataset: folders, a file beside a folder of its name, a large
/// object fetched in ranged parts.
fn dataset(server: &TestServer, bucket: &str) -> BTreeMap<String, Vec<u8>> {
    server.create_bucket(bucket);
    let mut objects = BTreeMap::new();
    for i in 0..30 {
        objects.insert(
            format!("data/{}/obj-{i:03}.bin", i % 3),
            vec![i as u8; 100 + i],
        );
    }
    objects.insert("data/a".into(), b"file a".to_vec());
    objects.insert("data/a/b".into(), b"under a".to_vec());
    objects.insert("data/a-b".into(), b"a dash b".to_vec());
    objects.insert(
        "data/large.bin".into(),
        (0..3_000_000u32).map(|i| (i % 251) as u8).collect(),
    );
    for (key, body) in &objects {
        server.put_object(bucket, key, body);
    }
    objects
}

/// What a download of `objects` under `data/` leaves: every file, the file `a` winning
/// over the folder `a/`.
fn expected_files(objects: &BTreeMap<String, Vec<u8>>) -> BTreeMap<String, Vec<u8>> {
    objects
        .iter()
        .filter(|(key, _)| key.as_str() != "data/a/b")
        .map(|(key, body)| (key["data/".len()..].to_owned(), body.clone()))
        .collect()
}

fn options(server: &TestServer, uri: &str, dir: &Path) -> DownloadOptions {
    DownloadOptions::new(S3Uri::parse(uri).unwrap())
        .download_dir(dir)
        .multipart_threshold(1024 * 1024)
        .part_size(1024 * 1024)
        .client_options(common::client_options(server))
}

async fn run(options: DownloadOptions) -> Result<Summary, Error> {
    tokio::time::timeout(Duration::from_secs(60), s3fetch::download(options))
        .await
        .expect("the run finishes")
}

/// Checks two trees hold the same files with the same bytes, naming the ones that differ.
#[track_caller]
fn assert_same(got: &BTreeMap<String, Vec<u8>>, expected: &BTreeMap<String, Vec<u8>>) {
    let differ: Vec<&String> = got
        .keys()
        .chain(expected.keys())
        .filter(|key| got.get(*key) != expected.get(*key))
        .collect();
    assert!(differ.is_empty(), "files that differ: {differ:?}");
}

/// Checks a run of `dataset` downloaded every object (the one conflict aside).
#[track_caller]
fn assert_downloaded(summary: &Summary, dir: &Path, objects: &BTreeMap<String, Vec<u8>>) {
    assert_same(&tree(dir), &expected_files(objects));
    assert_eq!(summary.objects_downloaded as usize, objects.len() - 1);
    let failed: Vec<&str> = summary.failures.iter().map(|f| f.key.as_str()).collect();
    assert_eq!(failed, ["data/a/b"], "the file wins over the folder");
    assert_no_temp_files(dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bucket_in_another_region_is_followed_there_with_two_requests() {
    for region in ["us-west-2", "eu-central-1"] {
        let server = server(ServerOptions {
            bucket_regions: vec![("west".into(), region.into())],
            ..ServerOptions::default()
        })
        .await;
        let objects = dataset(&server, "west");
        // The client signs for us-east-1 (the default): S3 answers 301 PermanentRedirect
        // signed so, and 400 AuthorizationHeaderMalformed for another wrong region; both
        // name the bucket's.
        for signed_for in ["us-east-1", "ap-south-1"] {
            let dir = tempfile::tempdir().unwrap();
            let mut options = options(&server, "s3://west/data/", dir.path());
            options.client_options.region = Some(signed_for.into());
            server.reset_request_counts();
            let summary = run(options).await.expect("the run follows the bucket");
            assert_downloaded(&summary, dir.path(), &objects);
            let counts = server.request_counts();
            // One refused listing request, then every request in the bucket's region: as
            // many GETs as a run in the right region.
            assert_eq!(
                counts.of("ListObjectsV2"),
                2,
                "{region} signed for {signed_for}"
            );
            assert_eq!(counts.get, 32 + 3, "3 MB in 1 MiB parts, one GET each else");
        }
        // A client of the caller's (every GET through the SDK, not the lean path).
        let dir = tempfile::tempdir().unwrap();
        let client = s3fetch::aws_sdk_s3::Client::from_conf(
            s3fetch::aws_sdk_s3::Config::builder()
                .behavior_version_latest()
                .endpoint_url(server.endpoint())
                .region(s3fetch::aws_sdk_s3::config::Region::new("us-east-1"))
                .credentials_provider(s3fetch::aws_sdk_s3::config::Credentials::new(
                    server.access_key(),
                    server.secret_key(),
                    None,
                    None,
                    "test",
                ))
                .force_path_style(true)
                .build(),
        );
        server.reset_request_counts();
        let summary = run(options(&server, "s3://west/data/", dir.path()).client(client))
            .await
            .expect("the caller's client follows the bucket");
        assert_downloaded(&summary, dir.path(), &objects);
        assert_eq!(server.request_counts().of("ListObjectsV2"), 2);
        // Signed for the bucket's own region: no request more than it takes.
        let dir = tempfile::tempdir().unwrap();
        let mut options = options(&server, "s3://west/data/", dir.path());
        options.client_options.region = Some(region.into());
        server.reset_request_counts();
        run(options).await.unwrap();
        assert_eq!(server.request_counts().of("ListObjectsV2"), 1);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn heads_inventories_and_plans_follow_the_bucket_too() {
    let server = server(ServerOptions {
        bucket_regions: vec![
            ("west".into(), "us-west-2".into()),
            ("reports".into(), "eu-west-1".into()),
        ],
        ..ServerOptions::default()
    })
    .await;
    let objects = dataset(&server, "west");
    // Keys from a file: each a HEAD (S3 answers a HEAD in the wrong region with a bare 301
    // and the region in a header).
    let dir = tempfile::tempdir().unwrap();
    let keys = dir.path().join("keys.txt");
    std::fs::write(&keys, "data/0/obj-000.bin\ndata/large.bin\n").unwrap();
    let out = dir.path().join("out");
    std::fs::create_dir(&out).unwrap();
    server.reset_request_counts();
    let summary = run(options(&server, "s3://west/data/", &out).keys_from(&keys))
        .await
        .unwrap();
    assert_eq!(summary.objects_downloaded, 2);
    assert!(tree(&out)["large.bin"] == objects["data/large.bin"]);
    let counts = server.request_counts();
    assert!(
        counts.head <= 3 + 2,
        "at most one refused HEAD each: {counts:?}"
    );
    // An inventory whose manifest and data files live in a third region.
    server.create_bucket("reports");
    let manifest = server.put_inventory("west", "reports", "inv/west", 10);
    let out = tempfile::tempdir().unwrap();
    let summary = run(options(&server, "s3://west/data/", out.path())
        .inventory(S3Uri::parse(&format!("s3://reports/{manifest}")).unwrap()))
    .await
    .unwrap();
    assert_eq!(summary.objects_downloaded as usize, objects.len() - 1);
    assert_same(&tree(out.path()), &expected_files(&objects));
    // A plan of range shards.
    let mut plan = PlanOptions::new(S3Uri::parse("s3://west/data/").unwrap(), 2);
    plan.client_options = common::client_options(&server);
    let plan = plan.run().await.expect("the plan follows the bucket");
    assert_eq!(plan.shards(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_requester_pays_bucket_needs_the_payer_on_every_request() {
    let server = server(ServerOptions {
        requester_pays: vec!["paid".into()],
        ..ServerOptions::default()
    })
    .await;
    let objects = dataset(&server, "paid");
    let dir = tempfile::tempdir().unwrap();
    let error = run(options(&server, "s3://paid/data/", dir.path()))
        .await
        .expect_err("403 without it");
    assert_eq!(error.code(), Some("AccessDenied"));
    let summary =
        run(options(&server, "s3://paid/data/", dir.path()).request_payer(RequestPayer::Requester))
            .await
            .unwrap();
    assert_downloaded(&summary, dir.path(), &objects);
    // HEADs (keys from a file) too.
    let keys = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(keys.path(), "data/a-b\n").unwrap();
    let out = tempfile::tempdir().unwrap();
    let summary = run(options(&server, "s3://paid/data/", out.path())
        .keys_from(keys.path())
        .request_payer(RequestPayer::Requester))
    .await
    .unwrap();
    assert_eq!(summary.objects_downloaded, 1);
}

/// Downloads `dataset` from a bucket of a store that lists differently, with every
/// listing concurrency: exact files, one GET per object.
async fn loses_nothing(server: &TestServer, bucket: &str) {
    let objects = dataset(server, bucket);
    for list_concurrency in [1, 4, 64] {
        let dir = tempfile::tempdir().unwrap();
        server.reset_request_counts();
        let summary = run(options(server, &format!("s3://{bucket}/data/"), dir.path())
            .list_concurrency(list_concurrency))
        .await
        .expect("the listing goes on folder by folder");
        assert_downloaded(&summary, dir.path(), &objects);
        assert_eq!(server.request_counts().get, 32 + 3, "each object once");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stores_that_list_out_of_order_or_without_start_after_lose_nothing() {
    let server = server(ServerOptions {
        unordered: vec!["unordered".into()],
        ignore_start_after: vec!["ignoring".into()],
        refuse_start_after: vec!["refusing".into()],
        ..ServerOptions::default()
    })
    .await;
    for bucket in ["unordered", "ignoring", "refusing"] {
        loses_nothing(&server, bucket).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_that_ignores_start_after_with_many_pages_is_listed_in_seconds() {
    let server = server(ServerOptions {
        ignore_start_after: vec!["ignoring".into()],
        ..ServerOptions::default()
    })
    .await;
    server.create_bucket("ignoring");
    let mut expected = BTreeMap::new();
    for i in 0..5000 {
        let key = format!("flat/k{i:05}.txt");
        server.put_object("ignoring", &key, format!("{i}"));
        expected.insert(key["flat/".len()..].to_owned(), format!("{i}").into_bytes());
    }
    let dir = tempfile::tempdir().unwrap();
    server.reset_request_counts();
    let summary = run(options(&server, "s3://ignoring/flat/", dir.path()))
        .await
        .unwrap();
    assert_eq!(summary.objects_downloaded, 5000);
    assert_same(&tree(dir.path()), &expected);
    assert_eq!(server.request_counts().get, 5000);
    assert!(
        server.request_counts().list <= 20,
        "{:?}",
        server.request_counts()
    );
}

const EXPRESS: &str = "data--usw2-az1--x-s3";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_directory_bucket_is_downloaded_through_sessions_folder_by_folder() {
    let server = server(ServerOptions {
        directory_buckets: vec![EXPRESS.into()],
        // S3 Express lists the folder of an upload in progress, which holds no object.
        directory_pending_uploads: vec![(EXPRESS.into(), "data/pending/".into())],
        ..ServerOptions::default()
    })
    .await;
    let objects = dataset(&server, EXPRESS);
    for list_concurrency in [1, 64] {
        let dir = tempfile::tempdir().unwrap();
        server.reset_request_counts();
        let summary = run(
            options(&server, &format!("s3://{EXPRESS}/data/"), dir.path())
                .list_concurrency(list_concurrency),
        )
        .await
        .expect("a directory bucket downloads");
        // ETags there are not MD5s: the large object is checked by its CRC, and nothing
        // fails for a wrong "MD5".
        assert_downloaded(&summary, dir.path(), &objects);
        let counts = server.request_counts();
        assert!(counts.of("CreateSession") >= 1, "{counts:?}");
        assert_eq!(counts.get, 32 + 3);
        // One HEAD: the large object's checksum (a ranged GET carries none); the folder rule
        // needs none there.
        assert_eq!(counts.head, 1, "{counts:?}");
    }
    // A prefix that ends inside a name: listed from its folder.
    let dir = tempfile::tempdir().unwrap();
    let summary = run(options(
        &server,
        &format!("s3://{EXPRESS}/data/a"),
        dir.path(),
    ))
    .await
    .unwrap();
    let files: Vec<String> = tree(dir.path()).into_keys().collect();
    assert_eq!(files, ["a", "a-b"]);
    assert_eq!(summary.failures.len(), 1, "a/b: the file a wins");
    // Hash shards work; their union is everything (`a` and `a/b` may go to different
    // shards, which then each download theirs).
    let mut union = BTreeMap::new();
    for index in 0..3 {
        let dir = tempfile::tempdir().unwrap();
        run(
            options(&server, &format!("s3://{EXPRESS}/data/"), dir.path())
                .shard(Shard { index, count: 3 }),
        )
        .await
        .unwrap();
        union.extend(tree(dir.path()));
    }
    let everything = objects
        .iter()
        .map(|(key, body)| (key["data/".len()..].to_owned(), body.clone()))
        .collect();
    assert_same(&union, &everything);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_cannot_work_on_a_directory_bucket_is_refused_with_the_reason() {
    let server = TestServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let uri = format!("s3://{EXPRESS}/data/");
    let refused = |result: Result<Summary, Error>, option: &str| match result {
        Err(Error::InvalidOption { option: o, reason }) => {
            assert_eq!(o, option);
            assert!(reason.contains(EXPRESS), "{reason}");
        }
        other => panic!("{option}: {other:?}"),
    };
    refused(
        run(options(&server, &uri, dir.path()).delimiter("-")).await,
        "delimiter",
    );
    refused(
        run(options(&server, &uri, dir.path())
            .shard(Shard { index: 0, count: 2 })
            .shard_by(ShardBy::Range))
        .await,
        "shard_by",
    );
    refused(
        run(options(&server, &uri, dir.path()).request_payer(RequestPayer::Requester)).await,
        "request_payer",
    );
    let plan = PlanOptions::new(S3Uri::parse(&uri).unwrap(), 2).run().await;
    assert!(
        matches!(
            plan,
            Err(Error::InvalidOption {
                option: "shards",
                ..
            })
        ),
        "{plan:?}"
    );
    assert_eq!(
        server.request_counts().http_requests,
        0,
        "refused before any request"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_directory_buckets_etags_are_never_taken_for_md5s() {
    // No CRCs (`checksums: false`): an ETag of 32 hex digits is all the store says, and in
    // a directory bucket it is no MD5 of the bytes.
    let server = server(ServerOptions {
        directory_buckets: vec![EXPRESS.into()],
        checksums: false,
        ..ServerOptions::default()
    })
    .await;
    let objects = dataset(&server, EXPRESS);
    let dir = tempfile::tempdir().unwrap();
    let summary = run(options(
        &server,
        &format!("s3://{EXPRESS}/data/"),
        dir.path(),
    ))
    .await
    .unwrap();
    assert_downloaded(&summary, dir.path(), &objects);
    assert_eq!(summary.verified, 0, "nothing to verify against");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_folder_name_asked_of_the_server_takes_the_folder_only_if_the_filters_want_it() {
    // Out of order, the listing cannot tell whether `p/a` is a wanted key when `p/a/b`
    // comes: it asks (a HEAD). `p/a` is too small for `--min-size`: not wanted, so it takes
    // no folder, as on an ordered store.
    let server = server(ServerOptions {
        unordered: vec!["odd".into()],
        ..ServerOptions::default()
    })
    .await;
    server.create_bucket("odd");
    server.put_object("odd", "p/a", b"tiny");
    server.put_object("odd", "p/a/b", vec![b'b'; 100]);
    for i in 0..20 {
        server.put_object("odd", &format!("p/k{i:02}"), vec![b'k'; 100]);
    }
    let dir = tempfile::tempdir().unwrap();
    let summary = run(options(&server, "s3://odd/p/", dir.path()).min_size(50))
        .await
        .unwrap();
    assert!(summary.failures.is_empty(), "{:?}", summary.failures);
    assert_eq!(summary.objects_downloaded, 21);
    assert!(dir.path().join("a/b").is_file());
}
