//! Runs you can repeat: skip-existing and sync, kept modification times, the failed-keys
//! list and `keys_from`, dead runs' temporary files, JSON lines — against the test kit's
//! S3 server over HTTP, with request counts taken at the server.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

mod common;

use s3fetch::{
    DownloadOptions, Downloader, Error, JsonLines, ObjectInfo, Reporter, S3Uri, Summary,
};
use s3fetch_testkit::fixtures::{assert_no_temp_files, files};
use s3fetch_testkit::TestServer;

/// Bucket `bkt`: `d/a.txt`, `d/b.txt`, `d/sub/c.txt` and `d/big.bin` (3 MiB: ranged parts
/// with the options below).
async fn server() -> TestServer {
    let server = TestServer::start().await;
    server.create_bucket("bkt");
    server.put_object("bkt", "d/a.txt", "alpha");
    server.put_object("bkt", "d/b.txt", "bravo!");
    server.put_object("bkt", "d/sub/c.txt", "charlie");
    server.put_object("bkt", "d/big.bin", big());
    server
}

fn big() -> Vec<u8> {
    (0..3 * 1024 * 1024u32).map(|i| (i % 251) as u8).collect()
}

fn options(server: &TestServer, dir: &Path) -> DownloadOptions {
    DownloadOptions::new(S3Uri::parse("s3://bkt/d/").unwrap())
        .download_dir(dir)
        .multipart_threshold(1024 * 1024)
        .part_size(1024 * 1024)
        .client_options(common::client_options(server))
}

async fn run_with(options: DownloadOptions, reporter: Arc<dyn Reporter>) -> Summary {
    tokio::time::timeout(
        Duration::from_secs(60),
        Downloader::new(options).reporter(reporter).run(),
    )
    .await
    .expect("the run finishes")
    .expect("the run starts")
}

async fn run(options: DownloadOptions) -> Summary {
    run_with(options, Arc::new(s3fetch::NoReporter)).await
}

/// GETs (and HEADs) the server answered during `f`.
async fn counted<T>(server: &TestServer, f: impl std::future::Future<Output = T>) -> (T, u64, u64) {
    server.reset_request_counts();
    let out = f.await;
    let counts = server.request_counts();
    (out, counts.get, counts.head)
}

/// Keeps what the listing said about each object, and the skipped keys.
#[derive(Default)]
struct Seen {
    found: Mutex<BTreeMap<String, ObjectInfo>>,
    skipped: Mutex<Vec<String>>,
}

impl Reporter for Seen {
    fn object_found(&self, object: &ObjectInfo) {
        self.found
            .lock()
            .unwrap()
            .insert(object.key.clone(), object.clone());
    }
    fn download_finished(&self, result: &s3fetch::DownloadResult) {
        if let s3fetch::Outcome::Skipped(_) = result.outcome {
            self.skipped.lock().unwrap().push(result.key.clone());
        }
    }
}

fn mtime(path: &Path) -> SystemTime {
    std::fs::metadata(path).unwrap().modified().unwrap()
}

