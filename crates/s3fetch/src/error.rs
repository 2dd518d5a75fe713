//! The library's one error type.
//!
//! Errors the service returned (or the request failed to reach it) are kept apart from local
//! I/O errors, and every variant names the key, path or URI it is about, so a message printed
//! without context still says what went wrong where.

use std::fmt;
use std::path::PathBuf;

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong, for one object or for the whole run.
///
/// Messages say what failed and where; the cause is the [`source`](std::error::Error::source)
/// (print the whole chain with [`error_chain`]).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The S3 URI is not of the form `s3://bucket[/prefix]`.
    #[error("invalid S3 URI {uri:?}: {reason}")]
    InvalidUri {
        /// The URI as given.
        uri: String,
        /// What is wrong with it.
        reason: &'static str,
    },

    /// The key filter did not compile.
    #[error("invalid regex {pattern:?}")]
    InvalidRegex {
        /// The pattern as given.
        pattern: String,
        /// The regex compiler's error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },

    /// An option that cannot work (zero concurrency, an empty delimiter, ...). `option` is
    /// the option's name in the Rust and Python APIs (`concurrent_downloads`); the CLI
    /// flag is the same with dashes (`--concurrent-downloads`).
    #[error("{option} {reason}")]
    InvalidOption {
        /// The option's name (`concurrent_downloads`).
        option: &'static str,
        /// What is wrong with its value.
        reason: String,
    },

    /// The download directory is missing, not a directory or not writable.
    #[error("download directory {}: {problem}", path.display())]
    DownloadDir {
        /// The download directory.
        path: PathBuf,
        /// What is wrong with it.
        problem: DirProblem,
        /// The I/O error that showed the problem, if one did.
        #[source]
        source: Option<std::io::Error>,
    },

    /// Listing the bucket failed: the whole run stops. `after` is where the page that could
    /// not be listed starts (`None`: at the start of the prefix).
    #[error("listing s3://{bucket}/{prefix} failed{}", after.as_ref().map(|a| format!(" (the keys after {a:?})")).unwrap_or_default())]
    List {
        /// The bucket being listed.
        bucket: String,
        /// The prefix being listed (empty for the whole bucket).
        prefix: String,
        /// The key the failed page starts after; `None` for the start of the prefix.
        after: Option<String>,
        /// The failed request's error.
        #[source]
        source: ServiceError,
    },

    /// Fetching one object failed.
    #[error("GET s3://{bucket}/{key} failed")]
    Get {
        /// The bucket the request was for.
        bucket: String,
        /// The object's key.
        key: String,
        /// The failed request's error.
        #[source]
        source: ServiceError,
    },

    /// A HEAD of one object failed (its checksum before a ranged download, or whether a
    /// folder name is also a key).
    #[error("HEAD s3://{bucket}/{key} failed")]
    Head {
        /// The bucket the request was for.
        bucket: String,
        /// The key the request was for.
        key: String,
        /// The failed request's error.
        #[source]
        source: ServiceError,
    },

    /// The key cannot be mapped to a path inside the download directory.
    #[error("refusing key {key:?}: {reason}")]
    UnsafeKey {
        /// The refused key.
        key: String,
        /// Why it was refused (a `..` segment, a NUL byte, an over-long name, a symlink in the
        /// way, ...).
        reason: String,
    },

    /// Two keys of the run want one local path: `key` needs a directory where `file_key` is
    /// downloaded as a file (see the crate's `folders` module: the file wins).
    #[error(
        "not downloading key {key:?}: key {file_key:?} is downloaded to {} as a file, where this key needs a directory",
        path.display()
    )]
    Conflict {
        /// The key that is not downloaded: it needs `path` to be a directory.
        key: String,
        /// The key downloaded to `path` as a file.
        file_key: String,
        /// The local path both keys want.
        path: PathBuf,
    },

    /// A local file-system operation failed for one object.
    #[error("{action} {} for key {key:?}", path.display())]
    Io {
        /// The key of the object the operation was for.
        key: String,
        /// What was being done, as the start of the message (`creating`, `writing`,
        /// `renaming into place`, ...).
        action: &'static str,
        /// The local path the operation was on.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },

    /// A file the run was asked to write about itself (`failed_keys`) could not be written.
    #[error("writing {}", path.display())]
    Output {
        /// The file that could not be written.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },

    /// The bytes received do not match the checksum the server sent.
    #[error("s3://{bucket}/{key}: {reason}")]
    Checksum {
        /// The bucket the object is in.
        bucket: String,
        /// The object's key.
        key: String,
        /// The checksum the server sent and the one the bytes received give.
        reason: String,
    },

    /// An S3 Inventory report (`inventory`) could not be read: the run stops.
    #[error("reading the inventory {uri} failed: {reason}")]
    Inventory {
        /// The manifest's URI (`s3://bucket/path/manifest.json`).
        uri: String,
        /// What could not be read, and why.
        reason: String,
    },

    /// A request got no response, or a body no bytes, in time.
    #[error("timed out: {reason}")]
    Timeout {
        /// The key the request was for; `None` for a LIST request.
        key: Option<String>,
        /// Which request timed out, and after how long.
        reason: String,
    },

    /// The async runtime of [`Downloader::run_blocking`](crate::Downloader::run_blocking)
    /// could not start.
    #[error("cannot start the async runtime")]
    Runtime(#[source] std::io::Error),

    /// The run was cancelled before this object finished.
    #[error("cancelled")]
    Cancelled,
}

/// What is wrong with the download directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum DirProblem {
    /// It does not exist (it is never created).
    Missing,
    /// Something other than a directory is there.
    NotADirectory,
    /// Files cannot be created in it (read-only file system, no permission).
    NotWritable,
    /// It cannot be inspected (permission denied on a parent, I/O error).
    Inaccessible,
    /// Its lock file (`lock`) cannot be created or locked (a file system without locks).
    NotLockable,
}

impl fmt::Display for DirProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            DirProblem::Missing => "it does not exist",
            DirProblem::NotADirectory => "it is not a directory",
            DirProblem::NotWritable => "it is not writable",
            DirProblem::Inaccessible => "it cannot be read",
            DirProblem::NotLockable => "its lock file .s3fetch.lock cannot be created or locked",
        })
    }
}

