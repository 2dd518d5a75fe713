//! What the server's layers share: the [`ServerOptions`], the access-control switches,
//! the request [`Counters`], the [`ListGate`] and the [`Shared`] bundle of them that the
//! hyper gateway, the fault injection, the `s3s` hooks and handlers all hold.
//!
//! It sits below every module that serves requests (`s3`, `list_route`, `faults::inject`,
//! `server`) and above the leaves (`store`, `faults::plan`, `faults::decide`), so those
//! modules lend nothing back to each other: the server builds a `Shared`, the rest only
//! read it.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use tokio::sync::watch;

use crate::faults::decide::FaultState;
use crate::faults::FaultPlan;
use crate::store::Store;

/// Default access key of [`TestServer::start`](crate::TestServer::start) and
/// `s3fetch-testkit serve`.
pub const DEFAULT_ACCESS_KEY: &str = "s3fetch-test";
/// Default secret key of [`TestServer::start`](crate::TestServer::start) and
/// `s3fetch-testkit serve`.
pub const DEFAULT_SECRET_KEY: &str = "s3fetch-test-secret";
/// Region reported by the server.
pub const DEFAULT_REGION: &str = "us-east-1";

/// Server configuration. Build with `ServerOptions { field: ..., ..Default::default() }`.
#[derive(Debug, Clone)]
pub struct ServerOptions {
    /// Data directory; `None` = a fresh temporary directory removed when the server drops.
    pub data_dir: Option<PathBuf>,
    /// TCP port on 127.0.0.1; 0 = pick a free port.
    pub port: u16,
    /// Access key clients must sign with.
    pub access_key: String,
    /// Secret key clients must sign with.
    pub secret_key: String,
    /// Region reported by HeadBucket / ListBuckets.
    pub region: String,
    /// Sleep before the response head of every GetObject / HeadObject.
    pub get_latency: Duration,
    /// Sleep at the start of every ListObjects(V2) request.
    pub list_latency: Duration,
    /// Buckets that allow anonymous (unsigned) reads from the start.
    pub public_buckets: Vec<String>,
    /// Per-connection cap on bytes sent to the client, in bytes per second (`None` = no cap).
    pub bandwidth_bytes_per_sec: Option<u64>,
    /// Serve ListObjectsV2 through a direct XML renderer (`list_route.rs`) instead
    /// of `s3s`'s generic serializer (same responses, ~10x less CPU). Default `true`.
    pub fast_list: bool,
    /// Faults to inject (default: none); changeable at runtime with
    /// [`TestServer::set_faults`](crate::TestServer::set_faults).
    pub faults: FaultPlan,
    /// Ignore `Range` on GetObject / HeadObject: answer `200` with the whole object (and its
    /// full checksum), as some S3-compatible stores do. Default `false`.
    pub range_returns_full_object: bool,
    /// Send objects' full-object checksums when asked (default `true`). `false` acts like a
    /// store that keeps none (objects uploaded before S3 kept them, many S3-compatible
    /// stores): clients can only check the ETag.
    pub checksums: bool,
    /// Serve HTTPS instead of HTTP (default `false`): at start the server makes a private CA
    /// and a certificate for `127.0.0.1`, `::1` and `localhost`, writes the CA certificate to
    /// [`ServerOptions::ca_file`] and answers on `https://127.0.0.1:PORT` (see
    /// [`TestServer::ca_pem`](crate::TestServer::ca_pem)). Everything else (faults, latency,
    /// the bandwidth cap, ...) works the same.
    pub tls: bool,
    /// Where a TLS server writes its CA certificate (PEM); `None` = `ca.pem` in the data
    /// directory. Ignored without [`ServerOptions::tls`].
    pub ca_file: Option<PathBuf>,
    /// With [`ServerOptions::tls`], offer HTTP/2 in the handshake (ALPN `h2`) besides
    /// HTTP/1.1. Default `false`: S3 speaks HTTP/1.1 only, and a client offering both (the
    /// AWS SDK does) would otherwise multiplex every request on one connection.
    pub http2: bool,
}

impl Default for ServerOptions {
    fn default() -> Self {
        Self {
            data_dir: None,
            port: 0,
            access_key: DEFAULT_ACCESS_KEY.to_owned(),
            secret_key: DEFAULT_SECRET_KEY.to_owned(),
            region: DEFAULT_REGION.to_owned(),
            get_latency: Duration::ZERO,
            list_latency: Duration::ZERO,
            public_buckets: Vec::new(),
            bandwidth_bytes_per_sec: None,
            fast_list: true,
            faults: FaultPlan::default(),
            range_returns_full_object: false,
            checksums: true,
            tls: false,
            ca_file: None,
            http2: false,
        }
    }
}

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
}
