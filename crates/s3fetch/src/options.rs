//! What a run is asked to do ([`DownloadOptions`]), and the one place where that is checked.
//!
//! Callers (the CLI, the Python bindings, Rust code) fill in plain values; [`validate`]
//! turns them into the typed settings the engine runs on, or returns the first problem as a
//! typed [`Error`], before any request is sent. Nothing downstream checks these again.
//!
//! [`validate`]: DownloadOptions::validate

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use aws_sdk_s3::Client;
use tokio_util::sync::CancellationToken;

use crate::error::{Error, Result};
use crate::fetch::skip::Skip;
use crate::keyspace::{KeyRange, Shard, ShardBy};
use crate::plan::Plan;
use crate::s3::client::ClientOptions;
use crate::s3::retry::RetryPolicy;
use crate::s3::RequestPayer;
use crate::select::filter::{GlobRule, KeyFilter};
use crate::tuning::Tuning;
use crate::uri::S3Uri;
use crate::write::DownloadDir;

/// Default number of concurrent downloads: downloads of small objects wait on the network, not
/// the CPU, so this is far above the core count. 5,000 objects of 64 KiB from a store that
/// answers each GET after 20 ms took 1.8 s with 64, 1.0 s with 128 and 0.6 s with 256 on a
/// quiet 2-core machine (s5cmd, whose default is 256 workers: 1.5–1.9 s); above that the CPU
/// is the limit. `large` (4 × 512 MiB) took the same time with 64 and 256 (each object
/// fetches at most six parts at once), and memory stays bounded: a small object's body, held
/// until written, is at most 256 KiB.
pub const DEFAULT_CONCURRENCY: usize = 256;
/// Default number of list requests in flight.
pub const DEFAULT_LIST_CONCURRENCY: usize = 64;
/// Default separator of "directories" in keys.
pub const DEFAULT_DELIMITER: &str = "/";
/// Default size of a ranged part.
pub const DEFAULT_PART_SIZE: u64 = 8 * 1024 * 1024;
/// Default size above which objects are fetched in ranged parts.
pub const DEFAULT_MULTIPART_THRESHOLD: u64 = 16 * 1024 * 1024;
/// The longest idle timeout accepted (a day).
const MAX_IDLE_TIMEOUT: Duration = Duration::from_secs(86_400);
/// Sizes are accepted up to this (1 PiB).
const MAX_SIZE: u64 = 1 << 50;
/// The smallest `max_memory` accepted (it must also hold one part, `part_size`): below it a
/// download would run a handful of requests at once, a stream hold less than one part.
pub const MIN_MAX_MEMORY: u64 = 16 * 1024 * 1024;

/// Whether objects are verified against the checksum S3 keeps for them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ChecksumMode {
    /// Ask for each object's checksum and verify the bytes against it (see
    /// docs/guarantees.md).
    #[default]
    Enabled,
    /// Check lengths only (for stores that send wrong checksums).
    Disabled,
}

impl ChecksumMode {
    /// Every value's name, as [`str::parse`] takes them.
    pub const NAMES: [&'static str; 2] = ["enabled", "disabled"];

    /// The mode's name (`enabled`, `disabled`), as [`str::parse`] takes it.
    pub fn as_str(self) -> &'static str {
        match self {
            ChecksumMode::Enabled => "enabled",
            ChecksumMode::Disabled => "disabled",
        }
    }
}

impl std::fmt::Display for ChecksumMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for ChecksumMode {
    type Err = Error;
    fn from_str(text: &str) -> Result<Self> {
        match text {
            "enabled" => Ok(ChecksumMode::Enabled),
            "disabled" => Ok(ChecksumMode::Disabled),
            _ => Err(Error::option(
                "checksum_mode",
                format!("must be \"enabled\" or \"disabled\", not {text:?}"),
            )),
        }
    }
}

/// What a sync run compares, besides the size, to take a file as up to date.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Compare {
    /// The modification time (the object's LastModified, to the second).
    #[default]
    Mtime,
    /// The modification time and the ETag recorded on the file when it was downloaded (an
    /// extended attribute, `user.s3fetch.etag`, or where the file system has none the index
    /// `.s3fetch-etags.jsonl` in the download directory): also catches an object rewritten
    /// with the same size within the same second, or a local edit that kept the time.
    Etag,
}

impl Compare {
    /// Every value's name, as [`str::parse`] takes them.
    pub const NAMES: [&'static str; 2] = ["mtime", "etag"];

    /// The value's name (`mtime`, `etag`), as [`str::parse`] takes it.
    pub fn as_str(self) -> &'static str {
        match self {
            Compare::Mtime => "mtime",
            Compare::Etag => "etag",
        }
    }
}

