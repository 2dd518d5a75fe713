//! The run: listing and downloading at once.
//!
//! ```text
//! list task ──(bounded channel of Listed)──► dispatcher ──(semaphore permit each)──► JoinSet of
//!   pages, filter,                            key -> path, folder conflicts           GET + atomic write
//!   folder verdicts
//! ```
//! The listing task sends wanted objects as it pages, each with what the listing knows of the
//! folders on its path (a key `a` beside `a/b` takes the path: see [`crate::folders`]); the
//! dispatcher takes a permit before it takes the next object, so at most `concurrency`
//! downloads run and a slow download stage pauses the listing through the full channel. Each
//! task records its own outcome; a failed object never stops the others. Cancelling the
//! token (or dropping the future) stops the listing and aborts the downloads, whose temporary
//! files are removed as they drop.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use tokio::sync::{mpsc, OnceCell, Semaphore};
use tokio::task::JoinSet;

use crate::bucket::{Bucket, Settings, S3};
use crate::error::{Error, Result};
use crate::filter::KeyFilter;
use crate::folders::Parent;
use crate::limit::{Budget, Permit};
use crate::listing::{self, Listed};
use crate::object::ObjectInfo;
use crate::options::{DownloadOptions, Skip};
use crate::paths;
use crate::progress::{DownloadResult, NoReporter, Reporter, SkipReason, Summary, Tally};
use crate::retry::RetryStats;
use crate::transfer::{Disk, Fetcher, PartOptions};
use crate::uri::is_directory_bucket;
use crate::write::DownloadDir;

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
    pub async fn run(self) -> Result<Summary> {
        let started = Instant::now();
        let Downloader { options, reporter } = self;
        let options = options.validate()?;
        let filter = options.filter;
        let job_filter = filter.clone();
        let concurrency = options.concurrent_downloads;
        let dir = Arc::new(options.dir);
        let connection = match options.client {
            Some(client) => client.into(),
            None => options.client_options.connect().await,
        };
        let cancel = options.cancel;
        let uri = options.uri;
        let tally = Arc::new(Tally::default());
        let stats = Arc::new(RetryStats::default());
        let budget = Arc::new(Budget::new(concurrency, options.list_concurrency));
        // The manifest's bucket (often another one), when the objects come from an inventory.
        let inventory = match options.inventory {
            Some(manifest) => {
                let settings = Settings {
                    verify: false,
                    requester_pays: options.requester_pays,
                    directory: is_directory_bucket(&manifest.bucket),
                };
                let store = S3::new(&connection, manifest.bucket.clone(), settings).await;
                let bucket = Bucket::new(
                    Arc::new(store),
                    manifest.bucket.clone(),
                    manifest.prefix.clone(),
                    budget.clone(),
                    options.retry,
                    stats.clone(),
                );
                Some((bucket, manifest))
            }
            None => None,
        };
        let settings = Settings {
            verify: options.verify,
            requester_pays: options.requester_pays,
            directory: options.directory,
        };
        let bucket = Arc::new(Bucket::new(
            Arc::new(S3::new(&connection, uri.bucket.clone(), settings).await),
            uri.bucket.clone(),
            uri.prefix.clone(),
            budget.clone(),
            options.retry,
            stats.clone(),
        ));

        let order = match (options.directory, bucket.promises_order()) {
            (true, _) => listing::Order::Unordered,
            (false, true) => listing::Order::Promised,
            (false, false) => listing::Order::Checked,
        };
        // Room for a few pages ahead of the downloads, and no more.
        let (tx, mut rx) = mpsc::channel::<Listed>(concurrency.max(1000));
        // A regex anchored on a literal (`^data/2024-`) lists only under that literal.
        let list_prefix = filter.narrow_prefix(&uri.prefix);
        let list_concurrency = options.list_concurrency;
        let delimiter = options.delimiter.clone();
        let from_keys = options.keys.is_some();
        let mut lister = tokio::spawn({
            let (bucket, reporter) = (bucket.clone(), reporter.clone());
            let keys = options.keys;
            let (source, prefix) = (uri.bucket.clone(), uri.prefix.clone());
            async move {
                if let Some(keys) = keys {
                    let objects = keys
                        .into_iter()
                        .filter(|k| filter.wants(k))
                        .map(|key| ObjectInfo {
                            key,
                            size: 0,
                            etag: None,
                            last_modified: None,
                            archived: false,
                        })
                        .collect();
                    return Ok(send_objects(objects, &delimiter, None, tx).await);
                }
                if let Some((bucket, manifest)) = inventory {
                    let objects =
                        crate::inventory::objects(&bucket, &manifest, &source, &prefix, |o| {
                            filter.wants_object(o)
                        })
                        .await?;
                    return Ok(send_objects(objects, &delimiter, Some(&*reporter), tx).await);
                }
                let Some(prefix) = list_prefix else {
                    return Ok(0);
                };
                let pages = Arc::new(listing::Pages {
                    bucket,
                    prefix: prefix.clone(),
                });
                listing::list_into(
                    pages,
                    &prefix,
                    &delimiter,
                    order,
                    list_concurrency,
                    &filter,
                    &*reporter,
                    tx,
                )
                .await
            }
        });
        let _abort_lister = AbortOnDrop(lister.abort_handle());

        let mut tasks = JoinSet::new();
        let job = Arc::new(Job {
            fetcher: Fetcher {
                bucket,
                dir,
                reporter: reporter.clone(),
                parts: PartOptions {
                    part_size: options.part_size,
                    threshold: options.multipart_threshold,
                },
                preserve_mtime: options.preserve_mtime,
                resume: options.resume,
                disk: Disk::default(),
                dir_ops: Semaphore::new(
                    std::thread::available_parallelism()
                        .map_or(2, |n| n.get())
                        .max(2),
                ),
            },
            prefix: uri.prefix.clone(),
            delimiter: options.delimiter,
            filter: job_filter,
            folder_keys: Mutex::default(),
            tally: tally.clone(),
            dry_run: options.dry_run,
            skip: options.skip,
            include_archived: options.include_archived,
            from_keys,
        });

        let mut cancelled = false;
        let mut spare = None;
        loop {
            while tasks.try_join_next().is_some() {}
            let permit = match spare.take() {
                Some(permit) => permit,
                None => tokio::select! {
                    biased;
                    _ = cancel.cancelled() => { cancelled = true; break }
                    permit = budget.transfer() => permit?,
                },
            };
            let object = tokio::select! {
                biased;
                _ = cancel.cancelled() => { cancelled = true; break }
                object = rx.recv() => object,
            };
            let Some(listed) = object else { break };
            tally.found.fetch_add(1, Ordering::Relaxed);
            // An up-to-date file or an archived object is told here, without a task: the
            // permit serves the next.
            if job.skipped_archived(&listed.object) || job.skipped_at_once(&listed) {
                spare = Some(permit);
                continue;
            }
            let job = job.clone();
            tasks.spawn(async move { job.fetch(listed, permit).await });
        }

        let listed = if cancelled {
            lister.abort();
            tasks.abort_all();
            None
        } else {
            Some(match (&mut lister).await {
                Ok(result) => result,
                Err(join) if join.is_panic() => std::panic::resume_unwind(join.into_panic()),
                Err(_) => Err(Error::Cancelled),
            })
        };
        if let Some(Ok(found)) = listed {
            reporter.listing_finished(found);
        }
        // Wait for every task, also aborted ones, so no temporary file outlives the run. A
        // cancel after the listing is done aborts the downloads still running.
        loop {
            let joined = tokio::select! {
                biased;
                _ = cancel.cancelled(), if !cancelled => {
                    cancelled = true;
                    tasks.abort_all();
                    continue;
                }
                joined = tasks.join_next() => joined,
            };
            let Some(joined) = joined else { break };
            if let Err(join) = joined {
                if join.is_panic() {
                    std::panic::resume_unwind(join.into_panic());
                }
            }
        }
        // File writes of aborted tasks run on: wait until they have finished or cleaned up.
        job.fetcher.disk.settle().await;
        // After a complete listing, a partial file of a selected key that was not listed is
        // of an object since deleted: nothing will resume it.
        if matches!(listed, Some(Ok(_))) && !from_keys && !options.dry_run {
            let prefix = uri.prefix.as_str();
            let removed = job
                .fetcher
                .dir
                .remove_unwanted_partials(|key| key.starts_with(prefix) && job.filter.wants(key));
            if removed > 0 {
                tracing::info!(removed, "removed partial files of objects no longer listed");
            }
        }
        let partials_kept = job.fetcher.dir.partials_kept();
        drop(job);
        if let Some(Err(error)) = listed {
            return Err(error);
        }
        let tally = Arc::into_inner(tally).expect("every task has finished");
        let mut summary = tally.into_summary(started.elapsed(), cancelled, options.dry_run);
        if let Some(path) = &options.failed_keys {
            let keys: Vec<&str> = summary.failures.iter().map(|f| f.key.as_str()).collect();
            crate::write::write_lines(path, &keys).map_err(|source| Error::Output {
                path: path.clone(),
                source,
            })?;
        }
        summary.shard = options.shard;
        summary.shard_range = options.shard_range;
        summary.retries = stats.retries.load(Ordering::Relaxed);
        summary.resumes = stats.resumes.load(Ordering::Relaxed);
        summary.throttled = stats.throttled.load(Ordering::Relaxed);
        summary.verified = stats.verified.load(Ordering::Relaxed);
        summary.bytes_resumed = stats.resumed_bytes.load(Ordering::Relaxed);
        summary.partials_kept = partials_kept;
        Ok(summary)
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
    tally: Arc<Tally>,
    dry_run: bool,
    skip: Skip,
    /// The objects come from `keys_from`, not a listing: each takes a HEAD first.
    from_keys: bool,
    /// Archived objects are tried instead of skipped.
    include_archived: bool,
}

