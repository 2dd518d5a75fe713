//! Command-line arguments (clap derive; checks across flags live in `settings`). The one
//! thing derive cannot say is the order of `--include` and `--exclude` among each other,
//! which decides what they select: [`Args::parse_ordered`] reads it from clap's indices.

use std::ffi::OsString;
use std::path::PathBuf;
use std::time::SystemTime;

use clap::builder::{PossibleValuesParser, TypedValueParser};
use clap::{CommandFactory, FromArgMatches, Parser, ValueEnum};
use s3fetch::{
    ByteSize, ChecksumMode, Compare, DownloadOptions, GlobRule, Plan, RequestPayer, S3Uri, Shard,
    ShardBy,
};

/// What `--version` prints after `s3fetch `: the version and, when known, the commit it was
/// built from (see build.rs), as `0.1.0 (commit 9b4987912, 2026-12-07)`.
pub const VERSION: &str = env!("S3FETCH_VERSION");

const EXAMPLES: &str = "\
Examples:
  # Everything under a prefix, into the current directory
  s3fetch s3://my-bucket/datasets/2024/

  # Only the JSON files, 200 at a time, into ./data
  s3fetch s3://my-bucket/logs/ --regex '\\.json$' -c 200 --download-dir ./data

  # CSV files at any depth, but none under tmp/, changed in the last 7 days, 1 KiB or more
  s3fetch s3://my-bucket/exports/ --include '**/*.csv' --exclude 'tmp/**' --newer-than 7d --min-size 1KiB

  # What would be downloaded, without downloading
  s3fetch s3://my-bucket/images/ --regex 'cat|dog' --dry-run

  # An S3-compatible store (MinIO, Ceph, R2...), with a progress bar
  s3fetch s3://bucket/prefix --endpoint-url http://127.0.0.1:9000 --progress fancy

  # A public bucket, no credentials (a bucket in another region is found by itself)
  s3fetch s3://public-bucket/path/ --no-sign-request

  # A requester-pays dataset: you pay for the requests
  s3fetch s3://open-dataset/path/ --request-payer requester

  # Run again later: fetch only what is new or changed (size and modification time)
  s3fetch s3://my-bucket/datasets/ --download-dir ./data --sync

  # The same command on every rank of a node: the first downloads, the others wait for it
  s3fetch s3://my-bucket/datasets/ --download-dir /local/data --lock

  # One job over 8 machines, each listing only its own key range (K = 0..7)
  s3fetch plan s3://my-bucket/datasets/ --shards 8 > plan.json
  s3fetch s3://my-bucket/datasets/ --shard K/8 --plan plan.json

  # For scripts: JSON lines on stdout; then retry just the failures
  s3fetch s3://my-bucket/logs/ --output json --failed-keys failed.txt > run.jsonl
  s3fetch s3://my-bucket/logs/ --keys-from failed.txt

Commands:
  s3fetch plan S3_URI --shards N   split points for range shards (see `s3fetch plan --help`)
  s3fetch cat S3_URI               objects to stdout in key order, raw or as a tar stream
                                   (see `s3fetch cat --help`)
  s3fetch completions SHELL        the shell completion script for bash, zsh, fish, elvish
                                   or powershell (see `s3fetch completions --help`)

Exit codes:
  0    every selected object was downloaded (also when the filter matched nothing)
  1    some objects failed (each is named on stderr), or the listing failed
  2    usage or configuration error (bad URI, bad regex, missing download directory, ...)
  130  interrupted (Ctrl-C): temporary files are removed, finished files stay";

/// Download objects from S3 fast: downloads start while the listing is still running.
///
/// Keys under S3_URI that match --regex are written under --download-dir, with the URI's
/// prefix removed up to its last delimiter (prefix `logs/20` turns `logs/2024/a.json` into
/// `2024/a.json`). Each file appears complete or not at all.
#[derive(Debug, Parser)]
#[command(name = "s3fetch", version = VERSION, after_help = EXAMPLES, max_term_width = 100)]
pub struct Args {
    /// s3://bucket, s3://bucket/prefix or s3://bucket/exact/key
    #[arg(value_name = "S3_URI", value_parser = parse_uri)]
    pub uri: S3Uri,

