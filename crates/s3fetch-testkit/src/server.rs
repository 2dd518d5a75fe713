//! The HTTP server: [`TestServer`], its [`ServerOptions`], runtime test controls
//! (public / denied buckets and keys, [`ListGate`], [`RequestCounts`]).
//!
//! Request path: TCP accept loop (`accept_loop`; applies the optional per-connection
//! bandwidth cap, [`crate::throttle::Throttled`]) → `Gateway` (hyper service wrapping
//! `s3s`; checks `s3express` signatures when there are directory buckets, answers
//! wrong-region refusals, applies the [`FaultPlan`], see [`crate::faults`]) → `s3s` SigV4
//! check (`access.rs`'s `TestAuth`) → access hook (`TestAccess`: counts, bucket quirks, access
//! control) → handler (`TestS3`).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use anyhow::Context as _;
use futures::future::BoxFuture;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto::Builder as ConnBuilder;
use s3s::service::{S3Service, S3ServiceBuilder};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio::task::{JoinHandle, JoinSet};
use tokio_rustls::TlsAcceptor;

use crate::access::{TestAccess, TestAuth};
use crate::express::Sessions;
use crate::faults::decide::FaultState;
use crate::faults::FaultPlan;
use crate::quirks::Quirks;
use crate::s3::TestS3;
use crate::state::{Controls, Counters, Shared};
pub use crate::state::{
    ListGate, RequestCounts, ServerOptions, DEFAULT_ACCESS_KEY, DEFAULT_REGION, DEFAULT_SECRET_KEY,
};
use crate::store::Store;
use crate::throttle::Throttled;
use crate::tls::Tls;

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

    fn call(&self, mut req: hyper::Request<hyper::body::Incoming>) -> Self::Future {
        self.shared.counters.record_http();
        let quirks = &self.shared.quirks;
        // `s3s` refuses `s3express` signatures: check them here (see `crate::express`).
        if quirks.has_directory_buckets() {
            if let Some(res) = crate::express::authenticate(&self.shared, &mut req) {
                return Box::pin(std::future::ready(Ok(res)));
            }
        }
        if quirks.has_regions() {
            return crate::quirks::regions::serve(&self.shared, &self.s3, req);
        }
        crate::faults::inject::serve(&self.shared, &self.s3, req)
    }
}

