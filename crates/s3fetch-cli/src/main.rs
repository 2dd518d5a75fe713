//! The `s3fetch` command: parse, validate, run the library, render, map to an exit code.

mod args;
mod output;
mod settings;

use std::process::ExitCode;

use clap::Parser;
use s3fetch::{Downloader, Error};
use tokio_util::sync::CancellationToken;

use crate::output::Console;
use crate::settings::Settings;

/// Exit codes, as documented in `--help` and the README.
const EXIT_FAILED: u8 = 1;
const EXIT_USAGE: u8 = 2;
const EXIT_INTERRUPTED: u8 = 130;

fn main() -> ExitCode {
    // Help, version and usage errors exit here, with clap's codes (0 and 2).
    let args = args::Args::parse();
    let settings = match Settings::from_args(args) {
        Ok(settings) => settings,
        Err(error) => {
            eprintln!("error: {}", s3fetch::error_chain(error.as_ref()));
            return ExitCode::from(EXIT_USAGE);
        }
    };
    init_logging(settings.debug);
    raise_open_file_limit();
    for warning in &settings.warnings {
        eprintln!("warning: {warning}");
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: cannot start the async runtime: {error}");
            return ExitCode::from(EXIT_FAILED);
        }
    };
    let code = runtime.block_on(run(settings));
    // Dropping the runtime waits for file writes still running on its blocking pool, so no
    // temporary file outlives the process.
    drop(runtime);
    ExitCode::from(code)
}

async fn run(settings: Settings) -> u8 {
    let Settings {
        mut options,
        output,
        ..
    } = settings;
    let cancel = CancellationToken::new();
    options.cancel = cancel.clone();
    tokio::spawn(cancel_on_signal(cancel.clone()));

    let uri = options.uri.clone();
    let console = Console::new(output, options.dry_run);
    let live = console.start_live_updates();
    let result = Downloader::new(options)
        .reporter(console.clone())
        .run()
        .await;
    if let Some(live) = live {
        live.abort();
    }

    let summary = match result {
        Ok(summary) => summary,
        Err(error) => {
            console.err(&format!("error: {}", s3fetch::error_chain(&error)));
            if let Some(hint) = hint(&error) {
                console.err(&format!("hint: {hint}"));
            }
            return match error {
                Error::InvalidUri { .. }
                | Error::InvalidRegex { .. }
                | Error::InvalidOption(_)
                | Error::DownloadDir { .. } => EXIT_USAGE,
                _ => EXIT_FAILED,
            };
        }
    };
    console.finish(&summary);

    if summary.cancelled {
        console.err(&format!(
            "interrupted: {} of {} objects found so far were downloaded; no partial files were left",
            summary.objects_downloaded, summary.objects_found
        ));
        return EXIT_INTERRUPTED;
    }
    if !summary.failures.is_empty() {
        console.err(&format!(
            "error: {} of {} objects failed",
            summary.failures.len(),
            summary.objects_found
        ));
        return EXIT_FAILED;
    }
    if summary.objects_found == 0 {
        console.err(&format!(
            "no objects under {uri} matched: nothing to download"
        ));
    }
    0
}

/// First SIGINT/SIGTERM: cancel the run (it stops, cleans up and reports). Second: remove
/// the temporary files and leave at once.
async fn cancel_on_signal(cancel: CancellationToken) {
    signal().await;
    eprintln!("\ninterrupted: stopping (press Ctrl-C again to quit at once)");
    cancel.cancel();
    signal().await;
    let removed = s3fetch::remove_temporary_files();
    eprintln!("interrupted again: quitting now ({removed} temporary files removed)");
    std::process::exit(EXIT_INTERRUPTED.into());
}

async fn signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let mut term = match signal(SignalKind::terminate()) {
            Ok(term) => term,
            Err(_) => return std::future::pending().await,
        };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// What to try next, for errors that have a usual cause.
fn hint(error: &Error) -> Option<&'static str> {
    let code = error.code();
    Some(match code {
        Some("NoSuchBucket") => "check the bucket name (and --endpoint-url / --region)",
        Some("AccessDenied" | "AllAccessDisabled") => {
            "the credentials in use may not list this bucket (s3:ListBucket); try --profile, or --no-sign-request for a public bucket"
        }
        Some("InvalidAccessKeyId" | "SignatureDoesNotMatch") => {
            "check AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY or the --profile in use"
        }
        Some("ExpiredToken" | "InvalidToken" | "TokenRefreshRequired") => {
            "the session has expired: sign in again (e.g. `aws sso login --profile NAME`)"
        }
        Some("PermanentRedirect" | "AuthorizationHeaderMalformed") => {
            "the bucket is in another region: pass --region"
        }
        _ => {
            let text = error.to_string().to_lowercase();
            if text.contains("sso") {
                "your SSO session may have expired: run `aws sso login --profile NAME`"
            } else if text.contains("credential") {
                "no usable AWS credentials: check --profile / AWS_PROFILE or AWS_ACCESS_KEY_ID, or use --no-sign-request for a public bucket"
            } else if matches!(error, Error::List { .. }) && code.is_none() {
                "check the network and the endpoint (--endpoint-url, AWS_ENDPOINT_URL)"
            } else {
                return None;
            }
        }
    })
}

/// Each download holds a connection and a file: allow as many open files as the system
/// lets this process have (the soft limit is often 1024, the hard one far higher).
fn raise_open_file_limit() {
    #[cfg(unix)]
    {
        use rustix::process::{getrlimit, setrlimit, Resource};
        let mut limit = getrlimit(Resource::Nofile);
        if limit.current < limit.maximum {
            limit.current = limit.maximum;
            let _ = setrlimit(Resource::Nofile, limit);
        }
    }
}

fn init_logging(debug: bool) {
    let default = if debug {
        "s3fetch=debug,aws_config=debug,aws_smithy_runtime=debug,warn"
    } else {
        "s3fetch=warn,s3fetch_cli=warn,error"
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}
