//! One run seen from Python: [`start`] spawns it, [`Run::wait`] follows it to the end.
//!
//! ```text
//! engine tasks ──Reporter (Forward)──► bounded channel of Event ──► Run.wait (the caller's thread):
//!   (runtime threads, no GIL)                                        GIL released while waiting;
//!                                                                    per wake-up: one call of the
//!                                                                    Python dispatcher with a batch
//!                                                                    of events, then check_signals
//! ```
//! Callbacks therefore run on the thread that waits, one batch at a time ([`Run::wait`]); the
//! channel is bounded ([`EVENTS`]). Dropping a `Run` cancels it.

use std::path::PathBuf;
use std::sync::mpsc::{sync_channel, Receiver, RecvTimeoutError, SyncSender};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList, PyTuple};
use s3fetch::{
    DownloadOptions, DownloadResult, Downloader, Error, JsonLines, ObjectInfo, Outcome, Reporter,
    S3Uri, SkipReason, Summary,
};
use tokio_util::sync::CancellationToken;

use crate::errors::{self, ErrorInfo};
use crate::runtime;

/// How often `wait` wakes up without events to check for Ctrl-C.
pub(crate) const TICK: Duration = Duration::from_millis(50);
/// How long events are gathered into one batch after the first: callbacks run at most this
/// late, and Python wakes at most 50 times a second while events flow.
const GATHER: Duration = Duration::from_millis(20);
/// Events in the channel at most; also the largest batch handed to Python. The channel is
/// bounded: a slow callback makes the engine wait instead of queueing events without limit.
const EVENTS: usize = 4096;

/// Event kinds, as `api.py` knows them.
const FOUND: u8 = 0;
const DOWNLOADED: u8 = 1;
const FAILED: u8 = 2;
const SKIPPED: u8 = 3;

enum Event {
    Found,
    Downloaded {
        key: String,
        dest: PathBuf,
        size: u64,
    },
    Failed {
        key: String,
        dest: Option<PathBuf>,
        error: ErrorInfo,
    },
    Skipped {
        key: String,
        dest: PathBuf,
        size: u64,
        reason: SkipReason,
    },
    /// Something to warn the Python user about (see `Reporter::warning`).
    Warning(String),
    /// Something to tell on `sys.stderr` (see `Reporter::notice`).
    Notice(String),
    Done(Finished),
}

/// How a run ended.
type Finished = Result<Summary, Error>;

/// Sends the events Python asked for into the channel.
struct Forward {
    events: SyncSender<Event>,
    found: bool,
    downloaded: bool,
    failed: bool,
    skipped: bool,
    /// `output="json"`: the library's JSON lines on stdout as well.
    json: Option<Arc<JsonLines>>,
}

impl Reporter for Forward {
    fn warning(&self, message: &str) {
        let _ = self.events.send(Event::Warning(message.to_owned()));
    }

    fn notice(&self, message: &str) {
        let _ = self.events.send(Event::Notice(message.to_owned()));
    }

    fn object_found(&self, object: &ObjectInfo) {
        if let Some(json) = &self.json {
            json.object_found(object);
        }
        if self.found {
            let _ = self.events.send(Event::Found);
        }
    }

    fn download_finished(&self, result: &DownloadResult) {
        if let Some(json) = &self.json {
            json.download_finished(result);
        }
        let event = match &result.outcome {
            Outcome::Downloaded if self.downloaded => Event::Downloaded {
                key: result.key.clone(),
                dest: result.dest.clone().unwrap_or_default(),
                size: result.size,
            },
            Outcome::Skipped(reason) if self.skipped => Event::Skipped {
                key: result.key.clone(),
                dest: result.dest.clone().unwrap_or_default(),
                size: result.size,
                reason: *reason,
            },
            Outcome::Failed(error) if self.failed => Event::Failed {
                key: result.key.clone(),
                dest: result.dest.clone(),
                error: errors::describe(error),
            },
            _ => return,
        };
        // Blocks while the channel is full: the engine waits for slow callbacks. Fails only
        // when nobody waits for the run any more.
        let _ = self.events.send(event);
    }
}

