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
//! # Quirks
//!
//! Per-bucket behaviours of real S3 and S3-compatible stores, each a [`ServerOptions`] field
//! and a `serve` flag (they cost normal buckets one boolean test):
//!
//! * [`ServerOptions::bucket_regions`] (`--bucket-region NAME=REGION`): a signed request
//!   for the bucket whose credential scope names another region gets `301
//!   PermanentRedirect` (scope `us-east-1`) or `400 AuthorizationHeaderMalformed`, both
//!   with `x-amz-bucket-region`; HEAD requests get no body. Unsigned requests are served.
//! * [`ServerOptions::requester_pays`] (`--requester-pays`): `403 AccessDenied` without
//!   `x-amz-request-payer: requester`, and for any anonymous request.
//! * [`ServerOptions::unordered`], [`ServerOptions::ignore_start_after`],
//!   [`ServerOptions::refuse_start_after`] (`--unordered`, `--ignore-start-after`,
//!   `--refuse-start-after`): listings in a fixed non-lexicographic order, `start-after`
//!   ignored, or refused with `501 NotImplemented`.
//! * [`ServerOptions::directory_buckets`] (`--directory-bucket NAME--ZONE--x-s3`) and
//!   [`ServerOptions::directory_pending_uploads`] (`--pending-upload`): S3 Express One Zone
//!   directory buckets. An aws-sdk-s3 client with `endpoint_url(server.endpoint())` and any
//!   region (no path-style setting needed: an IP endpoint is path-style) calls
//!   CreateSession, then signs with the session's keys for service `s3express`; `s3s`
//!   refuses that service, so the gateway checks those signatures itself. ListObjectsV2
//!   follows the directory-bucket rules (`start-after`, `x-amz-optional-object-attributes`,
//!   a prefix not ending in `/`, a delimiter other than `/`: `400 InvalidArgument`) and the
//!   store's own order; ETags are not MD5s. [`RequestCounts::of`]`("CreateSession")`
//!   counts sessions.
//!
//! # Layout
//!
//! Each module uses only those listed before it (no import loop):
//!
//! * leaves: [`checksum`] (CRC64NVME), [`throttle`] (the bandwidth cap), `tls.rs` (the CA,
//!   the certificate and the acceptor), `faults/plan.rs`
//!   (what a [`FaultPlan`] says), [`store`] (`meta`, `log`, `index`, `bucket`: the data
//!   directory), `faults/decide.rs` (which request a fault hits), `options.rs`
//!   ([`ServerOptions`]), `quirks/mod.rs` and `quirks/hash_order.rs` (the per-bucket quirks
//!   table, the unsorted listing order), `express/session.rs` (S3 Express session keys);
//! * `state.rs`: what every layer of the server shares (options, quirks, counters, list
//!   gate, sessions);
//! * `protocol.rs` (what the handlers share: error mapping, tokens, list helpers);
//! * `faults/inject.rs` (faults on the HTTP exchange), `express/` (`s3express` signatures,
//!   CreateSession, opaque ETags), `quirks/regions.rs` (wrong-region refusals),
//!   `quirks/listing.rs` (listings of quirky buckets);
//! * `access.rs` (the `s3s` auth and access hooks), `s3.rs` (the `s3s` handlers),
//!   `list_route.rs` (the ListObjectsV2 fast path);
//! * [`server`]: [`TestServer`], the accept loop and the gateway tying them together;
//! * [`generate()`](generate()) (sample data), [`fixtures`] (helpers the test crates share:
//!   download-directory contents, the no-temporary-files check, the AWS environment).

mod access;
pub mod checksum;
mod express;
pub mod faults;
pub mod fixtures;
pub mod generate;
mod inventory;
mod list_route;
mod options;
mod protocol;
mod quirks;
mod s3;
pub mod server;
mod state;
pub mod store;
pub mod throttle;
mod tls;

pub use faults::{FaultKind, FaultPlan, FaultRule, FaultSpecError};
pub use generate::{generate, GenerateOptions, GenerateReport};
pub use quirks::{is_directory_bucket_name, QuirkError};
pub use server::{
    ListGate, RequestCounts, ServerOptions, TestServer, DEFAULT_ACCESS_KEY, DEFAULT_REGION,
    DEFAULT_SECRET_KEY,
};
pub use store::{BucketInfo, ListPage, ListQuery, ObjectMeta, Store, StoreError};
