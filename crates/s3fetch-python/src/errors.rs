//! The library's errors as exceptions of `s3fetch.exceptions`, decided in one place.
//!
//! A per-object error is described ([`describe`]) on the engine's threads, without the GIL,
//! and becomes an exception object later, on the thread that waits for the run.

use pyo3::prelude::*;
use pyo3::types::PyDict;
use s3fetch::{error_chain, Category, DirProblem, Error, ServiceError};

/// What an exception will be: its class in `s3fetch.exceptions`, message, key and S3 code.
#[derive(Debug, Clone)]
pub(crate) struct ErrorInfo {
    class: &'static str,
    message: String,
    key: Option<String>,
    code: Option<String>,
}

pub(crate) fn describe(error: &Error) -> ErrorInfo {
    let class = match error {
        Error::InvalidUri { .. } => "InvalidUriError",
        Error::InvalidRegex { .. } => "RegexError",
        Error::InvalidOption { .. } => "InvalidOptionError",
        Error::DownloadDir {
            problem: DirProblem::Missing | DirProblem::NotADirectory,
            ..
        } => "DirectoryDoesNotExistError",
        Error::DownloadDir { .. } => "PermissionError",
        Error::List { source, .. } => match request_class(source) {
            Some(class) => class,
            None => match source.category() {
                Category::NoSuchBucket => "BucketNotFoundError",
                Category::Connection | Category::Tls => "EndpointConnectionError",
                _ => "ListingError",
            },
        },
        Error::Get { source, .. } | Error::Head { source, .. } => {
            request_class(source).unwrap_or("DownloadError")
        }
        Error::Checksum { .. } => "ChecksumError",
        Error::UnsafeKey { .. } => "PathTraversalError",
        Error::Io { source, .. } if source.kind() == std::io::ErrorKind::PermissionDenied => {
            "PermissionError"
        }
        Error::Io { .. } | Error::Conflict { .. } | Error::Timeout { .. } | Error::Cancelled => {
            "DownloadError"
        }
        _ => "S3FetchError",
    };
    let mut message = error_chain(error);
    if let Error::DownloadDir {
        problem: DirProblem::Missing,
        ..
    } = error
    {
        message.push_str(" (it is never created: create it first, e.g. with os.makedirs)");
    }
    ErrorInfo {
        class,
        message,
        key: error.key().map(str::to_owned),
        code: error.code().map(str::to_owned),
    }
}

/// The class for a request error that says something about credentials or access, which
/// listing and GET errors share.
fn request_class(source: &ServiceError) -> Option<&'static str> {
    match source.category() {
        Category::NoCredentials => Some("NoCredentialsError"),
        Category::Credentials => Some("InvalidCredentialsError"),
        Category::Denied => Some("PermissionError"),
        _ => None,
    }
}

impl ErrorInfo {
    /// The exception object (not raised).
    pub(crate) fn to_exception<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let class = py.import("s3fetch.exceptions")?.getattr(self.class)?;
        let kwargs = PyDict::new(py);
        kwargs.set_item("key", self.key.as_deref())?;
        kwargs.set_item("code", self.code.as_deref())?;
        class.call((self.message.as_str(),), Some(&kwargs))
    }

    /// The exception, to raise.
    pub(crate) fn to_err(&self, py: Python<'_>) -> PyErr {
        match self.to_exception(py) {
            Ok(exception) => PyErr::from_value(exception),
            Err(error) => error,
        }
    }
}

/// `error` as the exception to raise.
pub(crate) fn to_err(py: Python<'_>, error: &Error) -> PyErr {
    describe(error).to_err(py)
}

/// An exception of class `class` with `message`, for failures outside the library's errors.
pub(crate) fn exception(py: Python<'_>, class: &'static str, message: String) -> PyErr {
    ErrorInfo {
        class,
        message,
        key: None,
        code: None,
    }
    .to_err(py)
}