impl Job {
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
        let relative =
            paths::relative_path(&self.prefix, &object.key, &self.delimiter).map_err(|reason| {
                Error::UnsafeKey {
                    key: object.key.clone(),
                    reason,
                }
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
                        self.tally.skipped.fetch_add(1, Ordering::Relaxed);
                        reporter.object_skipped(&object, &dest, SkipReason::UpToDate);
                        return;
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
                return self.skip_archived(&object, dest);
            }
        }
        self.record(object, dest, outcome, started);
    }

    /// For an archived object (not restored) that the run leaves alone: whether `object` is
    /// one, as its listing says; counts and reports it.
    fn skipped_archived(&self, object: &ObjectInfo) -> bool {
        if !object.archived || self.include_archived {
            return false;
        }
        self.skip_archived(object, &self.local_path(&object.key));
        true
    }

    fn skip_archived(&self, object: &ObjectInfo, dest: &Path) {
        self.tally.skipped.fetch_add(1, Ordering::Relaxed);
        self.tally.archived.fetch_add(1, Ordering::Relaxed);
        self.fetcher
            .reporter
            .object_skipped(object, dest, SkipReason::Archived);
    }

    fn record(
        &self,
        object: ObjectInfo,
        dest: Option<PathBuf>,
        outcome: Result<u64>,
        started: Instant,
    ) {
        let (success, size, error) = match outcome {
            Ok(size) => (true, size, None),
            Err(error) => (false, 0, Some(error)),
        };
        self.tally.record(
            &*self.fetcher.reporter,
            DownloadResult {
                key: object.key,
                dest,
                success,
                size,
                etag: object.etag,
                elapsed: started.elapsed(),
                error,
            },
        );
    }

    /// For a sync run: whether `listed`'s file is up to date, decided at once — the simple
    /// case of a listed object whose directory was swept and whose path has no folder
    /// question; the rest goes the task's way ([`Job::fetch`]). Counts and reports it.
    fn skipped_at_once(&self, listed: &Listed) -> bool {
        if self.skip == Skip::Never || self.from_keys || listed.parent != Parent::Clear {
            return false;
        }
        let object = &listed.object;
        let Ok(relative) = paths::relative_path(&self.prefix, &object.key, &self.delimiter) else {
            return false;
        };
        if !self.fetcher.dir.is_swept(&relative) {
            return false;
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
            return false;
        }
        self.tally.skipped.fetch_add(1, Ordering::Relaxed);
        self.fetcher
            .reporter
            .object_skipped(object, &dest, SkipReason::UpToDate);
        true
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

/// Whether the file at `dest` in `dir` stands for an object of `size` bytes last modified
/// at `modified` with `etag`, by `rule`.
fn file_is_up_to_date(
    dir: &DownloadDir,
    dest: &Path,
    size: u64,
    modified: Option<std::time::SystemTime>,
    rule: Skip,
    etag: Option<&str>,
) -> bool {
    let Ok(meta) = std::fs::symlink_metadata(dest) else {
        return false;
    };
    let same_time = || modified.is_some_and(|m| meta.modified().is_ok_and(|t| same_second(t, m)));
    meta.is_file()
        && meta.len() == size
        && match rule {
            Skip::Never => false,
            Skip::SameSize => true,
            Skip::SameSizeAndTime => same_time(),
            Skip::SameSizeTimeAndEtag => {
                same_time() && etag.is_some() && dir.recorded_etag(dest).as_deref() == etag
            }
        }
}

/// Whether two times fall in the same second since the epoch (S3 keeps LastModified to the
/// second; some file systems keep less than nanoseconds).
fn same_second(a: std::time::SystemTime, b: std::time::SystemTime) -> bool {
    let secs = |t: std::time::SystemTime| {
        t.duration_since(std::time::UNIX_EPOCH)
            .map_or(-1, |d| d.as_secs() as i64)
    };
    secs(a) == secs(b)
}

/// Sends wanted objects that did not come from a listing — a `keys_from` list (sizes
/// unknown until each key's HEAD) or an inventory — to the downloads, as a listing would;
/// returns how many were sent. A key that names a folder on another key's path takes it as
/// its file, as with a listing (see [`crate::folders`]). `found` reports each as found
/// (a `keys_from` key is reported after its HEAD instead).
async fn send_objects(
    objects: Vec<ObjectInfo>,
    delimiter: &str,
    found: Option<&dyn Reporter>,
    tx: mpsc::Sender<Listed>,
) -> u64 {
    let names: HashSet<&str> = objects.iter().map(|o| o.key.as_str()).collect();
    let mut sent = 0;
    let mut seen = HashSet::new();
    for object in &objects {
        let key = &object.key;
        if !seen.insert(key.as_str()) {
            continue; // listed twice: downloaded once
        }
        let parent = key
            .match_indices(delimiter)
            .map(|(at, _)| &key[..at])
            .find(|folder| names.contains(folder))
            .map_or(Parent::Clear, |folder| Parent::File(folder.to_owned()));
        if let Some(reporter) = found {
            reporter.object_found(object);
        }
        let object = object.clone();
        if tx.send(Listed { object, parent }).await.is_err() {
            break;
        }
        sent += 1;
    }
    sent
}

struct AbortOnDrop(tokio::task::AbortHandle);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}