    /// Directory to download into; it must exist [default: the current directory]
    #[arg(long, value_name = "DIR")]
    pub download_dir: Option<PathBuf>,

    #[command(flatten)]
    pub selection: Selection,

    /// Downloads in flight at once
    #[arg(short = 'c', long, value_name = "N", default_value_t = s3fetch::DEFAULT_CONCURRENCY)]
    pub concurrent_downloads: usize,

    /// List requests in flight at once: one prefix is listed in parallel key ranges (1: page by page)
    #[arg(long, value_name = "N", default_value_t = s3fetch::DEFAULT_LIST_CONCURRENCY)]
    pub list_concurrency: usize,

    /// Objects larger than this are fetched in ranged parts, several at once (e.g. 16MiB, 1GB)
    #[arg(long, value_name = "SIZE", default_value_t = ByteSize(s3fetch::DEFAULT_MULTIPART_THRESHOLD))]
    pub multipart_threshold: ByteSize,

    /// Size of each ranged part (e.g. 8MiB); an object of more than 16 parts gets larger ones
    /// (a 16th of it, a multiple of this, up to 64MiB)
    #[arg(long, value_name = "SIZE", default_value_t = ByteSize(s3fetch::DEFAULT_PART_SIZE))]
    pub part_size: ByteSize,

    /// Cap on the bytes per second of all downloads together, e.g. 100MB/s, 1Gbit/s, 500KiB/s
    /// (bytes per second without a unit); held to within a few percent over any 10 seconds
    #[arg(long, value_name = "RATE", value_parser = s3fetch::parse_rate)]
    pub max_bandwidth: Option<u64>,

    /// Cap on the bytes of response bodies held in memory at once (received, not yet
    /// written), e.g. 256MiB; fewer requests run at once to stay under it. At least 16MiB and
    /// one --part-size. Default: no cap
    #[arg(long, value_name = "SIZE")]
    pub max_memory: Option<ByteSize>,

    /// Retries of a request after transient failures (5xx, throttling, timeouts, broken
    /// connections) while nothing else in the run succeeds; while the run makes progress, four
    /// times as many. A broken download resumes from its last byte
    #[arg(long, value_name = "N", default_value_t = s3fetch::DEFAULT_RETRIES)]
    pub retries: u32,

    /// Abandon (and resume) a download that receives no bytes for this many seconds (after
    /// one second already, if other downloads completed meanwhile: a stuck connection)
    #[arg(long, value_name = "SECS", default_value_t = s3fetch::DEFAULT_IDLE_TIMEOUT.as_secs_f64())]
    pub idle_timeout: f64,