fn set_mtime(path: &Path, time: SystemTime) {
    std::fs::File::options()
        .write(true)
        .open(path)
        .unwrap()
        .set_modified(time)
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn files_take_their_objects_last_modified_unless_told_not_to() {
    let server = server().await;
    let dir = tempfile::tempdir().unwrap();
    let seen = Arc::new(Seen::default());
    let summary = run_with(options(&server, dir.path()), seen.clone()).await;
    assert_eq!(summary.objects_downloaded, 4);
    let found = seen.found.lock().unwrap().clone();
    for (key, relative) in [
        ("d/a.txt", "a.txt"),
        ("d/sub/c.txt", "sub/c.txt"),
        ("d/big.bin", "big.bin"),
    ] {
        let listed = found[key]
            .last_modified
            .expect("the listing has LastModified");
        assert_eq!(
            mtime(&dir.path().join(relative)),
            listed,
            "{key}: small and ranged alike"
        );
    }
    // Directories are left alone: created now, not dated like an object.
    let sub = mtime(&dir.path().join("sub"));
    assert!(SystemTime::now().duration_since(sub).unwrap() < Duration::from_secs(60));

    let other = tempfile::tempdir().unwrap();
    let before = SystemTime::now() - Duration::from_secs(2);
    // Objects dated an hour ago, so "now" cannot be their time by chance.
    let hour_ago = SystemTime::now() - Duration::from_secs(3600);
    server.put_object_at("bkt", "d/a.txt", "alpha", hour_ago);
    server.put_object_at("bkt", "d/big.bin", big(), hour_ago);
    run(options(&server, other.path()).preserve_mtime(false)).await;
    for name in ["a.txt", "big.bin"] {
        assert!(
            mtime(&other.path().join(name)) >= before,
            "{name}: the time of download"
        );
    }
    let dated = tempfile::tempdir().unwrap();
    run(options(&server, dated.path())).await;
    for name in ["a.txt", "big.bin"] {
        let time = mtime(&dated.path().join(name));
        let off = time
            .duration_since(hour_ago)
            .unwrap_or_else(|e| e.duration());
        assert!(
            off < Duration::from_millis(1),
            "{name}: {off:?} from LastModified"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn skip_existing_sends_no_get_for_files_of_the_right_size() {
    let server = server().await;
    let dir = tempfile::tempdir().unwrap();
    run(options(&server, dir.path())).await;

    let seen = Arc::new(Seen::default());
    let (summary, gets, heads) = counted(
        &server,
        run_with(
            options(&server, dir.path()).skip_existing(true),
            seen.clone(),
        ),
    )
    .await;
    assert_eq!((gets, heads), (0, 0), "a second run sends no GET or HEAD");
    assert_eq!(summary.objects_found, 4);
    assert_eq!(summary.objects_skipped, 4);
    assert_eq!(summary.objects_downloaded, 0);
    assert!(summary.is_success());
    assert_eq!(seen.skipped.lock().unwrap().len(), 4);

    // A file of another size is fetched again; an older file of the right size is not.
    std::fs::write(dir.path().join("a.txt"), "short").unwrap(); // same length: kept
    std::fs::write(dir.path().join("b.txt"), "b").unwrap();
    set_mtime(&dir.path().join("sub/c.txt"), SystemTime::UNIX_EPOCH);
    let (summary, gets, _) = counted(
        &server,
        run(options(&server, dir.path()).skip_existing(true)),
    )
    .await;
    assert_eq!(gets, 1);
    assert_eq!(
        (summary.objects_downloaded, summary.objects_skipped),
        (1, 3)
    );
    assert_eq!(std::fs::read(dir.path().join("b.txt")).unwrap(), b"bravo!");
    assert_eq!(std::fs::read(dir.path().join("a.txt")).unwrap(), b"short");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sync_also_compares_the_modification_time() {
    let server = server().await;
    let dir = tempfile::tempdir().unwrap();
    run(options(&server, dir.path())).await;
    let (summary, gets, _) = counted(&server, run(options(&server, dir.path()).sync(true))).await;
    assert_eq!((gets, summary.objects_skipped), (0, 4));

    // Same size, another time: fetched again by sync (skip_existing would keep it).
    std::fs::write(dir.path().join("a.txt"), "ALPHA").unwrap();
    set_mtime(
        &dir.path().join("a.txt"),
        SystemTime::now() - Duration::from_secs(3600),
    );
    // An object replaced on the server (new LastModified, same size): fetched again.
    server.put_object_at(
        "bkt",
        "d/b.txt",
        "BRAVO!",
        SystemTime::now() + Duration::from_secs(10),
    );
    let (summary, gets, _) = counted(&server, run(options(&server, dir.path()).sync(true))).await;
    assert_eq!(gets, 2);
    assert_eq!(
        (summary.objects_downloaded, summary.objects_skipped),
        (2, 2)
    );
    assert_eq!(std::fs::read(dir.path().join("a.txt")).unwrap(), b"alpha");
    assert_eq!(std::fs::read(dir.path().join("b.txt")).unwrap(), b"BRAVO!");

    // Without preserved times the files carry the time of download, not the objects'
    // (dated an hour ago here): sync fetches them all again.
    let hour_ago = SystemTime::now() - Duration::from_secs(3600);
    for (key, body) in [
        ("d/a.txt", &b"alpha"[..]),
        ("d/b.txt", b"bravo!"),
        ("d/sub/c.txt", b"charlie"),
    ] {
        server.put_object_at("bkt", key, body, hour_ago);
    }
    server.put_object_at("bkt", "d/big.bin", big(), hour_ago);
    let plain = tempfile::tempdir().unwrap();
    run(options(&server, plain.path()).preserve_mtime(false)).await;
    let (summary, _, _) = counted(&server, run(options(&server, plain.path()).sync(true))).await;
    assert_eq!(
        (summary.objects_skipped, summary.objects_downloaded),
        (0, 4)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compare_etag_catches_a_rewrite_that_size_and_time_miss() {
    let server = server().await;
    let dir = tempfile::tempdir().unwrap();
    let when = SystemTime::now() - Duration::from_secs(3600);
    server.put_object_at("bkt", "d/a.txt", "alpha", when);
    run(options(&server, dir.path())).await;
    let etag_sync = || options(&server, dir.path()).compare(s3fetch::Compare::Etag);
    let (summary, gets, _) = counted(&server, run(etag_sync())).await;
    assert_eq!(
        (gets, summary.objects_skipped),
        (0, 4),
        "the ETags are recorded"
    );

    // Rewritten with the same size and the same LastModified: only the ETag tells.
    server.put_object_at("bkt", "d/a.txt", "ALPHA", when);
    let (summary, gets, _) = counted(&server, run(options(&server, dir.path()).sync(true))).await;
    assert_eq!(
        (gets, summary.objects_skipped),
        (0, 4),
        "size and time cannot see it"
    );
    let (summary, gets, _) = counted(&server, run(etag_sync())).await;
    assert_eq!((gets, summary.objects_downloaded), (1, 1));
    assert_eq!(std::fs::read(dir.path().join("a.txt")).unwrap(), b"ALPHA");

    // A file that carries no record (copied in by other means, its time kept): downloaded
    // again.
    let (original, copy) = (dir.path().join("b.txt"), dir.path().join("b-copy"));
    std::fs::copy(&original, &copy).unwrap();
    set_mtime(&copy, mtime(&original));
    std::fs::rename(&copy, &original).unwrap();
    let (summary, gets, _) = counted(&server, run(etag_sync())).await;
    assert_eq!(
        (gets, summary.objects_downloaded),
        (1, 1),
        "{:?}",
        summary.failures
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_keys_then_keys_from_reruns_just_the_failures() {
    let server = server().await;
    let dir = tempfile::tempdir().unwrap();
    let list = dir.path().join("failed.txt");
    let out = tempfile::tempdir().unwrap();
    server.deny_key("bkt", "d/b.txt");
    server.deny_key("bkt", "d/big.bin");
    let summary = run(options(&server, out.path()).failed_keys(&list)).await;
    assert_eq!(summary.failures.len(), 2);
    let mut failed: Vec<String> = std::fs::read_to_string(&list)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect();
    failed.sort();
    assert_eq!(failed, ["d/b.txt", "d/big.bin"]);

    server.allow_key("bkt", "d/b.txt");
    server.allow_key("bkt", "d/big.bin");
    server.reset_request_counts();
    let summary = run(options(&server, out.path())
        .keys_from(&list)
        .failed_keys(&list))
    .await;
    let counts = server.request_counts();
    assert_eq!(counts.list, 0, "no listing");
    assert_eq!(
        counts.head,
        2 + 1,
        "one HEAD per key (and the ranged one's checksum HEAD)"
    );
    assert!(summary.is_success(), "{:?}", summary.failures);
    assert_eq!(summary.objects_downloaded, 2);
    assert_eq!(std::fs::read(out.path().join("big.bin")).unwrap(), big());
    assert_eq!(
        std::fs::read_to_string(&list).unwrap(),
        "",
        "nothing failed now"
    );
    assert_eq!(files(out.path()).len(), 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_from_takes_exactly_the_listed_keys() {
    let server = server().await;
    let dir = tempfile::tempdir().unwrap();
    let keys = dir.path().join("keys");
    std::fs::write(&keys, "d/a.txt\r\n\n   \nd/sub/c.txt\nd/missing\nd/a.txt\n").unwrap();
    let out = tempfile::tempdir().unwrap();
    let summary = run(options(&server, out.path()).keys_from(&keys)).await;
    assert_eq!(
        summary.objects_downloaded, 2,
        "a key listed twice is fetched once"
    );
    assert_eq!(summary.failures.len(), 1);
    assert_eq!(summary.failures[0].key, "d/missing");
    assert_eq!(summary.failures[0].error.code(), Some("NotFound"));
    let mut want = std::collections::BTreeSet::new();
    want.extend(["a.txt".to_owned(), "sub/c.txt".to_owned()]);
    assert_eq!(files(out.path()), want);

    // The regex still applies.
    let out = tempfile::tempdir().unwrap();
    let summary = run(options(&server, out.path())
        .keys_from(&keys)
        .regex("c\\.txt$"))
    .await;
    assert_eq!((summary.objects_found, summary.objects_downloaded), (1, 1));

    // A key outside the prefix is an error before any request.
    std::fs::write(&keys, "d/a.txt\nother/x\n").unwrap();
    server.reset_request_counts();
    let error = Downloader::new(options(&server, out.path()).keys_from(&keys))
        .run()
        .await
        .unwrap_err();
    match &error {
        Error::InvalidOption { option, reason } => {
            assert_eq!(*option, "keys_from");
            assert!(
                reason.contains("line 2") && reason.contains("other/x"),
                "{reason}"
            );
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(server.request_counts().http_requests, 0);
    let error = Downloader::new(options(&server, out.path()).keys_from(dir.path().join("nope")))
        .run()
        .await
        .unwrap_err();
    assert!(
        matches!(
            error,
            Error::InvalidOption {
                option: "keys_from",
                ..
            }
        ),
        "{error:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_removes_the_temporary_files_of_dead_runs_only() {
    let server = server().await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("sub")).unwrap();
    let dead = {
        let mut child = std::process::Command::new("true").spawn().unwrap();
        child.wait().unwrap();
        child.id()
    };
    let mut alive = std::process::Command::new("sleep")
        .arg("60")
        .spawn()
        .unwrap();
    let dead_files = [
        format!(".s3fetch-{dead}-1.tmp"),
        format!("sub/.s3fetch-{dead}-2.tmp"),
    ];
    let live_file = format!("sub/.s3fetch-{}-3.tmp", alive.id());
    for name in dead_files.iter().chain([&live_file]) {
        std::fs::write(dir.path().join(name), "partial").unwrap();
    }
    std::fs::write(dir.path().join("sub/.s3fetch-notes.txt"), "not ours").unwrap();
    // A sync run that has nothing to download still sweeps.
    run(options(&server, dir.path())).await;
    run(options(&server, dir.path()).sync(true)).await;
    for name in &dead_files {
        assert!(
            !dir.path().join(name).exists(),
            "{name} of a dead process is removed"
        );
    }
    assert!(
        dir.path().join(&live_file).exists(),
        "a live process keeps its file"
    );
    assert!(dir.path().join("sub/.s3fetch-notes.txt").exists());
    alive.kill().unwrap();
    alive.wait().unwrap();
    std::fs::remove_file(dir.path().join(&live_file)).unwrap();
    std::fs::remove_file(dir.path().join("sub/.s3fetch-notes.txt")).unwrap();
    assert_no_temp_files(dir.path());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partials_of_objects_no_longer_listed_are_removed_others_stay() {
    let server = server().await;
    let dir = tempfile::tempdir().unwrap();
    let partial = |name: &str, key: &str| {
        let path = dir.path().join(format!(".s3fetch-part-{name}"));
        std::fs::write(&path, vec![0u8; 1024]).unwrap();
        let journal = format!(
            r#"{{"version":1,"key":"{key}","etag":"\"x\"","size":1024,"part_size":512,"done":[[0,512,1]]}}"#
        );
        std::fs::write(path.with_extension("json"), journal).unwrap();
        path
    };
    let gone = partial("00000000000000aa", "d/deleted.bin");
    let unselected = partial("00000000000000bb", "d/not-this-run.dat");
    let outside = partial("00000000000000cc", "elsewhere/x.bin");
    // A run that selects `*.bin` and `*.txt` under d/, listing all of it.
    run(options(&server, dir.path()).regex(r"\.(bin|txt)$")).await;
    assert!(
        !gone.exists() && !gone.with_extension("json").exists(),
        "not listed: removed"
    );
    for kept in [&unselected, &outside] {
        assert!(
            kept.exists() && kept.with_extension("json").exists(),
            "{kept:?} is another run's"
        );
    }
}

/// A writer the test can read back.
#[derive(Clone, Default)]
struct Buffer(Arc<Mutex<Vec<u8>>>);

impl Write for Buffer {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn json_lines(buffer: &Buffer) -> Vec<serde_json::Value> {
    let text = String::from_utf8(buffer.0.lock().unwrap().clone()).unwrap();
    text.lines()
        .map(|line| serde_json::from_str(line).expect("each line is one JSON object"))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_lines_name_every_event_with_stable_fields() {
    let server = server().await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("a.txt"), "alpha").unwrap(); // skipped: right size
    server.deny_key("bkt", "d/b.txt");
    let buffer = Buffer::default();
    let json = Arc::new(JsonLines::new(Box::new(buffer.clone()), false));
    let summary = run_with(
        options(&server, dir.path()).skip_existing(true),
        json.clone(),
    )
    .await;
    json.finish(&summary);
    let lines = json_lines(&buffer);
    let of = |event: &str| -> Vec<&serde_json::Value> {
        lines.iter().filter(|l| l["event"] == event).collect()
    };
    assert_eq!(of("found").len(), 4);
    let found = of("found");
    let a = found.iter().find(|l| l["key"] == "d/a.txt").unwrap();
    assert_eq!(a["size"], 5);
    assert!(a["etag"].as_str().unwrap().starts_with('"'));
    assert!(a["last_modified"].as_str().unwrap().ends_with('Z'));

    let skipped = of("skipped");
    assert_eq!(skipped.len(), 1);
    assert_eq!(skipped[0]["key"], "d/a.txt");
    assert_eq!(
        skipped[0]["path"],
        dir.path()
            .canonicalize()
            .unwrap()
            .join("a.txt")
            .to_str()
            .unwrap()
    );

    let downloaded = of("downloaded");
    assert_eq!(downloaded.len(), 2);
    let big = downloaded.iter().find(|l| l["key"] == "d/big.bin").unwrap();
    assert_eq!(big["size"], 3 * 1024 * 1024);
    assert!(big["seconds"].as_f64().unwrap() > 0.0);
    assert!(big["path"].as_str().unwrap().ends_with("/big.bin"));

    let failed = of("failed");
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0]["key"], "d/b.txt");
    assert_eq!(failed[0]["error"]["code"], "AccessDenied");
    assert_eq!(failed[0]["error"]["status"], 403);
    assert!(failed[0]["error"]["message"]
        .as_str()
        .unwrap()
        .contains("d/b.txt"));

    let last = lines.last().unwrap();
    assert_eq!(last["event"], "summary");
    assert_eq!(
        (
            &last["found"],
            &last["downloaded"],
            &last["skipped"],
            &last["failed"]
        ),
        (&4.into(), &2.into(), &1.into(), &1.into())
    );
    assert_eq!(last["bytes"], 3 * 1024 * 1024 + 7);
    assert_eq!(last["dry_run"], false);
}
