//! Building the S3 client: region, endpoint, credentials and the connection pool.
//!
//! By default everything the AWS CLI reads is honoured (environment, shared config and
//! credentials files, SSO, web identity, ECS and EC2 roles); with
//! [`ClientOptions::ignore_environment`] only the values given here count (the Python
//! bindings build such a client from a boto3 client, which must not be overridden by the
//! environment).

use std::path::PathBuf;
use std::time::Duration;

use aws_config::environment::region::EnvironmentVariableRegionProvider;
use aws_config::meta::region::RegionProviderChain;
use aws_config::profile::ProfileFileRegionProvider;
use aws_config::{BehaviorVersion, Region};
use aws_credential_types::provider::SharedCredentialsProvider;
use aws_sdk_s3::config::timeout::TimeoutConfig;
use aws_sdk_s3::Client;
use aws_smithy_http_client::{tls, Builder as HttpClientBuilder, ConnectorBuilder};
use aws_smithy_runtime_api::client::http::SharedHttpClient;
use aws_types::service_config::ServiceConfigKey;

use crate::error::{Error, Result};
use crate::s3::http::Pool;
use crate::tuning::Tuning;

/// S3 closes idle connections after about 20 s; a pooled connection older than that fails
/// with a reset when reused (aws-sdk-rust #1417, #1106). Drop them well before.
const POOL_IDLE_TIMEOUT: Duration = Duration::from_secs(15);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
const DEFAULT_REGION: &str = "us-east-1";
/// How a PEM certificate starts.
const CERTIFICATE: &str = "-----BEGIN CERTIFICATE-----";

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
    /// PEM certificates to trust besides the system's roots (a private CA of an
    /// S3-compatible store). Default: the file named by `AWS_CA_BUNDLE`, if set.
    pub ca_bundle: Option<PathBuf>,
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
        self.ca_certificates()?;
        Ok(())
    }

    /// The CA bundle's certificates (PEM), from `ca_bundle` or `AWS_CA_BUNDLE`.
    fn ca_certificates(&self) -> Result<Option<Vec<u8>>> {
        let path = match (&self.ca_bundle, self.ignore_environment) {
            (Some(path), _) => path.clone(),
            (None, false) => match std::env::var_os("AWS_CA_BUNDLE") {
                Some(path) if !path.is_empty() => PathBuf::from(path),
                _ => return Ok(None),
            },
            (None, true) => return Ok(None),
        };
        let pem = std::fs::read(&path)
            .map_err(|e| Error::option("ca_bundle", format!("{}: {e}", path.display())))?;
        if !pem
            .windows(CERTIFICATE.len())
            .any(|w| w == CERTIFICATE.as_bytes())
        {
            return Err(Error::option(
                "ca_bundle",
                format!("{} holds no PEM certificate", path.display()),
            ));
        }
        Ok(Some(pem))
    }

    /// Builds a client with the standard credential chain (environment, profiles, SSO, web
    /// identity, ECS/IMDS) and a connection pool sized for many concurrent requests.
    pub async fn build(&self) -> Client {
        self.connect(Tuning::from_env()).await.client
    }

    /// The client, and what GETs sent on its pool without it need (see
    /// [`crate::s3::lean`]).
    pub(crate) async fn connect(&self, tuning: Tuning) -> Connection {
        // Read when the options were validated: it is there.
        let ca = self.ca_certificates().ok().flatten();
        let (http, pool) = http_client(ca, tuning.sdk_http);
        // Without the pool, GETs go through the SDK.
        let pool = pool.filter(|_| !tuning.sdk_get);
        if self.ignore_environment {
            return self.build_isolated(http, pool);
        }
        let mut loader = aws_config::defaults(BehaviorVersion::latest())
            .http_client(http)
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
        Connection {
            client: Client::from_conf(config),
            direct: pool.map(|pool| Direct {
                pool,
                endpoint_url: s3_endpoint_url(&shared, self.endpoint_url.as_deref()),
                force_path_style: path_style,
                use_fips: shared.use_fips().unwrap_or(false),
                use_dual_stack: shared.use_dual_stack().unwrap_or(false),
                credentials: shared.credentials_provider(),
            }),
        }
    }

    /// A client from these options alone.
    fn build_isolated(&self, http: SharedHttpClient, pool: Option<Pool>) -> Connection {
        let path_style = self
            .force_path_style
            .unwrap_or_else(|| self.endpoint_url.as_deref().is_some_and(is_local_endpoint));
        let mut config = aws_sdk_s3::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .http_client(http)
            .timeout_config(timeouts())
            .region(Region::new(
                self.region.clone().unwrap_or_else(|| DEFAULT_REGION.into()),
            ))
            .force_path_style(path_style);
        if let Some(endpoint) = &self.endpoint_url {
            config = config.endpoint_url(endpoint);
        }
        match (&self.credentials, self.no_sign_request) {
            (Some(credentials), false) => {
                config = config.credentials_provider(credentials.clone());
            }
            _ => config = config.allow_no_auth(),
        }
        Connection {
            client: Client::from_conf(config.build()),
            direct: pool.map(|pool| Direct {
                pool,
                endpoint_url: self.endpoint_url.clone(),
                force_path_style: path_style,
                use_fips: false,
                use_dual_stack: false,
                credentials: self.credentials.clone().filter(|_| !self.no_sign_request),
            }),
        }
    }
}