impl Error {
    /// Whether trying the same operation again may succeed.
    pub fn is_retryable(&self) -> bool {
        match self {
            Error::List { source, .. } | Error::Get { source, .. } | Error::Head { source, .. } => {
                source.is_retryable()
            }
            Error::Timeout { .. } | Error::Checksum { .. } => true,
            _ => false,
        }
    }

    /// True when the server asked to slow down (SlowDown, 503).
    pub fn is_throttling(&self) -> bool {
        self.service_error()
            .is_some_and(ServiceError::is_throttling)
    }

    /// The S3 error code (`NoSuchKey`, `AccessDenied`, ...) when the service sent one.
    pub fn code(&self) -> Option<&str> {
        self.service_error().and_then(ServiceError::code)
    }

    /// What a failed request means (see [`Category`]), for errors of a request to S3.
    pub fn category(&self) -> Option<Category> {
        self.service_error().map(ServiceError::category)
    }

    /// The failed request's error, for errors of a request to S3.
    pub fn service_error(&self) -> Option<&ServiceError> {
        match self {
            Error::List { source, .. } | Error::Get { source, .. } | Error::Head { source, .. } => {
                Some(source)
            }
            _ => None,
        }
    }

    /// The key this error is about, for errors of one object.
    pub fn key(&self) -> Option<&str> {
        match self {
            Error::Get { key, .. }
            | Error::Head { key, .. }
            | Error::UnsafeKey { key, .. }
            | Error::Conflict { key, .. }
            | Error::Io { key, .. }
            | Error::Checksum { key, .. } => Some(key),
            Error::Timeout { key, .. } => key.as_deref(),
            _ => None,
        }
    }

