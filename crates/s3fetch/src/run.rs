//! The run: listing and downloading at once.
//!
//! ```text
//! list task ──(bounded channel of Listed)──► dispatcher ──(semaphore permit each)──► JoinSet of
//!   pages, filter,                            key -> path, folder conflicts           GET + atomic write
//!   folder verdicts
//! ```
//! The listing task sends wanted objects as it pages, each with what the listing knows of the
//! folders on its path (a key `a` beside `a/b` takes the path: [`crate::select::folders`]);
//! the dispatcher takes a permit before it takes the next object ([`dispatch`]). Each task
//! records its own outcome; a failed object never stops the others.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use tokio::sync::{mpsc, OnceCell, Semaphore};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::error::{Error, Result};
use crate::fetch::skip::{file_is_up_to_date, Skip};
use crate::fetch::{Disk, Fetcher, PartOptions};
use crate::object::ObjectInfo;
use crate::options::{DownloadOptions, Validated};
use crate::paths;
use crate::progress::{DownloadResult, NoReporter, Outcome, Reporter, SkipReason, Summary, Tally};
use crate::s3::client::Connection;
use crate::s3::limit::{Budget, Permit};
use crate::s3::retry::{RetryPolicy, RetryStats};
use crate::s3::{Bucket, Settings, S3};
use crate::select::filter::KeyFilter;
use crate::select::folders::Parent;
use crate::select::listing::{Listed, Order};
use crate::select::source::Source;
use crate::uri::{is_directory_bucket, S3Uri};
use crate::write::{Acquired, DirLock, LOCK_FILE};

/// Downloads everything `options` selects; see [`Downloader`] to receive progress events.
pub async fn download(options: DownloadOptions) -> Result<Summary> {
    Downloader::new(options).run().await
}

/// A run with its options and reporter.
pub struct Downloader {
    options: DownloadOptions,
    reporter: Arc<dyn Reporter>,
}

impl Downloader {
    /// A run of `options` that sends progress events nowhere until `reporter` is set.
    pub fn new(options: DownloadOptions) -> Self {
        Downloader {
            options,
            reporter: Arc::new(NoReporter),
        }
    }

    /// Sends progress events to `reporter`.
    pub fn reporter(mut self, reporter: Arc<dyn Reporter>) -> Self {
        self.reporter = reporter;
        self
    }

    /// Runs to completion on a new Tokio runtime, for callers without one.
    pub fn run_blocking(self) -> Result<Summary> {
        tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .map_err(Error::Runtime)?
            .block_on(self.run())
    }

    /// Lists and downloads. `Err` means the run could not start (the options are checked
    /// first, see [`DownloadOptions`]) or the listing failed; failures of single objects are
    /// in [`Summary::failures`].
    ///
    /// Cancelling the token (or dropping the future) stops the listing and aborts the
    /// downloads, whose temporary files are removed as they drop.
    pub async fn run(self) -> Result<Summary> {
        let started = Instant::now();
        let mut options = self.options.validate()?;
        options.prepare()?;
        let reporter = self.reporter;
        // Held to the end of the run, temporary files removed, and released as it drops.
        let _lock = match options.lock {
            false => None,
            true => match lock(&options, &*reporter).await? {
                Some(lock) => Some(lock),
                None => {
                    let tally = Tally::new(Arc::new(RetryStats::default()));
                    return Ok(tally.into_summary(started.elapsed(), true, false, 0));
                }
            },
        };
        let requests = Requests::connect(&options).await;
        let settings = options.settings();
        let uri = options.uri.clone();
        let objects = Arc::new(requests.bucket(&uri, settings).await);
        let source = source(&options, &requests, &objects, settings).await;
        // Room for a few pages ahead of the downloads, and no more.
        let (tx, rx) = mpsc::channel::<Listed>(options.concurrent_downloads.max(1000));
        let mut lister = tokio::spawn({
            let (filter, reporter) = (options.filter.clone(), reporter.clone());
            let (uri, delimiter) = (uri.clone(), options.delimiter.clone());
            async move { source.send(&uri, &delimiter, &filter, &*reporter, tx).await }
        });
        let _abort_lister = AbortOnDrop(lister.abort_handle());
        let job = Arc::new(Job::new(&options, &requests, objects, reporter.clone()));
        let (mut tasks, mut cancelled) =
            dispatch(&job, &requests.budget, rx, &options.cancel).await?;
        let listed = match cancelled {
            true => {
                lister.abort();
                tasks.abort_all();
                None
            }
            false => Some(match (&mut lister).await {
                Ok(result) => result,
                Err(join) if join.is_panic() => std::panic::resume_unwind(join.into_panic()),
                Err(_) => Err(Error::Cancelled),
            }),
        };
        if let Some(Ok(found)) = listed {
            reporter.listing_finished(found);
        }
        cancelled |= drain(tasks, &options.cancel, cancelled).await;
        let partials_kept = job.clean_up(matches!(listed, Some(Ok(_)))).await;
        if let Some(Err(error)) = listed {
            return Err(error);
        }
        let tally = Arc::into_inner(job).expect("every task has finished").tally;
        let mut summary =
            tally.into_summary(started.elapsed(), cancelled, options.dry_run, partials_kept);
        summary.memory_peak = requests.budget.memory_peak();
        if let Some(path) = &options.failed_keys {
            let keys: Vec<&str> = summary.failures.iter().map(|f| f.key.as_str()).collect();
            crate::write::write_lines(path, &keys).map_err(|source| Error::Output {
                path: path.clone(),
                source,
            })?;
        }
        summary.shard = options.shard;
        summary.shard_range = options.shard_range;
        Ok(summary)
    }
}

