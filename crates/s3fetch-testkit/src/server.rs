//! The HTTP server: [`TestServer`], its [`ServerOptions`], runtime test controls
//! (public / denied buckets and keys, [`ListGate`], [`RequestCounts`]).
//!
//! Request path: TCP accept loop ([`accept_loop`]; applies the optional per-connection
//! bandwidth cap, [`crate::throttle::Throttled`]) → [`Gateway`] (hyper service wrapping `s3s`;
//! applies the [`FaultPlan`], see [`crate::faults`]) → `s3s` SigV4 check ([`crate::s3`]'s `TestAuth`) → access hook (`TestAccess`:
//! counts and access control) → handler (`TestS3`).

use std::collections::{BTreeMap, HashSet};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use anyhow::Context as _;
use futures::future::BoxFuture;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto::Builder as ConnBuilder;
use s3s::service::{S3Service, S3ServiceBuilder};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::{JoinHandle, JoinSet};

use crate::faults::{FaultPlan, FaultState};
use crate::s3::{TestAccess, TestAuth, TestS3};
use crate::store::Store;
use crate::throttle::Throttled;

/// Default access key of [`TestServer::start`] and `s3fetch-testkit serve`.
pub const DEFAULT_ACCESS_KEY: &str = "s3fetch-test";
/// Default secret key of [`TestServer::start`] and `s3fetch-testkit serve`.
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
    /// Faults to inject (default: none); changeable at runtime with [`TestServer::set_faults`].
    pub faults: FaultPlan,
    /// Ignore `Range` on GetObject / HeadObject: answer `200` with the whole object (and its
    /// full checksum), as some S3-compatible stores do. Default `false`.
    pub range_returns_full_object: bool,
    /// Send objects' full-object checksums when asked (default `true`). `false` acts like a
    /// store that keeps none (objects uploaded before S3 kept them, many S3-compatible
    /// stores): clients can only check the ETag.
    pub checksums: bool,
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
        }
    }
}

/// Access-control switches changed at runtime.
#[derive(Debug, Default)]
pub(crate) struct Controls {
    pub(crate) public_buckets: HashSet<String>,
    pub(crate) denied_buckets: HashSet<String>,
    pub(crate) denied_keys: HashSet<(String, String)>,
}

/// Per-operation request counters.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    http: AtomicU64,
    by_op: Mutex<BTreeMap<String, u64>>,
}

impl Counters {
    pub(crate) fn record(&self, op: &str) {
        if let Ok(mut m) = self.by_op.lock() {
            *m.entry(op.to_owned()).or_default() += 1;
        }
    }

