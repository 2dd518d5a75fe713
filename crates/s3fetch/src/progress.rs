//! Progress events and the counters behind the run's summary.
//!
//! A [`Reporter`] gets small event hooks from the listing and download tasks (so it must be
//! `Send + Sync` and cheap); every hook has an empty default. The CLI renders them, the Python
//! bindings forward them; [`Summary`] is what a run returns.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::error::Error;
use crate::object::ObjectInfo;
use crate::s3::retry::RetryStats;

/// What became of one object.
#[derive(Debug)]
pub struct DownloadResult {
    /// The object's key.
    pub key: String,
    /// Where the object was (or would have been) written; `None` when the key was refused.
    pub dest: Option<PathBuf>,
    /// Bytes written for a download (the listed size), the object's size for a skip, 0 for
    /// a failure.
    pub size: u64,
    /// The object's ETag, when known.
    pub etag: Option<String>,
    /// From the object's turn to its outcome (its GETs, the write and the rename).
    pub elapsed: Duration,
    /// Downloaded, skipped or failed.
    pub outcome: Outcome,
}

/// Downloaded, skipped or failed: one of the three, with what it needs.
#[derive(Debug)]
pub enum Outcome {
    /// The file is in place (in a dry run: would have been written).
    Downloaded,
    /// Not downloaded, for this reason (no GET was sent for it).
    Skipped(SkipReason),
    /// Failed; the error says why.
    Failed(Error),
}

impl DownloadResult {
    /// Downloaded (or, in a dry run, listed).
    pub fn is_success(&self) -> bool {
        matches!(self.outcome, Outcome::Downloaded)
    }

    /// The error, for a failure.
    pub fn error(&self) -> Option<&Error> {
        match &self.outcome {
            Outcome::Failed(error) => Some(error),
            _ => None,
        }
    }
}

/// Receives events as the run goes. Called concurrently from many tasks: keep hooks quick.
pub trait Reporter: Send + Sync {
    /// A key matched the filter and will be downloaded (or printed, in a dry run).
    fn object_found(&self, _object: &ObjectInfo) {}
    /// The listing is complete: `found` objects matched in all.
    fn listing_finished(&self, _found: u64) {}
    /// The GET for this object is about to be sent.
    fn download_started(&self, _object: &ObjectInfo) {}
    /// `bytes` more bytes of `key` were written.
    fn bytes_written(&self, _key: &str, _bytes: u64) {}
    /// The object is done: downloaded, skipped (its file is up to date, or it is archived)
    /// or failed ([`Outcome`]).
    fn download_finished(&self, _result: &DownloadResult) {}
    /// Something the user should know that is no failure: the store lists out of order, so
    /// the listing goes on another way. The CLI prints it on stderr, Python warns.
    fn warning(&self, _message: &str) {}
    /// Something the run tells once that is neither a warning nor a failure: it waits for
    /// another s3fetch that holds the download directory's lock (`lock`), and whom. The CLI
    /// prints it on stderr, Python writes it to `sys.stderr`.
    fn notice(&self, _message: &str) {}
}

/// Why an object was skipped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SkipReason {
    /// Its file is up to date (`skip_existing`, `sync`, `compare`).
    UpToDate,
    /// It is in an archive storage class (`GLACIER`, `DEEP_ARCHIVE`) and not restored, so a
    /// GET cannot succeed; `include_archived` tries such objects anyway.
    Archived,
}

impl SkipReason {
    /// As reports write it: `"up to date"`, `"archived"`.
    pub fn as_str(self) -> &'static str {
        match self {
            SkipReason::UpToDate => "up to date",
            SkipReason::Archived => "archived",
        }
    }
}

/// A reporter that ignores every event.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoReporter;

impl Reporter for NoReporter {}