/// The download directory's lock, waited for if another run holds it (the reporter told
/// whom the run waits for); `None` when cancelled while waiting.
async fn lock(options: &Validated, reporter: &dyn Reporter) -> Result<Option<DirLock>> {
    let root = options.dir.root();
    let acquired = DirLock::acquire(root, &options.cancel, |holder| {
        reporter.notice(&format!(
            "waiting for {holder} to finish downloading into {} (it holds the directory's lock); then fetching only what it did not",
            root.display()
        ));
    })
    .await?;
    Ok(match acquired {
        Acquired::Held { lock, waited } => {
            tracing::debug!(waited, "holding the download directory's lock");
            Some(lock)
        }
        Acquired::Cancelled => None,
    })
}

/// What every bucket of a run shares: the connection, the request budget, the retry policy
/// and its counts.
pub(crate) struct Requests {
    connection: Connection,
    pub(crate) budget: Arc<Budget>,
    pub(crate) stats: Arc<RetryStats>,
    retry: RetryPolicy,
}

impl Requests {
    /// The run's connection (the given client or a new one), budget and retry policy.
    pub(crate) async fn connect(options: &Validated) -> Requests {
        let connection = match options.client.clone() {
            Some(client) => client.into(),
            None => options.client_options.connect(options.tuning).await,
        };
        Requests {
            connection,
            budget: Arc::new(
                Budget::new(options.concurrent_downloads, options.list_concurrency)
                    .with_bandwidth(options.max_bandwidth)
                    .with_memory(options.max_memory),
            ),
            stats: Arc::new(RetryStats::default()),
            retry: options.retry,
        }
    }

    /// The bucket of `uri` (its prefix named in messages), its requests made so.
    pub(crate) async fn bucket(&self, uri: &S3Uri, settings: Settings) -> Bucket {
        let store = S3::new(&self.connection, uri.bucket.clone(), settings).await;
        Bucket::new(
            Arc::new(store),
            uri.bucket.clone(),
            uri.prefix.clone(),
            self.budget.clone(),
            self.retry,
            self.stats.clone(),
        )
    }
}

/// Where the run's objects come from: the keys given, an inventory's report (its manifest
/// often in another bucket), or a listing of `objects` in the order its store keeps.
pub(crate) async fn source(
    options: &Validated,
    requests: &Requests,
    objects: &Arc<Bucket>,
    settings: Settings,
) -> Source {
    match (&options.keys, &options.inventory) {
        (Some(keys), _) => Source::Keys(keys.clone()),
        (None, Some(manifest)) => {
            let settings = Settings {
                verify: false,
                directory: is_directory_bucket(&manifest.bucket),
                ..settings
            };
            Source::Inventory {
                bucket: requests.bucket(manifest, settings).await,
                manifest: manifest.clone(),
            }
        }
        (None, None) => Source::Listing {
            order: match (options.directory, objects.promises_order()) {
                (true, _) => Order::Unordered,
                (false, true) => Order::Promised,
                (false, false) => Order::Checked,
            },
            bucket: objects.clone(),
            concurrency: options.list_concurrency,
        },
    }
}

