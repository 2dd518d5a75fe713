//! The server's configuration: [`ServerOptions`] and its defaults. Plain data, read by every
//! layer through [`Shared`](crate::state::Shared); `s3fetch-testkit serve` maps its flags
//! onto it.

use std::path::PathBuf;
use std::time::Duration;

use crate::faults::FaultPlan;

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
    /// Buckets that live in another region than [`ServerOptions::region`]: `(bucket,
    /// region)`. A request signed for another region is refused as S3 refuses it (`301
    /// PermanentRedirect` when signed for `us-east-1`, else `400
    /// AuthorizationHeaderMalformed`, both with `x-amz-bucket-region`); HeadBucket,
    /// ListBuckets and GetBucketLocation report the region. Unsigned requests are served
    /// (one endpoint cannot tell which region they were meant for). `serve --bucket-region`.
    pub bucket_regions: Vec<(String, String)>,
    /// Requester-pays buckets (created at start if missing): a request without
    /// `x-amz-request-payer: requester`, and any anonymous one, gets `403 AccessDenied`.
    /// `serve --requester-pays`.
    pub requester_pays: Vec<String>,
    /// Buckets listed in a fixed non-lexicographic order (keys and common prefixes ordered
    /// by a hash), as some S3-compatible stores list; continuation tokens are positions in
    /// that order. `serve --unordered`.
    pub unordered: Vec<String>,
    /// Buckets whose ListObjectsV2 ignores `start-after` (lists from the start of the
    /// prefix), as minimal servers do. `serve --ignore-start-after`.
    pub ignore_start_after: Vec<String>,
    /// Buckets whose ListObjectsV2 answers `501 NotImplemented` to a `start-after`.
    /// `serve --refuse-start-after`.
    pub refuse_start_after: Vec<String>,
    /// S3 Express One Zone directory buckets (`NAME--ZONE-ID--x-s3`, created at start if
    /// missing): reached through CreateSession and `s3express` signatures, listed in their
    /// own order with S3 Express's parameter rules, opaque (non-MD5) ETags (see the crate
    /// documentation, "Quirks"). `serve --directory-bucket`.
    pub directory_buckets: Vec<String>,
    /// `(directory bucket, folder/)`: a folder holding an in-progress multipart upload and
    /// no object, which S3 Express lists as a common prefix. `serve --pending-upload`.
    pub directory_pending_uploads: Vec<(String, String)>,
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
            bucket_regions: Vec::new(),
            requester_pays: Vec::new(),
            unordered: Vec::new(),
            ignore_start_after: Vec::new(),
            refuse_start_after: Vec::new(),
            directory_buckets: Vec::new(),
            directory_pending_uploads: Vec::new(),
        }
    }
}
