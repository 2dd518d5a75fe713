//! One run seen from Python: [`start`] spawns it, [`Run::wait`] follows it to the end.
//!
//! ```text
//! engine tasks ──Reporter (Forward)──► bounded channel of Event ──► Run.wait (the caller's thread):
//!   (runtime threads, no GIL)                                        GIL released while waiting;
//!                                                                    per wake-up: one call of the
//!                                                                    Python dispatcher with a batch
//!                                                                    of events, then check_signals
//! ```
//! Callbacks therefore run on the thread that waits, one batch at a time, and all of them have
//! run before `wait` returns. The channel is bounded: a slow callback makes the engine wait
//! instead of queueing events without limit. A callback's exception or a Ctrl-C cancels the
//! run; `wait` goes on draining until the run has stopped (its temporary files removed), then
//! raises. Dropping a `Run` cancels it.

use std::path::PathBuf;
use std::sync::mpsc::{sync_channel, Receiver, RecvTimeoutError, SyncSender};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use pyo3::prelude::*;
use pyo3::types::{PyList, PyTuple};
use s3fetch::aws_credential_types::provider::SharedCredentialsProvider;
use s3fetch::{
    ChecksumMode, ClientOptions, DownloadOptions, DownloadResult, Downloader, Error, GlobRule,
    JsonLines, ObjectInfo, Outcome, Reporter, RequestPayer, S3Uri, Shard, SkipReason, Summary,
};
use tokio_util::sync::CancellationToken;

use crate::credentials::Botocore;
use crate::errors::{self, ErrorInfo};
use crate::runtime;

/// How often `wait` wakes up without events to check for Ctrl-C.
pub(crate) const TICK: Duration = Duration::from_millis(50);
/// Events in the channel at most; also the largest batch handed to Python.
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
    Done(Result<Summary, Error>),
}

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
            let mut done = None;
            let (received, receiver) = py.detach(move || (events.recv_timeout(TICK), events));
            events = receiver;
            match received {
                Ok(Event::Done(outcome)) => done = Some(outcome),
                Ok(event) => {
                    batch.push(event);
                    while batch.len() < EVENTS {
                        match events.try_recv() {
                            Ok(Event::Done(outcome)) => {
                                done = Some(outcome);
                                break;
                            }
                            Ok(event) => batch.push(event),
                            Err(_) => break,
                        }
                    }
                }
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
                if let Event::Warning(message) = event {
                    if let Err(error) = warn(py, message) {
                        raised.get_or_insert(error);
                    }
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
fn warn(py: Python<'_>, message: &str) -> PyResult<()> {
    let category = py.import("s3fetch.exceptions")?.getattr("S3FetchWarning")?;
    py.import("warnings")?
        .call_method1("warn", (message, category, 3))?;
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
            Event::Done(_) | Event::Warning(_) => continue,
        };
        list.append(tuple)?;
    }
    dispatch.call1((list,))?;
    Ok(())
}

/// `request_payer="requester"`, checked by the library.
pub(crate) fn payer(text: Option<String>) -> Result<Option<RequestPayer>, Error> {
    text.map(|text| text.parse::<RequestPayer>()).transpose()
}

/// Where S3 is and who we are there: the same keywords for `download` and `plan`.
pub(crate) struct Connection {
    pub region: Option<String>,
    pub endpoint_url: Option<String>,
    pub profile: Option<String>,
    pub no_sign_request: bool,
    pub force_path_style: Option<bool>,
    pub ca_bundle: Option<PathBuf>,
    pub credentials: Option<Py<PyAny>>,
    pub ignore_environment: bool,
}

impl Connection {
    pub fn client_options(self) -> ClientOptions {
        let mut client = ClientOptions::default();
        client.region = self.region;
        client.endpoint_url = self.endpoint_url;
        client.profile = self.profile;
        client.no_sign_request = self.no_sign_request;
        client.force_path_style = self.force_path_style;
        client.ca_bundle = self.ca_bundle;
        client.credentials = self
            .credentials
            .map(|c| SharedCredentialsProvider::new(Botocore::new(c)));
        client.ignore_environment = self.ignore_environment;
        client
    }
}

