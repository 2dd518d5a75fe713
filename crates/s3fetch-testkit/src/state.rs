//! What the server's layers share: the [`ServerOptions`] (from `options.rs`), the bucket
//! quirks, the access-control switches, the request [`Counters`], the [`ListGate`], the
//! S3 Express sessions and the [`Shared`] bundle of them that the hyper gateway, the fault
//! injection, the `s3s` hooks and handlers all hold.
//!
//! It sits below every module that serves requests (`s3`, `access`, `list_route`,
//! `faults::inject`, `express`, `quirks::{regions, listing}`, `server`) and above the
//! leaves (`store`, `options`, the quirks table, `faults::plan`, `faults::decide`), so those
//! modules lend nothing back to each other: the server builds a `Shared`, the rest only
//! read it.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use tokio::sync::watch;

use crate::express::Sessions;
use crate::faults::decide::FaultState;
pub use crate::options::{ServerOptions, DEFAULT_ACCESS_KEY, DEFAULT_REGION, DEFAULT_SECRET_KEY};
use crate::quirks::Quirks;
use crate::store::Store;

/// Access-control switches changed at runtime.
#[derive(Debug, Default)]
pub(crate) struct Controls {
    pub(crate) public_buckets: HashSet<String>,
    pub(crate) denied_buckets: HashSet<String>,
    pub(crate) denied_keys: HashSet<(String, String)>,
    /// Objects in an archive storage class: bucket → key → class and restore state.
    pub(crate) archived: HashMap<String, HashMap<String, Archive>>,
}

/// An object's archive storage class (`GLACIER`, `DEEP_ARCHIVE`, ...) and whether a restored
/// copy is readable. A GET of one not restored answers 403 `InvalidObjectState`, as S3 does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Archive {
    pub(crate) class: String,
    pub(crate) restored: bool,
}

impl Archive {
    /// Whether a GET fails: `GLACIER` and `DEEP_ARCHIVE` until restored (`GLACIER_IR` and
    /// the other classes read at once).
    pub(crate) fn blocks_reads(&self) -> bool {
        !self.restored && matches!(self.class.as_str(), "GLACIER" | "DEEP_ARCHIVE")
    }
}

impl Controls {
    pub(crate) fn archive(&self, bucket: &str, key: &str) -> Option<&Archive> {
        self.archived.get(bucket)?.get(key)
    }
}

/// Per-operation request counters.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    http: AtomicU64,
    by_op: Mutex<BTreeMap<String, u64>>,
}

impl Counters {
    /// Counts one HTTP request (before anything else looks at it).
    pub(crate) fn record_http(&self) {
        self.http.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts one request of operation `op` (its S3 name).
    pub(crate) fn record(&self, op: &str) {
        if let Ok(mut m) = self.by_op.lock() {
            *m.entry(op.to_owned()).or_default() += 1;
        }
    }

    pub(crate) fn snapshot(&self) -> RequestCounts {
        let by_op = self.by_op.lock().map(|m| m.clone()).unwrap_or_default();
        let get = |k: &str| by_op.get(k).copied().unwrap_or(0);
        RequestCounts {
            http_requests: self.http.load(Ordering::Relaxed),
            list: get("ListObjectsV2") + get("ListObjects"),
            get: get("GetObject"),
            head: get("HeadObject"),
            head_bucket: get("HeadBucket"),
            put: get("PutObject"),
            delete: get("DeleteObject"),
            by_op,
        }
    }

    pub(crate) fn reset(&self) {
        self.http.store(0, Ordering::Relaxed);
        if let Ok(mut m) = self.by_op.lock() {
            m.clear();
        }
    }
}

/// A snapshot of requests seen by the server.
///
/// Operation counts are taken once the request's signature has been verified (or it was
/// found anonymous) and its operation resolved, before access control; so requests
/// rejected with `AccessDenied` count, requests with a bad signature don't (they count in
/// `http_requests` only).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RequestCounts {
    /// Every HTTP request received.
    pub http_requests: u64,
    /// ListObjectsV2 + ListObjects.
    pub list: u64,
    /// GetObject.
    pub get: u64,
    /// HeadObject.
    pub head: u64,
    /// HeadBucket.
    pub head_bucket: u64,
    /// PutObject.
    pub put: u64,
    /// DeleteObject.
    pub delete: u64,
    /// Every operation by its S3 name (`"GetObject"`, `"ListObjectsV2"`, ...).
    pub by_op: BTreeMap<String, u64>,
}

impl RequestCounts {
    /// Requests of operation `op` (its S3 name, `"CreateSession"`, ...) seen so far.
    #[must_use]
    pub fn of(&self, op: &str) -> u64 {
        self.by_op.get(op).copied().unwrap_or(0)
    }
}

/// Holds back every list request that is not a first page (it has a continuation token,
/// a non-empty `start-after` or a `marker`) while closed. See
/// [`TestServer::gate_list_pages`](crate::TestServer::gate_list_pages).
#[derive(Debug, Clone)]
pub struct ListGate {
    inner: Arc<GateInner>,
}

#[derive(Debug)]
struct GateInner {
    open: watch::Sender<bool>,
    waiting: AtomicUsize,
    passed: AtomicU64,
}

struct WaitingGuard<'a>(&'a AtomicUsize);

impl Drop for WaitingGuard<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

impl ListGate {
    pub(crate) fn new() -> Self {
        Self {
            inner: Arc::new(GateInner {
                open: watch::Sender::new(true),
                waiting: AtomicUsize::new(0),
                passed: AtomicU64::new(0),
            }),
        }
    }

    /// Lets held and future requests through.
    pub fn open(&self) {
        self.inner.open.send_replace(true);
    }

    /// Holds back later non-first-page list requests.
    pub fn close(&self) {
        self.inner.open.send_replace(false);
    }

    /// Whether the gate is open.
    #[must_use]
    pub fn is_open(&self) -> bool {
        *self.inner.open.borrow()
    }

    /// Number of list requests currently held at the gate.
    #[must_use]
    pub fn waiting(&self) -> usize {
        self.inner.waiting.load(Ordering::SeqCst)
    }

    /// Number of non-first-page list requests that went through the gate (held or not).
    #[must_use]
    pub fn passed(&self) -> u64 {
        self.inner.passed.load(Ordering::SeqCst)
    }

    /// Waits until at least `n` requests are held at the gate.
    pub async fn wait_for_waiting(&self, n: usize) {
        while self.waiting() < n {
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }

    pub(crate) async fn wait_open(&self) {
        let mut rx = self.inner.open.subscribe();
        if !*rx.borrow_and_update() {
            self.inner.waiting.fetch_add(1, Ordering::SeqCst);
            let _guard = WaitingGuard(&self.inner.waiting);
            let _ = rx.wait_for(|open| *open).await;
        }
        self.inner.passed.fetch_add(1, Ordering::SeqCst);
    }
}

/// State shared by the server's hooks and handlers.
pub(crate) struct Shared {
    pub(crate) store: Store,
    pub(crate) options: ServerOptions,
    pub(crate) controls: RwLock<Controls>,
    pub(crate) counters: Counters,
    pub(crate) gate: ListGate,
    pub(crate) faults: FaultState,
    /// The per-bucket quirks of [`ServerOptions`].
    pub(crate) quirks: Quirks,
    /// S3 Express sessions handed out.
    pub(crate) sessions: Sessions,
}
