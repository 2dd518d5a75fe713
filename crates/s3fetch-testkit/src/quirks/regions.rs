//! Buckets in other regions ([`ServerOptions::bucket_regions`](crate::ServerOptions)): a
//! signed request whose SigV4 credential scope names another region than the bucket's is
//! refused the way S3 refuses it, so clients can be tested on finding a bucket's region.
//!
//! * Scope `us-east-1` (a client with the default region, sent to the global endpoint):
//!   `301 PermanentRedirect` with `x-amz-bucket-region: REGION` and an error body naming
//!   `<Endpoint>BUCKET.s3.REGION.amazonaws.com</Endpoint>` and `<Bucket>`.
//! * Any other wrong region: `400 AuthorizationHeaderMalformed` ("the region 'X' is wrong;
//!   expecting 'REGION'"), `<Region>REGION</Region>` in the body and, as S3 sends it too,
//!   the `x-amz-bucket-region` header.
//! * HEAD requests (HeadObject, HeadBucket) get the same status and header, no body.
//! * GetBucketLocation is answered from any region (AWS: "In other Regions, the bucket
//!   policy doesn't apply"), which is what it is for. Unsigned requests carry no region
//!   (one endpoint serves every region here), so they are served.
//!
//! `s3s` errors carry a status and headers but no extra body elements, so the access hook
//! leaves the [`Refusal`] in a [`RefusalSlot`] the gateway put in the request's extensions
//! ([`serve`]), and the gateway answers it once `s3s` returns. The refusal is decided after
//! the request was counted under its operation, so refused requests count.

use std::sync::{Arc, Mutex, PoisonError};

use futures::future::BoxFuture;
use hyper::http::{header, Extensions, HeaderMap, HeaderValue, Method, StatusCode, Uri};
use s3s::service::S3Service;
use s3s::{Body, HttpError, HttpResponse, S3Error, S3ErrorCode, S3Result};

use super::Quirks;
use crate::express::ExpressAuth;
use crate::state::Shared;

/// Where a request stands, as the quirks need it (built by the access hook and the list
/// fast path).
pub(crate) struct RequestView<'a> {
    pub(crate) uri: &'a Uri,
    pub(crate) headers: &'a HeaderMap,
    /// Signed (verified by `s3s`, or by [`crate::express`] for `s3express` requests).
    pub(crate) signed: bool,
    /// The credential scope's region of an `s3express` request (whose `Authorization`
    /// header the gateway removed after checking it).
    pub(crate) express_region: Option<&'a str>,
    pub(crate) slot: Option<&'a RefusalSlot>,
}

impl<'a> RequestView<'a> {
    /// The view of a request `s3s` let through (`verified`: it checked a signature), with
    /// what the gateway left in its extensions.
    pub(crate) fn new(
        uri: &'a Uri,
        headers: &'a HeaderMap,
        extensions: &'a Extensions,
        verified: bool,
    ) -> Self {
        let express_region = extensions.get::<ExpressAuth>().map(|a| a.region.as_str());
        Self {
            uri,
            headers,
            signed: verified || express_region.is_some(),
            express_region,
            slot: extensions.get::<RefusalSlot>(),
        }
    }

    /// The region of the request's SigV4 credential scope (`Authorization` header or
    /// presigned `X-Amz-Credential`); `None` when unsigned or SigV2.
    fn signing_region(&self) -> Option<String> {
        if !self.signed {
            return None;
        }
        if let Some(r) = self.express_region {
            return Some(r.to_owned());
        }
        if let Some(auth) = self.headers.get(header::AUTHORIZATION) {
            let auth = auth.to_str().ok()?;
            let cred = auth.split_once("Credential=")?.1;
            let cred = cred.split([',', ' ']).next()?;
            return scope_region(cred).map(str::to_owned);
        }
        let query = self.uri.query()?;
        let cred = query
            .split('&')
            .find_map(|p| p.strip_prefix("X-Amz-Credential="))?;
        let cred = cred.replace("%2F", "/").replace("%2f", "/");
        scope_region(&cred).map(str::to_owned)
    }
}

/// `REGION` of a credential `AKID/DATE/REGION/SERVICE/aws4_request`.
pub(crate) fn scope_region(credential: &str) -> Option<&str> {
    let mut parts = credential.rsplitn(5, '/');
    let (_terminator, _service, region) = (parts.next()?, parts.next()?, parts.next()?);
    Some(region)
}

/// The refusal of a request signed for the wrong region.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Refusal {
    bucket: String,
    /// The bucket's region.
    region: String,
    /// The region the request was signed for.
    signed_for: String,
}

impl Refusal {
    fn redirect(&self) -> bool {
        self.signed_for == "us-east-1"
    }

    fn status(&self) -> StatusCode {
        if self.redirect() {
            StatusCode::MOVED_PERMANENTLY
        } else {
            StatusCode::BAD_REQUEST
        }
    }

    fn code(&self) -> S3ErrorCode {
        if self.redirect() {
            S3ErrorCode::PermanentRedirect
        } else {
            S3ErrorCode::AuthorizationHeaderMalformed
        }
    }

    fn message(&self) -> String {
        if self.redirect() {
            "The bucket you are attempting to access must be addressed using the specified \
             endpoint. Please send all future requests to this endpoint."
                .to_owned()
        } else {
            format!(
                "The authorization header is malformed; the region '{}' is wrong; expecting '{}'",
                self.signed_for, self.region
            )
        }
    }

