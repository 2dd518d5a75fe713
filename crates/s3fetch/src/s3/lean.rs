//! GetObject without the SDK's orchestrator: one URL, a few headers, a SigV4 signature, sent
//! on the run's own connection pool.
//!
//! It saves the CPU the orchestrator costs on thousands of small GETs ([`Lean`]). It is used
//! only where it sends what the SDK would ([`Lean::new`]). Anything else, or `S3FETCH_GET=sdk`
//! in the environment (for comparisons), goes through the SDK. Listing pages and HEADs always
//! do.

use std::pin::Pin;
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use aws_credential_types::provider::{ProvideCredentials, SharedCredentialsProvider};
use aws_credential_types::Credentials;
use aws_sdk_s3::config::endpoint::{DefaultResolver, Params, ResolveEndpoint};
use aws_sdk_s3::Client;
use aws_sigv4::http_request::{
    sign, PayloadChecksumKind, PercentEncodingMode, SignableBody, SignableRequest, SigningSettings,
    UriPathNormalizationMode,
};
use aws_sigv4::sign::v4;
use aws_smithy_runtime_api::client::identity::Identity;
use aws_smithy_types::body::SdkBody;
use aws_smithy_types::date_time::{DateTime, Format};
use aws_smithy_types::endpoint::Endpoint;
use aws_smithy_types::Document;
use futures::stream;
use http::header::{HeaderMap, HeaderValue, HOST, IF_MATCH, RANGE, USER_AGENT};
use http_body::Body as _;
use hyper::body::Incoming;

use super::{ByteRange, GetResponse, ObjectHead, Settings, REQUEST_PAYER};
use crate::checksum::Expected;
use crate::error::ServiceError;
use crate::s3::client::Direct;
use crate::s3::errors::{named_region, BUCKET_REGION};
use crate::s3::http::Pool;

/// Credentials are fetched again this long before they expire (the SDK's own margin).
const REFRESH_BEFORE: Duration = Duration::from_secs(10);
/// An error answer's body is read up to this size for its code and message.
const ERROR_BODY_LIMIT: usize = 64 * 1024;
const AGENT: &str = concat!("s3fetch/", env!("CARGO_PKG_VERSION"));

/// GETs of one bucket's objects.
///
/// Every SDK operation runs the orchestrator: config bags, interceptors, the identity and the
/// endpoint resolved anew, the request and the response passed through layers of generic
/// code. For a listing page that is nothing; for thousands of small GETs it was about a tenth
/// of the run's CPU (BENCHMARKS.md, "small"). A GET here is the bucket's URL (resolved once,
/// by the SDK's own endpoint resolver), its key encoded as the SDK encodes it, the SDK's own
/// signer (`aws-sigv4`, with the settings the SDK uses for S3) and the response's headers
/// read straight into an [`ObjectHead`].
pub(crate) struct Lean {
    pool: Pool,
    /// `scheme://host[:port][/path]`: an object's URL is this, `/` and its encoded key.
    base: String,
    host: HeaderValue,
    /// `None`: unsigned requests (`--no-sign-request`).
    signer: Option<Signer>,
    /// Ask for the object's checksums (`x-amz-checksum-mode`).
    verify: bool,
    /// Agree to pay for the requests (`x-amz-request-payer: requester`).
    requester_pays: bool,
}

impl Lean {
    /// GETs of `bucket` as `client` would send them, if they can be sent without it.
    ///
    /// That is: a client s3fetch built itself (so its pool is at hand, see
    /// [`crate::s3::http`]), and a bucket whose endpoint is signed with plain SigV4 for `s3`
    /// and needs no extra headers (not S3 Express, not a multi-region access point).
    pub(crate) async fn new(
        direct: &Direct,
        client: &Client,
        bucket: &str,
        settings: Settings,
    ) -> Option<Lean> {
        // A directory bucket's requests are signed with S3 Express sessions: the SDK's.
        if settings.directory {
            return None;
        }
        let config = client.config();
        let params = Params::builder()
            .bucket(bucket)
            .region(config.region()?.to_string())
            .use_fips(direct.use_fips)
            .use_dual_stack(direct.use_dual_stack)
            .force_path_style(direct.force_path_style)
            .accelerate(false)
            .set_endpoint(direct.endpoint_url.clone())
            .build()
            .ok()?;
        let endpoint = DefaultResolver::new()
            .resolve_endpoint(&params)
            .await
            .ok()?;
        if endpoint.headers().next().is_some() {
            return None;
        }
        let region = sigv4_region(&endpoint)?;
        let base = endpoint.url().trim_end_matches('/').to_owned();
        let uri: http::Uri = base.parse().ok()?;
        let host = HeaderValue::from_str(&host_header(&uri)?).ok()?;
        let signer = direct.credentials.clone().map(|provider| Signer {
            provider,
            region,
            cached: Mutex::new(None),
            refreshing: tokio::sync::Mutex::new(()),
        });
        Some(Lean {
            pool: direct.pool.clone(),
            base,
            host,
            signer,
            verify: settings.verify,
            requester_pays: settings.requester_pays,
        })
    }

