//! One object's transfer against the fake bucket: retries, resumes, corruption, cancellation.

use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Semaphore;

use super::{Disk, Fetcher, PartOptions};
use crate::error::{Error, Result};
use crate::object::ObjectInfo;
use crate::progress::NoReporter;
use crate::s3::fake::{self, FakeStore, Fault};
use crate::s3::ByteRange;
use crate::tuning::Tuning;
use crate::write::DownloadDir;

const KIB: u64 = 1024;

fn fetcher(store: &Arc<FakeStore>, dir: &Path) -> Fetcher {
    Fetcher {
        bucket: fake::bucket(store.clone(), ""),
        dir: Arc::new(DownloadDir::open(dir, &Tuning::default()).unwrap()),
        reporter: Arc::new(NoReporter),
        parts: PartOptions {
            part_size: 256 * KIB,
            threshold: 1024 * KIB,
        },
        preserve_mtime: true,
        resume: true,
        disk: Disk::default(),
        dir_ops: Semaphore::new(2),
    }
}

async fn fetch(fetcher: &Fetcher, object: &ObjectInfo) -> Result<u64> {
    let permit = fetcher.bucket.transfer_permit().await?;
    fetcher.fetch(object, Path::new(&object.key), permit).await
}

/// `n` bytes that differ from offset to offset.
fn bytes(n: u64) -> Vec<u8> {
    (0..n).map(|i| (i * 31 + i / 4096) as u8).collect()
}

fn entries(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    names
}

fn gets(store: &FakeStore) -> Vec<Option<ByteRange>> {
    store
        .seen()
        .into_iter()
        .filter(|s| s.method == "GET")
        .map(|s| s.range)
        .collect()
}

#[tokio::test]
async fn a_transient_failure_is_retried_and_a_missing_key_is_not() {
    let (store, tmp) = (Arc::new(FakeStore::default()), tempfile::tempdir().unwrap());
    let object = store.put("small", bytes(10 * KIB));
    store.fail("small", [Fault::Status(503), Fault::Status(500)]);
    let fetcher = fetcher(&store, tmp.path());
    assert_eq!(fetch(&fetcher, &object).await.unwrap(), 10 * KIB);
    assert_eq!(
        std::fs::read(tmp.path().join("small")).unwrap(),
        bytes(10 * KIB)
    );
    let stats = fetcher.bucket.stats();
    assert_eq!(stats.retries.load(Ordering::Relaxed), 2);
    assert_eq!(stats.throttled.load(Ordering::Relaxed), 1);
    assert_eq!(gets(&store).len(), 3);

    let missing = ObjectInfo {
        key: "missing".into(),
        ..object
    };
    let error = fetch(&fetcher, &missing).await.unwrap_err();
    assert_eq!(error.code(), Some("NoSuchKey"), "{error}");
    assert_eq!(gets(&store).len(), 4, "not retried");
}

#[tokio::test]
async fn a_broken_body_continues_from_its_last_byte() {
    let (store, tmp) = (Arc::new(FakeStore::default()), tempfile::tempdir().unwrap());
    let size = 600 * KIB;
    let object = store.put("medium", bytes(size));
    store.fail("medium", [Fault::Cut(100_000), Fault::Cut(50_000)]);
    let fetcher = fetcher(&store, tmp.path());
    assert_eq!(fetch(&fetcher, &object).await.unwrap(), size);
    assert_eq!(
        std::fs::read(tmp.path().join("medium")).unwrap(),
        bytes(size)
    );
    assert_eq!(
        gets(&store),
        [
            None,
            Some(ByteRange {
                start: 100_000,
                end: Some(size)
            }),
            Some(ByteRange {
                start: 150_000,
                end: Some(size)
            }),
        ]
    );
    assert_eq!(store.sent(), size, "no byte sent twice");
    let resumed = store.seen();
    assert_eq!(resumed[1].if_match, object.etag, "of the same version");
    assert_eq!(fetcher.bucket.stats().resumes.load(Ordering::Relaxed), 2);
    // Verified against the whole object's checksum, across the resumes.
    assert_eq!(fetcher.bucket.stats().verified.load(Ordering::Relaxed), 1);
}

