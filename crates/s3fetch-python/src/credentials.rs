//! Credentials from a boto3 client, through the client's own credentials object.
//!
//! `client._request_signer._credentials` is a botocore `Credentials` (static keys) or
//! `RefreshableCredentials` (assumed roles, SSO, instance profiles): asking it for
//! `get_frozen_credentials()` refreshes it when it is about to expire, as boto3 itself would.
//! The engine's credentials cache asks again shortly before the expiry the object reports, so
//! a long download keeps working across refreshes. Calls into Python take the GIL, so they run
//! on the blocking pool, never on a worker thread of the runtime.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use pyo3::prelude::*;
use s3fetch::aws_credential_types::provider::error::CredentialsError;
use s3fetch::aws_credential_types::provider::{self, future, ProvideCredentials};
use s3fetch::aws_credential_types::Credentials;

/// A botocore credentials object.
#[derive(Debug, Clone)]
pub(crate) struct Botocore(Arc<Py<PyAny>>);

impl Botocore {
    pub(crate) fn new(credentials: Py<PyAny>) -> Self {
        Botocore(Arc::new(credentials))
    }
}

impl ProvideCredentials for Botocore {
    fn provide_credentials<'a>(&'a self) -> future::ProvideCredentials<'a>
    where
        Self: 'a,
    {
        let source = self.0.clone();
        future::ProvideCredentials::new(async move {
            tokio::task::spawn_blocking(move || Python::attach(|py| frozen(py, &source)))
                .await
                .map_err(CredentialsError::provider_error)?
        })
    }
}

/// The current keys of `source`, refreshed by botocore if need be.
fn frozen(py: Python<'_>, source: &Py<PyAny>) -> provider::Result {
    let failed = |error: PyErr| {
        CredentialsError::provider_error(format!("the boto3 client's credentials: {error}"))
    };
    let source = source.bind(py);
    let keys = source
        .call_method0("get_frozen_credentials")
        .map_err(failed)?;
    let access_key: String = keys
        .getattr("access_key")
        .and_then(|v| v.extract())
        .map_err(failed)?;
    let secret_key: String = keys
        .getattr("secret_key")
        .and_then(|v| v.extract())
        .map_err(failed)?;
    let token: Option<String> = keys
        .getattr("token")
        .and_then(|v| v.extract())
        .map_err(failed)?;
    // RefreshableCredentials know their expiry (an aware datetime); static keys do not expire.
    let expiry = match source.getattr("_expiry_time") {
        Ok(expiry) if !expiry.is_none() => {
            let seconds: f64 = expiry
                .call_method0("timestamp")
                .and_then(|v| v.extract())
                .map_err(failed)?;
            Some(SystemTime::UNIX_EPOCH + Duration::from_secs_f64(seconds.max(0.0)))
        }
        _ => None,
    };
    Ok(Credentials::new(
        access_key, secret_key, token, expiry, "boto3",
    ))
}
