//! Arguments -> validated library options, plus what only the CLI needs (output mode).

use std::path::PathBuf;

use anyhow::{bail, Context as _};
use s3fetch::{ClientOptions, DownloadOptions, KeyFilter, S3Uri};

use crate::args::{Args, ChecksumMode, ProgressMode};

/// Above this, warn: each download holds a connection and a file.
const MANY_DOWNLOADS: usize = 1000;

/// How the run shows itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Output {
    Quiet,
    Progress(ProgressMode),
}

pub struct Settings {
    pub options: DownloadOptions,
    pub output: Output,
    pub debug: bool,
    /// Warnings to show once logging and output are set up.
    pub warnings: Vec<String>,
}

impl Settings {
    pub fn from_args(args: Args) -> anyhow::Result<Settings> {
        let mut warnings = Vec::new();
        let uri = S3Uri::parse(&args.uri)?;
        let concurrency = match args.threads {
            Some(n) => {
                warnings.push("-t/--threads is deprecated: use -c/--concurrent-downloads".into());
                n
            }
            None => args.concurrent_downloads,
        };
        if concurrency == 0 {
            bail!("--concurrent-downloads must be at least 1");
        }
        if !(args.idle_timeout > 0.0 && args.idle_timeout <= 86_400.0) {
            bail!("--idle-timeout must be between 0 and 86400 seconds");
        }
        if args.list_concurrency == 0 {
            bail!("--list-concurrency must be at least 1");
        }
        if concurrency > MANY_DOWNLOADS {
            warnings.push(format!(
                "{concurrency} concurrent downloads is a lot: each holds a connection and an open file"
            ));
        }
        // Compile the regex now, so a bad one is a usage error before any request.
        KeyFilter::new(args.regex.as_deref(), &args.delimiter)?;
        let download_dir = match args.download_dir {
            Some(dir) => dir,
            None => std::env::current_dir().context("cannot read the current directory")?,
        };
        check_download_dir(&download_dir)?;
        if let Some(endpoint) = &args.endpoint_url {
            if !(endpoint.starts_with("http://") || endpoint.starts_with("https://")) {
                bail!("--endpoint-url {endpoint:?} must start with http:// or https://");
            }
        }

        let mut client_options = ClientOptions::default();
        client_options.region = args.region;
        client_options.endpoint_url = args.endpoint_url;
        client_options.force_path_style = args.force_path_style.then_some(true);
        client_options.profile = args.profile;
        client_options.no_sign_request = args.no_sign_request;

        let mut options = DownloadOptions::new(uri)
            .download_dir(download_dir)
            .concurrency(concurrency)
            .list_concurrency(args.list_concurrency)
            .retries(args.retries)
            .verify_checksums(args.checksum_mode == ChecksumMode::Enabled)
            .parts(args.multipart_threshold, args.part_size)
            .delimiter(args.delimiter)
            .dry_run(args.dry_run)
            .client_options(client_options);
        options.regex = args.regex;
        options.retry.idle_timeout = std::time::Duration::from_secs_f64(args.idle_timeout);

        let output = if args.quiet {
            Output::Quiet
        } else {
            Output::Progress(args.progress.unwrap_or_default())
        };
        Ok(Settings {
            options,
            output,
            debug: args.debug,
            warnings,
        })
    }
}

fn check_download_dir(dir: &PathBuf) -> anyhow::Result<()> {
    match std::fs::metadata(dir) {
        Ok(meta) if meta.is_dir() => Ok(()),
        Ok(_) => bail!("--download-dir {} is not a directory", dir.display()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => bail!(
            "--download-dir {} does not exist: create it first (mkdir -p {})",
            dir.display(),
            shell_quote(&dir.display().to_string())
        ),
        Err(e) => bail!("--download-dir {}: {e}", dir.display()),
    }
}

fn shell_quote(s: &str) -> String {
    if s.bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"/._-".contains(&b))
    {
        s.to_owned()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}