/// A run in progress. Wait for it once; drop it to cancel it.
#[pyclass(module = "s3fetch._s3fetch")]
pub(crate) struct Run {
    cancel: CancellationToken,
    events: Mutex<Option<Receiver<Event>>>,
}

#[pymethods]
impl Run {
    /// Stops the run: the listing stops, downloads are aborted, temporary files removed.
    fn cancel(&self) {
        self.cancel.cancel();
    }

    /// Waits for the run with the GIL released, calling `dispatch(events)` with each batch
    /// of events, and returns `(success_count, [(key, exception), ...])`.
    ///
    /// Callbacks run on the thread that waits, one batch at a time, and all of them have run
    /// before `wait` returns. A callback's exception or a Ctrl-C cancels the run; `wait` goes
    /// on draining until the run has stopped (its temporary files removed), then raises.
    #[pyo3(signature = (dispatch=None))]
    fn wait<'py>(
        &self,
        py: Python<'py>,
        dispatch: Option<Bound<'py, PyAny>>,
    ) -> PyResult<(u64, Bound<'py, PyList>)> {
        let mut events = self
            .events
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
            .ok_or_else(|| {
                errors::exception(py, "S3FetchError", "this run was already waited for".into())
            })?;
        // The first error of a callback or Ctrl-C; raised once the run has stopped.
        let mut raised: Option<PyErr> = None;
        let mut batch = Vec::new();
        let outcome = loop {
            let (received, receiver, gathered) = py.detach(move || {
                let received = gather(&events, &mut batch);
                (received, events, batch)
            });
            (events, batch) = (receiver, gathered);
            let mut done = None;
            match received {
                Ok(Some(outcome)) => done = Some(outcome),
                Ok(None) => {}
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => {
                    break Err(errors::exception(
                        py,
                        "S3FetchError",
                        "the download engine stopped unexpectedly".into(),
                    ))
                }
            }
            for event in &batch {
                let told = match event {
                    Event::Warning(message) => warn(py, message),
                    Event::Notice(message) => tell(py, message),
                    _ => Ok(()),
                };
                if let Err(error) = told {
                    raised.get_or_insert(error);
                }
            }
            if !batch.is_empty() {
                if let (Some(dispatch), None) = (&dispatch, &raised) {
                    if let Err(error) = deliver(py, dispatch, &batch) {
                        self.cancel.cancel();
                        raised = Some(error);
                    }
                }
                batch.clear();
            }
            if let Err(interrupt) = py.check_signals() {
                self.cancel.cancel();
                raised.get_or_insert(interrupt);
            }
            if let Some(outcome) = done {
                break Ok(outcome);
            }
        };
        if let Some(error) = raised {
            return Err(error);
        }
        let summary = outcome?.map_err(|error| errors::to_err(py, &error))?;
        let failures = PyList::empty(py);
        for failure in &summary.failures {
            let exception = errors::describe(&failure.error).to_exception(py)?;
            failures.append((failure.key.as_str(), exception))?;
        }
        Ok((summary.objects_downloaded, failures))
    }
}

impl Drop for Run {
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}

/// `warnings.warn(message, s3fetch.exceptions.S3FetchWarning)`, pointing at the caller of
/// `download()`.
/// Waits up to [`TICK`] for an event, then gathers what else arrives within [`GATHER`] of it
/// (or until [`EVENTS`] are in `batch`): Python is woken once per batch, not once per event,
/// which with thousands of small objects cost more CPU than the callbacks themselves.
/// Returns the run's outcome when its last event came.
fn gather(
    events: &Receiver<Event>,
    batch: &mut Vec<Event>,
) -> Result<Option<Finished>, RecvTimeoutError> {
    let first = match events.recv_timeout(TICK) {
        Ok(Event::Done(outcome)) => return Ok(Some(outcome)),
        Ok(event) => event,
        Err(error) => return Err(error),
    };
    batch.push(first);
    let deadline = Instant::now() + GATHER;
    while batch.len() < EVENTS {
        let left = deadline.saturating_duration_since(Instant::now());
        match events.recv_timeout(left) {
            Ok(Event::Done(outcome)) => return Ok(Some(outcome)),
            Ok(event) => batch.push(event),
            // The batch goes to Python now; a disconnect shows on the next call.
            Err(_) => break,
        }
    }
    Ok(None)
}