/// Hands the objects `rx` brings to download tasks, a budget permit each, until the source is
/// done or the run is cancelled: the tasks still running, and whether it was cancelled.
///
/// The permit is taken before the next object, so at most `concurrency` downloads run and a
/// slow download stage pauses the listing through the full channel.
async fn dispatch(
    job: &Arc<Job>,
    budget: &Budget,
    mut rx: mpsc::Receiver<Listed>,
    cancel: &CancellationToken,
) -> Result<(JoinSet<()>, bool)> {
    let mut tasks = JoinSet::new();
    let mut spare = None;
    loop {
        while tasks.try_join_next().is_some() {}
        let permit = match spare.take() {
            Some(permit) => permit,
            None => tokio::select! {
                biased;
                _ = cancel.cancelled() => return Ok((tasks, true)),
                permit = budget.transfer() => permit?,
            },
        };
        let object = tokio::select! {
            biased;
            _ = cancel.cancelled() => return Ok((tasks, true)),
            object = rx.recv() => object,
        };
        let Some(listed) = object else {
            return Ok((tasks, false));
        };
        job.tally.found.fetch_add(1, Ordering::Relaxed);
        // An up-to-date file or an archived object is told here, without a task: the permit
        // serves the next.
        let Some(listed) = job.unless_skipped_at_once(listed) else {
            spare = Some(permit);
            continue;
        };
        let job = job.clone();
        tasks.spawn(async move { job.fetch(listed, permit).await });
    }
}

/// Waits for every task, also aborted ones, so no temporary file outlives the run; a cancel
/// meanwhile aborts the downloads still running. Whether it was cancelled meanwhile.
async fn drain(mut tasks: JoinSet<()>, cancel: &CancellationToken, cancelled: bool) -> bool {
    let mut cancelled_now = false;
    loop {
        let joined = tokio::select! {
            biased;
            _ = cancel.cancelled(), if !cancelled && !cancelled_now => {
                cancelled_now = true;
                tasks.abort_all();
                continue;
            }
            joined = tasks.join_next() => joined,
        };
        let Some(joined) = joined else {
            return cancelled_now;
        };
        if let Err(join) = joined {
            if join.is_panic() {
                std::panic::resume_unwind(join.into_panic());
            }
        }
    }
}

/// What every download task shares.
struct Job {
    fetcher: Fetcher,
    prefix: String,
    delimiter: String,
    filter: KeyFilter,
    /// Folder names the listing did not see, once asked: is each a wanted key?
    folder_keys: Mutex<HashMap<String, Arc<OnceCell<bool>>>>,
    tally: Tally,
    dry_run: bool,
    skip: Skip,
    /// The objects come from `keys_from`, not a listing: each takes a HEAD first.
    from_keys: bool,
    /// Archived objects are tried instead of skipped.
    include_archived: bool,
    /// The run holds the directory's lock: its lock file is no object's file.
    lock: bool,
}

impl Job {
    fn new(
        options: &Validated,
        requests: &Requests,
        bucket: Arc<Bucket>,
        reporter: Arc<dyn Reporter>,
    ) -> Self {
        Job {
            fetcher: Fetcher {
                bucket,
                dir: options.dir.clone(),
                reporter,
                parts: PartOptions {
                    part_size: options.part_size,
                    threshold: options.multipart_threshold,
                },
                preserve_mtime: options.preserve_mtime,
                resume: options.resume,
                disk: Disk::new(options.tuning.fs),
                dir_ops: Semaphore::new(
                    std::thread::available_parallelism()
                        .map_or(2, |n| n.get())
                        .max(2),
                ),
            },
            prefix: options.uri.prefix.clone(),
            delimiter: options.delimiter.clone(),
            filter: options.filter.clone(),
            folder_keys: Mutex::default(),
            tally: Tally::new(requests.stats.clone()),
            dry_run: options.dry_run,
            skip: options.skip,
            include_archived: options.include_archived,
            from_keys: options.keys.is_some(),
            lock: options.lock,
        }
    }

    /// Once every task has ended: waits for the file writes of aborted ones, and after a
    /// complete listing removes the partial files of selected keys that were not listed (of
    /// objects since deleted: nothing will resume them). How many partial files stay.
    async fn clean_up(&self, listing_complete: bool) -> u64 {
        self.fetcher.disk.settle().await;
        if listing_complete && !self.from_keys && !self.dry_run {
            let (dir, prefix) = (&self.fetcher.dir, self.prefix.as_str());
            let removed = dir
                .remove_unwanted_partials(|key| key.starts_with(prefix) && self.filter.wants(key));
            if removed > 0 {
                tracing::info!(removed, "removed partial files of objects no longer listed");
            }
        }
        self.fetcher.dir.partials_kept()
    }