/// Starts a run with the library's options (checked by the library: a bad one comes back
/// from `wait` as the matching exception, before any request) and returns it.
#[pyfunction]
#[pyo3(signature = (
    s3_uri, download_dir, *, regex=None, include=Vec::new(), exclude=Vec::new(), min_size=None,
    max_size=None, newer_than=None, older_than=None, include_archived=false, shard=None, shard_count=None, shard_by=None, plan=None, inventory=None,
    concurrent_downloads=None, list_concurrency=None,
    multipart_threshold=None, part_size=None, retries=None, idle_timeout=None,
    checksum_mode="enabled", delimiter="/".to_owned(), dry_run=false, skip_existing=false,
    sync=false, compare="mtime", preserve_mtime=true, resume=true, failed_keys=None, keys_from=None, output=None,
    want_found=false, want_downloaded=false, want_failed=false, want_skipped=false, region=None, endpoint_url=None, profile=None,
    no_sign_request=false, force_path_style=None, ca_bundle=None, credentials=None,
    ignore_environment=false, request_payer=None,
))]
#[allow(clippy::too_many_arguments)]
pub(crate) fn start(
    py: Python<'_>,
    s3_uri: &str,
    download_dir: PathBuf,
    regex: Option<String>,
    include: Vec<String>,
    exclude: Vec<String>,
    min_size: Option<String>,
    max_size: Option<String>,
    newer_than: Option<String>,
    older_than: Option<String>,
    include_archived: bool,
    shard: Option<String>,
    shard_count: Option<u32>,
    shard_by: Option<String>,
    plan: Option<String>,
    inventory: Option<String>,
    concurrent_downloads: Option<usize>,
    list_concurrency: Option<usize>,
    multipart_threshold: Option<String>,
    part_size: Option<String>,
    retries: Option<u32>,
    idle_timeout: Option<f64>,
    checksum_mode: &str,
    delimiter: String,
    dry_run: bool,
    skip_existing: bool,
    sync: bool,
    compare: &str,
    preserve_mtime: bool,
    resume: bool,
    failed_keys: Option<PathBuf>,
    keys_from: Option<PathBuf>,
    output: Option<String>,
    want_found: bool,
    want_downloaded: bool,
    want_failed: bool,
    want_skipped: bool,
    region: Option<String>,
    endpoint_url: Option<String>,
    profile: Option<String>,
    no_sign_request: bool,
    force_path_style: Option<bool>,
    ca_bundle: Option<PathBuf>,
    credentials: Option<Py<PyAny>>,
    ignore_environment: bool,
    request_payer: Option<String>,
) -> PyResult<Run> {
    let fail = |error: Error| errors::to_err(py, &error);
    let mut options = DownloadOptions::new(S3Uri::parse(s3_uri).map_err(fail)?)
        .download_dir(download_dir)
        .delimiter(delimiter)
        .dry_run(dry_run)
        .skip_existing(skip_existing)
        .sync(sync)
        .compare(compare.parse::<s3fetch::Compare>().map_err(fail)?)
        .preserve_mtime(preserve_mtime)
        .resume(resume)
        .checksum_mode(checksum_mode.parse::<ChecksumMode>().map_err(fail)?);
    options.regex = regex;
    // The keywords cannot tell their order: includes first, then excludes (an exclude wins).
    options.globs = include
        .into_iter()
        .map(GlobRule::Include)
        .chain(exclude.into_iter().map(GlobRule::Exclude))
        .collect();
    let size = |option, text: Option<String>| text.map(|t| size_option(option, &t)).transpose();
    options.min_size = size("min_size", min_size).map_err(fail)?;
    options.max_size = size("max_size", max_size).map_err(fail)?;
    let now = SystemTime::now();
    let time = |option, text: Option<String>| {
        text.map(|t| {
            s3fetch::parse_time(&t, now).map_err(|reason| Error::InvalidOption { option, reason })
        })
        .transpose()
    };
    options.newer_than = time("newer_than", newer_than).map_err(fail)?;
    options.older_than = time("older_than", older_than).map_err(fail)?;
    options.include_archived = include_archived;
    options.inventory = inventory
        .map(|uri| S3Uri::parse(&uri))
        .transpose()
        .map_err(fail)?;
    options.shard = match shard.as_deref().map(str::trim) {
        None => None,
        Some("auto") => {
            let (shard, _source) =
                Shard::from_env(shard_count, |name| std::env::var(name).ok()).map_err(fail)?;
            Some(shard)
        }
        Some(text) => Some(Shard::parse(text).map_err(fail)?),
    };
    options.shard_by = shard_by
        .map(|by| s3fetch::ShardBy::parse(&by))
        .transpose()
        .map_err(fail)?;
    options.plan = plan
        .map(|json| s3fetch::Plan::from_json(&json))
        .transpose()
        .map_err(fail)?;
    options.failed_keys = failed_keys;
    options.keys_from = keys_from;
    let json = match output.as_deref() {
        None | Some("text") => None,
        Some("json") => Some(Arc::new(JsonLines::stdout(dry_run))),
        Some(other) => {
            return Err(fail(Error::InvalidOption {
                option: "output",
                reason: format!("must be \"json\" or None, not {other:?}"),
            }))
        }
    };
    if let Some(n) = concurrent_downloads {
        options = options.concurrent_downloads(n);
    }
    if let Some(n) = list_concurrency {
        options = options.list_concurrency(n);
    }
    if let Some(size) = multipart_threshold {
        options =
            options.multipart_threshold(size_option("multipart_threshold", &size).map_err(fail)?);
    }
    if let Some(size) = part_size {
        options = options.part_size(size_option("part_size", &size).map_err(fail)?);
    }
    if let Some(n) = retries {
        options = options.retries(n);
    }
    if let Some(seconds) = idle_timeout {
        // Out of range (negative, NaN) becomes zero, which the library refuses with the range.
        options = options.idle_timeout(Duration::try_from_secs_f64(seconds).unwrap_or_default());
    }
    options.request_payer = payer(request_payer).map_err(fail)?;
    options = options.client_options(
        Connection {
            region,
            endpoint_url,
            profile,
            no_sign_request,
            force_path_style,
            ca_bundle,
            credentials,
            ignore_environment,
        }
        .client_options(),
    );

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

/// A size given as text (`"8MiB"`, or bytes), read by the library's parser.
fn size_option(option: &'static str, text: &str) -> Result<u64, Error> {
    s3fetch::parse_size(text).map_err(|reason| Error::InvalidOption { option, reason })
}
