//! Building the S3 client: region, endpoint, credentials and the connection pool.

use std::time::Duration;

use aws_config::environment::region::EnvironmentVariableRegionProvider;
use aws_config::meta::region::RegionProviderChain;
use aws_config::profile::ProfileFileRegionProvider;
use aws_config::{BehaviorVersion, Region};
use aws_sdk_s3::config::timeout::TimeoutConfig;
use aws_sdk_s3::Client;
use aws_smithy_http_client::{tls, Builder as HttpClientBuilder, ConnectorBuilder};

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
}

impl ClientOptions {
    /// Builds a client with the standard credential chain (environment, profiles, SSO, web
    /// identity, ECS/IMDS) and a connection pool sized for many concurrent requests.
    pub async fn build(&self) -> Client {
        let http_client =
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
            });
        let mut loader = aws_config::defaults(BehaviorVersion::latest())
            .http_client(http_client)
            .timeout_config(
                TimeoutConfig::builder()
                    .connect_timeout(CONNECT_TIMEOUT)
                    .build(),
            );
        if let Some(profile) = &self.profile {
            loader = loader.profile_name(profile);
        }
        if let Some(endpoint) = &self.endpoint_url {
            loader = loader.endpoint_url(endpoint);
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
