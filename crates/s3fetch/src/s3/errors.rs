//! How the answers and failures of requests become [`ServiceError`]s, beside the requests
//! that meet them: the SDK's errors (`sdk.rs`) and the lean GETs' answers (`lean.rs`). An
//! error answer keeps its code (or one named for its status when it has no body), its
//! status and the bucket's region when it names one; a request without an answer is told
//! apart as a connection, TLS or credentials failure, which decides retries and hints.

use std::fmt;

use aws_credential_types::provider::error::CredentialsError;
use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};

use crate::error::{error_chain, ServiceError, ServiceErrorKind};

impl ServiceError {
    pub(crate) fn from_sdk<E, R>(err: SdkError<E, R>) -> Self
    where
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
        R: HttpStatus + fmt::Debug + 'static,
    {
        let status = err.raw_response().map(HttpStatus::status);
        let region = err.raw_response().and_then(|raw| {
            let body = raw.body_bytes().map(String::from_utf8_lossy);
            named_region(raw.header(BUCKET_REGION), body.as_deref())
        });
        let (kind, code, message) = match &err {
            SdkError::ServiceError(service) => {
                let e = service.err();
                let code = e.code().map(str::to_owned).or_else(|| {
                    // HEAD responses and some stores carry no error body: name the status.
                    status.and_then(code_for_status).map(str::to_owned)
                });
                let message = e
                    .message()
                    .map(str::to_owned)
                    .unwrap_or_else(|| format!("HTTP {}", status.unwrap_or_default()));
                (ServiceErrorKind::Response, code, message)
            }
            SdkError::ResponseError(_) => (
                ServiceErrorKind::Response,
                status.and_then(code_for_status).map(str::to_owned),
                error_chain(&err),
            ),
            SdkError::DispatchFailure(_) | SdkError::TimeoutError(_) => {
                let message = error_chain(&err);
                let kind = match credentials_error(&err) {
                    Some(credentials) => credentials_kind(credentials),
                    None => dispatch_kind(&message),
                };
                (kind, None, message)
            }
            _ => (ServiceErrorKind::Request, None, error_chain(&err)),
        };
        let region = region.or_else(|| region_in_message(code.as_deref(), &message));
        ServiceError::new(kind, code, status, message, region)
    }

    /// An error answer: its status, and the code and message of its body if it had them,
    /// and the bucket's region if it named one.
    pub(crate) fn response(
        status: u16,
        code: Option<String>,
        message: Option<String>,
        region: Option<String>,
    ) -> Self {
        let message = message.unwrap_or_else(|| format!("HTTP {status}"));
        let code = code.or_else(|| code_for_status(status).map(str::to_owned));
        let region = region.or_else(|| region_in_message(code.as_deref(), &message));
        ServiceError::new(
            ServiceErrorKind::Response,
            code,
            Some(status),
            message,
            region,
        )
    }

    /// A request that got no answer: no connection, a TLS failure, a connection closed.
    pub(crate) fn dispatch(err: &dyn std::error::Error) -> Self {
        let message = error_chain(err);
        ServiceError::new(dispatch_kind(&message), None, None, message, None)
    }

    /// Credentials that could not be had.
    pub(crate) fn credentials(err: &CredentialsError) -> Self {
        ServiceError::new(credentials_kind(err), None, None, error_chain(err), None)
    }
}

/// The credentials provider's error behind a failed request, if that is why it failed.
fn credentials_error<'a>(
    err: &'a (dyn std::error::Error + 'static),
) -> Option<&'a CredentialsError> {
    let mut source = Some(err);
    while let Some(cause) = source {
        if let Some(credentials) = cause.downcast_ref::<CredentialsError>() {
            return Some(credentials);
        }
        source = cause.source();
    }
    None
}

/// Where a request without an answer failed, from its error's text: hyper-rustls reports TLS
/// failures as text in an I/O error, with no type to look for.
fn dispatch_kind(message: &str) -> ServiceErrorKind {
    if message.contains("TLS handshake failed") || message.contains("invalid peer certificate") {
        ServiceErrorKind::Tls
    } else {
        ServiceErrorKind::Connection
    }
}

fn credentials_kind(err: &CredentialsError) -> ServiceErrorKind {
    match err {
        // A provider that timed out (IMDS, a slow STS) may answer next time.
        CredentialsError::ProviderTimedOut(_) => ServiceErrorKind::Connection,
        CredentialsError::CredentialsNotLoaded(_) => ServiceErrorKind::NoCredentials,
        _ => ServiceErrorKind::Credentials,
    }
}

/// The code of an error answer without a body (HEAD answers, some stores).
fn code_for_status(status: u16) -> Option<&'static str> {
    Some(match status {
        301 => "PermanentRedirect",
        400 => "BadRequest",
        403 => "AccessDenied",
        404 => "NotFound",
        412 => "PreconditionFailed",
        416 => "InvalidRange",
        500 => "InternalError",
        503 => "ServiceUnavailable",
        _ => return None,
    })
}

/// What an error answer says of itself, whatever the SDK's response type: its status, a
/// header, its body (the SDK has read an error answer's body when it returns).
pub(crate) trait HttpStatus {
    fn status(&self) -> u16;
    fn header(&self, name: &str) -> Option<&str>;
    fn body_bytes(&self) -> Option<&[u8]>;
}

impl HttpStatus for aws_smithy_runtime_api::http::Response {
    fn status(&self) -> u16 {
        self.status().as_u16()
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.headers().get(name)
    }

    fn body_bytes(&self) -> Option<&[u8]> {
        self.body().bytes()
    }
}

/// The header in which S3 names a bucket's region.
pub(crate) const BUCKET_REGION: &str = "x-amz-bucket-region";

/// The region an error answer names for the bucket: its `x-amz-bucket-region` header, else
/// the `<Region>` of its body (S3 sends one with `AuthorizationHeaderMalformed`).
pub(crate) fn named_region(header: Option<&str>, body: Option<&str>) -> Option<String> {
    let valid = |r: &str| {
        !r.is_empty() && r.len() <= 64 && r.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
    };
    if let Some(region) = header.map(str::trim).filter(|r| valid(r)) {
        return Some(region.to_owned());
    }
    let body = body?;
    let start = body.find("<Region>")? + "<Region>".len();
    let end = start + body[start..].find("</Region>")?;
    let region = body[start..end].trim();
    valid(region).then(|| region.to_owned())
}

/// The region in S3's message for a request signed for the wrong one
/// (`AuthorizationHeaderMalformed`: "the region 'us-east-1' is wrong; expecting
/// 'us-west-2'").
fn region_in_message(code: Option<&str>, message: &str) -> Option<String> {
    if code != Some("AuthorizationHeaderMalformed") {
        return None;
    }
    let rest = &message[message.find("expecting '")? + "expecting '".len()..];
    let region = &rest[..rest.find('\'')?];
    named_region(Some(region), None)
}

#[cfg(test)]
mod tests;
