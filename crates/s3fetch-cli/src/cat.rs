//! `s3fetch cat S3_URI`: objects to stdout in key order, raw or as a tar stream (the
//! library's `cat`). The selection flags are the download's; output flags have no place.

use std::ffi::OsString;
use std::path::PathBuf;
use std::time::Duration;

use clap::builder::{PossibleValuesParser, TypedValueParser};
use clap::{CommandFactory, FromArgMatches, Parser};
use s3fetch::{ByteSize, CatFormat, ChecksumMode, DownloadOptions, S3Uri};
use tokio_util::sync::CancellationToken;

use crate::args::{parse_uri, Connection, Selection};
use crate::exit;

const EXAMPLES: &str = "\
Which objects:
  s3://bucket/dir/name   the object dir/name when it exists (as `aws s3 cp URI -` takes it);
                         else every key that starts with dir/name, as a download takes them
  s3://bucket/dir/       every key under dir/ (a trailing / always means a prefix)
Objects come in key order, each verified against its checksum as a download is.

Examples:
  # One object into a pipe, at the speed of a download (parallel ranged GETs, in order)
  s3fetch cat s3://my-bucket/dumps/db.sql.zst | zstd -d | psql

  # A prefix as a tar stream: the same tree as `s3fetch s3://my-bucket/shards/ --download-dir out`
  s3fetch cat s3://my-bucket/shards/ --format tar | tar -x -C out

  # Only the JSON lines of 2024, concatenated
  s3fetch cat s3://my-bucket/logs/ --include '2024/**/*.jsonl' | jq .id

Exit codes (a consumer of the pipe must check them: bytes already written cannot be taken back):
  0    every selected object was written whole (also when the reader closed the pipe early,
       as `| head` does: the run then stops quietly)
  1    an object failed: one that failed before any of its bytes were written is left out and
       named on stderr; one that failed after ends the output there, named on stderr
  2    usage or configuration error
  130  interrupted (Ctrl-C)";

/// Write objects to stdout in key order, raw or as a tar stream.
///
/// Objects ahead of the one being written download in parallel (a large one in ranged parts)
/// within a memory cap: 128 MiB, or a quarter of the cgroup's memory.max when one is set.
#[derive(Debug, Parser)]
#[command(name = "s3fetch cat", after_help = EXAMPLES, max_term_width = 100)]
struct CatArgs {
    /// s3://bucket/exact/key (one object) or s3://bucket/prefix/ (see "Which objects" below)
    #[arg(value_name = "S3_URI", value_parser = parse_uri)]
    uri: S3Uri,

    /// `raw`: the objects' bytes one after the other; `tar`: a POSIX tar stream, each object an
    /// entry named by the path a download would write it to, with its size and modification
    /// time
    #[arg(long, value_name = "FORMAT", default_value_t = CatFormat::default(),
          value_parser = PossibleValuesParser::new(CatFormat::NAMES).map(|f| f.parse::<CatFormat>().expect("one of its names")))]
    format: CatFormat,

    #[command(flatten)]
    selection: Selection,

    /// Exactly the keys listed in FILE (one per line; `-` reads stdin), sorted by key first
    #[arg(long, value_name = "FILE")]
    keys_from: Option<PathBuf>,

    /// Requests in flight at most (memory permitting)
    #[arg(short = 'c', long, value_name = "N", default_value_t = s3fetch::DEFAULT_CONCURRENCY)]
    concurrent_downloads: usize,

    /// Objects larger than this are fetched in ranged parts, several at once
    #[arg(long, value_name = "SIZE", default_value_t = ByteSize(s3fetch::DEFAULT_MULTIPART_THRESHOLD))]
    multipart_threshold: ByteSize,

    /// Size of each ranged part
    #[arg(long, value_name = "SIZE", default_value_t = ByteSize(s3fetch::DEFAULT_PART_SIZE))]
    part_size: ByteSize,

    /// Cap on the bytes per second of all requests together (e.g. 100MB/s, 1Gbit/s)
    #[arg(long, value_name = "RATE", value_parser = s3fetch::parse_rate)]
    max_bandwidth: Option<u64>,

    /// Cap on the bytes held in memory: objects ahead and parts in flight (e.g. 512MiB); at
    /// least 16MiB and one --part-size. Default: a quarter of the cgroup's memory.max (16MiB
    /// to 1GiB) when one is set, else 128MiB
    #[arg(long, value_name = "SIZE")]
    max_memory: Option<ByteSize>,

    /// Retries of a request after transient failures
    #[arg(long, value_name = "N", default_value_t = s3fetch::DEFAULT_RETRIES)]
    retries: u32,

    /// Abandon (and resume) a request that receives no bytes for this many seconds
    #[arg(long, value_name = "SECS", default_value_t = s3fetch::DEFAULT_IDLE_TIMEOUT.as_secs_f64())]
    idle_timeout: f64,

    /// Verify each object against the checksum S3 keeps for it; `disabled` skips it
    #[arg(long, value_name = "MODE", default_value_t = ChecksumMode::default(),
          value_parser = PossibleValuesParser::new(ChecksumMode::NAMES).map(|m| m.parse::<ChecksumMode>().expect("one of its names")))]
    checksum_mode: ChecksumMode,

    /// Separator of "directories" in keys
    #[arg(long, default_value = s3fetch::DEFAULT_DELIMITER)]
    delimiter: String,

    /// Debug logging on stderr
    #[arg(short, long)]
    debug: bool,

    #[command(flatten)]
    connection: Connection,
}