impl std::fmt::Display for Compare {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Compare {
    type Err = Error;
    fn from_str(text: &str) -> Result<Self> {
        match text {
            "mtime" => Ok(Compare::Mtime),
            "etag" => Ok(Compare::Etag),
            _ => Err(Error::option(
                "compare",
                format!("must be \"mtime\" or \"etag\", not {text:?}"),
            )),
        }
    }
}

/// What to download and how. Every field has a builder method of the same name; the names
/// are those of the CLI's flags (with `_` for `-`) and of the Python API's keywords.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct DownloadOptions {
    /// The bucket and prefix to download: `s3://bucket/prefix`.
    pub uri: S3Uri,
    /// Must exist; default: the current directory.
    pub download_dir: PathBuf,
    /// Searched (not anchored) in each full key; `None` takes every key. Rust `regex`
    /// syntax, and Python `re`'s look-around and backreferences too.
    pub regex: Option<String>,
    /// `include` / `exclude` glob rules, in order (see [`GlobRule`]): matched against the key
    /// relative to the URI's prefix, the last matching rule deciding.
    pub globs: Vec<GlobRule>,
    /// Only objects of at least this many bytes.
    pub min_size: Option<u64>,
    /// Only objects of at most this many bytes.
    pub max_size: Option<u64>,
    /// Only objects last modified at or after this time.
    pub newer_than: Option<SystemTime>,
    /// Only objects last modified before this time.
    pub older_than: Option<SystemTime>,
    /// Try objects in an archive storage class (`GLACIER`, `DEEP_ARCHIVE`) that are not
    /// restored, instead of skipping them (reason `archived`): their GETs fail unless a
    /// restored copy appeared since the listing.
    pub include_archived: bool,
    /// Take only this shard of the selected keys (see [`Shard`]): N processes with
    /// `0/N` .. `N-1/N` download the selection between them, each key once.
    pub shard: Option<Shard>,
    /// How `shard` deals out keys: by hash (the default without a plan) or by the key
    /// ranges of `plan` (the default with one).
    pub shard_by: Option<ShardBy>,
    /// The split points of range shards (`s3fetch plan`): this shard then lists only its
    /// own range of keys.
    pub plan: Option<Plan>,
    /// Downloads in flight at once (at least 1).
    pub concurrent_downloads: usize,
    /// List requests in flight at once; 1 lists sequentially.
    pub list_concurrency: usize,
    /// Objects larger than this are fetched as ranged parts, several at once.
    pub multipart_threshold: u64,
    /// Size of each ranged part; an object of more than 16 parts gets larger ones (a 16th of
    /// it, a multiple of this, up to 64 MiB).
    pub part_size: u64,
    /// Cap on the bytes per second of all response bodies together (`None`: no cap); kept
    /// to within a few percent over any window of seconds. [`parse_rate`] reads `100MB/s`,
    /// `1Gbit/s`.
    pub max_bandwidth: Option<u64>,
    /// Cap on the bytes of bodies held in memory at once (received and not yet written to a
    /// file, or not yet taken by a stream's reader); requests wait for room, so fewer run at
    /// once. At least [`MIN_MAX_MEMORY`] and `part_size`. `None`: no cap for downloads to
    /// files; for [`ObjectStream`](crate::ObjectStream) and [`cat`](crate::cat()) a quarter of
    /// the cgroup's `memory.max` (16 MiB to 1 GiB) when one is set, else 128 MiB.
    pub max_memory: Option<u64>,
    /// Retries, backoff and timeouts.
    pub retry: RetryPolicy,
    /// Verify objects against S3's checksums.
    pub checksum_mode: ChecksumMode,
    /// Separates "directories" in keys; keys ending with it are skipped.
    pub delimiter: String,
    /// List and report what would be downloaded; write nothing.
    pub dry_run: bool,
    /// Skip an object whose file exists with the object's size (no GET).
    pub skip_existing: bool,
    /// Skip an object whose file exists with the object's size and modification time (the
    /// object's LastModified, as this crate sets it): a second run fetches only what changed.
    pub sync: bool,
    /// What `sync` compares besides the size; [`Compare::Etag`] implies `sync`.
    pub compare: Compare,
    /// Take an exclusive lock on the download directory for the run (the file
    /// `.s3fetch.lock` in it): another run with `lock` into the same directory waits until
    /// this one is done. Implies `sync`, so that the waiting run fetches only what the first
    /// one did not; needs `preserve_mtime`. A holder that dies releases the lock.
    pub lock: bool,
    /// Set each file's modification time to its object's LastModified (default: on).
    pub preserve_mtime: bool,
    /// Continue large downloads that an earlier run left unfinished, and leave this run's
    /// unfinished ones resumable (default: on; see docs/repeat-and-resume.md). Off: existing
    /// partial files are removed and nothing is kept.
    pub resume: bool,
    /// Write the key of every object that failed to this file, one per line, when the run
    /// ends (an empty file when none failed).
    pub failed_keys: Option<PathBuf>,
    /// Download exactly the keys in this file (one per line, blank lines ignored; `-` reads
    /// standard input) instead of listing: each key's size comes from a HEAD. Keys must be
    /// under the URI's prefix; the regex still applies.
    pub keys_from: Option<PathBuf>,
    /// Download the objects an S3 Inventory report lists (`s3://bucket/path/manifest.json`,
    /// CSV format) instead of listing: no LIST request; sizes, times and ETags from the
    /// report. The URI's prefix and every filter apply.
    pub inventory: Option<S3Uri>,
    /// Agree to pay for the requests (requester-pays buckets): every request, listing and
    /// inventory included, says so.
    pub request_payer: Option<RequestPayer>,
    /// How to build the client, unless `client` is given.
    pub client_options: ClientOptions,
    /// A ready client (custom credentials, roles, middleware); overrides `client_options`.
    pub client: Option<Client>,
    /// Cancel to stop the run: listing stops, downloads are aborted, temporary files removed.
    pub cancel: CancellationToken,
}

