//! The engine against the test kit's real S3 server over HTTP (SigV4, pagination, ranges).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use s3fetch::aws_sdk_s3::config::{Credentials, Region};
use s3fetch::aws_sdk_s3::{self, Client};
use s3fetch::{
    CancellationToken, DownloadOptions, DownloadResult, Downloader, Error, ObjectInfo, Reporter,
    S3Uri, Summary,
};
use s3fetch_testkit::fixtures::{assert_no_temp_files, files};
use s3fetch_testkit::TestServer;

fn client_for(server: &TestServer) -> Client {
    client_with_keys(server, server.access_key(), server.secret_key())
}

fn client_with_keys(server: &TestServer, access: &str, secret: &str) -> Client {
    let config = aws_sdk_s3::Config::builder()
        .behavior_version_latest()
        .endpoint_url(server.endpoint())
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new(access, secret, None, None, "test"))
        .force_path_style(true)
        .build();
    Client::from_conf(config)
}

fn options(server: &TestServer, uri: &str, dir: &Path) -> DownloadOptions {
    DownloadOptions::new(S3Uri::parse(uri).unwrap())
        .download_dir(dir)
        .client(client_for(server))
}

async fn run(options: DownloadOptions) -> Summary {
    tokio::time::timeout(Duration::from_secs(60), s3fetch::download(options))
        .await
        .expect("the run finishes")
        .expect("the run succeeds")
}

fn set<const N: usize>(items: [&str; N]) -> BTreeSet<String> {
    items.iter().map(|s| s.to_string()).collect()
}

/// Records the order of events.
#[derive(Default)]
struct Events {
    log: Mutex<Vec<String>>,
    finished: AtomicU64,
    listing_done: AtomicBool,
    first_finished_before_listing_done: AtomicBool,
    first_done: tokio::sync::Notify,
}

impl Reporter for Events {
    fn object_found(&self, object: &ObjectInfo) {
        self.log
            .lock()
            .unwrap()
            .push(format!("found {}", object.key));
    }
    fn listing_finished(&self, found: u64) {
        self.listing_done.store(true, Ordering::SeqCst);
        self.log.lock().unwrap().push(format!("listed {found}"));
    }
    fn download_started(&self, object: &ObjectInfo) {
        self.log
            .lock()
            .unwrap()
            .push(format!("started {}", object.key));
    }
    fn download_finished(&self, result: &DownloadResult) {
        if self.finished.fetch_add(1, Ordering::SeqCst) == 0 {
            self.first_finished_before_listing_done
                .store(!self.listing_done.load(Ordering::SeqCst), Ordering::SeqCst);
            self.first_done.notify_one();
        }
        self.log
            .lock()
            .unwrap()
            .push(format!("finished {} {}", result.key, result.is_success()));
    }
}