#[tokio::test]
async fn a_corrupt_body_is_fetched_again_and_never_renamed_into_place() {
    let (store, tmp) = (Arc::new(FakeStore::default()), tempfile::tempdir().unwrap());
    let object = store.put("medium", bytes(300 * KIB));
    let small = store.put("small", bytes(KIB));
    store.fail("medium", [Fault::Corrupt]);
    store.fail("small", [Fault::Corrupt]);
    let fetcher = fetcher(&store, tmp.path());
    fetch(&fetcher, &object).await.unwrap();
    fetch(&fetcher, &small).await.unwrap();
    assert_eq!(
        std::fs::read(tmp.path().join("medium")).unwrap(),
        bytes(300 * KIB)
    );
    assert_eq!(
        gets(&store),
        [None, None, None, None],
        "each fetched again whole"
    );

    // Corrupt every time: given up, and nothing left on disk.
    let tmp = tempfile::tempdir().unwrap();
    store.fail("medium", [Fault::Corrupt; 10]);
    let fetcher = super::tests::fetcher(&store, tmp.path());
    let error = fetch(&fetcher, &object).await.unwrap_err();
    assert!(matches!(error, Error::Checksum { .. }), "{error}");
    assert!(entries(tmp.path()).is_empty(), "{:?}", entries(tmp.path()));
}

#[tokio::test]
async fn a_failed_part_is_retried_alone() {
    let (store, tmp) = (Arc::new(FakeStore::default()), tempfile::tempdir().unwrap());
    let size = 2 * 1024 * KIB + 5; // 8 parts of 256 KiB and a 5-byte one
    let object = store.put("large", bytes(size));
    // The HEAD fails once, then two part requests; one part breaks off midway.
    store.fail(
        "large",
        [
            Fault::Status(500),
            Fault::Pass,
            Fault::Status(500),
            Fault::Status(503),
            Fault::Cut(1000),
        ],
    );
    let fetcher = fetcher(&store, tmp.path());
    assert_eq!(fetch(&fetcher, &object).await.unwrap(), size);
    assert_eq!(
        std::fs::read(tmp.path().join("large")).unwrap(),
        bytes(size)
    );
    let seen = store.seen();
    assert_eq!(seen.iter().filter(|s| s.method == "HEAD").count(), 2);
    // 9 parts, 2 failed and 1 resumed: 12 GETs, and only the resumed one sent bytes twice.
    assert_eq!(gets(&store).len(), 12);
    assert_eq!(store.sent(), size);
    assert!(
        seen.iter()
            .all(|s| s.if_match == object.etag && (s.method == "HEAD" || s.range.is_some())),
        "every part is ranged and of the listed version"
    );
    assert_eq!(fetcher.bucket.stats().verified.load(Ordering::Relaxed), 1);
}

#[tokio::test]
async fn half_of_all_requests_failing_loses_nothing() {
    let (store, tmp) = (Arc::new(FakeStore::default()), tempfile::tempdir().unwrap());
    let size = 4 * 1024 * KIB;
    let object = store.put("large", bytes(size));
    // Every other request fails: far more failures than `retries` for some parts, while
    // the object as a whole makes progress.
    store.fail(
        "large",
        (0..200).map(|i| match i % 2 {
            0 => Fault::Status(500),
            _ => Fault::Cut(10_000),
        }),
    );
    let fetcher = fetcher(&store, tmp.path());
    assert_eq!(fetch(&fetcher, &object).await.unwrap(), size);
    assert_eq!(
        std::fs::read(tmp.path().join("large")).unwrap(),
        bytes(size)
    );
}

#[tokio::test]
async fn a_stalled_body_is_abandoned_and_fetched_again() {
    let (store, tmp) = (Arc::new(FakeStore::default()), tempfile::tempdir().unwrap());
    let object = store.put("medium", bytes(400 * KIB));
    store.fail("medium", [Fault::Stall(Duration::from_secs(30))]);
    let fetcher = fetcher(&store, tmp.path());
    let started = std::time::Instant::now();
    fetch(&fetcher, &object).await.unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "abandoned after the idle timeout"
    );
    assert_eq!(gets(&store).len(), 2);
    assert_eq!(
        std::fs::read(tmp.path().join("medium")).unwrap(),
        bytes(400 * KIB)
    );
}

