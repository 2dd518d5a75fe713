//! Shared helpers for the integration tests: aws-sdk-s3 clients for a `TestServer` (over
//! HTTP or, trusting its CA, HTTPS), and the endpoint a `serve` process prints.
#![allow(dead_code)]

use aws_credential_types::Credentials;
use aws_sdk_s3::config::{BehaviorVersion, Region};
use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_s3::Client;
use aws_smithy_http_client::tls::{self, TlsContext, TrustStore};
use s3fetch_testkit::TestServer;

/// The endpoint in the first line a `s3fetch-testkit serve` process prints (`endpoint=URL`),
/// read without blocking the runtime.
pub async fn endpoint_line(stdout: std::process::ChildStdout) -> String {
    use std::io::{BufRead, BufReader};
    let line = tokio::task::spawn_blocking(move || {
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line).unwrap();
        line
    })
    .await
    .unwrap();
    line.trim()
        .strip_prefix("endpoint=")
        .unwrap_or_else(|| panic!("no endpoint line: {line:?}"))
        .to_owned()
}

fn base(endpoint: &str) -> aws_sdk_s3::config::Builder {
    aws_sdk_s3::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .endpoint_url(endpoint)
        .force_path_style(true)
}

/// A client signing with the server's credentials (and, for a TLS server, trusting its CA).
pub fn client(server: &TestServer) -> Client {
    let c = client_with(&server.endpoint(), server.access_key(), server.secret_key());
    match server.ca_pem() {
        Some(pem) => trusting(&c, pem),
        None => c,
    }
}

/// `c` with an HTTPS client whose only trusted root is the CA certificate `ca_pem`.
pub fn trusting(c: &Client, ca_pem: &str) -> Client {
    let trust = TrustStore::empty().with_pem_certificate(ca_pem.as_bytes());
    let tls = TlsContext::builder()
        .with_trust_store(trust)
        .build()
        .expect("TLS context");
    let http = aws_smithy_http_client::Builder::new()
        .tls_provider(tls::Provider::Rustls(
            tls::rustls_provider::CryptoMode::AwsLc,
        ))
        .tls_context(tls)
        .build_https();
    Client::from_conf(c.config().to_builder().http_client(http).build())
}

/// A client signing with the server's credentials for `region` (HTTP servers only).
pub fn client_in_region(server: &TestServer, region: &str) -> Client {
    let c = client(server);
    Client::from_conf(
        c.config()
            .to_builder()
            .region(Region::new(region.to_owned()))
            .build(),
    )
}

/// The body of a failed call's response, as text.
pub fn error_body<E>(err: &SdkError<E, aws_sdk_s3::config::http::HttpResponse>) -> String {
    err.raw_response()
        .and_then(|r| r.body().bytes())
        .map(|b| String::from_utf8_lossy(b).into_owned())
        .unwrap_or_default()
}

/// A header of a failed call's response.
pub fn error_header<E>(
    err: &SdkError<E, aws_sdk_s3::config::http::HttpResponse>,
    name: &str,
) -> Option<String> {
    err.raw_response()
        .and_then(|r| r.headers().get(name))
        .map(str::to_owned)
}

/// A client signing with the given credentials.
pub fn client_with(endpoint: &str, access_key: &str, secret_key: &str) -> Client {
    let creds = Credentials::new(access_key, secret_key, None, None, "testkit");
    Client::from_conf(base(endpoint).credentials_provider(creds).build())
}

/// A client sending unsigned (anonymous) requests.
pub fn anonymous_client(server: &TestServer) -> Client {
    let c = Client::from_conf(base(&server.endpoint()).allow_no_auth().build());
    match server.ca_pem() {
        Some(pem) => trusting(&c, pem),
        None => c,
    }
}

/// The S3 error code of a failed call.
pub fn code<E: ProvideErrorMetadata + std::fmt::Debug, R: std::fmt::Debug>(
    err: &SdkError<E, R>,
) -> String {
    err.as_service_error()
        .and_then(|e| e.code())
        .map_or_else(|| format!("<no code: {err:?}>"), str::to_owned)
}

/// The HTTP status of a failed call.
pub fn status<E>(err: &SdkError<E, aws_sdk_s3::config::http::HttpResponse>) -> u16 {
    err.raw_response().map_or(0, |r| r.status().as_u16())
}

/// Everything a paginated ListObjectsV2 returned.
#[derive(Debug, Default)]
pub struct Listing {
    pub keys: Vec<String>,
    pub common_prefixes: Vec<String>,
    pub pages: usize,
}

/// Lists with ListObjectsV2 following continuation tokens, checking per-page invariants.
pub async fn list_all(
    c: &Client,
    bucket: &str,
    prefix: Option<&str>,
    delimiter: Option<&str>,
    max_keys: Option<i32>,
    start_after: Option<&str>,
) -> Listing {
    let mut out = Listing::default();
    let mut token: Option<String> = None;
    loop {
        let mut req = c.list_objects_v2().bucket(bucket);
        if let Some(p) = prefix {
            req = req.prefix(p);
        }
        if let Some(d) = delimiter {
            req = req.delimiter(d);
        }
        if let Some(m) = max_keys {
            req = req.max_keys(m);
        }
        if let Some(s) = start_after {
            req = req.start_after(s);
        }
        if let Some(t) = &token {
            req = req.continuation_token(t);
        }
        let page = req.send().await.expect("list_objects_v2");
        out.pages += 1;
        let n_keys = page.contents().len();
        let n_cps = page.common_prefixes().len();
        assert_eq!(
            page.key_count(),
            Some(i32::try_from(n_keys + n_cps).unwrap())
        );
        assert!(n_keys + n_cps <= usize::try_from(max_keys.unwrap_or(1000)).unwrap());
        for o in page.contents() {
            assert!(o.size().is_some() && o.e_tag().is_some() && o.last_modified().is_some());
            out.keys.push(o.key().unwrap().to_owned());
        }
        for p in page.common_prefixes() {
            out.common_prefixes.push(p.prefix().unwrap().to_owned());
        }
        if page.is_truncated() == Some(true) {
            token = Some(
                page.next_continuation_token()
                    .expect("token on truncated page")
                    .to_owned(),
            );
        } else {
            assert!(page.next_continuation_token().is_none());
            break;
        }
    }
    out
}

/// Reference implementation of a full (unpaginated) listing.
pub fn model_list(
    keys: &[String],
    prefix: &str,
    delimiter: Option<&str>,
    start_after: Option<&str>,
) -> (Vec<String>, Vec<String>) {
    let mut sorted: Vec<&String> = keys.iter().collect();
    sorted.sort_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
    sorted.dedup();
    let mut out_keys = Vec::new();
    let mut cps: Vec<String> = Vec::new();
    for k in sorted {
        if !k.starts_with(prefix) || start_after.is_some_and(|s| k.as_str() <= s) {
            continue;
        }
        let rest = &k[prefix.len()..];
        match delimiter.and_then(|d| rest.find(d).map(|i| (i, d))) {
            Some((i, d)) => {
                let cp = k[..prefix.len() + i + d.len()].to_owned();
                if cps.last() != Some(&cp) {
                    cps.push(cp);
                }
            }
            None => out_keys.push(k.clone()),
        }
    }
    (out_keys, cps)
}