/// The definition of `s3fetch cat`, as a subcommand named `cat` (for completions and the man
/// pages).
pub(crate) fn command() -> clap::Command {
    CatArgs::command().name("cat")
}

/// Runs `s3fetch cat` with `args` (from `cat` on); returns the exit code.
pub fn run(mut args: Vec<OsString>) -> u8 {
    if let Some(name) = args.first_mut() {
        *name = "s3fetch cat".into();
    }
    let args = match parse(args) {
        Ok(args) => args,
        Err(error) => {
            let _ = error.print();
            return u8::try_from(error.exit_code()).unwrap_or(exit::USAGE);
        }
    };
    crate::init_logging(args.debug);
    let options = match options(args) {
        Ok(options) => options,
        Err(error) => return fail(&error),
    };
    crate::block_on(cat(options))
}

async fn cat((mut options, format): (DownloadOptions, CatFormat)) -> u8 {
    let cancel = CancellationToken::new();
    options.cancel = cancel.clone();
    let uri = options.uri.clone();
    let signals = tokio::spawn(crate::signal::cancel_on_signal(cancel.clone()));
    let result = s3fetch::cat(options, format, std::io::stdout()).await;
    signals.abort();
    match result {
        Ok(summary) => {
            for failure in &summary.failures {
                eprintln!("error: {}", exit::message(&failure.error));
            }
            if cancel.is_cancelled() {
                return exit::INTERRUPTED;
            }
            if summary.objects == 0 && summary.failures.is_empty() && !summary.closed {
                eprintln!("no objects under {uri} matched: nothing written");
            }
            match summary.failures.len() {
                0 => exit::SUCCESS,
                n => {
                    eprintln!("error: {n} object(s) failed and were left out of the output");
                    exit::FAILED
                }
            }
        }
        Err(s3fetch::Error::Cancelled) if cancel.is_cancelled() => exit::INTERRUPTED,
        Err(error) => fail(&error),
    }
}

fn fail(error: &s3fetch::Error) -> u8 {
    eprintln!("error: {}", exit::message(error));
    if let Some(hint) = exit::hint(error) {
        eprintln!("hint: {hint}");
    }
    exit::code(error)
}

/// The arguments, with the globs in their order (as for a download).
fn parse(args: Vec<OsString>) -> Result<CatArgs, clap::Error> {
    let matches = CatArgs::command().try_get_matches_from(args)?;
    let mut parsed = CatArgs::from_arg_matches(&matches)?;
    parsed.selection.order_globs(&matches);
    Ok(parsed)
}

/// The library's options for `args`; the library checks them all.
fn options(args: CatArgs) -> Result<(DownloadOptions, CatFormat), s3fetch::Error> {
    let request_payer = args.connection.request_payer;
    let mut options = DownloadOptions::new(args.uri)
        .concurrent_downloads(args.concurrent_downloads)
        .retries(args.retries)
        .idle_timeout(Duration::try_from_secs_f64(args.idle_timeout).unwrap_or_default())
        .checksum_mode(args.checksum_mode)
        .multipart_threshold(args.multipart_threshold.0)
        .part_size(args.part_size.0)
        .delimiter(args.delimiter)
        .client_options(args.connection.client_options());
    let mut notes = Vec::new();
    args.selection.apply(&mut options, &mut notes)?;
    for note in notes {
        eprintln!("note: {note}");
    }
    options.keys_from = args.keys_from;
    options.request_payer = request_payer;
    options.max_bandwidth = args.max_bandwidth;
    options.max_memory = args.max_memory.map(|size| size.0);
    Ok((options, args.format))
}