impl DownloadOptions {
    /// Options for `uri` with every default.
    pub fn new(uri: S3Uri) -> Self {
        DownloadOptions {
            uri,
            download_dir: PathBuf::from("."),
            regex: None,
            globs: Vec::new(),
            min_size: None,
            max_size: None,
            newer_than: None,
            older_than: None,
            include_archived: false,
            shard: None,
            shard_by: None,
            plan: None,
            concurrent_downloads: DEFAULT_CONCURRENCY,
            list_concurrency: DEFAULT_LIST_CONCURRENCY,
            multipart_threshold: DEFAULT_MULTIPART_THRESHOLD,
            part_size: DEFAULT_PART_SIZE,
            max_bandwidth: None,
            max_memory: None,
            retry: RetryPolicy::default(),
            checksum_mode: ChecksumMode::Enabled,
            delimiter: DEFAULT_DELIMITER.into(),
            dry_run: false,
            skip_existing: false,
            sync: false,
            compare: Compare::Mtime,
            lock: false,
            preserve_mtime: true,
            resume: true,
            failed_keys: None,
            keys_from: None,
            inventory: None,
            request_payer: None,
            client_options: ClientOptions::default(),
            client: None,
            cancel: CancellationToken::new(),
        }
    }

    /// The directory files are written to; it must exist. Default: the current directory.
    pub fn download_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.download_dir = dir.into();
        self
    }

    /// Download only keys in which this regex matches (searched, not anchored, in the full
    /// key). Default: every key.
    pub fn regex(mut self, regex: impl Into<String>) -> Self {
        self.regex = Some(regex.into());
        self
    }

    /// Adds an include rule after the rules so far (`--include`).
    pub fn include(mut self, glob: impl Into<String>) -> Self {
        self.globs.push(GlobRule::Include(glob.into()));
        self
    }

    /// Adds an exclude rule after the rules so far (`--exclude`).
    pub fn exclude(mut self, glob: impl Into<String>) -> Self {
        self.globs.push(GlobRule::Exclude(glob.into()));
        self
    }

    /// Download only objects of at least `bytes` bytes.
    pub fn min_size(mut self, bytes: u64) -> Self {
        self.min_size = Some(bytes);
        self
    }

    /// Download only objects of at most `bytes` bytes.
    pub fn max_size(mut self, bytes: u64) -> Self {
        self.max_size = Some(bytes);
        self
    }

    /// Download only objects last modified at or after `time`.
    pub fn newer_than(mut self, time: SystemTime) -> Self {
        self.newer_than = Some(time);
        self
    }

    /// Download only objects last modified before `time`.
    pub fn older_than(mut self, time: SystemTime) -> Self {
        self.older_than = Some(time);
        self
    }

    /// Take only this shard of the selected keys (see [`Shard`]). Default: every key.
    pub fn shard(mut self, shard: Shard) -> Self {
        self.shard = Some(shard);
        self
    }

    /// How the shard deals out keys. Default: by hash without a plan, by range with one.
    pub fn shard_by(mut self, by: ShardBy) -> Self {
        self.shard_by = Some(by);
        self
    }

    /// The split points of range shards (`s3fetch plan`); needs a `shard`.
    pub fn plan(mut self, plan: Plan) -> Self {
        self.plan = Some(plan);
        self
    }

    /// Whether to try objects in an archive storage class that are not restored instead of
    /// skipping them. Default: `false`.
    pub fn include_archived(mut self, yes: bool) -> Self {
        self.include_archived = yes;
        self
    }

    /// Downloads in flight at once, at least 1. Default: [`DEFAULT_CONCURRENCY`] (256).
    pub fn concurrent_downloads(mut self, n: usize) -> Self {
        self.concurrent_downloads = n;
        self
    }

    /// List requests in flight at once, at least 1; 1 lists sequentially. Default:
    /// [`DEFAULT_LIST_CONCURRENCY`] (64).
    pub fn list_concurrency(mut self, n: usize) -> Self {
        self.list_concurrency = n;
        self
    }

    /// Objects larger than `threshold` bytes are fetched in ranged parts.
    pub fn multipart_threshold(mut self, threshold: u64) -> Self {
        self.multipart_threshold = threshold;
        self
    }

    /// Size of each ranged part, in bytes (1 byte to 1 PiB); an object of more than 16 parts
    /// gets larger ones (a 16th of it, a multiple of this, up to 64 MiB: a 512 MiB object in
    /// 16 GETs, not 64). Default: [`DEFAULT_PART_SIZE`] (8 MiB). `cat` keeps to it exactly.
    pub fn part_size(mut self, part_size: u64) -> Self {
        self.part_size = part_size;
        self
    }

    /// Caps all response bodies together at `bytes_per_sec` bytes per second (at least 1;
    /// [`parse_rate`] reads `100MB/s`, `1Gbit/s`). Default: no cap.
    pub fn max_bandwidth(mut self, bytes_per_sec: u64) -> Self {
        self.max_bandwidth = Some(bytes_per_sec);
        self
    }

    /// Caps the bytes of bodies held in memory at once at `bytes` (at least
    /// [`MIN_MAX_MEMORY`] and `part_size`; [`parse_size`] reads `512MiB`). Default: no cap
    /// for downloads to files, a cgroup-derived cap or 128 MiB for streams.
    pub fn max_memory(mut self, bytes: u64) -> Self {
        self.max_memory = Some(bytes);
        self
    }

    /// Retries after the first attempt of each request.
    pub fn retries(mut self, retries: u32) -> Self {
        self.retry.retries = retries;
        self
    }

    /// A download that receives nothing this long is abandoned and resumed (after one second
    /// already if other requests completed meanwhile).
    pub fn idle_timeout(mut self, timeout: Duration) -> Self {
        self.retry.idle_timeout = timeout;
        self
    }

    /// Whether to verify objects against S3's checksums. Default: [`ChecksumMode::Enabled`].
    pub fn checksum_mode(mut self, mode: ChecksumMode) -> Self {
        self.checksum_mode = mode;
        self
    }

    /// The separator of "directories" in keys; must not be empty, and must be `/` for a
    /// directory bucket. Default: [`DEFAULT_DELIMITER`] (`/`).
    pub fn delimiter(mut self, delimiter: impl Into<String>) -> Self {
        self.delimiter = delimiter.into();
        self
    }

    /// List and report what would be downloaded, and write nothing. Default: `false`.
    pub fn dry_run(mut self, dry_run: bool) -> Self {
        self.dry_run = dry_run;
        self
    }

    /// Skip an object whose file exists with the object's size (no GET). Default: `false`.
    pub fn skip_existing(mut self, skip: bool) -> Self {
        self.skip_existing = skip;
        self
    }

    /// Skip an object whose file exists with the object's size and modification time. Default:
    /// `false`.
    pub fn sync(mut self, sync: bool) -> Self {
        self.sync = sync;
        self
    }

    /// What `sync` compares besides the size; [`Compare::Etag`] implies `sync`. Default:
    /// [`Compare::Mtime`].
    pub fn compare(mut self, compare: Compare) -> Self {
        self.compare = compare;
        self
    }

    /// Whether to take an exclusive lock on the download directory for the run, so that
    /// another run with `lock` into it waits, then fetches only what this one did not (implies
    /// `sync`). Default: `false`.
    pub fn lock(mut self, lock: bool) -> Self {
        self.lock = lock;
        self
    }

    /// Whether to set each file's modification time to its object's LastModified. Default:
    /// `true`.
    pub fn preserve_mtime(mut self, preserve: bool) -> Self {
        self.preserve_mtime = preserve;
        self
    }

    /// Whether to continue large downloads an earlier run left unfinished and keep this run's
    /// unfinished ones resumable. Default: `true`.
    pub fn resume(mut self, resume: bool) -> Self {
        self.resume = resume;
        self
    }

    /// Write the key of every object that failed to this file when the run ends, one per line;
    /// its directory must exist. Default: none.
    pub fn failed_keys(mut self, path: impl Into<PathBuf>) -> Self {
        self.failed_keys = Some(path.into());
        self
    }

    /// Keys to download instead of listing; `-` reads them from standard input.
    pub fn keys_from(mut self, path: impl Into<PathBuf>) -> Self {
        self.keys_from = Some(path.into());
        self
    }

    /// Objects from this S3 Inventory manifest instead of a listing.
    pub fn inventory(mut self, manifest: S3Uri) -> Self {
        self.inventory = Some(manifest);
        self
    }

    /// Agree to pay for the requests to a requester-pays bucket. Default: not agreed.
    pub fn request_payer(mut self, payer: RequestPayer) -> Self {
        self.request_payer = Some(payer);
        self
    }

    /// How to build the S3 client, unless `client` gives one. Default:
    /// [`ClientOptions::default`].
    pub fn client_options(mut self, options: ClientOptions) -> Self {
        self.client_options = options;
        self
    }

    /// A ready S3 client to use instead of building one from `client_options`.
    pub fn client(mut self, client: Client) -> Self {
        self.client = Some(client);
        self
    }

    /// The token that stops the run when cancelled. Default: a new token nobody else holds.
    pub fn cancel_token(mut self, token: CancellationToken) -> Self {
        self.cancel = token;
        self
    }

    /// Checks every option and turns them into the settings a run uses; the first problem
    /// is returned as a typed error. Reads the local file system (the download directory,
    /// `keys_from`) and the environment's switches ([`crate::tuning`]), changes nothing and
    /// sends nothing: what a run changes before it starts is [`Validated::prepare`].
    ///
    /// The settings: a compiled key filter, an opened download directory, counts and sizes
    /// known to be usable. The errors: `InvalidUri`, `InvalidRegex`, `InvalidOption` naming
    /// the option, `DownloadDir`. Each front end only maps the error to its own form (a flag
    /// name and exit code 2, a Python exception).
    pub(crate) fn validate(self) -> Result<Validated> {
        let at_least_one = |option, n: usize| match n {
            0 => Err(Error::option(option, "must be at least 1")),
            _ => Ok(n),
        };
        let concurrent_downloads = at_least_one("concurrent_downloads", self.concurrent_downloads)?;
        let list_concurrency = at_least_one("list_concurrency", self.list_concurrency)?;
        if self.part_size == 0 || self.part_size > MAX_SIZE {
            return Err(Error::option(
                "part_size",
                "must be between 1 byte and 1 PiB",
            ));
        }
        if let Some(rate) = self.max_bandwidth {
            if rate == 0 || rate > MAX_SIZE {
                return Err(Error::option(
                    "max_bandwidth",
                    "must be between 1 byte and 1 PiB per second",
                ));
            }
        }
        if let Some(memory) = self.max_memory {
            if memory > MAX_SIZE {
                return Err(Error::option("max_memory", "must be at most 1 PiB"));
            }
            let least = MIN_MAX_MEMORY.max(self.part_size);
            if memory < least {
                return Err(Error::option(
                    "max_memory",
                    format!(
                        "must be at least {} (16MiB, and at least one part: part_size is {}), not {}",
                        ByteSize(least),
                        ByteSize(self.part_size),
                        ByteSize(memory)
                    ),
                ));
            }
        }
        if self.multipart_threshold > MAX_SIZE {
            return Err(Error::option(
                "multipart_threshold",
                "must be at most 1 PiB",
            ));
        }
        let idle = self.retry.idle_timeout;
        if idle.is_zero() || idle > MAX_IDLE_TIMEOUT {
            return Err(Error::option(
                "idle_timeout",
                "must be more than 0 and at most 86400 seconds",
            ));
        }
        if self.client.is_none() {
            self.client_options.validate()?;
        }
        let directory = self.uri.is_directory_bucket();
        if directory {
            self.directory_bucket_rules()?;
        }
        let (hash_shard, range) = self.shard_split()?;
        let filter = KeyFilter::new(self.regex.as_deref(), &self.delimiter)?
            .globs(&self.uri.prefix, &self.globs)?
            .sizes(self.min_size, self.max_size)?
            .times(self.newer_than, self.older_than)?
            .shard(hash_shard)
            .range(range.clone());
        if let Some(path) = &self.failed_keys {
            let parent = path.parent().filter(|p| !p.as_os_str().is_empty());
            if parent.is_some_and(|p| !p.is_dir()) {
                return Err(Error::option(
                    "failed_keys",
                    format!("{}: its directory does not exist", path.display()),
                ));
            }
        }
        if let Some(manifest) = &self.inventory {
            if self.keys_from.is_some() {
                return Err(Error::option(
                    "inventory",
                    "and keys_from both say which objects to fetch: give one",
                ));
            }
            if manifest.prefix.is_empty() || manifest.prefix.ends_with('/') {
                return Err(Error::option(
                    "inventory",
                    format!("{manifest} names no manifest: give s3://bucket/path/manifest.json"),
                ));
            }
        }
        let keys = match &self.keys_from {
            Some(path) => Some(read_keys(path, &self.uri.prefix)?),
            None => None,
        };
        if self.lock && !self.preserve_mtime {
            return Err(Error::option(
                "lock",
                "needs preserve_mtime: a run that waited for the lock skips the files the first one completed by their size and modification time",
            ));
        }
        let tuning = Tuning::from_env();
        let dir = DownloadDir::open(&self.download_dir, &tuning)?;
        // `lock` implies `sync`: a run that waited for another fetches only what it did not.
        let skip = match (self.compare, self.sync || self.lock, self.skip_existing) {
            (Compare::Etag, _, _) => Skip::SameSizeTimeAndEtag,
            (Compare::Mtime, true, _) => Skip::SameSizeAndTime,
            (Compare::Mtime, false, true) => Skip::SameSize,
            (Compare::Mtime, false, false) => Skip::Never,
        };
        Ok(Validated {
            uri: self.uri,
            filter,
            dir: Arc::new(dir),
            concurrent_downloads,
            list_concurrency,
            multipart_threshold: self.multipart_threshold,
            part_size: self.part_size,
            max_bandwidth: self.max_bandwidth,
            max_memory: self.max_memory,
            retry: self.retry,
            verify: self.checksum_mode == ChecksumMode::Enabled,
            delimiter: self.delimiter,
            dry_run: self.dry_run,
            // A dry run writes nothing, so it locks nothing.
            lock: self.lock && !self.dry_run,
            skip,
            preserve_mtime: self.preserve_mtime,
            include_archived: self.include_archived,
            shard: self.shard,
            shard_range: range,
            resume: self.resume,
            failed_keys: self.failed_keys,
            keys,
            inventory: self.inventory,
            requester_pays: self.request_payer == Some(RequestPayer::Requester),
            directory,
            client_options: self.client_options,
            client: self.client,
            cancel: self.cancel,
            tuning,
        })
    }

    /// What cannot work on an S3 Express directory bucket, refused with the reason.
    fn directory_bucket_rules(&self) -> Result<()> {
        let bucket = &self.uri.bucket;
        if self.delimiter != "/" {
            return Err(Error::option(
                "delimiter",
                format!("must be \"/\" for the directory bucket {bucket}: S3 Express folds keys into folders at \"/\" only"),
            ));
        }
        if self.plan.is_some() || self.shard_by == Some(ShardBy::Range) {
            return Err(Error::option(
                "shard_by",
                format!("range cannot work on the directory bucket {bucket}: it lists keys in no order and takes no StartAfter, so a shard cannot list its own key range; use hash shards (the default without a plan)"),
            ));
        }
        if self.request_payer.is_some() {
            return Err(Error::option(
                "request_payer",
                format!("does not apply to the directory bucket {bucket}: S3 Express has no requester-pays buckets"),
            ));
        }
        Ok(())
    }
}