    async fn fetch(&self, listed: Listed, permit: Permit) {
        let started = Instant::now();
        let Listed { mut object, parent } = listed;
        let reporter = &self.fetcher.reporter;
        if self.from_keys {
            match self.fetcher.bucket.head(&object.key, None).await {
                Ok(head) => {
                    object.size = head.length.unwrap_or(0);
                    object.etag = head.etag;
                    object.last_modified = head.last_modified;
                    // The size and time limits could not be asked of the key alone.
                    if !self.filter.wants_object(&object) {
                        self.tally.found.fetch_sub(1, Ordering::Relaxed);
                        return;
                    }
                    reporter.object_found(&object);
                }
                Err(error) => {
                    let dest = Some(self.local_path(&object.key));
                    return self.record(object, dest, Err(error), started);
                }
            }
        }
        let relative = paths::relative_path(&self.prefix, &object.key, &self.delimiter)
            .and_then(
                |relative| match self.lock && relative == Path::new(LOCK_FILE) {
                    true => Err(format!(
                        "its file would be the download directory's lock file {LOCK_FILE}"
                    )),
                    false => Ok(relative),
                },
            )
            .map_err(|reason| Error::UnsafeKey {
                key: object.key.clone(),
                reason,
            });
        let (dest, outcome) = match relative {
            Err(error) => (None, Err(error)),
            Ok(relative) => {
                let dest = self.fetcher.dir.root().join(&relative);
                let outcome = match self.folder_taken_by(&object.key, parent).await {
                    Err(error) => Err(error),
                    // A directory from an earlier run stays: the key under it goes in.
                    Ok(Some(file_key)) if !self.is_directory(&file_key) => Err(Error::Conflict {
                        key: object.key.clone(),
                        path: self.local_path(&file_key),
                        file_key,
                    }),
                    Ok(_) if self.is_up_to_date(&object, &relative, &dest).await => {
                        return self.skipped(object, &dest, SkipReason::UpToDate);
                    }
                    Ok(_) if self.dry_run => Ok(object.size),
                    Ok(_) => {
                        reporter.download_started(&object);
                        // Boxed: the download's future is large, and each object's task is
                        // moved into place when spawned (a tenth of a sync run's CPU went
                        // to copying it for objects that were then skipped).
                        Box::pin(self.fetcher.fetch(&object, &relative, permit)).await
                    }
                };
                (Some(dest), outcome)
            }
        };
        // Archived after all (a storage class the listing does not tell, such as
        // Intelligent-Tiering's archive tiers, or a `keys_from` key): skipped, not failed.
        if let (Some(dest), Err(error)) = (&dest, &outcome) {
            if !self.include_archived && error.code() == Some("InvalidObjectState") {
                return self.skipped(object, dest, SkipReason::Archived);
            }
        }
        self.record(object, dest, outcome, started);
    }

    /// `listed`, unless it is told skipped at once, without a task (counted and reported
    /// then): an archived object (not restored) that the run leaves alone, as its listing
    /// says, or a file up to date (see [`Job::up_to_date_at_once`]).
    fn unless_skipped_at_once(&self, listed: Listed) -> Option<Listed> {
        if listed.object.archived && !self.include_archived {
            let dest = self.local_path(&listed.object.key);
            self.skipped(listed.object, &dest, SkipReason::Archived);
            return None;
        }
        match self.up_to_date_at_once(&listed) {
            Some(dest) => {
                self.skipped(listed.object, &dest, SkipReason::UpToDate);
                None
            }
            None => Some(listed),
        }
    }

    /// Counts and reports `object` as skipped for `reason`.
    fn skipped(&self, object: ObjectInfo, dest: &Path, reason: SkipReason) {
        self.tally.record(
            &*self.fetcher.reporter,
            DownloadResult {
                key: object.key,
                dest: Some(dest.to_owned()),
                size: object.size,
                etag: object.etag,
                elapsed: std::time::Duration::ZERO,
                outcome: Outcome::Skipped(reason),
            },
        );
    }

    fn record(
        &self,
        object: ObjectInfo,
        dest: Option<PathBuf>,
        outcome: Result<u64>,
        started: Instant,
    ) {
        let (size, outcome) = match outcome {
            Ok(size) => (size, Outcome::Downloaded),
            Err(error) => (0, Outcome::Failed(error)),
        };
        self.tally.record(
            &*self.fetcher.reporter,
            DownloadResult {
                key: object.key,
                dest,
                size,
                etag: object.etag,
                elapsed: started.elapsed(),
                outcome,
            },
        );
    }