    /// Where its GETs go: an object's URL is this, `/` and its encoded key.
    pub(crate) fn base(&self) -> &str {
        &self.base
    }

    /// GetObject, whole or `range`, only if the ETag is `if_match` (when given).
    pub(crate) async fn get(
        &self,
        key: &str,
        range: Option<ByteRange>,
        if_match: Option<&str>,
    ) -> Result<GetResponse, ServiceError> {
        let mut request = http::Request::get(format!("{}/{}", self.base, encode_key(key)))
            .header(HOST, self.host.clone())
            .header(USER_AGENT, AGENT);
        if let Some(range) = range {
            request = request.header(RANGE, range.header());
        }
        if let Some(etag) = if_match {
            request = request.header(IF_MATCH, etag);
        }
        if self.verify {
            request = request.header("x-amz-checksum-mode", "ENABLED");
        }
        if self.requester_pays {
            request = request.header(REQUEST_PAYER, "requester");
        }
        let mut request = request
            .body(SdkBody::empty())
            .map_err(|e| ServiceError::request(format!("building the GET of {key:?}: {e}")))?;
        if let Some(signer) = &self.signer {
            signer.sign(&mut request).await?;
        }
        let response = self
            .pool
            .request(request)
            .await
            .map_err(|e| ServiceError::dispatch(&e))?;
        let (parts, body) = response.into_parts();
        if !parts.status.is_success() {
            return Err(error_answer(parts.status.as_u16(), &parts.headers, body).await);
        }
        let head = object_head(&parts.headers, self.verify && range.is_none());
        let body = stream::try_unfold(body, |mut body| async move {
            loop {
                match std::future::poll_fn(|cx| Pin::new(&mut body).poll_frame(cx)).await {
                    None => return Ok(None),
                    Some(Err(e)) => return Err(ServiceError::body(e)),
                    Some(Ok(frame)) => {
                        if let Ok(data) = frame.into_data() {
                            return Ok(Some((data, body)));
                        }
                    }
                }
            }
        });
        Ok(GetResponse {
            head,
            body: Box::pin(body),
        })
    }
}

/// Signs requests with the credentials of the SDK's provider, kept until shortly before they
/// expire (the SDK keeps its own for its requests).
struct Signer {
    provider: SharedCredentialsProvider,
    region: String,
    cached: Mutex<Option<Credentials>>,
    /// One refresh at a time: the others wait for its credentials.
    refreshing: tokio::sync::Mutex<()>,
}

impl Signer {
    async fn sign(&self, request: &mut http::Request<SdkBody>) -> Result<(), ServiceError> {
        let identity: Identity = self.credentials().await?.into();
        let mut settings = SigningSettings::default();
        // What the SDK's S3 endpoints ask for: the path signed as sent, the payload's hash
        // in `x-amz-content-sha256`.
        settings.percent_encoding_mode = PercentEncodingMode::Single;
        settings.uri_path_normalization_mode = UriPathNormalizationMode::Disabled;
        settings.payload_checksum_kind = PayloadChecksumKind::XAmzSha256;
        let params = v4::SigningParams::builder()
            .identity(&identity)
            .region(&self.region)
            .name("s3")
            .time(SystemTime::now())
            .settings(settings)
            .build()
            .map_err(|e| ServiceError::request(format!("signing: {e}")))?
            .into();
        let headers = request
            .headers()
            .iter()
            .filter_map(|(name, value)| Some((name.as_str(), value.to_str().ok()?)));
        let signable = SignableRequest::new(
            request.method().as_str(),
            request.uri().to_string(),
            headers,
            SignableBody::Bytes(&[]),
        )
        .and_then(|signable| sign(signable, &params))
        .map_err(|e| ServiceError::request(format!("signing: {e}")))?;
        signable.into_parts().0.apply_to_request_http1x(request);
        Ok(())
    }

    async fn credentials(&self) -> Result<Credentials, ServiceError> {
        if let Some(credentials) = self.fresh() {
            return Ok(credentials);
        }
        let _refreshing = self.refreshing.lock().await;
        if let Some(credentials) = self.fresh() {
            return Ok(credentials);
        }
        let credentials = self
            .provider
            .provide_credentials()
            .await
            .map_err(|e| ServiceError::credentials(&e))?;
        *self.cached.lock().unwrap_or_else(|e| e.into_inner()) = Some(credentials.clone());
        Ok(credentials)
    }