fn warn(py: Python<'_>, message: &str) -> PyResult<()> {
    let category = py.import("s3fetch.exceptions")?.getattr("S3FetchWarning")?;
    py.import("warnings")?
        .call_method1("warn", (message, category, 3))?;
    Ok(())
}

/// Writes `s3fetch: message` on `sys.stderr` (so that a notebook or a redirected
/// `sys.stderr` shows it).
fn tell(py: Python<'_>, message: &str) -> PyResult<()> {
    let stderr = py.import("sys")?.getattr("stderr")?;
    if !stderr.is_none() {
        stderr.call_method1("write", (format!("s3fetch: {message}\n"),))?;
        stderr.call_method0("flush")?;
    }
    Ok(())
}

/// Hands one batch of events to the Python dispatcher as tuples (see `api.py`).
fn deliver(py: Python<'_>, dispatch: &Bound<'_, PyAny>, batch: &[Event]) -> PyResult<()> {
    let list = PyList::empty(py);
    for event in batch {
        let tuple = match event {
            Event::Found => PyTuple::new(py, [FOUND])?.into_any(),
            Event::Downloaded { key, dest, size } => {
                (DOWNLOADED, key.as_str(), dest.as_path(), *size)
                    .into_pyobject(py)?
                    .into_any()
            }
            Event::Skipped {
                key,
                dest,
                size,
                reason,
            } => (
                SKIPPED,
                key.as_str(),
                dest.as_path(),
                *size,
                reason.as_str(),
            )
                .into_pyobject(py)?
                .into_any(),
            Event::Failed { key, dest, error } => (
                FAILED,
                key.as_str(),
                dest.as_deref(),
                error.to_exception(py)?,
            )
                .into_pyobject(py)?
                .into_any(),
            Event::Done(_) | Event::Warning(_) | Event::Notice(_) => continue,
        };
        list.append(tuple)?;
    }
    dispatch.call1((list,))?;
    Ok(())
}

/// Starts a run with the library's options (checked by the library: a bad one comes back
/// from `wait` as the matching exception, before any request) and returns it. `options` and
/// `connection` hold only the keywords the caller gave (see [`crate::options`]).
#[pyfunction]
#[pyo3(signature = (
    s3_uri, download_dir, options, connection, *, want_found=false, want_downloaded=false,
    want_failed=false, want_skipped=false,
))]
#[allow(clippy::too_many_arguments)]
pub(crate) fn start(
    py: Python<'_>,
    s3_uri: &str,
    download_dir: PathBuf,
    options: &Bound<'_, PyDict>,
    connection: &Bound<'_, PyDict>,
    want_found: bool,
    want_downloaded: bool,
    want_failed: bool,
    want_skipped: bool,
) -> PyResult<Run> {
    let fail = |error: Error| errors::to_err(py, &error);
    let mut download =
        DownloadOptions::new(S3Uri::parse(s3_uri).map_err(fail)?).download_dir(download_dir);
    let output = crate::options::apply(&mut download, options)?.map_err(fail)?;
    let json = match output.as_deref() {
        None | Some("text") => None,
        Some("json") => Some(Arc::new(JsonLines::stdout(download.dry_run))),
        Some(other) => {
            return Err(fail(Error::InvalidOption {
                option: "output",
                reason: format!("must be \"json\" or None, not {other:?}"),
            }))
        }
    };
    let mut options = download.client_options(crate::options::client_options(connection)?);

    let cancel = CancellationToken::new();
    options = options.cancel_token(cancel.clone());
    let (sender, events) = sync_channel(EVENTS);
    let forward = Forward {
        events: sender.clone(),
        found: want_found,
        downloaded: want_downloaded,
        failed: want_failed,
        skipped: want_skipped,
        json: json.clone(),
    };
    let downloader = Downloader::new(options).reporter(Arc::new(forward));
    runtime::get(py)?.spawn(async move {
        let outcome = downloader.run().await;
        if let Some(json) = json {
            match &outcome {
                Ok(summary) => json.finish(summary),
                Err(error) => json.run_failed(error),
            }
        }
        let _ = sender.send(Event::Done(outcome));
    });
    Ok(Run {
        cancel,
        events: Mutex::new(Some(events)),
    })
}