impl DownloadOptions {
    /// The shard as a hash shard or a key range (from the plan), checked.
    fn shard_split(&self) -> Result<(Option<Shard>, Option<KeyRange>)> {
        let by = self.shard_by.unwrap_or(match self.plan {
            Some(_) => ShardBy::Range,
            None => ShardBy::Hash,
        });
        let Some(shard) = self.shard else {
            if self.plan.is_some() {
                return Err(Error::option(
                    "plan",
                    "needs a shard (K/N or auto): which of the plan's shards this run takes",
                ));
            }
            if self.shard_by.is_some() {
                return Err(Error::option("shard_by", "needs a shard (K/N or auto)"));
            }
            return Ok((None, None));
        };
        match (by, &self.plan) {
            (ShardBy::Hash, None) => Ok((Some(shard), None)),
            (ShardBy::Hash, Some(_)) => Err(Error::option(
                "plan",
                "holds key ranges, but the shards are by hash: leave out shard_by hash",
            )),
            (ShardBy::Range, None) => Err(Error::option(
                "shard_by",
                "range needs the plan every shard shares: make one with `s3fetch plan s3://bucket/prefix --shards N > plan.json` and give it as the plan",
            )),
            (ShardBy::Range, Some(plan)) => Ok((None, Some(plan.range_for(&self.uri, shard)?))),
        }
    }
}