    /// Verify each object against the checksum S3 keeps for it (full-object CRC64NVME, CRC32C
    /// or CRC32; else a plain-MD5 ETag, read back from the file for ranged downloads).
    /// `disabled` skips it, e.g. for stores that send wrong checksums
    #[arg(long, value_name = "MODE", default_value_t = ChecksumMode::default(),
          value_parser = PossibleValuesParser::new(ChecksumMode::NAMES).map(|m| m.parse::<ChecksumMode>().expect("one of its names")))]
    pub checksum_mode: ChecksumMode,

    /// Deprecated alias of --concurrent-downloads
    #[arg(
        short = 't',
        long,
        value_name = "N",
        hide = true,
        conflicts_with = "concurrent_downloads"
    )]
    pub threads: Option<usize>,

    /// Separator of "directories" in keys; keys ending with it are skipped
    #[arg(long, default_value = s3fetch::DEFAULT_DELIMITER)]
    pub delimiter: String,

    /// List the keys that would be downloaded; download nothing
    #[arg(long, visible_alias = "list-only")]
    pub dry_run: bool,

    /// Do not download an object whose file exists with the object's size
    #[arg(long)]
    pub skip_existing: bool,

    /// Do not download an object whose file exists with the object's size and modification
    /// time (which s3fetch sets to the object's LastModified): a second run fetches only what
    /// is new or changed
    #[arg(long)]
    pub sync: bool,

    /// What --sync compares besides the size: `mtime`, or `etag` — the modification time and
    /// the ETag s3fetch recorded on the file (an extended attribute, else the index
    /// .s3fetch-etags.jsonl in the download directory) when it downloaded it; `etag` implies
    /// --sync
    #[arg(long, value_name = "WHAT", default_value_t = Compare::default(),
          value_parser = PossibleValuesParser::new(Compare::NAMES).map(|c| c.parse::<Compare>().expect("one of its names")))]
    pub compare: Compare,

    /// One download per node: hold an exclusive lock on the download directory for the run
    /// (the file .s3fetch.lock in it). Another s3fetch with --lock into the same directory
    /// waits, saying for whom, then fetches only what the first did not (--lock implies
    /// --sync). A holder that dies releases the lock
    #[arg(long)]
    pub lock: bool,

    /// Leave each file's modification time at the time of download, instead of the object's
    /// LastModified
    #[arg(long)]
    pub no_preserve_mtime: bool,

    /// Start large downloads afresh: remove the partial files an interrupted run left
    /// (normally continued) and keep none when interrupted
    #[arg(long)]
    pub no_resume: bool,

    /// Write the key of every object that failed to FILE, one per line (an empty file when
    /// none failed); re-run them with --keys-from FILE
    #[arg(long, value_name = "FILE")]
    pub failed_keys: Option<PathBuf>,

    /// Download exactly the keys listed in FILE (one per line; `-` reads stdin) instead of
    /// listing the prefix; each key must be under S3_URI's prefix, and --regex still applies
    #[arg(long, value_name = "FILE")]
    pub keys_from: Option<PathBuf>,

    /// `json`: one JSON object per line on stdout per event (found, downloaded, skipped,
    /// failed) and a final summary, nothing else on stdout (fields: see docs/output.md)
    #[arg(long, value_enum, value_name = "FORMAT", default_value = "text")]
    pub output: OutputFormat,

    /// Print nothing on stdout (errors still go to stderr)
    #[arg(short, long, conflicts_with = "progress")]
    pub quiet: bool,

    /// How to show progress
    #[arg(long, value_enum, value_name = "MODE", conflicts_with = "quiet")]
    pub progress: Option<ProgressMode>,

    /// Debug logging on stderr
    #[arg(short, long)]
    pub debug: bool,

    #[command(flatten)]
    pub connection: Connection,
}

/// Which objects: the same flags for a download and for `s3fetch cat`, declared once.
#[derive(Debug, clap::Args)]
pub struct Selection {
    /// Only keys in which this regex is found (searched in the full key); look-around and
    /// backreferences work as in Python's `re`
    #[arg(short, long, value_name = "RE")]
    pub regex: Option<String>,

    /// Only keys matching this glob, relative to the URI's prefix (`*` within a path segment,
    /// `**` across them); repeatable. --include and --exclude apply in the order given, the
    /// last one that matches deciding; when the first is an --include, keys no rule matches
    /// are left out
    #[arg(long, value_name = "GLOB")]
    pub include: Vec<String>,

    /// Leave out keys matching this glob (see --include); repeatable
    #[arg(long, value_name = "GLOB")]
    pub exclude: Vec<String>,

    /// Only objects of at least this size (e.g. 1MiB), from the listing
    #[arg(long, value_name = "SIZE", value_parser = s3fetch::parse_size)]
    pub min_size: Option<u64>,

    /// Only objects of at most this size (e.g. 10GB), from the listing
    #[arg(long, value_name = "SIZE", value_parser = s3fetch::parse_size)]
    pub max_size: Option<u64>,

    /// Only objects modified at or after T: a date (2024-06-01, UTC), an RFC 3339 time
    /// (2024-06-01T12:00:00+02:00) or an age (7d, 12h, 1w2d), from the listing
    #[arg(long, value_name = "T", value_parser = parse_time)]
    pub newer_than: Option<SystemTime>,

    /// Only objects modified before T (as for --newer-than)
    #[arg(long, value_name = "T", value_parser = parse_time)]
    pub older_than: Option<SystemTime>,