    /// True for errors in what the caller asked for (URI, regex, options, download
    /// directory), found before any request is sent.
    pub fn is_usage(&self) -> bool {
        matches!(
            self,
            Error::InvalidUri { .. }
                | Error::InvalidRegex { .. }
                | Error::InvalidOption { .. }
                | Error::DownloadDir { .. }
        )
    }

    pub(crate) fn io(
        key: &str,
        action: &'static str,
        path: PathBuf,
        source: std::io::Error,
    ) -> Self {
        Error::Io {
            key: key.to_owned(),
            action,
            path,
            source,
        }
    }

    pub(crate) fn option(option: &'static str, reason: impl Into<String>) -> Self {
        Error::InvalidOption {
            option,
            reason: reason.into(),
        }
    }
}

/// An error from a request to S3: either the service answered with an error, or the request
/// never got an answer (connection, timeout, credentials).
#[derive(Debug)]
pub struct ServiceError(Box<Details>);

/// Boxed: errors travel through every result of the engine, and most results are `Ok`.
#[derive(Debug)]
struct Details {
    code: Option<String>,
    status: Option<u16>,
    message: String,
    kind: ServiceErrorKind,
    /// The region the answer says the bucket is in (`x-amz-bucket-region`, or the
    /// `<Region>` of an `AuthorizationHeaderMalformed` body).
    region: Option<String>,
}

/// What a failed request to S3 means for the user, decided once from the answer's code,
/// status and kind: the CLI's hints and Python's exception classes both read it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Category {
    /// No credentials were found.
    NoCredentials,
    /// The credentials were refused or could not be had: wrong keys, a bad signature, an
    /// expired session, a provider that failed.
    Credentials,
    /// The caller may not do this (`AccessDenied`): a policy, or a requester-pays bucket.
    Denied,
    /// The bucket does not exist.
    NoSuchBucket,
    /// The key does not exist (any more).
    NoSuchKey,
    /// The bucket is in another region, or the endpoint refused it in its own.
    WrongRegion,
    /// SlowDown and its kin.
    Throttled,
    /// No answer: connection, DNS, timeout.
    Connection,
    /// The server's certificate is not trusted.
    Tls,
    /// Anything else.
    Other,
}

/// S3 error codes that mean the credentials were refused.
const CREDENTIAL_CODES: &[&str] = &[
    "InvalidAccessKeyId",
    "SignatureDoesNotMatch",
    "InvalidUserID.NotFound",
    "ExpiredToken",
    "InvalidToken",
    "TokenRefreshRequired",
];
/// S3 error codes that mean access is denied.
const DENIED_CODES: &[&str] = &["AccessDenied", "AllAccessDisabled", "UnauthorizedOperation"];

/// Where a request to S3 failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ServiceErrorKind {
    /// The service answered with an error status.
    Response,
    /// No answer: connection refused or reset, DNS, timeout.
    Connection,
    /// The TLS handshake failed: the server's certificate is not trusted (a private CA
    /// needs `ca_bundle`) or not for this host. Asking again will not help.
    Tls,
    /// No credentials were found (no keys in the environment, no profile, no role).
    NoCredentials,
    /// The credentials provider failed: an expired SSO session, a profile that does not
    /// exist, a role that cannot be assumed.
    Credentials,
    /// The request could not be built (bad endpoint, bad input).
    Request,
    /// The response body broke off or could not be read, or broke the protocol.
    Body,
    /// The store answered, but not what was asked (it ignores Range): asking again will not
    /// help.
    Unsupported,
}

impl ServiceError {
    /// An error from its parts: the translations of answers and failures beside the
    /// requests (`crate::s3::errors`) build theirs with it.
    pub(crate) fn new(
        kind: ServiceErrorKind,
        code: Option<String>,
        status: Option<u16>,
        message: String,
        region: Option<String>,
    ) -> Self {
        ServiceError(Box::new(Details {
            code,
            status,
            message,
            kind,
            region,
        }))
    }

    /// The S3 error code, if the service sent one.
    pub fn code(&self) -> Option<&str> {
        self.0.code.as_deref()
    }