fn paged_bucket(server: &TestServer, bucket: &str, n: usize) {
    server.create_bucket(bucket);
    for i in 0..n {
        server.put_object(bucket, &format!("data/{i:05}.bin"), format!("object {i}"));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn downloads_start_before_the_listing_finishes() {
    let server = TestServer::start().await;
    paged_bucket(&server, "bkt", 2500); // three pages of 1000
    let gate = server.gate_list_pages(); // pages 2 and 3 wait until opened
    let dir = tempfile::tempdir().unwrap();
    let events = Arc::new(Events::default());
    let run = tokio::spawn(
        Downloader::new(options(&server, "s3://bkt/data/", dir.path()).regex(r"0\.bin$"))
            .reporter(events.clone())
            .run(),
    );
    // The first page's matches land while page 2 is still held at the gate.
    tokio::time::timeout(Duration::from_secs(20), events.first_done.notified())
        .await
        .expect("a download finished while the listing was held back");
    assert!(events
        .first_finished_before_listing_done
        .load(Ordering::SeqCst));
    assert!(!events.listing_done.load(Ordering::SeqCst));
    assert!(
        !files(dir.path()).is_empty(),
        "a file landed before page 2 was listed"
    );
    gate.open();
    let summary = run.await.unwrap().unwrap();
    assert_eq!(summary.objects_found, 250);
    assert_eq!(summary.objects_downloaded, 250);
    assert!(events.listing_done.load(Ordering::SeqCst));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pages_through_with_matches_on_first_and_last_page() {
    let server = TestServer::start().await;
    paged_bucket(&server, "bkt", 2600);
    let dir = tempfile::tempdir().unwrap();
    let summary = run(options(&server, "s3://bkt/", dir.path())
        .regex(r"/(00007|02599|01000)\.bin$")
        .list_concurrency(1))
    .await;
    assert_eq!(summary.objects_found, 3);
    assert_eq!(
        files(dir.path()),
        set(["data/00007.bin", "data/01000.bin", "data/02599.bin"])
    );
    assert_eq!(
        std::fs::read(dir.path().join("data/02599.bin")).unwrap(),
        b"object 2599"
    );
    let counts = server.request_counts();
    assert_eq!(counts.list, 3, "2600 keys are three pages");
    // Sizes come from the listing: one GET per object and no HEAD.
    assert_eq!(counts.get, 3);
    assert_eq!(counts.head, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parallel_listing_finds_exactly_the_sequential_set() {
    let server = TestServer::start().await;
    server.create_bucket("bkt");
    // A flat numbered run, sub-folders, and odd names around likely split points.
    let mut keys: Vec<String> = (0..3000).map(|i| format!("p/obj-{i:06}")).collect();
    keys.extend((0..1500).map(|i| format!("p/dir-{:02}/f{i}", i % 15)));
    keys.extend(["p/obj-1", "p/obj-1 ", "p/obj-0010000~", "p/é", "p/~"].map(String::from));
    server
        .store()
        .put_objects("bkt", keys.iter().map(|k| (k.as_str(), k.as_bytes())))
        .unwrap();
    let mut listed = Vec::new();
    for list_concurrency in [1, 4, 64] {
        let dir = tempfile::tempdir().unwrap();
        server.reset_request_counts();
        let summary = run(options(&server, "s3://bkt/p/", dir.path())
            .dry_run(true)
            .list_concurrency(list_concurrency))
        .await;
        assert_eq!(summary.objects_found as usize, keys.len());
        listed.push(server.request_counts().list);
    }
    // Sequential: one request per page; parallel: more requests, each range ends at its bound.
    assert_eq!(listed[0], 5);
    assert!(listed[2] > listed[0], "{listed:?}");
    // And the downloaded set is exact.
    let dir = tempfile::tempdir().unwrap();
    let summary = run(options(&server, "s3://bkt/p/", dir.path()).list_concurrency(64)).await;
    assert_eq!(summary.objects_downloaded as usize, keys.len());
    let expected: BTreeSet<String> = keys
        .iter()
        .map(|k| k.strip_prefix("p/").unwrap().to_owned())
        .collect();
    assert_eq!(files(dir.path()), expected);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_anchored_regex_lists_only_under_its_literal() {
    let server = TestServer::start().await;
    paged_bucket(&server, "bkt", 3000);
    server.put_object("bkt", "data/x-2024-1", b"a");
    server.put_object("bkt", "data/x-2024-2", b"b");
    let dir = tempfile::tempdir().unwrap();
    let summary =
        run(options(&server, "s3://bkt/data/", dir.path()).regex(r"^data/x-2024-\d$")).await;
    assert_eq!(summary.objects_downloaded, 2);
    // One page under `data/x-2024-`, plus the sub-folder probe: not the 3,000 keys of `data/`.
    assert!(
        server.request_counts().list <= 2,
        "{:?}",
        server.request_counts()
    );
    // A literal outside the URI's prefix matches nothing and lists nothing.
    server.reset_request_counts();
    let summary = run(options(&server, "s3://bkt/data/", dir.path()).regex(r"^logs/")).await;
    assert_eq!(summary.objects_found, 0);
    assert_eq!(server.request_counts().list, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_objects_come_in_ranged_parts() {
    let server = TestServer::start().await;
    server.create_bucket("bkt");
    let body: Vec<u8> = (0..5 * 1024 * 1024 + 3)
        .map(|i: u32| (i.wrapping_mul(2654435761) >> 11) as u8)
        .collect();
    server.put_object("bkt", "big/a.bin", &body);
    server.put_object("bkt", "big/small", b"s");
    let dir = tempfile::tempdir().unwrap();
    let summary = run(options(&server, "s3://bkt/big/", dir.path())
        .multipart_threshold(1024 * 1024)
        .part_size(512 * 1024)
        .concurrent_downloads(4))
    .await;
    assert!(summary.failures.is_empty(), "{:?}", summary.failures);
    assert!(std::fs::read(dir.path().join("a.bin")).unwrap() == body);
    // 11 parts of 512 KiB (the last one 3 bytes) and one GET for the small object.
    assert_eq!(server.request_counts().get, 12);
    assert_eq!(summary.bytes_downloaded, body.len() as u64 + 1);
    assert_no_temp_files(dir.path());
}

/// `cat` and `ObjectStream`: the selection in key order, each object verified, paths as a
/// download writes them, bytes as they are.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn objects_stream_in_key_order_verified() {
    let server = TestServer::start().await;
    server.create_bucket("bkt");
    let body: Vec<u8> = (0..3 * 1024 * 1024 + 5)
        .map(|i: u32| (i.wrapping_mul(2654435761) >> 11) as u8)
        .collect();
    server.put_object("bkt", "s/b/big.bin", &body);
    server.put_object("bkt", "s/a.txt", b"a");
    server.put_object("bkt", "s/c.txt", b"c");
    let tmp = tempfile::tempdir().unwrap();
    let stream_options = || {
        options(&server, "s3://bkt/s/", tmp.path())
            .multipart_threshold(1024 * 1024)
            .part_size(256 * 1024)
    };
    let mut stream = s3fetch::ObjectStream::open(stream_options()).await.unwrap();
    let mut seen = Vec::new();
    while let Some(object) = stream.next().await {
        let mut object = object.unwrap();
        let mut bytes = Vec::new();
        while let Some(chunk) = object.chunk().await.unwrap() {
            bytes.extend_from_slice(&chunk);
        }
        assert_eq!(bytes.len() as u64, object.info.size);
        seen.push((object.path().unwrap(), bytes));
    }
    let paths: Vec<_> = seen.iter().map(|(p, _)| p.to_str().unwrap()).collect();
    assert_eq!(paths, ["a.txt", "b/big.bin", "c.txt"]);
    assert!(seen[1].1 == body);
    assert_eq!(stream.verified(), 3);

    /// A writer whose bytes the test keeps.
    #[derive(Clone, Default)]
    struct Shared(Arc<Mutex<Vec<u8>>>);
    impl std::io::Write for Shared {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let out = Shared::default();
    let summary = s3fetch::cat(stream_options(), s3fetch::CatFormat::Raw, out.clone())
        .await
        .unwrap();
    assert_eq!((summary.objects, summary.verified), (3, 3));
    let expected = [b"a".as_slice(), &body, b"c"].concat();
    assert!(*out.0.lock().unwrap() == expected);
}

/// Replaces an object in the store as soon as its first bytes are written.
struct ReplaceMidway {
    server: Arc<TestServer>,
    done: AtomicBool,
}

impl Reporter for ReplaceMidway {
    fn bytes_written(&self, key: &str, _bytes: u64) {
        if !self.done.swap(true, Ordering::SeqCst) {
            self.server
                .put_object("bkt", key, vec![b'N'; 4 * 1024 * 1024]);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_object_replaced_mid_download_fails_instead_of_mixing_versions() {
    let server = Arc::new(TestServer::start().await);
    server.create_bucket("bkt");
    server.put_object("bkt", "obj", vec![b'O'; 4 * 1024 * 1024]);
    let dir = tempfile::tempdir().unwrap();
    let reporter = Arc::new(ReplaceMidway {
        server: server.clone(),
        done: AtomicBool::new(false),
    });
    let summary = Downloader::new(
        options(&server, "s3://bkt/obj", dir.path())
            .multipart_threshold(64 * 1024)
            .part_size(64 * 1024)
            .concurrent_downloads(2),
    )
    .reporter(reporter)
    .run()
    .await
    .unwrap();
    assert_eq!(summary.failures.len(), 1);
    assert_eq!(summary.failures[0].error.code(), Some("PreconditionFailed"));
    assert!(files(dir.path()).is_empty(), "no file, no temporary file");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn regex_is_searched_in_the_full_key_prefix_included() {
    let server = TestServer::start().await;
    server.create_bucket("bkt");
    for key in [
        "logs/2024/a.json",
        "logs/2024/b.txt",
        "logs/2023/c.json",
        "other/2024/d.json",
    ] {
        server.put_object("bkt", key, key.as_bytes());
    }
    let dir = tempfile::tempdir().unwrap();
    let summary =
        run(options(&server, "s3://bkt/logs/", dir.path()).regex(r"^logs/2024/.*\.json$")).await;
    assert_eq!(summary.objects_downloaded, 1);
    assert_eq!(files(dir.path()), set(["2024/a.json"]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prefix_rollup_exact_key_and_nested_dirs() {
    let server = TestServer::start().await;
    server.create_bucket("bkt");
    for key in [
        "my/test/prefix/file",
        "my/test/prefix/sub/deeper/file2",
        "my/test/objects/one/two/file",
        "my/test/objects/top",
        "my/test/other",
    ] {
        server.put_object("bkt", key, key.as_bytes());
    }
    let cases: [(&str, BTreeSet<String>); 4] = [
        (
            "s3://bkt/my/test/pre",
            set(["prefix/file", "prefix/sub/deeper/file2"]),
        ),
        ("s3://bkt/my/test/objects/", set(["one/two/file", "top"])),
        ("s3://bkt/my/test/objects/one/two/file", set(["file"])),
        (
            "s3://bkt/my/test/o",
            set(["objects/one/two/file", "objects/top", "other"]),
        ),
    ];
    for (uri, expected) in cases {
        let dir = tempfile::tempdir().unwrap();
        run(options(&server, uri, dir.path())).await;
        assert_eq!(files(dir.path()), expected, "{uri}");
    }
    let dir = tempfile::tempdir().unwrap();
    run(options(&server, "s3://bkt", dir.path())).await;
    assert_eq!(files(dir.path()).len(), 5);
    assert_eq!(
        std::fs::read(dir.path().join("my/test/prefix/sub/deeper/file2")).unwrap(),
        b"my/test/prefix/sub/deeper/file2"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn odd_keys_zero_bytes_markers_and_long_names() {
    let server = TestServer::start().await;
    server.create_bucket("bkt");
    let long = "n".repeat(250);
    let keys = [
        "odd/with space.txt".to_owned(),
        "odd/ünïcödé-ключ-键.txt".to_owned(),
        "odd/+%=&#;'\"()[].txt".to_owned(),
        "odd/a+b=c&d#e".to_owned(),
        format!("odd/{long}"),
    ];
    for key in &keys {
        server.put_object("bkt", key, format!("body of {key}"));
    }
    server.put_object("bkt", "odd/empty", Vec::new());
    server.put_object("bkt", "odd/dir/", Vec::new()); // a directory marker
    let dir = tempfile::tempdir().unwrap();
    let summary = run(options(&server, "s3://bkt/odd/", dir.path())).await;
    assert_eq!(summary.objects_found, 6, "the marker is skipped");
    assert!(summary.failures.is_empty(), "{:?}", summary.failures);
    for key in &keys {
        let name = key.strip_prefix("odd/").unwrap();
        assert_eq!(
            std::fs::read(dir.path().join(name)).unwrap(),
            format!("body of {key}").as_bytes()
        );
    }
    assert_eq!(
        std::fs::metadata(dir.path().join("empty")).unwrap().len(),
        0
    );
    assert!(!dir.path().join("dir").exists());
    assert_no_temp_files(dir.path());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_objects_stream_byte_exact() {
    let server = TestServer::start().await;
    server.create_bucket("bkt");
    let body: Vec<u8> = (0..3 * 1024 * 1024 + 17)
        .map(|i: u32| (i.wrapping_mul(2654435761) >> 13) as u8)
        .collect();
    server.put_object("bkt", "big.bin", body.clone());
    let dir = tempfile::tempdir().unwrap();
    let summary = run(options(&server, "s3://bkt/big.bin", dir.path())).await;
    assert_eq!(summary.bytes_downloaded, body.len() as u64);
    assert_eq!(summary.verified, 1, "checked against its MD5 ETag");
    assert!(std::fs::read(dir.path().join("big.bin")).unwrap() == body);
    assert_no_temp_files(dir.path());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn traversal_keys_are_refused_and_the_rest_downloads() {
    let server = TestServer::start().await;
    server.create_bucket("bkt");
    for key in [
        "../escape",
        "a/../../escape2",
        "/etc/passwd-like",
        "a//b",
        "./c",
        "ok",
    ] {
        server.put_object("bkt", key, b"x");
    }
    let outer = tempfile::tempdir().unwrap();
    let dir = outer.path().join("dl");
    std::fs::create_dir(&dir).unwrap();
    let summary = run(options(&server, "s3://bkt", &dir)).await;
    let mut failed: Vec<_> = summary.failures.iter().map(|f| f.key.as_str()).collect();
    failed.sort();
    assert_eq!(failed, ["../escape", "a/../../escape2"]);
    for failure in &summary.failures {
        let text = s3fetch::error_chain(&failure.error);
        assert!(
            text.contains(&format!("{:?}", failure.key)) && text.contains(".."),
            "{text}"
        );
    }
    assert_eq!(files(&dir), set(["a/b", "c", "etc/passwd-like", "ok"]));
    assert_eq!(files(outer.path()).len(), 4, "nothing written outside");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn symlinks_inside_the_download_dir_are_never_followed() {
    let server = TestServer::start().await;
    server.create_bucket("bkt");
    server.put_object("bkt", "linked/secret", b"payload");
    server.put_object("bkt", "filelink", b"new contents");
    server.put_object("bkt", "fine", b"fine");
    let dir = tempfile::tempdir().unwrap();
    let outside = tempfile::tempdir().unwrap();
    std::fs::write(outside.path().join("target"), b"original").unwrap();
    std::os::unix::fs::symlink(outside.path(), dir.path().join("linked")).unwrap();
    std::os::unix::fs::symlink(outside.path().join("target"), dir.path().join("filelink")).unwrap();

    let summary = run(options(&server, "s3://bkt", dir.path())).await;
    assert_eq!(summary.failures.len(), 1);
    assert_eq!(summary.failures[0].key, "linked/secret");
    assert!(s3fetch::error_chain(&summary.failures[0].error).contains("symlink"));
    // Nothing was written outside: the linked dir holds only the original file, unchanged.
    assert_eq!(files(outside.path()), set(["target"]));
    assert_eq!(
        std::fs::read(outside.path().join("target")).unwrap(),
        b"original"
    );
    // The file link was replaced by the downloaded file, not written through.
    let meta = std::fs::symlink_metadata(dir.path().join("filelink")).unwrap();
    assert!(meta.is_file());
    assert_eq!(
        std::fs::read(dir.path().join("filelink")).unwrap(),
        b"new contents"
    );
    assert_eq!(std::fs::read(dir.path().join("fine")).unwrap(), b"fine");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_blocked_target_fails_alone_without_temp_files() {
    let server = TestServer::start().await;
    server.create_bucket("bkt");
    for i in 0..20 {
        server.put_object("bkt", &format!("f{i:02}"), vec![i as u8; 1000]);
    }
    server.put_object("bkt", "blocked", vec![7u8; 400_000]); // streamed path
    server.put_object("bkt", "blocked-small", b"x");
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("blocked/inner")).unwrap();
    std::fs::create_dir_all(dir.path().join("blocked-small/inner")).unwrap();
    let summary = run(options(&server, "s3://bkt", dir.path())).await;
    let mut failed: Vec<_> = summary.failures.iter().map(|f| f.key.clone()).collect();
    failed.sort();
    assert_eq!(failed, ["blocked", "blocked-small"]);
    assert!(s3fetch::error_chain(&summary.failures[0].error).contains("directory is in the way"));
    assert_eq!(summary.objects_downloaded, 20);
    assert!(!summary.is_success());
    assert_no_temp_files(dir.path());
}

/// Keys `a` and `a/...` in one bucket: the file wins, every time, whatever the listing's
/// and the downloads' concurrency. The 2,500 keys under `a/` span three pages, so the
/// parallel listing splits inside the folder. Where `a` is a first-level key, the sub-folder
/// listing tells the ranges that start inside `a/` about it; one level deeper (`p/a`), they
/// have not seen it and ask the server, once per run.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_named_like_a_folder_wins_over_the_keys_under_it() {
    let server = TestServer::start().await;
    for (bucket, folder) in [("first", "d/a"), ("deeper", "d/p/a")] {
        server.create_bucket(bucket);
        server.put_object(bucket, folder, "the file a");
        server.put_object(bucket, &format!("{folder}.txt"), "beside");
        for i in 0..2500 {
            server.put_object(bucket, &format!("{folder}/{i:05}"), "under a");
        }
        server.put_object(bucket, &format!("{folder}/b/c"), "deeper");
        server.put_object(bucket, "d/b/c", "elsewhere");
    }
    for (bucket, folder, local) in [("first", "d/a", "a"), ("deeper", "d/p/a", "p/a")] {
        for (list_concurrency, concurrency) in [(1, 1), (4, 16), (64, 64), (64, 200)] {
            let context = format!("{bucket}, listing {list_concurrency}");
            let dir = tempfile::tempdir().unwrap();
            server.reset_request_counts();
            let summary = run(options(&server, &format!("s3://{bucket}/d/"), dir.path())
                .list_concurrency(list_concurrency)
                .concurrent_downloads(concurrency))
            .await;
            let expected = set([local, &format!("{local}.txt"), "b/c"]);
            assert_eq!(files(dir.path()), expected, "{context}");
            let file = std::fs::read(dir.path().join(local)).unwrap();
            assert_eq!(file, b"the file a", "{context}");
            assert_eq!(summary.objects_downloaded, 3, "{context}");
            assert_eq!(summary.failures.len(), 2501, "{context}");
            for failure in &summary.failures {
                assert!(failure.key.starts_with(&format!("{folder}/")), "{context}");
                assert!(
                    matches!(&failure.error, Error::Conflict { file_key, .. } if file_key == folder),
                    "{context}: {}",
                    failure.error
                );
            }
            let message = s3fetch::error_chain(&summary.failures[0].error);
            assert!(
                message.contains(&format!("{folder:?}")) && message.contains("needs a directory")
            );
            // A HEAD or two (`d/p/a`, and `d/p` if the sub-folders were not listed yet),
            // not one per key.
            let heads = server.request_counts().head;
            match (bucket, list_concurrency) {
                ("deeper", 64) => assert!((1..=2).contains(&heads), "{context}: {heads}"),
                _ => assert!(heads <= 2, "{context}: {heads}"),
            }
            assert_no_temp_files(dir.path());
        }
    }
}

/// A directory left by an earlier run is never removed: the keys under it go in, and the
/// key that names it fails.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_directory_from_an_earlier_run_is_kept() {
    let server = TestServer::start().await;
    server.create_bucket("bkt");
    server.put_object("bkt", "x", "file x");
    server.put_object("bkt", "x/new", "new");
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("x")).unwrap();
    std::fs::write(dir.path().join("x/old"), "old").unwrap();
    let summary = run(options(&server, "s3://bkt", dir.path())).await;
    assert_eq!(files(dir.path()), set(["x/new", "x/old"]));
    assert_eq!(summary.failures.len(), 1);
    assert_eq!(summary.failures[0].key, "x");
    assert!(s3fetch::error_chain(&summary.failures[0].error).contains("directory is in the way"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_denied_object_fails_alone() {
    let server = TestServer::start().await;
    server.create_bucket("bkt");
    for key in ["a", "denied", "z"] {
        server.put_object("bkt", key, key.as_bytes());
    }
    server.deny_key("bkt", "denied");
    let dir = tempfile::tempdir().unwrap();
    let summary = run(options(&server, "s3://bkt", dir.path())).await;
    assert_eq!(summary.failures.len(), 1);
    assert_eq!(summary.failures[0].key, "denied");
    assert_eq!(summary.failures[0].error.code(), Some("AccessDenied"));
    assert_eq!(files(dir.path()), set(["a", "z"]));
    assert_no_temp_files(dir.path());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dry_run_writes_nothing() {
    let server = TestServer::start().await;
    paged_bucket(&server, "bkt", 30);
    let dir = tempfile::tempdir().unwrap();
    let events = Arc::new(Events::default());
    let summary = Downloader::new(options(&server, "s3://bkt/data/", dir.path()).dry_run(true))
        .reporter(events.clone())
        .run()
        .await
        .unwrap();
    assert!(summary.dry_run);
    assert_eq!(summary.objects_found, 30);
    assert!(files(dir.path()).is_empty());
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        0,
        "no directories either"
    );
    assert_eq!(server.request_counts().get, 0);
    assert!(events
        .log
        .lock()
        .unwrap()
        .iter()
        .all(|e| !e.starts_with("started")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listing_errors_end_the_run_promptly() {
    let server = TestServer::start().await;
    server.create_bucket("bkt");
    server.put_object("bkt", "k", b"v");
    server.create_bucket("private");
    server.deny_bucket("private");
    let dir = tempfile::tempdir().unwrap();

    let cases: Vec<(DownloadOptions, &str)> = vec![
        (options(&server, "s3://missing", dir.path()), "NoSuchBucket"),
        (options(&server, "s3://private", dir.path()), "AccessDenied"),
        (
            options(&server, "s3://bkt", dir.path())
                .client(client_with_keys(&server, "nobody", "x")),
            "InvalidAccessKeyId",
        ),
        (
            options(&server, "s3://bkt", dir.path()).client(client_with_keys(
                &server,
                server.access_key(),
                "wrong-secret",
            )),
            "SignatureDoesNotMatch",
        ),
    ];
    for (options, code) in cases {
        let err = tokio::time::timeout(Duration::from_secs(20), s3fetch::download(options))
            .await
            .expect("no hang")
            .unwrap_err();
        assert!(matches!(err, Error::List { .. }), "{err:?}");
        assert_eq!(err.code(), Some(code), "{err}");
        assert!(s3fetch::error_chain(&err).contains(code), "{err}");
    }
    assert!(files(dir.path()).is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreachable_endpoint_fails_without_hanging() {
    // A port nothing listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let dir = tempfile::tempdir().unwrap();
    let mut client_options = s3fetch::ClientOptions::default();
    client_options.endpoint_url = Some(format!("http://127.0.0.1:{port}"));
    client_options.no_sign_request = true;
    let options = DownloadOptions::new(S3Uri::parse("s3://bkt").unwrap())
        .download_dir(dir.path())
        .client_options(client_options);
    let err = tokio::time::timeout(Duration::from_secs(60), s3fetch::download(options))
        .await
        .expect("no hang")
        .unwrap_err();
    assert!(matches!(err, Error::List { .. }), "{err:?}");
    assert!(
        s3fetch::error_chain(&err)
            .to_lowercase()
            .contains("connect"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancellation_after_the_listing_aborts_the_downloads_still_running() {
    // 1 MiB/s per connection: the 8 MiB object's parts take seconds, the listing does not.
    let server = TestServer::start_with(s3fetch_testkit::ServerOptions {
        bandwidth_bytes_per_sec: Some(1024 * 1024),
        ..s3fetch_testkit::ServerOptions::default()
    })
    .await
    .unwrap();
    server.create_bucket("bkt");
    server.put_object("bkt", "big", vec![7u8; 8 * 1024 * 1024]);
    let dir = tempfile::tempdir().unwrap();
    let cancel = CancellationToken::new();
    let events = Arc::new(Events::default());
    let run = tokio::spawn(
        Downloader::new(
            options(&server, "s3://bkt/", dir.path())
                .multipart_threshold(1024 * 1024)
                .part_size(1024 * 1024)
                .cancel_token(cancel.clone()),
        )
        .reporter(events.clone())
        .run(),
    );
    tokio::time::timeout(Duration::from_secs(20), async {
        while !events.listing_done.load(Ordering::SeqCst) {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await
    .unwrap();
    cancel.cancel();
    let summary = tokio::time::timeout(Duration::from_secs(3), run)
        .await
        .expect("cancelling stops the downloads, it does not wait for them")
        .unwrap()
        .unwrap();
    assert!(summary.cancelled);
    assert_eq!(summary.objects_downloaded, 0);
    // No part finished (1 MiB at 1 MiB/s): no partial file is worth keeping either.
    assert_eq!(summary.partials_kept, 0);
    assert!(files(dir.path()).is_empty(), "{:?}", files(dir.path()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancellation_stops_the_run_and_leaves_no_temp_files() {
    let server = TestServer::start().await;
    paged_bucket(&server, "bkt", 2500);
    let gate = server.gate_list_pages();
    let dir = tempfile::tempdir().unwrap();
    let cancel = CancellationToken::new();
    let events = Arc::new(Events::default());
    let run = tokio::spawn(
        Downloader::new(options(&server, "s3://bkt/", dir.path()).cancel_token(cancel.clone()))
            .reporter(events.clone())
            .run(),
    );
    gate.wait_for_waiting(1).await; // first page listed, second held
    tokio::time::timeout(Duration::from_secs(20), events.first_done.notified())
        .await
        .unwrap();
    cancel.cancel();
    let summary = tokio::time::timeout(Duration::from_secs(20), run)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert!(summary.cancelled);
    assert!(!summary.is_success());
    assert!(summary.objects_downloaded >= 1 && summary.objects_downloaded <= 1000);
    assert_no_temp_files(dir.path());
    // Every file present is complete.
    for file in files(dir.path()) {
        let i: usize = file
            .trim_start_matches("data/")
            .trim_end_matches(".bin")
            .parse()
            .unwrap();
        assert_eq!(
            std::fs::read(dir.path().join(&file)).unwrap(),
            format!("object {i}").as_bytes()
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_options_reach_a_public_bucket_unsigned() {
    let server = TestServer::start().await;
    server.create_bucket("pub");
    server.put_object("pub", "x/y", b"public");
    server.set_public("pub", true);
    let dir = tempfile::tempdir().unwrap();
    let mut client_options = s3fetch::ClientOptions::default();
    client_options.endpoint_url = Some(server.endpoint());
    client_options.no_sign_request = true;
    let summary = run(DownloadOptions::new(S3Uri::parse("s3://pub/x/").unwrap())
        .download_dir(dir.path())
        .client_options(client_options))
    .await;
    assert_eq!(summary.objects_downloaded, 1);
    assert_eq!(std::fs::read(dir.path().join("y")).unwrap(), b"public");
}

#[test]
fn blocking_api_runs_without_a_runtime() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let server = runtime.block_on(TestServer::start());
    server.create_bucket("bkt");
    server.put_object("bkt", "k", b"v");
    let dir = tempfile::tempdir().unwrap();
    let summary = std::thread::scope(|s| {
        s.spawn(|| Downloader::new(options(&server, "s3://bkt", dir.path())).run_blocking())
            .join()
            .unwrap()
    })
    .unwrap();
    assert_eq!(summary.objects_downloaded, 1);
    assert_eq!(std::fs::read(dir.path().join("k")).unwrap(), b"v");
    drop(server);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_options_are_errors_not_panics() {
    let server = TestServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let err = s3fetch::download(options(&server, "s3://bkt", dir.path()).concurrent_downloads(0))
        .await
        .unwrap_err();
    assert!(matches!(
        err,
        Error::InvalidOption {
            option: "concurrent_downloads",
            ..
        }
    ));
    for (options, name) in [
        (
            options(&server, "s3://bkt", dir.path()).list_concurrency(0),
            "list_concurrency",
        ),
        (
            options(&server, "s3://bkt", dir.path()).part_size(0),
            "part_size",
        ),
    ] {
        let err = s3fetch::download(options).await.unwrap_err();
        assert!(
            matches!(err, Error::InvalidOption { option, .. } if option == name),
            "{err:?}"
        );
    }
    let err = s3fetch::download(options(&server, "s3://bkt", dir.path()).regex("("))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::InvalidRegex { .. }));
    let missing: PathBuf = dir.path().join("missing");
    let err = s3fetch::download(options(&server, "s3://bkt", &missing))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::DownloadDir { .. }));
    assert!(!missing.exists(), "never created silently");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_down_on_one_get_downloads_feeds_the_throttle() {
    let server = TestServer::start().await;
    paged_bucket(&server, "bkt", 300);
    server.set_faults(s3fetch_testkit::FaultPlan::parse("slow_down=0.2@max=1,seed=4").unwrap());
    let dir = tempfile::tempdir().unwrap();
    let summary = run(options(&server, "s3://bkt/", dir.path()).concurrent_downloads(16)).await;
    assert!(summary.is_success(), "{:?}", summary.failures);
    assert_eq!(summary.objects_downloaded, 300);
    let injected = server.fault_counts()["slow_down"];
    // Every SlowDown on a one-GET download is retried and halves the limit (AIMD).
    assert_eq!(summary.throttled, injected);
    assert!(summary.retries >= injected);
}

/// Bytes that differ at every offset, by `seed` (a misplaced part shows).
fn pattern(len: usize, seed: u32) -> Vec<u8> {
    (0..len as u32)
        .map(|i| (i ^ seed).wrapping_mul(2_654_435_761).to_le_bytes()[3])
        .collect()
}

/// `max_memory` on a download to files: small objects (held whole until written), medium
/// ones (streamed) and a large one in parts, all correct; the bytes of bodies held at once
/// never passed the cap, though more than the cap passed through. Without a cap nothing is
/// counted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_download_under_max_memory_never_holds_more_than_the_cap() {
    const MIB: usize = 1 << 20;
    let server = TestServer::start().await;
    server.create_bucket("bkt");
    let mut want = std::collections::BTreeMap::new();
    for i in 0..120 {
        want.insert(format!("small/{i:03}"), pattern(200 * 1024, i));
    }
    for i in 0..8 {
        want.insert(format!("medium/{i}"), pattern(3 * MIB + 7, 1000 + i));
    }
    want.insert("large".to_owned(), pattern(40 * MIB + 3, 7));
    for (key, body) in &want {
        server.put_object("bkt", &format!("m/{key}"), body);
    }
    let cap = 16 * MIB as u64;
    let dir = tempfile::tempdir().unwrap();
    let summary = run(options(&server, "s3://bkt/m/", dir.path())
        .part_size(4 * MIB as u64)
        .multipart_threshold(8 * MIB as u64)
        .max_memory(cap))
    .await;
    assert_eq!(summary.objects_downloaded, want.len() as u64);
    let got = s3fetch_testkit::fixtures::tree(dir.path());
    assert_eq!(got.len(), want.len());
    for (key, body) in &want {
        assert!(got[key.as_str()] == *body, "{key} differs");
    }
    assert!(
        summary.memory_peak > 0 && summary.memory_peak <= cap,
        "held {} bytes at most under a cap of {cap}",
        summary.memory_peak
    );
    let uncapped = tempfile::tempdir().unwrap();
    let summary = run(options(&server, "s3://bkt/m/small/", uncapped.path())).await;
    assert_eq!(summary.objects_downloaded, 120);
    assert_eq!(summary.memory_peak, 0, "nothing counted without a cap");
}

/// `max_memory` on a stream: a large object under a cap of a third of its size comes whole
/// and in order, and the window never held more than the cap (at least one part at once).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_under_max_memory_never_holds_more_than_the_cap() {
    const MIB: u64 = 1 << 20;
    let server = TestServer::start().await;
    server.create_bucket("bkt");
    let body = pattern(48 * MIB as usize + 5, 3);
    server.put_object("bkt", "big.bin", &body);
    let tmp = tempfile::tempdir().unwrap();
    let cap = 16 * MIB;
    let stream_options = || {
        options(&server, "s3://bkt/big.bin", tmp.path())
            .part_size(2 * MIB)
            .multipart_threshold(4 * MIB)
            .max_memory(cap)
    };
    let mut stream = s3fetch::ObjectStream::open(stream_options()).await.unwrap();
    assert_eq!(stream.memory_cap(), cap);
    let mut object = stream.next().await.unwrap().unwrap();
    let mut bytes = Vec::new();
    while let Some(chunk) = object.chunk().await.unwrap() {
        bytes.extend_from_slice(&chunk);
        assert!(
            stream.memory_peak() <= cap,
            "{} > {cap}",
            stream.memory_peak()
        );
    }
    assert!(bytes == body, "bytes differ");
    assert!(stream.next().await.is_none());
    let peak = stream.memory_peak();
    assert!((2 * MIB..=cap).contains(&peak), "held {peak} at most");

    let summary = s3fetch::cat(stream_options(), s3fetch::CatFormat::Raw, std::io::sink())
        .await
        .unwrap();
    assert_eq!(summary.bytes, body.len() as u64);
    assert!((2 * MIB..=cap).contains(&summary.memory_peak));
}

/// Under `max_memory`, bodies that break off, fail or come corrupt are tried again: what a
/// failed try held is given back (the peak stays within the cap) and the files are right.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broken_bodies_under_max_memory_give_back_what_they_held() {
    const MIB: usize = 1 << 20;
    let server = TestServer::start().await;
    server.create_bucket("bkt");
    let mut want = std::collections::BTreeMap::new();
    for i in 0..60 {
        want.insert(format!("small/{i:03}"), pattern(150 * 1024, 50 + i));
    }
    for i in 0..4 {
        want.insert(format!("medium/{i}"), pattern(2 * MIB + 1, 2000 + i));
    }
    want.insert("large".to_owned(), pattern(20 * MIB + 9, 9));
    for (key, body) in &want {
        server.put_object("bkt", &format!("f/{key}"), body);
    }
    server.set_faults(
        s3fetch_testkit::FaultPlan::parse(
            "cut_body_after=0.2:2000,corrupt=0.05,internal_error=0.05,seed=11",
        )
        .unwrap(),
    );
    let cap = 16 * MIB as u64;
    let dir = tempfile::tempdir().unwrap();
    let summary = run(options(&server, "s3://bkt/f/", dir.path())
        .part_size(2 * MIB as u64)
        .multipart_threshold(4 * MIB as u64)
        .max_memory(cap))
    .await;
    assert!(summary.is_success(), "{:?}", summary.failures);
    assert!(summary.retries + summary.resumes > 0, "faults were met");
    let got = s3fetch_testkit::fixtures::tree(dir.path());
    for (key, body) in &want {
        assert!(got[key.as_str()] == *body, "{key} differs");
    }
    assert!(
        (1..=cap).contains(&summary.memory_peak),
        "{}",
        summary.memory_peak
    );
}