    /// Try objects in GLACIER or DEEP_ARCHIVE that are not restored instead of skipping them
    /// (they fail unless restored since the listing); restored ones download either way
    #[arg(long)]
    pub include_archived: bool,

    /// Take the K-th of N disjoint parts of the selected keys (a stable hash of each key
    /// decides; the N shards' union is the whole selection): `K/N` counting from 0, or
    /// `auto` for an orchestrator's index (Kubernetes JOB_COMPLETION_INDEX, AWS Batch
    /// AWS_BATCH_JOB_ARRAY_INDEX, Slurm SLURM_ARRAY_TASK_ID)
    #[arg(long, value_name = "K/N|auto", value_parser = parse_shard)]
    pub shard: Option<ShardArg>,

    /// N for --shard auto where the orchestrator does not say it (Kubernetes); also
    /// S3FETCH_SHARD_COUNT
    #[arg(long, value_name = "N", requires = "shard")]
    pub shard_count: Option<u32>,

    /// How --shard deals out keys: `hash` (the default without --plan) or `range` (the
    /// default with it: each shard lists only its own key range, so N shards send about as
    /// many LIST requests as one run)
    #[arg(long, value_name = "HOW", requires = "shard",
          value_parser = PossibleValuesParser::new(ShardBy::NAMES).map(|b| ShardBy::parse(&b).expect("one of its names")))]
    pub shard_by: Option<ShardBy>,

    /// The split points of range shards, made once by `s3fetch plan S3_URI --shards N >
    /// plan.json` and given to every shard
    #[arg(long, value_name = "FILE", requires = "shard")]
    pub plan: Option<PathBuf>,

    /// Take the objects an S3 Inventory report lists instead of listing
    /// (s3://bucket/path/manifest.json, CSV format): no LIST request; sizes, times and ETags
    /// from the report; the URI's prefix and every filter still apply
    #[arg(long, value_name = "MANIFEST_URI", value_parser = parse_uri)]
    pub inventory: Option<S3Uri>,

    /// --include and --exclude in the order given (filled by [`Selection::order_globs`]).
    #[arg(skip)]
    pub globs: Vec<GlobRule>,
}

impl Selection {
    /// Puts `--include` and `--exclude` into [`Selection::globs`] in the order given (clap
    /// keeps each flag's values apart).
    pub fn order_globs(&mut self, matches: &clap::ArgMatches) {
        let mut rules: Vec<(usize, GlobRule)> = Vec::new();
        let mut add = |id: &str, rule: fn(String) -> GlobRule| {
            if let (Some(at), Some(globs)) =
                (matches.indices_of(id), matches.get_many::<String>(id))
            {
                rules.extend(at.zip(globs.cloned().map(rule)));
            }
        };
        add("include", GlobRule::Include);
        add("exclude", GlobRule::Exclude);
        rules.sort_by_key(|(at, _)| *at);
        self.globs = rules.into_iter().map(|(_, rule)| rule).collect();
    }

    /// Sets the selection on `options`: `--shard auto` resolved from the environment (by the
    /// library's [`Shard::from_env`]) and `--plan` read, each with a note for stderr.
    pub fn apply(
        self,
        options: &mut DownloadOptions,
        notes: &mut Vec<String>,
    ) -> Result<(), s3fetch::Error> {
        let shard = match self.shard {
            None => None,
            Some(ShardArg::Fixed(shard)) => Some(shard),
            Some(ShardArg::Auto) => {
                let (shard, source) =
                    Shard::from_env(self.shard_count, |name| std::env::var(name).ok())?;
                notes.push(format!("shard {shard} (from {source})"));
                Some(shard)
            }
        };
        let plan = match &self.plan {
            Some(path) => Some(Plan::read(path)?),
            None => None,
        };
        if let (Some(plan), Some(shard)) = (&plan, shard) {
            if shard.count == plan.shards() {
                notes.push(format!("shard {shard}: keys {}", plan.range(shard.index)));
            }
        }
        options.regex = self.regex;
        options.globs = self.globs;
        options.min_size = self.min_size;
        options.max_size = self.max_size;
        options.newer_than = self.newer_than;
        options.older_than = self.older_than;
        options.include_archived = self.include_archived;
        options.shard = shard;
        options.shard_by = self.shard_by;
        options.plan = plan;
        options.inventory = self.inventory;
        Ok(())
    }
}