#[tokio::test]
async fn an_object_replaced_since_the_listing_fails_and_leaves_nothing() {
    let (store, tmp) = (Arc::new(FakeStore::default()), tempfile::tempdir().unwrap());
    let listed = store.put("large", bytes(2 * 1024 * KIB));
    store.put("large", vec![1u8; 2 * 1024 * 1024]); // a new version, a new ETag
    let fetcher = fetcher(&store, tmp.path());
    let error = fetch(&fetcher, &listed).await.unwrap_err();
    assert_eq!(error.code(), Some("PreconditionFailed"), "{error}");
    assert!(entries(tmp.path()).is_empty());
}

/// Fetches `object` and drops the download after 150 ms (it must still be running), then
/// waits for the writes it left on the blocking pool, as a run does.
async fn cancel(fetcher: &Fetcher, object: &ObjectInfo) {
    let cut_short = tokio::time::timeout(Duration::from_millis(150), fetch(fetcher, object));
    assert!(cut_short.await.is_err(), "still running when dropped");
    fetcher.disk.settle().await;
}

#[tokio::test]
async fn cancelling_a_transfer_removes_its_temporary_file_and_keeps_a_large_ones_partial() {
    let (store, tmp) = (Arc::new(FakeStore::default()), tempfile::tempdir().unwrap());
    let object = store.put("medium", bytes(400 * KIB));
    let large = store.put("large", bytes(2 * 1024 * KIB));
    store.fail("medium", [Fault::Stall(Duration::from_secs(30))]);
    let stall_twice = || [Fault::Cut(0), Fault::Stall(Duration::from_secs(30))];
    store.fail("large", stall_twice());
    let mut fetcher = fetcher(&store, tmp.path());
    cancel(&fetcher, &object).await;
    assert!(entries(tmp.path()).is_empty(), "{:?}", entries(tmp.path()));
    cancel(&fetcher, &large).await;
    let left = entries(tmp.path());
    assert_eq!(left.len(), 2, "{left:?}");
    assert!(
        left.iter().all(|name| name.starts_with(".s3fetch-part-")),
        "{left:?}"
    );
    // Without resume, the partial is removed and none is kept.
    fetcher.resume = false;
    store.fail("large", stall_twice());
    cancel(&fetcher, &large).await;
    assert!(entries(tmp.path()).is_empty(), "{:?}", entries(tmp.path()));
}

/// `large` (8 parts) fetched into `dir` until a few parts are journaled, then cancelled: the
/// HEAD and three parts pass, the next three stall until the try is dropped. Returns the
/// fetcher, the journal's path and its contents.
async fn interrupted(
    store: &Arc<FakeStore>,
    dir: &Path,
    large: &ObjectInfo,
) -> (Fetcher, std::path::PathBuf, serde_json::Value) {
    let stall = Fault::Stall(Duration::from_secs(30));
    let faults = [Fault::Pass, Fault::Pass, Fault::Pass, Fault::Pass];
    store.fail(&large.key, faults.into_iter().chain([stall; 3]));
    let fetcher = fetcher(store, dir);
    cancel(&fetcher, large).await;
    let name = entries(dir)
        .into_iter()
        .find(|n| n.ends_with(".json"))
        .expect("a journal");
    let journal_path = dir.join(name);
    let journal: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&journal_path).unwrap()).unwrap();
    let done = journal["done"].as_array().unwrap().len();
    assert!((3..8).contains(&done), "{journal}");
    (fetcher, journal_path, journal)
}

#[tokio::test]
async fn a_resumed_partial_fetches_only_the_missing_parts_and_checks_the_rest() {
    let (store, tmp) = (Arc::new(FakeStore::default()), tempfile::tempdir().unwrap());
    let body = bytes(2 * 1024 * KIB); // 8 parts of 256 KiB
    let large = store.put("large", body.clone());
    let (fetcher, journal_path, journal) = interrupted(&store, tmp.path(), &large).await;
    let done = journal["done"].as_array().unwrap().len();

    // One journaled part's bytes go bad on disk (a torn write, power loss): refetched.
    let partial = journal_path.with_extension("");
    let first_done = journal["done"][0][0].as_u64().unwrap();
    let file = std::fs::OpenOptions::new()
        .write(true)
        .open(&partial)
        .unwrap();
    std::os::unix::fs::FileExt::write_at(&file, b"garbage", first_done * 256 * KIB + 10).unwrap();
    drop(file);

    let before = gets(&store).len();
    assert_eq!(fetch(&fetcher, &large).await.unwrap(), body.len() as u64);
    let refetched = gets(&store).len() - before;
    assert_eq!(refetched, 8 - done + 1, "the missing parts and the bad one");
    assert_eq!(std::fs::read(tmp.path().join("large")).unwrap(), body);
    assert_eq!(entries(tmp.path()), ["large"], "partial and journal gone");
    let resumed = fetcher
        .bucket
        .stats()
        .resumed_bytes
        .load(std::sync::atomic::Ordering::Relaxed);
    assert_eq!(resumed, (done as u64 - 1) * 256 * KIB);
}