    fn fresh(&self) -> Option<Credentials> {
        let cached = self.cached.lock().unwrap_or_else(|e| e.into_inner());
        let credentials = cached.as_ref()?;
        match credentials.expiry() {
            Some(expiry) if expiry <= SystemTime::now() + REFRESH_BEFORE => None,
            _ => Some(credentials.clone()),
        }
    }
}

/// The signing region of an endpoint signed with plain SigV4 for `s3`; `None` for any other
/// scheme (SigV4a, S3 Express sessions).
fn sigv4_region(endpoint: &Endpoint) -> Option<String> {
    let text = |d: Option<&Document>| match d {
        Some(Document::String(s)) => Some(s.clone()),
        _ => None,
    };
    let (name, signing_name, region) = match endpoint.auth_schemes().first() {
        Some(scheme) => (
            scheme.name().to_owned(),
            text(scheme.get("signingName")),
            text(scheme.get("signingRegion")),
        ),
        None => {
            let Some(Document::Array(schemes)) = endpoint.properties().get("authSchemes") else {
                return None;
            };
            let Some(Document::Object(scheme)) = schemes.first() else {
                return None;
            };
            (
                text(scheme.get("name"))?,
                text(scheme.get("signingName")),
                text(scheme.get("signingRegion")),
            )
        }
    };
    (name == "sigv4" && signing_name.as_deref() == Some("s3"))
        .then_some(region)
        .flatten()
}

/// The `Host` header for `uri`: its authority without a default port, as signed.
fn host_header(uri: &http::Uri) -> Option<String> {
    let host = uri.host()?;
    let default = match uri.scheme_str() {
        Some("https") => 443,
        _ => 80,
    };
    Some(match uri.port_u16() {
        Some(port) if port != default => format!("{host}:{port}"),
        _ => host.to_owned(),
    })
}

/// `key` in a URL path as the SDK writes it: every byte percent-encoded except letters,
/// digits, `-._~` and `/`.
fn encode_key(key: &str) -> String {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    let mut out = String::with_capacity(key.len() + 8);
    for &b in key.as_bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b'/') {
            out.push(b as char);
        } else {
            out.push('%');
            out.push(HEX[usize::from(b >> 4)] as char);
            out.push(HEX[usize::from(b & 15)] as char);
        }
    }
    out
}

/// What a successful GET's headers say about the object; its checksum only when `checksum`
/// (verification on, and the whole object asked for).
fn object_head(headers: &HeaderMap, checksum: bool) -> ObjectHead {
    let text = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let checksum = checksum
        .then(|| {
            Expected::from_response(
                text("x-amz-checksum-crc64nvme"),
                text("x-amz-checksum-crc32c"),
                text("x-amz-checksum-crc32"),
                text("x-amz-checksum-type"),
                text("etag"),
                text("x-amz-server-side-encryption").is_some_and(|s| s != "AES256")
                    || text("x-amz-server-side-encryption-customer-algorithm").is_some(),
                true,
            )
        })
        .flatten();
    ObjectHead {
        etag: text("etag").map(str::to_owned),
        length: text("content-length").and_then(|n| n.parse().ok()),
        checksum,
        last_modified: text("last-modified")
            .and_then(|t| DateTime::from_str(t, Format::HttpDate).ok())
            .and_then(|t| t.try_into().ok()),
    }
}

/// The error an answer with `status` means, with the code and message of its XML body and
/// the bucket's region if the answer names it.
async fn error_answer(status: u16, headers: &HeaderMap, mut body: Incoming) -> ServiceError {
    let mut bytes = Vec::new();
    while bytes.len() < ERROR_BODY_LIMIT {
        match std::future::poll_fn(|cx| Pin::new(&mut body).poll_frame(cx)).await {
            Some(Ok(frame)) => {
                if let Ok(data) = frame.into_data() {
                    bytes.extend_from_slice(&data);
                }
            }
            // A broken error body: the status still says what happened.
            Some(Err(_)) | None => break,
        }
    }
    let text = String::from_utf8_lossy(&bytes);
    let region_header = headers.get(BUCKET_REGION).and_then(|v| v.to_str().ok());
    ServiceError::response(
        status,
        xml_element(&text, "Code"),
        xml_element(&text, "Message"),
        named_region(region_header, Some(&text)),
    )
}

/// The text of the first `<name>` element of `xml`, unescaped.
fn xml_element(xml: &str, name: &str) -> Option<String> {
    let start = xml.find(&format!("<{name}>"))? + name.len() + 2;
    let end = start + xml[start..].find(&format!("</{name}>"))?;
    let raw = &xml[start..end];
    Some(
        raw.replace("&lt;", "<")
            .replace("&gt;", ">")
            .replace("&quot;", "\"")
            .replace("&apos;", "'")
            .replace("&amp;", "&"),
    )
}

#[cfg(test)]
mod tests;