    /// For a sync run: the file of `listed` if it is up to date, decided at once — the
    /// simple case of a listed object whose directory was swept and whose path has no folder
    /// question; the rest goes the task's way ([`Job::fetch`]).
    fn up_to_date_at_once(&self, listed: &Listed) -> Option<PathBuf> {
        if self.skip == Skip::Never || self.from_keys || listed.parent != Parent::Clear {
            return None;
        }
        let object = &listed.object;
        let relative = paths::relative_path(&self.prefix, &object.key, &self.delimiter).ok()?;
        if !self.fetcher.dir.is_swept(&relative) {
            return None;
        }
        let dest = self.fetcher.dir.root().join(&relative);
        let (size, modified) = (object.size, object.last_modified);
        if !file_is_up_to_date(
            &self.fetcher.dir,
            &dest,
            size,
            modified,
            self.skip,
            object.etag.as_deref(),
        ) {
            return None;
        }
        Some(dest)
    }

    /// Whether `dest` already holds `object` by the run's [`Skip`] rule. Also sweeps the
    /// file's directory for dead runs' temporary files (a run that skips everything still
    /// cleans up after a killed one).
    async fn is_up_to_date(&self, object: &ObjectInfo, relative: &Path, dest: &Path) -> bool {
        if self.skip == Skip::Never {
            return false;
        }
        let (size, modified, rule) = (object.size, object.last_modified, self.skip);
        let etag = object.etag.clone();
        // A file's metadata is read in place (a few microseconds: a thread hop per object
        // would cost more than the check, and a sync of 100,000 up-to-date files is all
        // checks); only a directory's first sweep goes to the blocking pool.
        if self.fetcher.dir.is_swept(relative) {
            return file_is_up_to_date(
                &self.fetcher.dir,
                dest,
                size,
                modified,
                rule,
                etag.as_deref(),
            );
        }
        let (dir, relative, dest) = (
            self.fetcher.dir.clone(),
            relative.to_owned(),
            dest.to_owned(),
        );
        self.fetcher
            .disk
            .pool(move || {
                dir.sweep(&relative);
                Ok(file_is_up_to_date(
                    &dir,
                    &dest,
                    size,
                    modified,
                    rule,
                    etag.as_deref(),
                ))
            })
            .await
            .unwrap_or(false)
    }

    /// The wanted key that takes a folder on `key`'s path as its file, if any: from the
    /// listing, or else asked of the server once per folder name in the run.
    async fn folder_taken_by(&self, key: &str, parent: Parent) -> Result<Option<String>> {
        let names = match parent {
            Parent::Clear => return Ok(None),
            Parent::File(name) => return Ok(Some(name)),
            Parent::Unknown(names) => names,
        };
        for name in names {
            let cell = self
                .folder_keys
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .entry(name.clone())
                .or_default()
                .clone();
            let wanted = cell
                .get_or_try_init(|| async {
                    if !self.filter.wants(&name) {
                        return Ok::<_, Error>(false);
                    }
                    tracing::debug!(key, folder = name, "asking whether the folder is a key");
                    // A key the size and time limits leave out takes no folder, as in a
                    // listing: its HEAD tells its size and time.
                    Ok(match self.fetcher.bucket.find(&name).await? {
                        Some(head) => self.filter.wants_object(&ObjectInfo {
                            key: name.clone(),
                            size: head.length.unwrap_or(0),
                            etag: head.etag,
                            last_modified: head.last_modified,
                            archived: false,
                        }),
                        None => false,
                    })
                })
                .await?;
            if *wanted {
                return Ok(Some(name));
            }
        }
        Ok(None)
    }

    /// Whether `key`'s local path is a directory (not a symlink to one).
    fn is_directory(&self, key: &str) -> bool {
        std::fs::symlink_metadata(self.local_path(key)).is_ok_and(|meta| meta.is_dir())
    }

    fn local_path(&self, key: &str) -> PathBuf {
        let root = self.fetcher.dir.root();
        paths::relative_path(&self.prefix, key, &self.delimiter)
            .map_or_else(|_| root.to_owned(), |relative| root.join(relative))
    }
}

pub(crate) struct AbortOnDrop(pub(crate) tokio::task::AbortHandle);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}