/// The keys of a `keys_from` file (or standard input for `-`): one per line, blank lines
/// and a trailing `\r` ignored, each under `prefix`. Read whole before the run starts, so
/// a bad line is an error before any request.
fn read_keys(path: &std::path::Path, prefix: &str) -> Result<Vec<String>> {
    use std::io::Read;
    let mut text = String::new();
    let read = if path.as_os_str() == "-" {
        std::io::stdin().lock().read_to_string(&mut text)
    } else {
        std::fs::File::open(path).and_then(|mut f| f.read_to_string(&mut text))
    };
    read.map_err(|e| Error::option("keys_from", format!("{}: {e}", path.display())))?;
    let mut keys = Vec::new();
    for (number, line) in text.lines().enumerate() {
        let key = line.strip_suffix('\r').unwrap_or(line);
        if key.trim().is_empty() {
            continue;
        }
        if !key.starts_with(prefix) {
            return Err(Error::option(
                "keys_from",
                format!(
                    "{} line {}: key {key:?} is not under the prefix {prefix:?}",
                    path.display(),
                    number + 1
                ),
            ));
        }
        keys.push(key.to_owned());
    }
    Ok(keys)
}

/// Checked options: what [`crate::Downloader::run`] works from.
pub(crate) struct Validated {
    pub uri: S3Uri,
    pub filter: KeyFilter,
    pub dir: Arc<DownloadDir>,
    /// Lowered, if need be, to fit the open-file limit (by [`Validated::prepare`]).
    pub concurrent_downloads: usize,
    pub list_concurrency: usize,
    pub multipart_threshold: u64,
    pub part_size: u64,
    pub max_bandwidth: Option<u64>,
    pub max_memory: Option<u64>,
    pub retry: RetryPolicy,
    pub verify: bool,
    pub delimiter: String,
    pub dry_run: bool,
    /// Hold the download directory's lock for the run.
    pub lock: bool,
    pub skip: Skip,
    pub preserve_mtime: bool,
    pub include_archived: bool,
    pub shard: Option<Shard>,
    /// The shard's keys, for a range shard.
    pub shard_range: Option<KeyRange>,
    pub resume: bool,
    pub failed_keys: Option<PathBuf>,
    /// The keys of `keys_from`, read and checked.
    pub keys: Option<Vec<String>>,
    pub inventory: Option<S3Uri>,
    pub requester_pays: bool,
    /// The URI names an S3 Express directory bucket.
    pub directory: bool,
    pub client_options: ClientOptions,
    pub client: Option<Client>,
    pub cancel: CancellationToken,
    pub tuning: Tuning,
}

