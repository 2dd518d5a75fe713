//! The run as JSON lines: one object per event, for scripts (`--output json`), written by
//! [`JsonLines`]. The field names are stable and documented in docs/output.md ("Output for
//! scripts"); fields are added, never renamed:
//!
//! ```text
//! {"event":"found","key":"a/b.json","size":12,"etag":"\"9a0…\"","last_modified":"2024-05-01T10:00:00Z"}
//! {"event":"downloaded","key":"a/b.json","path":"/data/a/b.json","size":12,"etag":"\"9a0…\"","seconds":0.021}
//! {"event":"skipped","key":"a/c.json","path":"/data/a/c.json","size":7,"etag":"\"41f…\"","reason":"up to date"}
//! {"event":"failed","key":"a/d.json","path":"/data/a/d.json","error":{"code":"NoSuchKey","status":404,"message":"GET s3://b/a/d.json failed: NoSuchKey: …"}}
//! {"event":"summary","found":3,"downloaded":1,"skipped":1,"failed":1,"bytes":12,"seconds":0.4,"cancelled":false,"dry_run":false,"retries":0,"resumes":0,"throttled":0,"verified":1,"bytes_resumed":0,"partials_kept":0,"memory_peak":0}
//! ```
//! (Fields are shown in the order they are listed here; the lines hold them in alphabetical
//! order: read them by name.)

use std::io::Write;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::SystemTime;

use serde_json::{json, Value};

use crate::error::{error_chain, Error};
use crate::object::ObjectInfo;
use crate::progress::{DownloadResult, Outcome, Reporter, Summary};

/// Writes each event as one JSON object per line (see the module note).
///
/// A [`Reporter`] that writes one line per event to a writer (stdout for the CLI) and a last
/// `summary` line from [`JsonLines::finish`]. In a dry run nothing is downloaded: `found`
/// (and `skipped`) lines, then the summary. A closed writer (`| head`) stops the lines, not
/// the run.
pub struct JsonLines {
    out: Mutex<Box<dyn Write + Send>>,
    dry_run: bool,
    closed: AtomicBool,
}

impl JsonLines {
    /// Lines to `out`; `dry_run` as in the run's options (no `downloaded` lines then).
    pub fn new(out: Box<dyn Write + Send>, dry_run: bool) -> Self {
        JsonLines {
            out: Mutex::new(out),
            dry_run,
            closed: AtomicBool::new(false),
        }
    }

    /// Lines to standard output.
    pub fn stdout(dry_run: bool) -> Self {
        Self::new(Box::new(std::io::stdout()), dry_run)
    }

    /// The last line: the run's counts.
    pub fn finish(&self, summary: &Summary) {
        self.line(&json!({
            "event": "summary",
            "found": summary.objects_found,
            "downloaded": summary.objects_downloaded,
            "skipped": summary.objects_skipped,
            "archived": summary.objects_archived,
            "failed": summary.failures.len(),
            "bytes": summary.bytes_downloaded,
            "seconds": seconds(summary.elapsed.as_secs_f64()),
            "cancelled": summary.cancelled,
            "dry_run": summary.dry_run,
            "retries": summary.retries,
            "resumes": summary.resumes,
            "throttled": summary.throttled,
            "verified": summary.verified,
            "bytes_resumed": summary.bytes_resumed,
            "partials_kept": summary.partials_kept,
            "memory_peak": summary.memory_peak,
            "shard": summary.shard.map(|s| match &summary.shard_range {
                None => json!({ "index": s.index, "count": s.count, "by": "hash" }),
                Some(range) => json!({
                    "index": s.index, "count": s.count, "by": "range",
                    "after": range.after, "upto": range.upto,
                }),
            }),
        }));
    }

    /// An error of the whole run (it could not start, or the listing failed), as a
    /// `failed` line without a key.
    pub fn run_failed(&self, error: &Error) {
        self.line(
            &json!({"event": "failed", "key": null, "path": null, "error": error_value(error)}),
        );
    }

    fn line(&self, value: &Value) {
        if self.closed.load(Ordering::Relaxed) {
            return;
        }
        let mut out = self.out.lock().unwrap_or_else(|e| e.into_inner());
        let mut text = value.to_string();
        text.push('\n');
        if out
            .write_all(text.as_bytes())
            .and_then(|()| out.flush())
            .is_err()
        {
            self.closed.store(true, Ordering::Relaxed);
        }
    }
}

impl Reporter for JsonLines {
    fn object_found(&self, object: &ObjectInfo) {
        self.line(&json!({
            "event": "found",
            "key": object.key,
            "size": object.size,
            "etag": object.etag,
            "last_modified": object.last_modified.map(rfc3339),
        }));
    }

    fn download_finished(&self, result: &DownloadResult) {
        let path = result.dest.as_deref().map(Path::to_string_lossy);
        match &result.outcome {
            Outcome::Skipped(reason) => self.line(&json!({
                "event": "skipped",
                "key": result.key,
                "path": path,
                "size": result.size,
                "etag": result.etag,
                "reason": reason.as_str(),
            })),
            Outcome::Downloaded if self.dry_run => {}
            Outcome::Downloaded => self.line(&json!({
                "event": "downloaded",
                "key": result.key,
                "path": path,
                "size": result.size,
                "etag": result.etag,
                "seconds": seconds(result.elapsed.as_secs_f64()),
            })),
            Outcome::Failed(error) => self.line(&json!({
                "event": "failed",
                "key": result.key,
                "path": path,
                "error": error_value(error),
            })),
        }
    }
}

/// `{"code", "status", "message"}`: the S3 error code when the service sent one, else the
/// kind of failure (`Connection`, `Timeout`, `ChecksumMismatch`, `UnsafeKey`, ...).
fn error_value(error: &Error) -> Value {
    let service = error.service_error();
    let code = match (error.code(), service) {
        (Some(code), _) => code.to_owned(),
        (None, Some(service)) => format!("{:?}", service.kind()),
        (None, None) => match error {
            Error::UnsafeKey { .. } => "UnsafeKey",
            Error::Conflict { .. } => "Conflict",
            Error::Io { .. } | Error::Output { .. } => "Io",
            Error::Checksum { .. } => "ChecksumMismatch",
            Error::Timeout { .. } => "Timeout",
            Error::Cancelled => "Cancelled",
            _ => "Error",
        }
        .to_owned(),
    };
    json!({
        "code": code,
        "status": service.and_then(|s| s.status()),
        "message": error_chain(error),
    })
}

/// Seconds to the millisecond.
fn seconds(secs: f64) -> f64 {
    (secs * 1000.0).round() / 1000.0
}

fn rfc3339(time: SystemTime) -> String {
    aws_smithy_types::DateTime::from(time)
        .fmt(aws_smithy_types::date_time::Format::DateTime)
        .unwrap_or_default()
}