/// Where S3 is and who we are there: the same flags for a download and for `s3fetch plan`.
#[derive(Debug, clap::Args)]
pub struct Connection {
    /// AWS region [default: from the environment or profile, else us-east-1]
    #[arg(long)]
    pub region: Option<String>,

    /// S3-compatible endpoint, e.g. http://127.0.0.1:9000 [env: AWS_ENDPOINT_URL]
    #[arg(long, value_name = "URL")]
    pub endpoint_url: Option<String>,

    /// Path-style requests (endpoint/bucket/key); on by default for IP and localhost endpoints
    #[arg(long)]
    pub force_path_style: bool,

    /// Named profile from ~/.aws/config (SSO profiles work)
    #[arg(long)]
    pub profile: Option<String>,

    /// Send unsigned requests (public buckets); no credentials needed
    #[arg(long)]
    pub no_sign_request: bool,

    /// PEM file of certificates to trust besides the system's (a private CA of an
    /// S3-compatible store) [env: AWS_CA_BUNDLE]
    #[arg(long, value_name = "FILE")]
    pub ca_bundle: Option<PathBuf>,

    /// Agree to pay for the requests of a requester-pays bucket (`requester`): sent with
    /// every request (listing, HEAD, GET, inventory)
    #[arg(long, value_name = "PAYER", value_parser = parse_request_payer)]
    pub request_payer: Option<RequestPayer>,
}

impl Connection {
    pub fn client_options(self) -> s3fetch::ClientOptions {
        let mut options = s3fetch::ClientOptions::default();
        options.region = self.region;
        options.endpoint_url = self.endpoint_url;
        options.force_path_style = self.force_path_style.then_some(true);
        options.profile = self.profile;
        options.no_sign_request = self.no_sign_request;
        options.ca_bundle = self.ca_bundle;
        options
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
#[value(rename_all = "lower")]
pub enum OutputFormat {
    /// For people: keys and summaries as --progress says
    Text,
    /// For scripts: JSON lines
    Json,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default)]
pub enum ProgressMode {
    /// Each downloaded key on its own line
    #[default]
    Simple,
    /// Each key, then a summary
    Detailed,
    /// One status line rewritten in place, then a summary
    LiveUpdate,
    /// A progress bar, then a summary
    Fancy,
}

impl Args {
    /// Parses the command line (the program name first), with the globs in their order.
    pub fn parse_ordered<I, T>(args: I) -> Result<Args, clap::Error>
    where
        I: IntoIterator<Item = T>,
        T: Into<OsString> + Clone,
    {
        let matches = Args::command().try_get_matches_from(args)?;
        let mut args = Args::from_arg_matches(&matches)?;
        args.selection.order_globs(&matches);
        Ok(args)
    }
}

/// `--shard`: a given shard, or one to read from the environment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ShardArg {
    Fixed(Shard),
    Auto,
}

pub(crate) fn parse_shard(text: &str) -> Result<ShardArg, String> {
    match text.trim() {
        "auto" => Ok(ShardArg::Auto),
        _ => Shard::parse(text)
            .map(ShardArg::Fixed)
            .map_err(|e| match e {
                s3fetch::Error::InvalidOption { reason, .. } => reason,
                other => other.to_string(),
            }),
    }
}

pub(crate) fn parse_time(text: &str) -> Result<SystemTime, String> {
    s3fetch::parse_time(text, SystemTime::now())
}

pub(crate) fn parse_uri(text: &str) -> Result<S3Uri, String> {
    S3Uri::parse(text).map_err(|e| s3fetch::error_chain(&e))
}

fn parse_request_payer(text: &str) -> Result<RequestPayer, String> {
    text.parse::<RequestPayer>().map_err(|_| {
        format!("{text:?} is not a payer: the only one is \"requester\" (you agree to pay)")
    })
}