impl Validated {
    /// How every request to the run's bucket is made.
    pub(crate) fn settings(&self) -> crate::s3::Settings {
        crate::s3::Settings {
            verify: self.verify,
            requester_pays: self.requester_pays,
            directory: self.directory,
        }
    }

    /// What a run changes before its first request, kept out of validation: the open-file
    /// limit raised (or the downloads lowered) so that each download can hold a connection
    /// and a file, and a test write into the download directory (not for a dry run).
    pub(crate) fn prepare(&mut self) -> Result<()> {
        self.concurrent_downloads =
            crate::s3::limit::within_open_file_limit(self.concurrent_downloads);
        if !self.dry_run {
            self.dir.check_writable()?;
        }
        Ok(())
    }
}

/// A number of bytes as people write it: parsed by [`parse_size`], shown in the largest
/// binary unit that divides it (`16MiB`, `1536KiB`, `1000`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct ByteSize(pub u64);

impl std::fmt::Display for ByteSize {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let bytes = self.0;
        for (unit, shift) in [("GiB", 30), ("MiB", 20), ("KiB", 10)] {
            if bytes >= 1 << shift && bytes.is_multiple_of(1 << shift) {
                return write!(f, "{}{unit}", bytes >> shift);
            }
        }
        write!(f, "{bytes}")
    }
}