    /// The HTTP status, if a response arrived.
    pub fn status(&self) -> Option<u16> {
        self.0.status
    }

    /// Where the request failed.
    pub fn kind(&self) -> ServiceErrorKind {
        self.0.kind
    }

    /// What the failure means (see [`Category`]).
    pub fn category(&self) -> Category {
        let code = self.0.code.as_deref().unwrap_or_default();
        match self.0.kind {
            ServiceErrorKind::NoCredentials => Category::NoCredentials,
            ServiceErrorKind::Credentials => Category::Credentials,
            ServiceErrorKind::Tls => Category::Tls,
            ServiceErrorKind::Connection => Category::Connection,
            _ if CREDENTIAL_CODES.contains(&code) => Category::Credentials,
            _ if DENIED_CODES.contains(&code) => Category::Denied,
            _ if self.is_wrong_region() => Category::WrongRegion,
            _ if code == "NoSuchBucket" => Category::NoSuchBucket,
            _ if matches!(code, "NoSuchKey" | "NotFound") => Category::NoSuchKey,
            _ if self.is_throttling() => Category::Throttled,
            _ => Category::Other,
        }
    }

    /// The region the answer named for the bucket (S3 names it when a request was sent to
    /// the wrong region), if it named one.
    pub fn bucket_region(&self) -> Option<&str> {
        self.0.region.as_deref()
    }

    /// Whether S3 refused the request because it was signed for, or sent to, the wrong
    /// region: a redirect, or an authorization header for the wrong region.
    pub fn is_wrong_region(&self) -> bool {
        matches!(self.0.status, Some(301 | 307))
            || matches!(
                self.0.code.as_deref(),
                Some("PermanentRedirect" | "TemporaryRedirect" | "AuthorizationHeaderMalformed")
            )
    }

    /// The region to send the request to instead of `current`: the bucket's region when an
    /// error answer names one that is not `current` (a redirect, a wrong signing region, or
    /// any answer whose `x-amz-bucket-region` says the bucket is elsewhere).
    pub(crate) fn move_to(&self, current: Option<&str>) -> Option<&str> {
        let region = self.0.region.as_deref()?;
        (self.0.kind == ServiceErrorKind::Response && Some(region) != current).then_some(region)
    }

    /// SlowDown, or 503 without a code.
    pub fn is_throttling(&self) -> bool {
        matches!(
            self.0.code.as_deref(),
            Some("SlowDown" | "Throttling" | "ThrottlingException" | "RequestLimitExceeded")
        ) || self.0.status == Some(503)
    }

    /// Transient failures: throttling, 5xx, connection trouble, broken bodies.
    pub fn is_retryable(&self) -> bool {
        match self.0.kind {
            ServiceErrorKind::Connection | ServiceErrorKind::Body => true,
            ServiceErrorKind::NoCredentials
            | ServiceErrorKind::Credentials
            | ServiceErrorKind::Tls
            | ServiceErrorKind::Request
            | ServiceErrorKind::Unsupported => false,
            ServiceErrorKind::Response => {
                // 501: the store does not do what was asked (a parameter it refuses), which
                // asking again will not change.
                matches!(self.0.status, Some(500 | 502..=599))
                    || matches!(
                        self.0.code.as_deref(),
                        Some("SlowDown" | "Throttling" | "ThrottlingException" | "RequestTimeout")
                    )
            }
        }
    }

    /// A request that could not be built or signed.
    pub(crate) fn request(message: String) -> Self {
        ServiceError(Box::new(Details {
            code: None,
            status: None,
            message,
            kind: ServiceErrorKind::Request,
            region: None,
        }))
    }

    /// A response that breaks the protocol (wrong length, ignored Range).
    pub(crate) fn protocol(message: String) -> Self {
        ServiceError(Box::new(Details {
            code: None,
            status: None,
            message,
            kind: ServiceErrorKind::Body,
            region: None,
        }))
    }

