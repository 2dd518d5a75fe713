//! Rendering a run: per-object lines, the live status line, the progress bar, the summary and
//! error messages. Keys and summaries go to stdout; errors and warnings to stderr, always.
//! With `--output json` stdout gets the library's JSON lines ([`s3fetch::JsonLines`]) and
//! nothing else.

use std::io::{self, Write};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use s3fetch::{DownloadResult, JsonLines, ObjectInfo, Outcome, Reporter, Summary};

use crate::args::ProgressMode;
use crate::settings::Output;

/// How often the live-update line and the progress bar are redrawn.
const REFRESH: Duration = Duration::from_millis(500);

/// The CLI's [`Reporter`]: counts, prints and draws as events arrive.
pub struct Console {
    output: Output,
    dry_run: bool,
    /// The run skips up-to-date files: the summary counts them.
    skipping: bool,
    json: Option<JsonLines>,
    started: Instant,
    found: AtomicU64,
    downloaded: AtomicU64,
    bytes: AtomicU64,
    bar: Option<ProgressBar>,
    /// Set once stdout is closed (`s3fetch ... | head`): printing stops, downloads go on.
    stdout_closed: AtomicBool,
}

impl Console {
    pub fn new(output: Output, dry_run: bool, skipping: bool) -> Arc<Console> {
        let bar = (output == Output::Progress(ProgressMode::Fancy)).then(|| {
            let bar = ProgressBar::with_draw_target(Some(0), ProgressDrawTarget::stderr_with_hz(4));
            bar.set_style(
                ProgressStyle::with_template(
                    "{spinner} [{elapsed_precise}] [{wide_bar}] {bytes}/{total_bytes} {binary_bytes_per_sec} ETA {eta} {msg}",
                )
                .expect("the template is valid")
                .progress_chars("=> "),
            );
            bar.enable_steady_tick(REFRESH);
            bar
        });
        Arc::new(Console {
            output,
            dry_run,
            skipping,
            json: (output == Output::Json).then(|| JsonLines::stdout(dry_run)),
            started: Instant::now(),
            found: AtomicU64::new(0),
            downloaded: AtomicU64::new(0),
            bytes: AtomicU64::new(0),
            bar,
            stdout_closed: AtomicBool::new(false),
        })
    }

    fn prints_keys(&self) -> bool {
        matches!(
            self.output,
            Output::Progress(ProgressMode::Simple | ProgressMode::Detailed)
        ) || (self.dry_run && matches!(self.output, Output::Progress(_)))
    }

    /// Writes to stdout; a closed pipe silences further output instead of failing the run.
    pub fn out(&self, text: &str) {
        if self.stdout_closed.load(Ordering::Relaxed) {
            return;
        }
        let mut stdout = io::stdout().lock();
        if stdout
            .write_all(text.as_bytes())
            .and_then(|()| stdout.flush())
            .is_err()
        {
            self.stdout_closed.store(true, Ordering::Relaxed);
        }
    }

    /// The run could not start or its listing failed: a `failed` line in JSON mode (the
    /// message goes to stderr in every mode).
    pub fn run_failed(&self, error: &s3fetch::Error) {
        if let Some(json) = &self.json {
            json.run_failed(error);
        }
    }

    /// Writes a line to stderr without tearing the progress bar.
    pub fn err(&self, line: &str) {
        match &self.bar {
            // Once finished, the bar is not drawn again under the line.
            Some(bar) if !bar.is_finished() => bar.suspend(|| eprintln!("{line}")),
            _ => eprintln!("{line}"),
        }
    }

    fn update_bar_message(&self) {
        if let Some(bar) = &self.bar {
            bar.set_message(format!(
                "{}/{} objects",
                self.downloaded.load(Ordering::Relaxed),
                self.found.load(Ordering::Relaxed)
            ));
        }
    }

    /// The live-update line: `[Found: N | Downloaded: N | Speed: X/s]`.
    pub fn status_line(&self) -> String {
        let secs = self.started.elapsed().as_secs_f64().max(1e-3);
        format!(
            "\r[Found: {} | Downloaded: {} | Speed: {}/s]",
            self.found.load(Ordering::Relaxed),
            self.downloaded.load(Ordering::Relaxed),
            human_bytes(self.bytes.load(Ordering::Relaxed) as f64 / secs),
        )
    }

    /// Runs until the returned guard is dropped, redrawing the live-update line.
    pub fn start_live_updates(self: &Arc<Self>) -> Option<tokio::task::JoinHandle<()>> {
        if self.output != Output::Progress(ProgressMode::LiveUpdate) {
            return None;
        }
        let console = self.clone();
        Some(tokio::spawn(async move {
            let mut tick = tokio::time::interval(REFRESH);
            loop {
                tick.tick().await;
                console.out(&console.status_line());
            }
        }))
    }