impl std::str::FromStr for ByteSize {
    type Err = String;
    fn from_str(text: &str) -> std::result::Result<Self, String> {
        parse_size(text).map(ByteSize)
    }
}

/// Parses a size: `1234`, `64KiB`, `8MiB`, `1GB`, `2g` — bytes, with binary (`KiB`, `k`) or
/// decimal (`KB`) units, from 1 byte to 1 PiB. The reason is returned for the caller to
/// attach to its option's name.
pub fn parse_size(text: &str) -> std::result::Result<u64, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: f64 = number
        .parse()
        .map_err(|_| format!("{text:?} is not a size (examples: 65536, 64KiB, 8MiB, 1GB)"))?;
    let multiplier: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kib" => 1 << 10,
        "m" | "mib" => 1 << 20,
        "g" | "gib" => 1 << 30,
        "kb" => 1_000,
        "mb" => 1_000_000,
        "gb" => 1_000_000_000,
        other => {
            return Err(format!(
                "unknown size unit {other:?} (use KiB, MiB, GiB, KB, MB or GB)"
            ))
        }
    };
    let bytes = number * multiplier as f64;
    if !(1.0..=MAX_SIZE as f64).contains(&bytes) {
        return Err(format!("{text:?} is out of range (1 byte to 1 PiB)"));
    }
    Ok(bytes as u64)
}

/// Parses a rate in bytes per second: `100MB/s`, `1.5GB/s`, `500KiB/s`, `1Gbit/s`,
/// `250Mbps`, or plain bytes per second (`1048576`); the `/s` may be left out. Bytes take
/// `B` (decimal `KB`, `MB`, `GB`, `TB` or binary `KiB`, `MiB`, `GiB`, `TiB`), bits take `bit`
/// or `bps` (`Kbit`, `Mbit`, `Gbit`: decimal, eight to a byte). From 1 byte to 1 PiB per
/// second. The reason is returned for the caller to attach to its option's name.
pub fn parse_rate(text: &str) -> std::result::Result<u64, String> {
    const EXAMPLES: &str = "examples: 100MB/s, 1.5GB/s, 500KiB/s, 1Gbit/s, 1000000";
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: f64 = number
        .parse()
        .map_err(|_| format!("{text:?} is not a rate ({EXAMPLES})"))?;
    let unit = unit.trim();
    let unit = unit
        .strip_suffix("/s")
        .or_else(|| unit.strip_suffix("/sec"))
        .unwrap_or(unit)
        .trim();
    let (prefix, bits) = if let Some(p) = unit.strip_suffix("bit").or(unit.strip_suffix("bps")) {
        (p, true)
    } else if let Some(p) = unit.strip_suffix('B') {
        (p, false)
    } else if unit.is_empty() {
        ("", false)
    } else if unit.ends_with('b') {
        return Err(format!(
            "{text:?}: say B for bytes or bit for bits (100MB/s, 800Mbit/s)"
        ));
    } else {
        return Err(format!("unknown rate unit {unit:?} ({EXAMPLES})"));
    };
    let scale: f64 = match (prefix.to_ascii_lowercase().as_str(), bits) {
        ("", _) => 1.0,
        ("k", _) => 1e3,
        ("m", _) => 1e6,
        ("g", _) => 1e9,
        ("t", _) => 1e12,
        ("ki", false) => 1024.0,
        ("mi", false) => 1024.0 * 1024.0,
        ("gi", false) => 1024.0 * 1024.0 * 1024.0,
        ("ti", false) => 1024.0 * 1024.0 * 1024.0 * 1024.0,
        _ => return Err(format!("unknown rate unit {unit:?} ({EXAMPLES})")),
    };
    let bytes = number * scale / if bits { 8.0 } else { 1.0 };
    if !(1.0..=MAX_SIZE as f64).contains(&bytes) {
        return Err(format!(
            "{text:?} is out of range (1 byte to 1 PiB per second)"
        ));
    }
    Ok(bytes.round() as u64)
}