    fn headers(&self) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/xml"),
        );
        // Region names were checked at start (`[a-z0-9-]+`).
        if let Ok(v) = HeaderValue::from_str(&self.region) {
            headers.insert("x-amz-bucket-region", v);
        }
        headers
    }

    /// The error the access hook returns: right status, code and headers; the gateway
    /// replaces its body with [`Refusal::response`]'s.
    fn to_s3_error(&self) -> S3Error {
        let mut e = S3Error::with_message(self.code(), self.message());
        e.set_status_code(self.status());
        e.set_headers(self.headers());
        e
    }

    /// The whole answer, as S3 sends it (no body for HEAD).
    pub(crate) fn response(&self, head: bool) -> HttpResponse {
        let mut res = hyper::Response::new(Body::empty());
        *res.status_mut() = self.status();
        *res.headers_mut() = self.headers();
        if head {
            return res;
        }
        let mut xml = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>");
        xml += self.code().as_str();
        xml += "</Code><Message>";
        xml += &self.message();
        xml += "</Message>";
        // Bucket and region names need no XML escaping: `[a-z0-9.-]`.
        if self.redirect() {
            xml += &format!(
                "<Endpoint>{b}.s3.{r}.amazonaws.com</Endpoint><Bucket>{b}</Bucket>",
                b = self.bucket,
                r = self.region
            );
        } else {
            xml += &format!("<Region>{}</Region>", self.region);
        }
        xml += "</Error>";
        res.headers_mut()
            .insert(header::CONTENT_LENGTH, HeaderValue::from(xml.len()));
        *res.body_mut() = Body::from(xml);
        res
    }
}

/// Carries a [`Refusal`] from the access hook back to the gateway (in the request's
/// extensions; `s3s` keeps them for the hooks, not for error responses).
#[derive(Debug, Clone, Default)]
pub(crate) struct RefusalSlot(Arc<Mutex<Option<Refusal>>>);

impl RefusalSlot {
    fn put(&self, r: Refusal) {
        *self.0.lock().unwrap_or_else(PoisonError::into_inner) = Some(r);
    }

    fn take(&self) -> Option<Refusal> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner).take()
    }
}

/// Refuses a request for a bucket in another region than the one it was signed for.
pub(crate) fn check(
    quirks: &Quirks,
    op: &str,
    bucket: &str,
    req: &RequestView<'_>,
) -> S3Result<()> {
    let Some(home) = quirks.region_of(bucket) else {
        return Ok(());
    };
    if op == "GetBucketLocation" {
        return Ok(());
    }
    let Some(signed_for) = req.signing_region() else {
        return Ok(());
    };
    if signed_for == home {
        return Ok(());
    }
    let refusal = Refusal {
        bucket: bucket.to_owned(),
        region: home.to_owned(),
        signed_for,
    };
    let err = refusal.to_s3_error();
    if let Some(slot) = req.slot {
        slot.put(refusal);
    }
    Err(err)
}

/// The gateway's step for a server with buckets in other regions: hands `req` on with a
/// [`RefusalSlot`] and answers the refusal left in it, if any.
pub(crate) fn serve(
    shared: &Arc<Shared>,
    s3: &S3Service,
    mut req: hyper::Request<hyper::body::Incoming>,
) -> BoxFuture<'static, Result<HttpResponse, HttpError>> {
    let slot = RefusalSlot::default();
    req.extensions_mut().insert(slot.clone());
    let head = req.method() == Method::HEAD;
    let fut = crate::faults::inject::serve(shared, s3, req);
    Box::pin(async move {
        let res = fut.await?;
        Ok(slot.take().map_or(res, |r| r.response(head)))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn view<'a>(headers: &'a HeaderMap, uri: &'a Uri) -> RequestView<'a> {
        RequestView {
            uri,
            headers,
            signed: true,
            express_region: None,
            slot: None,
        }
    }

    #[test]
    fn signing_region_comes_from_the_header_or_a_presigned_url() {
        let mut headers = HeaderMap::new();
        let uri: Uri = "/b/k".parse().unwrap();
        assert_eq!(view(&headers, &uri).signing_region(), None);
        headers.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static(
                "AWS4-HMAC-SHA256 Credential=AK/20240101/eu-west-1/s3/aws4_request, \
                 SignedHeaders=host, Signature=00",
            ),
        );
        assert_eq!(
            view(&headers, &uri).signing_region().as_deref(),
            Some("eu-west-1")
        );
        let uri: Uri = "/b/k?X-Amz-Credential=AK%2F20240101%2Fap-south-1%2Fs3%2Faws4_request&X-Amz-Signature=00"
            .parse()
            .unwrap();
        assert_eq!(
            view(&HeaderMap::new(), &uri).signing_region().as_deref(),
            Some("ap-south-1")
        );
    }

    #[test]
    fn refusals_carry_the_bucket_region_and_no_body_for_head() {
        let r = Refusal {
            bucket: "bkt".into(),
            region: "us-west-2".into(),
            signed_for: "us-east-1".into(),
        };
        let res = r.response(false);
        assert_eq!(res.status(), 301);
        assert_eq!(res.headers()["x-amz-bucket-region"], "us-west-2");
        let head = r.response(true);
        assert_eq!(head.status(), 301);
        assert_eq!(head.headers()["x-amz-bucket-region"], "us-west-2");
        assert!(head.headers().get(header::CONTENT_LENGTH).is_none());
        let r = Refusal {
            signed_for: "eu-west-1".into(),
            ..r
        };
        assert_eq!(r.response(false).status(), 400);
        assert_eq!(
            r.message(),
            "The authorization header is malformed; the region 'eu-west-1' is wrong; \
             expecting 'us-west-2'"
        );
    }
}