async fn accept_loop(listener: TcpListener, gateway: Gateway, tls: Option<TlsAcceptor>) {
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
                    let tls = tls.clone();
                    conns.spawn(async move {
                        match cap {
                            Some(rate) => serve_stream(Throttled::new(stream, rate), tls, svc).await,
                            None => serve_stream(stream, tls, svc).await,
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

/// Serves one connection: the TLS handshake first when `tls` is set (over the throttled
/// stream, so the cap counts bytes on the wire), then HTTP/1.1 or HTTP/2.
async fn serve_stream<S>(stream: S, tls: Option<TlsAcceptor>, svc: Gateway)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let conn = ConnBuilder::new(TokioExecutor::new());
    let res = match tls {
        Some(acceptor) => match acceptor.accept(stream).await {
            Ok(stream) => conn.serve_connection(TokioIo::new(stream), svc).await,
            Err(e) => {
                tracing::debug!(error = %e, "TLS handshake failed");
                return;
            }
        },
        None => conn.serve_connection(TokioIo::new(stream), svc).await,
    };
    if let Err(e) = res {
        tracing::debug!(error = %e, "connection ended with error");
    }
}

/// A running S3 server on 127.0.0.1. Dropping it stops the server (and removes its
/// temporary data directory, if it made one).
pub struct TestServer {
    addr: SocketAddr,
    shared: Arc<Shared>,
    /// The CA certificate and its file, for a TLS server.
    tls: Option<(String, PathBuf)>,
    task: Option<JoinHandle<()>>,
    _tempdir: Option<tempfile::TempDir>,
}

impl std::fmt::Debug for TestServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestServer")
            .field("endpoint", &self.endpoint())
            .field("ca_file", &self.ca_file())
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
        let quirks = Quirks::new(&options)?;
        let store = Store::open(&dir)
            .with_context(|| format!("opening data directory {}", dir.display()))?;
        // Buckets that refuse a plain CreateBucket (a directory bucket's is not S3's; a
        // requester-pays bucket refuses every request without the payer) exist from the start.
        for bucket in options
            .directory_buckets
            .iter()
            .chain(&options.requester_pays)
        {
            store
                .ensure_bucket(bucket)
                .with_context(|| format!("creating bucket {bucket}"))?;
        }
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
            quirks,
            sessions: Sessions::default(),
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
        let tls = if options.tls {
            let ca_file = options
                .ca_file
                .clone()
                .unwrap_or_else(|| dir.join("ca.pem"));
            Some(Tls::generate(&ca_file, options.http2)?)
        } else {
            None
        };
        let acceptor = tls.as_ref().map(|t| t.acceptor.clone());
        let task = tokio::spawn(accept_loop(listener, gateway, acceptor));
        let scheme = if tls.is_some() { "https" } else { "http" };
        tracing::info!(%addr, scheme, data_dir = %dir.display(), "s3fetch-testkit server listening");
        Ok(TestServer {
            addr,
            shared,
            tls: tls.map(|t| (t.ca_pem, t.ca_file)),
            task: Some(task),
            _tempdir: tempdir,
        })
    }

    /// `http://127.0.0.1:PORT`, or `https://127.0.0.1:PORT` for a TLS server
    /// ([`ServerOptions::tls`]).
    #[must_use]
    pub fn endpoint(&self) -> String {
        let scheme = if self.tls.is_some() { "https" } else { "http" };
        format!("{scheme}://{}", self.addr)
    }

    /// The CA certificate (PEM) a TLS server's certificate is signed with, for clients to
    /// trust; `None` for a plain HTTP server. With aws-sdk-s3, build the HTTP client with
    /// `aws_smithy_http_client::tls::TrustStore::empty().with_pem_certificate(pem)`.
    #[must_use]
    pub fn ca_pem(&self) -> Option<&str> {
        self.tls.as_ref().map(|(pem, _)| pem.as_str())
    }

    /// The file holding [`TestServer::ca_pem`] (`AWS_CA_BUNDLE`, `--ca-bundle`, ...; see
    /// [`ServerOptions::ca_file`]); `None` for a plain HTTP server.
    #[must_use]
    pub fn ca_file(&self) -> Option<&std::path::Path> {
        self.tls.as_ref().map(|(_, file)| file.as_path())
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

    /// Stores an object with the given `LastModified`, replacing any existing one.
    ///
    /// # Panics
    /// If the bucket does not exist, the key is invalid or on I/O error.
    pub fn put_object_at(
        &self,
        bucket: &str,
        key: &str,
        body: impl AsRef<[u8]>,
        last_modified: std::time::SystemTime,
    ) {
        self.shared
            .store
            .put_object_at(bucket, key, body, last_modified)
            .expect("put_object_at");
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

    /// Puts an existing object in the archive storage class `class` (`GLACIER`,
    /// `DEEP_ARCHIVE`, ...): listings show the class (and, when asked with
    /// `x-amz-optional-object-attributes: RestoreStatus`, its restore status), and a GET
    /// answers 403 `InvalidObjectState` unless `restored`.
    pub fn archive_key(&self, bucket: &str, key: &str, class: &str, restored: bool) {
        let archive = crate::state::Archive {
            class: class.to_owned(),
            restored,
        };
        self.controls()
            .archived
            .entry(bucket.to_owned())
            .or_default()
            .insert(key.to_owned(), archive);
    }

    /// Writes an S3 Inventory report of every object now in `bucket` into bucket `into`
    /// (which must exist) under `path`, as S3 Inventory writes one: gzip'd CSV data files of
    /// at most `rows_per_file` rows (`path/data/NNNN.csv.gz`) and `path/manifest.json`
    /// naming them (schema `Bucket, Key, Size, LastModifiedDate, ETag, StorageClass`).
    /// Returns the manifest's key.
    ///
    /// # Panics
    /// If a bucket does not exist or on I/O error.
    pub fn put_inventory(
        &self,
        bucket: &str,
        into: &str,
        path: &str,
        rows_per_file: usize,
    ) -> String {
        let files = {
            let controls = self.controls();
            crate::inventory::build(
                &self.shared.store,
                &controls,
                bucket,
                into,
                path,
                rows_per_file,
            )
            .expect("put_inventory")
        };
        let manifest = files.last().expect("a manifest").0.clone();
        for (key, body) in files {
            self.put_object(into, &key, body);
        }
        manifest
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