#[cfg(test)]
mod tests {
    use super::ByteSize;

    #[test]
    fn rates() {
        use super::parse_rate;
        assert_eq!(parse_rate("100MB/s"), Ok(100_000_000));
        assert_eq!(parse_rate("1.5GB/s"), Ok(1_500_000_000));
        assert_eq!(parse_rate("1Gbit/s"), Ok(125_000_000));
        assert_eq!(parse_rate("800 Mbps"), Ok(100_000_000));
        assert_eq!(parse_rate("500KiB/s"), Ok(512_000));
        assert_eq!(parse_rate("20MiB"), Ok(20 << 20));
        assert_eq!(parse_rate("1048576"), Ok(1 << 20));
        assert_eq!(parse_rate(" 1kB/sec "), Ok(1000));
        for bad in [
            "", "fast", "0", "0.1", "MB/s", "100Mb/s", "100XB/s", "1Kibit/s", "-5MB/s", "2EB/s",
        ] {
            let error = parse_rate(bad).expect_err(bad);
            assert!(!error.is_empty(), "{bad}");
        }
        assert!(parse_rate("100Mb/s").unwrap_err().contains("bit for bits"));
    }

    #[test]
    fn sizes_show_as_people_write_them_and_read_back() {
        for (bytes, text) in [
            (16 << 20, "16MiB"),
            (1536 << 10, "1536KiB"),
            (3 << 30, "3GiB"),
            (1000, "1000"),
        ] {
            assert_eq!(ByteSize(bytes).to_string(), text);
            assert_eq!(text.parse::<ByteSize>(), Ok(ByteSize(bytes)));
        }
    }

    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("65536"), Ok(65536));
        assert_eq!(parse_size("64KiB"), Ok(64 << 10));
        assert_eq!(parse_size("8MiB"), Ok(8 << 20));
        assert_eq!(parse_size("8m"), Ok(8 << 20));
        assert_eq!(parse_size("1.5GiB"), Ok(3 << 29));
        assert_eq!(parse_size("1GB"), Ok(1_000_000_000));
        assert!(parse_size("0").is_err());
        assert!(parse_size("8 parsecs").is_err());
        assert!(parse_size("MiB").is_err());
    }

    fn check(options: DownloadOptions) -> Error {
        match options.validate() {
            Ok(_) => panic!("accepted"),
            Err(error) => error,
        }
    }

    #[test]
    fn each_bad_option_is_named() {
        let tmp = tempfile::tempdir().unwrap();
        let base =
            || DownloadOptions::new(S3Uri::parse("s3://b/p").unwrap()).download_dir(tmp.path());
        let named = |error: Error| match error {
            Error::InvalidOption { option, .. } => option,
            other => panic!("{other:?}"),
        };
        assert_eq!(
            named(check(base().concurrent_downloads(0))),
            "concurrent_downloads"
        );
        assert_eq!(named(check(base().list_concurrency(0))), "list_concurrency");
        assert_eq!(named(check(base().part_size(0))), "part_size");
        assert_eq!(named(check(base().max_bandwidth(0))), "max_bandwidth");
        let small = check(base().max_memory((16 << 20) - 1));
        assert!(small.to_string().contains("at least 16MiB"), "{small}");
        let part = check(base().part_size(32 << 20).max_memory(16 << 20));
        assert!(part.to_string().contains("at least 32MiB"), "{part}");
        assert_eq!(named(part), "max_memory");
        assert!(base().max_memory(16 << 20).validate().is_ok());
        assert_eq!(
            named(check(base().idle_timeout(Duration::ZERO))),
            "idle_timeout"
        );
        assert_eq!(named(check(base().delimiter(""))), "delimiter");
        assert_eq!(
            named(check(base().lock(true).preserve_mtime(false))),
            "lock"
        );
        let client = ClientOptions {
            endpoint_url: Some("ftp://x".into()),
            ..ClientOptions::default()
        };
        assert_eq!(named(check(base().client_options(client))), "endpoint_url");
        assert_eq!(
            named("on".parse::<ChecksumMode>().unwrap_err()),
            "checksum_mode"
        );
        assert!(matches!(
            check(base().regex("a(")),
            Error::InvalidRegex { .. }
        ));
        assert!(base().validate().is_ok());
    }

    #[test]
    fn the_download_dir_must_exist_and_is_never_created() {
        use crate::error::DirProblem;
        let tmp = tempfile::tempdir().unwrap();
        let uri = S3Uri::parse("s3://b/p").unwrap();
        let missing = tmp.path().join("missing");
        let problem = |dir: &std::path::Path| match check(
            DownloadOptions::new(uri.clone()).download_dir(dir),
        ) {
            Error::DownloadDir { problem, .. } => problem,
            other => panic!("{other:?}"),
        };
        assert_eq!(problem(&missing), DirProblem::Missing);
        assert!(!missing.exists());
        std::fs::write(tmp.path().join("file"), b"").unwrap();
        assert_eq!(problem(&tmp.path().join("file")), DirProblem::NotADirectory);
    }
}