/// An object with no checksum of its own: its journal's parts still carry CRCs, so a part
/// the journal lists whose bytes were lost (a power loss before they reached the disk) is
/// fetched again instead of trusted.
#[tokio::test]
async fn a_resumed_partial_of_an_object_without_a_checksum_still_checks_each_part() {
    let (store, tmp) = (Arc::new(FakeStore::default()), tempfile::tempdir().unwrap());
    let body = bytes(2 * 1024 * KIB);
    let large = store.put_unchecked("large", body.clone());
    let (fetcher, journal_path, journal) = interrupted(&store, tmp.path(), &large).await;
    let done = journal["done"].as_array().unwrap().len();
    assert!(
        journal["done"]
            .as_array()
            .unwrap()
            .iter()
            .all(|part| part[2].as_u64().unwrap() != 0),
        "each part has a CRC: {journal}"
    );

    // A journaled part's bytes never reached the disk: zeros where they should be.
    let file = std::fs::OpenOptions::new()
        .write(true)
        .open(journal_path.with_extension(""))
        .unwrap();
    let first_done = journal["done"][0][0].as_u64().unwrap();
    std::os::unix::fs::FileExt::write_at(&file, &[0; 4096], first_done * 256 * KIB).unwrap();
    drop(file);

    let before = gets(&store).len();
    assert_eq!(fetch(&fetcher, &large).await.unwrap(), body.len() as u64);
    assert_eq!(gets(&store).len() - before, 8 - done + 1);
    assert_eq!(std::fs::read(tmp.path().join("large")).unwrap(), body);
}

#[tokio::test]
async fn a_partial_of_an_object_replaced_since_is_fetched_anew() {
    let (store, tmp) = (Arc::new(FakeStore::default()), tempfile::tempdir().unwrap());
    let old = store.put("large", bytes(2 * 1024 * KIB));
    let stall = Fault::Stall(Duration::from_secs(30));
    store.fail(
        "large",
        [Fault::Pass, Fault::Pass, stall, stall, stall, stall, stall],
    );
    let fetcher = fetcher(&store, tmp.path());
    cancel(&fetcher, &old).await;
    let new_body = vec![7u8; 2 * 1024 * 1024];
    let new = store.put("large", new_body.clone()); // another ETag
    let before = gets(&store).len();
    fetch(&fetcher, &new).await.unwrap();
    assert_eq!(gets(&store).len() - before, 8, "every part fetched again");
    assert_eq!(std::fs::read(tmp.path().join("large")).unwrap(), new_body);
    assert_eq!(entries(tmp.path()), ["large"]);
}

#[test]
fn parts_grow_with_the_object_to_at_most_sixteen() {
    const MIB: u64 = 1 << 20;
    let parts = PartOptions {
        part_size: 8 * MIB,
        threshold: 8 * MIB,
    };
    // Up to 16 parts: the part size asked for.
    assert_eq!(parts.part_size_for(100 * MIB), 8 * MIB);
    assert_eq!(parts.part_size_for(128 * MIB), 8 * MIB);
    // Above: 16 parts, each a multiple of it.
    assert_eq!(parts.part_size_for(128 * MIB + 1), 16 * MIB);
    assert_eq!(parts.part_size_for(512 * MIB), 32 * MIB);
    // Never above 64 MiB (unless asked for larger).
    assert_eq!(parts.part_size_for(10 << 30), 64 * MIB);
    let big = PartOptions {
        part_size: 100 * MIB,
        threshold: 8 * MIB,
    };
    assert_eq!(big.part_size_for(10 << 30), 100 * MIB);
    let small = PartOptions {
        part_size: 64 * 1024,
        threshold: 256 * 1024,
    };
    assert_eq!(small.part_size_for(3 * MIB), 192 * 1024);
}