    /// Final output once the run is over: the last status line, the bar, the summary.
    pub fn finish(&self, summary: &Summary) {
        if let Some(bar) = &self.bar {
            self.update_bar_message();
            // Left where it got to: a bar of an interrupted run or one with failures is
            // not drawn as complete.
            bar.abandon();
        }
        match self.output {
            Output::Quiet | Output::Progress(ProgressMode::Simple) => {}
            Output::Json => {
                if let Some(json) = &self.json {
                    json.finish(summary);
                }
            }
            Output::Progress(mode) => {
                if mode == ProgressMode::LiveUpdate {
                    self.out(&format!("{}\n", self.status_line()));
                }
                self.out(&summary_text(summary, self.skipping));
            }
        }
    }
}

impl Reporter for Console {
    fn warning(&self, message: &str) {
        self.err(&format!("warning: {message}"));
    }

    fn notice(&self, message: &str) {
        self.err(&format!("note: {message}"));
    }

    fn object_found(&self, object: &ObjectInfo) {
        if let Some(json) = &self.json {
            json.object_found(object);
        }
        self.found.fetch_add(1, Ordering::Relaxed);
        if let Some(bar) = &self.bar {
            bar.inc_length(object.size);
            self.update_bar_message();
        }
    }

    fn bytes_written(&self, _key: &str, bytes: u64) {
        if let Some(bar) = &self.bar {
            bar.inc(bytes);
        }
    }

    fn download_finished(&self, result: &DownloadResult) {
        if let Some(json) = &self.json {
            json.download_finished(result);
        }
        match &result.outcome {
            Outcome::Skipped(reason) => {
                if let Some(bar) = &self.bar {
                    // Up to date: counts as done for the bar.
                    bar.inc(result.size);
                }
                if self.output == Output::Progress(ProgressMode::Detailed) {
                    self.out(&format!("{} (skipped: {})\n", result.key, reason.as_str()));
                }
            }
            Outcome::Downloaded => {
                self.downloaded.fetch_add(1, Ordering::Relaxed);
                self.bytes.fetch_add(result.size, Ordering::Relaxed);
                if self.prints_keys() {
                    self.out(&format!("{}\n", result.key));
                }
                self.update_bar_message();
            }
            Outcome::Failed(error) => {
                self.err(&format!("error: {}", s3fetch::error_chain(error)));
            }
        }
    }
}

/// The original's summary block (plus a line on skipped objects when the run skips
/// up-to-date files, and one on retries when there were any).
pub fn summary_text(summary: &Summary, skipping: bool) -> String {
    let secs = summary.elapsed.as_secs_f64();
    let verb = if summary.dry_run {
        "listed"
    } else {
        "downloaded"
    };
    let retries = if summary.retries + summary.resumes > 0 {
        format!(
            "  Retries: {} (resumed downloads: {}, throttled: {})\n",
            summary.retries + summary.resumes,
            summary.resumes,
            summary.throttled
        )
    } else {
        String::new()
    };
    let skipped = if skipping || summary.objects_skipped > 0 {
        let archived = match summary.objects_archived {
            0 => String::new(),
            n => format!(" (archived: {n})"),
        };
        format!("  Objects skipped: {}{archived}\n", summary.objects_skipped)
    } else {
        String::new()
    };
    format!(
        "\nProgress Summary:\n  Objects found: {}\n  Objects {verb}: {}\n{skipped}  Total data: {}\n  Average speed: {}/s\n  Total time: {:.1} seconds\n{retries}",
        summary.objects_found,
        summary.objects_downloaded,
        human_bytes(summary.bytes_downloaded as f64),
        human_bytes(summary.bytes_downloaded as f64 / secs.max(1e-3)),
        secs,
    )
}

/// `1.5 KB`, `12.3 MB` (1024-based, as the original).
pub fn human_bytes(bytes: f64) -> String {
    const UNITS: [&str; 5] = ["B", "KB", "MB", "GB", "TB"];
    let mut value = bytes;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{value:.0} {}", UNITS[0])
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_are_human() {
        assert_eq!(human_bytes(0.0), "0 B");
        assert_eq!(human_bytes(1023.0), "1023 B");
        assert_eq!(human_bytes(1536.0), "1.5 KB");
        assert_eq!(human_bytes(12.3 * 1024.0 * 1024.0), "12.3 MB");
    }
}