    fn snapshot(&self) -> RequestCounts {
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

    fn reset(&self) {
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
/// a non-empty `start-after` or a `marker`) while closed. See [`TestServer::gate_list_pages`].
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
    fn new() -> Self {
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

/// The outermost hyper service: every HTTP request passes through here before `s3s`.
#[derive(Clone)]
struct Gateway {
    s3: S3Service,
    shared: Arc<Shared>,
}

impl hyper::service::Service<hyper::Request<hyper::body::Incoming>> for Gateway {
    type Response = s3s::HttpResponse;
    type Error = s3s::HttpError;
    type Future = BoxFuture<'static, Result<Self::Response, Self::Error>>;

    fn call(&self, req: hyper::Request<hyper::body::Incoming>) -> Self::Future {
        self.shared.counters.http.fetch_add(1, Ordering::Relaxed);
        crate::faults::serve(&self.shared, &self.s3, req)
    }
}

async fn accept_loop(listener: TcpListener, gateway: Gateway) {
    let cap = gateway
        .shared
        .options
        .bandwidth_bytes_per_sec
        .filter(|&b| b > 0);
    let mut conns = JoinSet::new();
    loop {
        tokio::select! {
            res = listener.accept() => match res {
                Ok((stream, _peer)) => {
                    let _ = stream.set_nodelay(true);
                    let svc = gateway.clone();
                    conns.spawn(async move {
                        let conn = ConnBuilder::new(TokioExecutor::new());
                        let res = match cap {
                            Some(rate) => {
                                let io = TokioIo::new(Throttled::new(stream, rate));
                                conn.serve_connection(io, svc).await
                            }
                            None => conn.serve_connection(TokioIo::new(stream), svc).await,
                        };
                        if let Err(e) = res {
                            tracing::debug!(error = %e, "connection ended with error");
                        }
                    });
                }
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            },
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
        }
    }
}

/// A running S3 server on 127.0.0.1. Dropping it stops the server (and removes its
/// temporary data directory, if it made one).
pub struct TestServer {
    addr: SocketAddr,
    shared: Arc<Shared>,
    task: Option<JoinHandle<()>>,
    _tempdir: Option<tempfile::TempDir>,
}

impl std::fmt::Debug for TestServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestServer")
            .field("endpoint", &self.endpoint())
            .field("data_dir", &self.shared.store.root())
            .finish_non_exhaustive()
    }
}

impl TestServer {
    /// Starts a server on a random port with a temporary data directory and the default
    /// credentials. Must be called inside a tokio runtime.
    ///
    /// # Panics
    /// If the server cannot start (no temp dir, cannot bind).
    pub async fn start() -> TestServer {
        Self::start_with(ServerOptions::default())
            .await
            .expect("failed to start s3fetch-testkit server")
    }

    /// Starts a server with the given options. Must be called inside a tokio runtime.
    ///
    /// # Errors
    /// Data directory or bind errors.
    pub async fn start_with(options: ServerOptions) -> anyhow::Result<TestServer> {
        let (tempdir, dir) = match &options.data_dir {
            Some(d) => (None, d.clone()),
            None => {
                let t = tempfile::Builder::new()
                    .prefix("s3fetch-testkit-")
                    .tempdir()
                    .context("creating temporary data directory")?;
                let p = t.path().to_owned();
                (Some(t), p)
            }
        };
        let store = Store::open(&dir)
            .with_context(|| format!("opening data directory {}", dir.display()))?;
        let listener = TcpListener::bind(("127.0.0.1", options.port))
            .await
            .with_context(|| format!("binding 127.0.0.1:{}", options.port))?;
        let addr = listener.local_addr()?;
        let controls = Controls {
            public_buckets: options.public_buckets.iter().cloned().collect(),
            ..Default::default()
        };
        let shared = Arc::new(Shared {
            store,
            options: options.clone(),
            controls: RwLock::new(controls),
            counters: Counters::default(),
            gate: ListGate::new(),
            faults: FaultState::new(options.faults.clone()),
        });
        let mut builder = S3ServiceBuilder::new(TestS3 {
            shared: shared.clone(),
        });
        builder.set_auth(TestAuth {
            access_key: options.access_key.clone(),
            secret_key: options.secret_key.clone().into(),
        });
        builder.set_access(TestAccess {
            shared: shared.clone(),
        });
        if options.fast_list {
            builder.set_route(crate::list_route::ListV2Route {
                shared: shared.clone(),
            });
        }
        let gateway = Gateway {
            s3: builder.build(),
            shared: shared.clone(),
        };
        let task = tokio::spawn(accept_loop(listener, gateway));
        tracing::info!(%addr, data_dir = %dir.display(), "s3fetch-testkit server listening");
        Ok(TestServer {
            addr,
            shared,
            task: Some(task),
            _tempdir: tempdir,
        })
    }

    /// `http://127.0.0.1:PORT`.
    #[must_use]
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The bound address.
    #[must_use]
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Access key clients must sign with.
    #[must_use]
    pub fn access_key(&self) -> &str {
        &self.shared.options.access_key
    }

    /// Secret key clients must sign with.
    #[must_use]
    pub fn secret_key(&self) -> &str {
        &self.shared.options.secret_key
    }

    /// Region (`us-east-1` by default).
    #[must_use]
    pub fn region(&self) -> &str {
        &self.shared.options.region
    }

    /// The backing store, to add or inspect buckets and objects directly (no HTTP).
    #[must_use]
    pub fn store(&self) -> &Store {
        &self.shared.store
    }

    /// The data directory.
    #[must_use]
    pub fn data_dir(&self) -> &std::path::Path {
        self.shared.store.root()
    }

    /// Creates a bucket (no-op if it exists).
    ///
    /// # Panics
    /// On an invalid bucket name or I/O error.
    pub fn create_bucket(&self, name: &str) {
        self.shared
            .store
            .ensure_bucket(name)
            .expect("create_bucket");
    }

    /// Stores an object, replacing any existing one.
    ///
    /// # Panics
    /// If the bucket does not exist, the key is invalid or on I/O error.
    pub fn put_object(&self, bucket: &str, key: &str, body: impl AsRef<[u8]>) {
        self.shared
            .store
            .put_object(bucket, key, body)
            .expect("put_object");
    }

    fn controls(&self) -> std::sync::RwLockWriteGuard<'_, Controls> {
        self.shared
            .controls
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Allows (or stops allowing) anonymous unsigned reads (GET, HEAD, List) of a bucket.
    pub fn set_public(&self, bucket: &str, public: bool) {
        let mut c = self.controls();
        if public {
            c.public_buckets.insert(bucket.to_owned());
        } else {
            c.public_buckets.remove(bucket);
        }
    }

    /// Every request on this bucket (and its objects) gets 403 AccessDenied.
    pub fn deny_bucket(&self, bucket: &str) {
        self.controls().denied_buckets.insert(bucket.to_owned());
    }

    /// Undoes [`TestServer::deny_bucket`].
    pub fn allow_bucket(&self, bucket: &str) {
        self.controls().denied_buckets.remove(bucket);
    }

    /// Every request on this object (GET, HEAD, PUT, DELETE) gets 403 AccessDenied.
    pub fn deny_key(&self, bucket: &str, key: &str) {
        self.controls()
            .denied_keys
            .insert((bucket.to_owned(), key.to_owned()));
    }

    /// Undoes [`TestServer::deny_key`].
    pub fn allow_key(&self, bucket: &str, key: &str) {
        self.controls()
            .denied_keys
            .remove(&(bucket.to_owned(), key.to_owned()));
    }

    /// Requests seen so far.
    #[must_use]
    pub fn request_counts(&self) -> RequestCounts {
        self.shared.counters.snapshot()
    }

    /// Zeroes the request counters.
    pub fn reset_request_counts(&self) {
        self.shared.counters.reset();
    }

    /// Closes the list gate and returns it: from now on every list request that is not a
    /// first page waits until [`ListGate::open`] is called.
    #[must_use]
    pub fn gate_list_pages(&self) -> ListGate {
        self.shared.gate.close();
        self.shared.gate.clone()
    }

    /// The list gate (open unless [`TestServer::gate_list_pages`] closed it).
    #[must_use]
    pub fn list_gate(&self) -> ListGate {
        self.shared.gate.clone()
    }

    /// Replaces the fault plan (an empty plan turns faults off) and restarts attempt
    /// numbering; fault counts are kept.
    pub fn set_faults(&self, plan: FaultPlan) {
        self.shared.faults.set(plan);
    }

    /// The current fault plan.
    #[must_use]
    pub fn fault_plan(&self) -> FaultPlan {
        self.shared.faults.plan()
    }

    /// Faults injected so far, by kind name (`"slow_down"`, `"cut_body_after"`, ...).
    #[must_use]
    pub fn fault_counts(&self) -> BTreeMap<String, u64> {
        self.shared.faults.counts()
    }

    /// Zeroes the fault counts.
    pub fn reset_fault_counts(&self) {
        self.shared.faults.reset_counts();
    }

    /// Stops accepting and aborts all connections.
    pub async fn shutdown(mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
            let _ = task.await;
        }
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}