/// The run's client, and its pool and endpoint settings when s3fetch built it (`None` for a
/// client the caller supplied, or the SDK's own HTTP client: GETs then go through the SDK).
pub(crate) struct Connection {
    pub client: Client,
    pub direct: Option<Direct>,
}

impl From<Client> for Connection {
    fn from(client: Client) -> Self {
        Connection {
            client,
            direct: None,
        }
    }
}

/// What the SDK's client does not tell about itself, recorded when s3fetch builds it.
#[derive(Clone)]
pub(crate) struct Direct {
    pub pool: Pool,
    pub endpoint_url: Option<String>,
    pub force_path_style: bool,
    pub use_fips: bool,
    pub use_dual_stack: bool,
    /// `None`: requests go unsigned.
    pub credentials: Option<SharedCredentialsProvider>,
}

/// The HTTP client: rustls on aws-lc with a read buffer under TLS (see [`crate::s3::http`]),
/// trusting the system's roots and `ca` (PEM), idle connections dropped before S3 drops
/// them; and its pool.
fn http_client(ca: Option<Vec<u8>>, sdk: bool) -> (SharedHttpClient, Option<Pool>) {
    // The SDK's own client stays available for comparison (`S3FETCH_HTTP_CLIENT=sdk`).
    if !sdk {
        let (http, pool) =
            crate::s3::http::client(ca.as_deref(), POOL_IDLE_TIMEOUT, CONNECT_TIMEOUT);
        return (http, Some(pool));
    }
    let mut trust = tls::TrustStore::default();
    if let Some(ca) = ca {
        trust = trust.with_pem_certificate(ca);
    }
    let context = tls::TlsContext::builder()
        .with_trust_store(trust)
        .build()
        .expect("a TLS context with a trust store builds");
    let http = HttpClientBuilder::new().build_with_connector_fn(move |settings, components| {
        let mut conn = ConnectorBuilder::default()
            .pool_idle_timeout(POOL_IDLE_TIMEOUT)
            .tls_provider(tls::Provider::Rustls(
                tls::rustls_provider::CryptoMode::AwsLc,
            ))
            .tls_context(context.clone());
        conn.set_connector_settings(settings.cloned());
        if let Some(components) = components {
            conn.set_sleep_impl(components.sleep_impl());
        }
        conn.build()
    });
    (http, None)
}

/// The endpoint the SDK's S3 client was given: `given`, else `AWS_ENDPOINT_URL_S3` or the
/// profile's `services` section for S3, else the shared `AWS_ENDPOINT_URL` / `endpoint_url`
/// (as `aws_sdk_s3::config::Builder::from(&SdkConfig)` chooses it; the client has no getter).
fn s3_endpoint_url(shared: &aws_config::SdkConfig, given: Option<&str>) -> Option<String> {
    if let Some(url) = given {
        return Some(url.to_owned());
    }
    let key = ServiceConfigKey::builder()
        .service_id("S3")
        .env("AWS_ENDPOINT_URL")
        .profile("endpoint_url")
        .build()
        .expect("every field is set");
    shared
        .service_config()
        .and_then(|config| config.load_config(key))
        .or_else(|| shared.endpoint_url().map(str::to_owned))
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
