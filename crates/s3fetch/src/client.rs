//! Building the S3 client: region, endpoint, credentials and the connection pool.
//!
//! By default everything the AWS CLI reads is honoured (environment, shared config and
//! credentials files, SSO, web identity, ECS and EC2 roles); with
//! [`ClientOptions::ignore_environment`] only the values given here count (the Python
//! bindings build such a client from a boto3 client, which must not be overridden by the
//! environment).

use std::time::Duration;

use aws_config::environment::region::EnvironmentVariableRegionProvider;
use aws_config::meta::region::RegionProviderChain;
use aws_config::profile::ProfileFileRegionProvider;
use aws_config::{BehaviorVersion, Region};
use aws_credential_types::provider::SharedCredentialsProvider;
use aws_sdk_s3::config::timeout::TimeoutConfig;
use aws_sdk_s3::Client;
use aws_smithy_http_client::{tls, Builder as HttpClientBuilder, ConnectorBuilder};

use crate::error::{Error, Result};

/// S3 closes idle connections after about 20 s; a pooled connection older than that fails
/// with a reset when reused (aws-sdk-rust #1417, #1106). Drop them well before.
const POOL_IDLE_TIMEOUT: Duration = Duration::from_secs(15);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
const DEFAULT_REGION: &str = "us-east-1";

/// How to reach S3 when the caller does not supply its own client.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct ClientOptions {
    /// Region; default: from the environment or profile, else `us-east-1`.
    pub region: Option<String>,
    /// An S3-compatible endpoint (`http://127.0.0.1:9000`, MinIO, R2...). Default: from
    /// `AWS_ENDPOINT_URL[_S3]` or the profile, else AWS.
    pub endpoint_url: Option<String>,
    /// Path-style addressing (`endpoint/bucket/key`). Default: on for IP and localhost
    /// endpoints, off otherwise.
    pub force_path_style: Option<bool>,
    /// A named profile from `~/.aws/config` (SSO profiles included).
    pub profile: Option<String>,
    /// Send unsigned requests (public buckets); no credentials are looked up.
    pub no_sign_request: bool,
    /// Credentials to sign with, instead of the standard chain (refreshed by the provider
    /// when they expire).
    pub credentials: Option<SharedCredentialsProvider>,
    /// Read nothing from the environment or the shared config files: region, endpoint and
    /// credentials are only those given here (region default `us-east-1`).
    pub ignore_environment: bool,
}

impl ClientOptions {
    /// Fails for options that cannot work, before any request.
    pub(crate) fn validate(&self) -> Result<()> {
        if let Some(endpoint) = &self.endpoint_url {
            if !(endpoint.starts_with("http://") || endpoint.starts_with("https://")) {
                return Err(Error::option(
                    "endpoint_url",
                    format!("{endpoint:?} must start with http:// or https://"),
                ));
            }
        }
        if self.region.as_deref() == Some("") {
            return Err(Error::option("region", "must not be empty"));
        }
        Ok(())
    }

    /// Builds a client with the standard credential chain (environment, profiles, SSO, web
    /// identity, ECS/IMDS) and a connection pool sized for many concurrent requests.
    pub async fn build(&self) -> Client {
        if self.ignore_environment {
            return self.build_isolated();
        }
        let mut loader = aws_config::defaults(BehaviorVersion::latest())
            .http_client(http_client())
            .timeout_config(timeouts());
        if let Some(profile) = &self.profile {
            loader = loader.profile_name(profile);
        }
        if let Some(endpoint) = &self.endpoint_url {
            loader = loader.endpoint_url(endpoint);
        }
        if let Some(credentials) = &self.credentials {
            loader = loader.credentials_provider(credentials.clone());
        }
        if self.no_sign_request {
            loader = loader.no_credentials();
        }
        loader = match &self.region {
            Some(region) => loader.region(Region::new(region.clone())),
            // Environment, then profile, then us-east-1; not IMDS, which costs seconds of
            // time-outs off EC2.
            None => loader.region(
                RegionProviderChain::first_try(EnvironmentVariableRegionProvider::new())
                    .or_else(profile_region(self.profile.as_deref()))
                    .or_else(DEFAULT_REGION),
            ),
        };
        let shared = loader.load().await;
        let path_style = self
            .force_path_style
            .unwrap_or_else(|| shared.endpoint_url().is_some_and(is_local_endpoint));
        let config = aws_sdk_s3::config::Builder::from(&shared)
            .force_path_style(path_style)
            .build();
        Client::from_conf(config)
    }

    /// A client from these options alone.
    fn build_isolated(&self) -> Client {
        let mut config = aws_sdk_s3::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .http_client(http_client())
            .timeout_config(timeouts())
            .region(Region::new(
                self.region.clone().unwrap_or_else(|| DEFAULT_REGION.into()),
            ))
            .force_path_style(
                self.force_path_style
                    .unwrap_or_else(|| self.endpoint_url.as_deref().is_some_and(is_local_endpoint)),
            );
        if let Some(endpoint) = &self.endpoint_url {
            config = config.endpoint_url(endpoint);
        }
        match (&self.credentials, self.no_sign_request) {
            (Some(credentials), false) => {
                config = config.credentials_provider(credentials.clone());
            }
            _ => config = config.allow_no_auth(),
        }
        Client::from_conf(config.build())
    }
}

/// The HTTP client: rustls on aws-lc, idle connections dropped before S3 drops them.
fn http_client() -> aws_smithy_runtime_api::client::http::SharedHttpClient {
    HttpClientBuilder::new().build_with_connector_fn(|settings, components| {
        let mut conn = ConnectorBuilder::default()
            .pool_idle_timeout(POOL_IDLE_TIMEOUT)
            .tls_provider(tls::Provider::Rustls(
                tls::rustls_provider::CryptoMode::AwsLc,
            ));
        conn.set_connector_settings(settings.cloned());
        if let Some(components) = components {
            conn.set_sleep_impl(components.sleep_impl());
        }
        conn.build()
    })
}

fn timeouts() -> TimeoutConfig {
    TimeoutConfig::builder()
        .connect_timeout(CONNECT_TIMEOUT)
        .build()
}

fn profile_region(profile: Option<&str>) -> ProfileFileRegionProvider {
    let mut builder = ProfileFileRegionProvider::builder();
    if let Some(profile) = profile {
        builder = builder.profile_name(profile);
    }
    builder.build()
}

/// True for endpoints given as an IP address or `localhost`, which cannot serve
/// virtual-hosted-style (`bucket.host`) requests.
fn is_local_endpoint(url: &str) -> bool {
    let authority = url.split_once("://").map_or(url, |(_, rest)| rest);
    let authority = authority.split(['/', '?']).next().unwrap_or_default();
    let host = match authority.strip_prefix('[') {
        Some(v6) => {
            return v6
                .split(']')
                .next()
                .is_some_and(|h| h.parse::<std::net::Ipv6Addr>().is_ok())
        }
        None => authority.rsplit_once(':').map_or(authority, |(h, _)| h),
    };
    host.eq_ignore_ascii_case("localhost") || host.parse::<std::net::Ipv4Addr>().is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_endpoints_get_path_style() {
        assert!(is_local_endpoint("http://127.0.0.1:9000"));
        assert!(is_local_endpoint("http://localhost:9000/"));
        assert!(is_local_endpoint("http://[::1]:9000"));
        assert!(is_local_endpoint("https://10.0.0.5"));
        assert!(!is_local_endpoint("https://s3.us-east-1.amazonaws.com"));
        assert!(!is_local_endpoint("https://minio.example.com:9000"));
    }
}
