//! A real S3 server over HTTP or HTTPS on `127.0.0.1` for s3fetch's tests, benchmarks and
//! quickstart.
//!
//! Built on [`s3s`] with its own storage backend ([`Store`]): objects live on disk (small
//! ones packed into append-only segment files), each bucket has an in-memory sorted index
//! persisted as an append-only log, so listing pages are `O(page)` and range reads touch
//! only the requested bytes. Requests are SigV4-checked with a single key pair.
//!
//! Tests start a [`TestServer`], populate it directly (no HTTP) and point an S3 client at
//! [`TestServer::endpoint`] with path-style addressing:
//!
//! ```no_run
//! # async fn demo() {
//! use s3fetch_testkit::TestServer;
//!
//! let server = TestServer::start().await;
//! server.create_bucket("photos");
//! server.put_object("photos", "2024/cat.jpg", b"meow");
//! server.deny_key("photos", "2024/secret.jpg"); // GET -> 403 AccessDenied
//! let gate = server.gate_list_pages(); // hold every non-first list page...
//! // ... run the client against server.endpoint() with server.access_key() /
//! // server.secret_key(), region server.region(), force_path_style(true) ...
//! gate.open();
//! assert_eq!(server.request_counts().head, 0);
//! # }
//! ```
//!
//! Like current AWS S3, whole-object GETs and HEADs return the object's full CRC64NVME
//! when asked (see [`checksum`]). Faults (throttling, errors, resets, cut / stalled /
//! corrupted bodies, ...) can be injected deterministically with a [`FaultPlan`]
//! ([`ServerOptions::faults`], [`TestServer::set_faults`]; see [`faults`]).
//!
//! # HTTPS
//!
//! Real S3 is HTTPS. `ServerOptions { tls: true, .. }` (`s3fetch-testkit serve --tls`) makes
//! a private CA and a certificate for `127.0.0.1`, `::1` and `localhost` at start, writes the
//! CA certificate (PEM) to [`ServerOptions::ca_file`] (default `<data dir>/ca.pem`) and
//! serves `https://127.0.0.1:PORT` ([`TestServer::endpoint`]); faults, latency, the
//! bandwidth cap and the controls work the same. Clients trust the CA from
//! [`TestServer::ca_pem`] or the file [`TestServer::ca_file`]:
//!
//! * aws-sdk-s3: an HTTP client with `aws_smithy_http_client::tls::TrustStore::empty()
//!   .with_pem_certificate(pem)` in its `TlsContext` (`tests/common/mod.rs`, `trusting`);
//! * processes: `AWS_CA_BUNDLE=<ca file>` (set by [`fixtures::aws_env`]; read by the AWS
//!   CLI, boto3 and s5cmd), `aws --ca-bundle`, `rclone --ca-cert`, `curl --cacert`. The Rust
//!   SDK's `aws-config` does not read `AWS_CA_BUNDLE`: a Rust client needs the trust store
//!   above.
//!
//! ALPN offers HTTP/1.1 only, as S3 does; [`ServerOptions::http2`] (`serve --http2`) adds
//! `h2`. The CA is made anew at every start (the file is rewritten).
//!
//! The `s3fetch-testkit` binary exposes the same server (`serve`) and a sample-data
//! generator (`generate`, see [`generate()`]).
//!
//! # Layout
//!
//! Each module uses only those listed before it (no import loop):
//!
//! * leaves: [`checksum`] (CRC64NVME), [`throttle`] (the bandwidth cap), `tls.rs` (the CA,
//!   the certificate and the acceptor), `faults/plan.rs`
//!   (what a [`FaultPlan`] says), [`store`] (`meta`, `log`, `index`, `bucket`: the data
//!   directory), `faults/decide.rs` (which request a fault hits);
//! * `state.rs`: what every layer of the server shares (options, counters, list gate);
//! * `s3.rs` (the `s3s` handlers and auth / access hooks), `list_route.rs` (the
//!   ListObjectsV2 fast path), `faults/inject.rs` (faults on the HTTP exchange);
//! * [`server`]: [`TestServer`], the accept loop and the gateway tying them together;
//! * [`generate()`](generate()) (sample data), [`fixtures`] (helpers the test crates share:
//!   download-directory contents, the no-temporary-files check, the AWS environment).

pub mod checksum;
pub mod faults;
pub mod fixtures;
pub mod generate;
mod inventory;
mod list_route;
mod s3;
pub mod server;
mod state;
pub mod store;
pub mod throttle;
mod tls;

pub use faults::{FaultKind, FaultPlan, FaultRule, FaultSpecError};
pub use generate::{generate, GenerateOptions, GenerateReport};
pub use server::{
    ListGate, RequestCounts, ServerOptions, TestServer, DEFAULT_ACCESS_KEY, DEFAULT_REGION,
    DEFAULT_SECRET_KEY,
};
pub use store::{BucketInfo, ListPage, ListQuery, ObjectMeta, Store, StoreError};
