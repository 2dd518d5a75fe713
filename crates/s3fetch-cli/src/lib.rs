//! The `s3fetch` command as a function: [`run`] parses the arguments, runs the library and
//! renders the run, and returns the exit code. The binary calls it, and so does the Python
//! wheel's `s3fetch` command, so both are the same program.

mod args;
mod cat;
mod exit;
mod generate;
mod output;
mod plan;
mod settings;
mod signal;

use std::ffi::OsString;

use s3fetch::Downloader;
use tokio_util::sync::CancellationToken;

use crate::output::Console;
use crate::settings::Settings;

/// Runs the command line `args` (the program name first) and returns its exit code: 0, 1,
/// 2 or 130, as documented in `--help`.
pub fn run<I, T>(args: I) -> u8
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    let args: Vec<OsString> = args.into_iter().map(Into::into).collect();
    if args.get(1).is_some_and(|a| a == "plan") {
        init_logging(false);
        return plan::run(args[1..].to_vec());
    }
    if args.get(1).is_some_and(|a| a == "cat") {
        return cat::run(args[1..].to_vec());
    }
    if args.get(1).is_some_and(|a| a == "completions") {
        return generate::completions(args[1..].to_vec());
    }
    if args.get(1).is_some_and(|a| a == "man") {
        return generate::man(args[1..].to_vec());
    }
    let args = match args::Args::parse_ordered(args) {
        Ok(args) => args,
        // Help and version (exit 0) and usage errors (exit 2), as clap prints them.
        Err(error) => {
            let _ = error.print();
            return u8::try_from(error.exit_code()).unwrap_or(exit::USAGE);
        }
    };
    let settings = match Settings::from_args(args) {
        Ok(settings) => settings,
        Err(error) => {
            eprintln!("error: {}", exit::message(&error));
            return exit::code(&error);
        }
    };
    init_logging(settings.debug);
    for warning in &settings.warnings {
        eprintln!("warning: {warning}");
    }
    for note in &settings.notes {
        eprintln!("note: {note}");
    }
    block_on(download(settings))
}

/// Runs `command` on a new Tokio runtime and returns its exit code. Dropping the runtime
/// waits for file writes still running on its blocking pool, so no temporary file outlives
/// the process.
pub(crate) fn block_on(command: impl std::future::Future<Output = u8>) -> u8 {
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: cannot start the async runtime: {error}");
            return exit::FAILED;
        }
    };
    let code = runtime.block_on(command);
    drop(runtime);
    code
}

async fn download(settings: Settings) -> u8 {
    let Settings {
        mut options,
        output,
        ..
    } = settings;
    let cancel = CancellationToken::new();
    options.cancel = cancel.clone();
    let signals = tokio::spawn(signal::cancel_on_signal(cancel.clone()));

    let uri = options.uri.clone();
    let skipping = options.skip_existing
        || options.sync
        || options.lock
        || options.compare == s3fetch::Compare::Etag;
    let console = Console::new(output, options.dry_run, skipping);
    let live = console.start_live_updates();
    let result = Downloader::new(options)
        .reporter(console.clone())
        .run()
        .await;
    if let Some(live) = live {
        live.abort();
    }
    signals.abort();

    let summary = match result {
        Ok(summary) => summary,
        Err(error) => {
            console.run_failed(&error);
            console.err(&format!("error: {}", exit::message(&error)));
            if let Some(hint) = exit::hint(&error) {
                console.err(&format!("hint: {hint}"));
            }
            return exit::code(&error);
        }
    };
    console.finish(&summary);
    if summary.objects_archived > 0 {
        console.err(&format!(
            "note: {} archived object(s) (GLACIER or DEEP_ARCHIVE, not restored) were skipped: restore them first, or add --include-archived to try them",
            summary.objects_archived
        ));
    }

    if summary.cancelled {
        let kept = match summary.partials_kept {
            0 => String::new(),
            n => format!(
                "; {n} large object(s) partly downloaded were kept to resume (run the same command again to continue them, add --no-resume to start over)"
            ),
        };
        console.err(&format!(
            "interrupted: {} of {} objects found so far were downloaded; no temporary files were left{kept}",
            summary.objects_downloaded, summary.objects_found
        ));
        return exit::INTERRUPTED;
    }
    if !summary.failures.is_empty() {
        console.err(&format!(
            "error: {} of {} objects failed",
            summary.failures.len(),
            summary.objects_found
        ));
        return exit::FAILED;
    }
    if summary.objects_found == 0 {
        console.err(&format!(
            "no objects under {uri} matched: nothing to download"
        ));
    }
    exit::SUCCESS
}

/// Logging on stderr; once per process (a second run in the same process, as from Python,
/// keeps the first run's setting).
pub(crate) fn init_logging(debug: bool) {
    let default = if debug {
        "s3fetch=debug,aws_config=debug,aws_smithy_runtime=debug,warn"
    } else {
        "s3fetch=warn,s3fetch_cli=warn,error"
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}