    /// An answer that shows the store does not do what was asked (see
    /// [`ServiceErrorKind::Unsupported`]).
    pub(crate) fn unsupported(message: String) -> Self {
        ServiceError(Box::new(Details {
            code: None,
            status: None,
            message,
            kind: ServiceErrorKind::Unsupported,
            region: None,
        }))
    }

    /// An error answer, for fake buckets in tests.
    #[cfg(test)]
    pub(crate) fn test_response(status: u16, code: &str) -> Self {
        ServiceError(Box::new(Details {
            code: Some(code.to_owned()),
            status: Some(status),
            message: format!("HTTP {status}"),
            kind: ServiceErrorKind::Response,
            region: None,
        }))
    }

    pub(crate) fn body(err: impl std::error::Error + 'static) -> Self {
        ServiceError(Box::new(Details {
            code: None,
            status: None,
            message: format!("reading the response body: {}", error_chain(&err)),
            kind: ServiceErrorKind::Body,
            region: None,
        }))
    }
}

/// An error and its causes on one line (`a: b: c`), leaving out a cause whose text the
/// message before it already holds (some errors of the AWS SDK quote their cause).
pub fn error_chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

impl fmt::Display for ServiceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0.code {
            Some(code) => write!(f, "{code}: {}", self.0.message),
            None => f.write_str(&self.0.message),
        }
    }
}

impl std::error::Error for ServiceError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_answer_naming_another_region_moves_the_bucket_there() {
        let redirect = ServiceError::response(301, None, None, Some("us-west-2".into()));
        assert!(redirect.is_wrong_region());
        assert_eq!(redirect.code(), Some("PermanentRedirect"));
        assert_eq!(redirect.move_to(Some("us-east-1")), Some("us-west-2"));
        assert_eq!(redirect.move_to(Some("us-west-2")), None, "already there");
        let malformed = ServiceError::response(
            400,
            Some("AuthorizationHeaderMalformed".into()),
            Some("the region 'us-east-1' is wrong; expecting 'eu-west-1'".into()),
            None,
        );
        assert!(malformed.is_wrong_region());
        assert_eq!(malformed.move_to(Some("us-east-1")), Some("eu-west-1"));
        // A store that names no region: nothing to follow (the CLI says "pass --region").
        let unnamed = ServiceError::response(301, None, None, None);
        assert!(unnamed.is_wrong_region());
        assert_eq!(unnamed.move_to(Some("us-east-1")), None);
        // Any refusal that says the bucket is elsewhere (a 403 with the header).
        let denied = ServiceError::response(403, None, None, Some("us-west-1".into()));
        assert!(!denied.is_wrong_region());
        assert_eq!(denied.move_to(Some("us-east-1")), Some("us-west-1"));
        assert_eq!(ServiceError::protocol("x".into()).move_to(None), None);
    }

    #[test]
    fn one_category_per_answer() {
        let answer = |status, code: &str| {
            ServiceError::response(status, Some(code.to_owned()), None, None).category()
        };
        assert_eq!(answer(403, "AccessDenied"), Category::Denied);
        assert_eq!(answer(403, "SignatureDoesNotMatch"), Category::Credentials);
        assert_eq!(answer(400, "ExpiredToken"), Category::Credentials);
        assert_eq!(answer(404, "NoSuchBucket"), Category::NoSuchBucket);
        assert_eq!(answer(404, "NoSuchKey"), Category::NoSuchKey);
        assert_eq!(answer(301, "PermanentRedirect"), Category::WrongRegion);
        assert_eq!(answer(503, "SlowDown"), Category::Throttled);
        assert_eq!(answer(500, "InternalError"), Category::Other);
        assert_eq!(
            ServiceError::dispatch(&std::io::Error::other("refused")).category(),
            Category::Connection
        );
    }

    #[test]
    fn not_implemented_is_not_retried_but_other_5xx_are() {
        let answer = |status| ServiceError::response(status, None, None, None);
        assert!(!answer(501).is_retryable());
        assert!(answer(500).is_retryable() && answer(503).is_retryable());
    }
}