/// What a run did.
#[derive(Debug, Default)]
pub struct Summary {
    /// Keys that matched the filter.
    pub objects_found: u64,
    /// Objects written into place.
    pub objects_downloaded: u64,
    /// Bytes of the objects written into place.
    pub bytes_downloaded: u64,
    /// Objects not downloaded on purpose: their files were up to date already
    /// (`skip_existing`, `sync`), or they are archived ([`Summary::objects_archived`]).
    pub objects_skipped: u64,
    /// Of the skipped objects, those archived (`GLACIER`, `DEEP_ARCHIVE`, not restored).
    pub objects_archived: u64,
    /// The shard this run took, if it took one.
    pub shard: Option<crate::keyspace::Shard>,
    /// A range shard's keys (from its plan); `None` for a hash shard or no shard.
    pub shard_range: Option<crate::keyspace::KeyRange>,
    /// How long the run took, from the start of [`Downloader::run`](crate::Downloader::run)
    /// to the summary.
    pub elapsed: Duration,
    /// One entry per object that failed, in the order they failed.
    pub failures: Vec<Failure>,
    /// True if the run was cancelled before it finished.
    pub cancelled: bool,
    /// True if nothing was downloaded on purpose (dry run).
    pub dry_run: bool,
    /// Requests tried again after a transient failure.
    pub retries: u64,
    /// Requests that continued a broken body from its last byte.
    pub resumes: u64,
    /// Times the server asked to slow down.
    pub throttled: u64,
    /// Objects whose bytes were checked against a checksum from the server.
    pub verified: u64,
    /// Bytes of large objects continued from partial files an earlier run left, not fetched
    /// again (counted in `bytes_downloaded` too).
    pub bytes_resumed: u64,
    /// Large objects left unfinished as resumable partial files (an interrupted run).
    pub partials_kept: u64,
    /// With `max_memory`: the most bytes of bodies the run held in memory at once (received
    /// and not yet written), never above the cap; 0 without a cap.
    pub memory_peak: u64,
}

impl Summary {
    /// True when every found object was downloaded (or, in a dry run, listed) and the run
    /// was not cancelled.
    pub fn is_success(&self) -> bool {
        self.failures.is_empty() && !self.cancelled
    }
}

/// An object that could not be downloaded.
#[derive(Debug)]
pub struct Failure {
    /// The object's key.
    pub key: String,
    /// Why it failed.
    pub error: Error,
}

/// Every counter of a run, shared by the download tasks; turned into the [`Summary`] at the
/// end, in one place.
#[derive(Debug)]
pub(crate) struct Tally {
    pub found: AtomicU64,
    pub downloaded: AtomicU64,
    pub bytes: AtomicU64,
    pub skipped: AtomicU64,
    pub archived: AtomicU64,
    pub failures: Mutex<Vec<Failure>>,
    /// What the requests counted (retries, resumes, verified checksums), kept by the
    /// run's buckets.
    pub requests: Arc<RetryStats>,
}

impl Tally {
    pub(crate) fn new(requests: Arc<RetryStats>) -> Self {
        Tally {
            found: AtomicU64::default(),
            downloaded: AtomicU64::default(),
            bytes: AtomicU64::default(),
            skipped: AtomicU64::default(),
            archived: AtomicU64::default(),
            failures: Mutex::default(),
            requests,
        }
    }

    pub(crate) fn record(&self, reporter: &dyn Reporter, result: DownloadResult) {
        reporter.download_finished(&result);
        match result.outcome {
            Outcome::Downloaded => {
                self.downloaded.fetch_add(1, Ordering::Relaxed);
                self.bytes.fetch_add(result.size, Ordering::Relaxed);
            }
            Outcome::Skipped(reason) => {
                self.skipped.fetch_add(1, Ordering::Relaxed);
                if reason == SkipReason::Archived {
                    self.archived.fetch_add(1, Ordering::Relaxed);
                }
            }
            Outcome::Failed(error) => self
                .failures
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(Failure {
                    key: result.key,
                    error,
                }),
        }
    }

    /// The run's summary: `partials_kept` partial files were left to resume.
    pub(crate) fn into_summary(
        self,
        elapsed: Duration,
        cancelled: bool,
        dry_run: bool,
        partials_kept: u64,
    ) -> Summary {
        let requests = &self.requests;
        Summary {
            retries: requests.retries.load(Ordering::Relaxed),
            resumes: requests.resumes.load(Ordering::Relaxed),
            throttled: requests.throttled.load(Ordering::Relaxed),
            verified: requests.verified.load(Ordering::Relaxed),
            bytes_resumed: requests.resumed_bytes.load(Ordering::Relaxed),
            partials_kept,
            memory_peak: 0,
            objects_found: self.found.into_inner(),
            objects_downloaded: self.downloaded.into_inner(),
            bytes_downloaded: self.bytes.into_inner(),
            objects_skipped: self.skipped.into_inner(),
            objects_archived: self.archived.into_inner(),
            elapsed,
            failures: self
                .failures
                .into_inner()
                .unwrap_or_else(|e| e.into_inner()),
            cancelled,
            dry_run,
            ..Summary::default()
        }
    }
}
