//! Arguments -> library options, plus what only the CLI needs (output mode, warnings). No
//! option is checked here: the library validates them all and its typed errors name the
//! option, which [`crate::exit::message`] turns into the flag. The selection flags (shared
//! with `s3fetch cat`) set themselves ([`crate::args::Selection::apply`]).

use std::path::PathBuf;
use std::time::Duration;

use s3fetch::DownloadOptions;

use crate::args::{Args, OutputFormat, ProgressMode};

/// Above this, warn: each download holds a connection and a file.
const MANY_DOWNLOADS: usize = 1000;

/// How the run shows itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Output {
    Quiet,
    Progress(ProgressMode),
    /// JSON lines on stdout, nothing else there.
    Json,
}

pub struct Settings {
    pub options: DownloadOptions,
    pub output: Output,
    pub debug: bool,
    /// Warnings to show once logging is set up.
    pub warnings: Vec<String>,
    /// Notes for stderr (which shard `--shard auto` took).
    pub notes: Vec<String>,
}

impl Settings {
    /// The settings of `args`; an error only for a `--shard auto` the environment cannot
    /// satisfy.
    pub fn from_args(args: Args) -> Result<Settings, s3fetch::Error> {
        let mut warnings = Vec::new();
        let mut notes = Vec::new();
        let concurrent_downloads = match args.threads {
            Some(n) => {
                warnings.push("-t/--threads is deprecated: use -c/--concurrent-downloads".into());
                n
            }
            None => args.concurrent_downloads,
        };
        if concurrent_downloads > MANY_DOWNLOADS {
            warnings.push(format!(
                "{concurrent_downloads} concurrent downloads is a lot: each holds a connection and an open file"
            ));
        }

        let request_payer = args.connection.request_payer;
        let client_options = args.connection.client_options();

        let mut options = DownloadOptions::new(args.uri)
            .download_dir(args.download_dir.unwrap_or_else(|| PathBuf::from(".")))
            .concurrent_downloads(concurrent_downloads)
            .list_concurrency(args.list_concurrency)
            .retries(args.retries)
            // Out-of-range seconds (negative, NaN) become zero, which the library refuses
            // with the option's valid range.
            .idle_timeout(Duration::try_from_secs_f64(args.idle_timeout).unwrap_or_default())
            .checksum_mode(args.checksum_mode)
            .multipart_threshold(args.multipart_threshold.0)
            .part_size(args.part_size.0)
            .delimiter(args.delimiter)
            .dry_run(args.dry_run)
            .skip_existing(args.skip_existing)
            .sync(args.sync)
            .compare(args.compare)
            .lock(args.lock)
            .preserve_mtime(!args.no_preserve_mtime)
            .resume(!args.no_resume)
            .client_options(client_options);
        options.max_bandwidth = args.max_bandwidth;
        options.max_memory = args.max_memory.map(|size| size.0);
        args.selection.apply(&mut options, &mut notes)?;
        options.request_payer = request_payer;
        options.failed_keys = args.failed_keys;
        options.keys_from = args.keys_from;

        let output = if args.output == OutputFormat::Json {
            if args.quiet || args.progress.is_some() {
                warnings.push(
                    "--output json prints JSON lines: --quiet and --progress are ignored".into(),
                );
            }
            Output::Json
        } else if args.quiet {
            Output::Quiet
        } else {
            Output::Progress(args.progress.unwrap_or_default())
        };
        Ok(Settings {
            options,
            output,
            debug: args.debug,
            warnings,
            notes,
        })
    }
}
