//! The auth and access hooks of `s3s`: who may do what.
//!
//! Authentication ([`TestAuth`]) knows the server's one key pair and maps unknown access
//! keys to `InvalidAccessKeyId` (S3 Express session keys are checked before `s3s`, see
//! [`crate::express`]). Access control ([`authorize`], from [`TestAccess`] and the
//! ListObjectsV2 fast path) counts every operation, applies the bucket quirks (the
//! wrong-region refusal of `quirks/regions.rs`, requester pays) and enforces public /
//! denied buckets, denied keys and archived objects.

use std::sync::Arc;

use s3s::access::{S3Access, S3AccessContext};
use s3s::auth::{S3Auth, SecretKey};
use s3s::path::S3Path;
use s3s::{s3_error, S3Result};

use crate::express::ExpressAuth;
use crate::quirks::regions::{RefusalSlot, RequestView};
use crate::quirks::Quirks;
use crate::state::{Archive, Shared};

/// Authentication with a single access key / secret key pair.
pub(crate) struct TestAuth {
    pub(crate) access_key: String,
    pub(crate) secret_key: SecretKey,
}

#[async_trait::async_trait]
impl S3Auth for TestAuth {
    async fn get_secret_key(&self, access_key: &str) -> S3Result<SecretKey> {
        if access_key == self.access_key {
            Ok(self.secret_key.clone())
        } else {
            Err(s3_error!(
                InvalidAccessKeyId,
                "The AWS Access Key Id you provided does not exist in our records."
            ))
        }
    }
}

/// Access control: the single hook every authenticated or anonymous S3 operation passes
/// through before its handler.
pub(crate) struct TestAccess {
    pub(crate) shared: Arc<Shared>,
}

const ANONYMOUS_READ_OPS: &[&str] = &[
    "GetObject",
    "HeadObject",
    "ListObjects",
    "ListObjectsV2",
    "HeadBucket",
    "GetBucketLocation",
];

/// Counts `op`, applies the bucket's quirks ([`check_quirks`]: wrong region,
/// requester pays) and access control: denied buckets and keys get `AccessDenied`, and so
/// does every anonymous request except reads of a public bucket. Shared by [`TestAccess`]
/// and the ListObjectsV2 fast path ([`crate::list_route`]).
pub(crate) fn authorize(
    shared: &Shared,
    op: &str,
    bucket: Option<&str>,
    key: Option<&str>,
    req: &RequestView<'_>,
) -> S3Result<()> {
    shared.counters.record(op);
    if let Some(bucket) = bucket {
        check_quirks(&shared.quirks, op, bucket, req)?;
    }
    let controls = shared
        .controls
        .read()
        .map_err(|_| s3_error!(InternalError))?;
    if let Some(bucket) = bucket {
        if controls.denied_buckets.contains(bucket) {
            return Err(s3_error!(AccessDenied, "Access Denied"));
        }
        if let Some(key) = key {
            if controls
                .denied_keys
                .contains(&(bucket.to_owned(), key.to_owned()))
            {
                return Err(s3_error!(AccessDenied, "Access Denied"));
            }
            if op == "GetObject"
                && controls
                    .archive(bucket, key)
                    .is_some_and(Archive::blocks_reads)
            {
                return Err(s3_error!(
                    InvalidObjectState,
                    "The operation is not valid for the object's storage class"
                ));
            }
        }
    }
    if !req.signed {
        let public = bucket.is_some_and(|b| controls.public_buckets.contains(b));
        if !(public && ANONYMOUS_READ_OPS.contains(&op)) {
            return Err(s3_error!(AccessDenied, "Access Denied"));
        }
    }
    Ok(())
}

/// The quirks every request for `bucket` passes, after it was counted as `op` and before
/// the server's access control: the region check (`regions.rs`), then requester pays.
fn check_quirks(quirks: &Quirks, op: &str, bucket: &str, req: &RequestView<'_>) -> S3Result<()> {
    if !quirks.any() {
        return Ok(());
    }
    crate::quirks::regions::check(quirks, op, bucket, req)?;
    if quirks.requester_pays(bucket) && !agrees_to_pay(req) {
        // S3 allows no anonymous access to a requester-pays bucket at all, and wants the
        // requester's consent on every signed request.
        return Err(s3_error!(AccessDenied, "Access Denied"));
    }
    Ok(())
}

/// A signed request with `x-amz-request-payer: requester`.
fn agrees_to_pay(req: &RequestView<'_>) -> bool {
    req.signed
        && req
            .headers
            .get("x-amz-request-payer")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.eq_ignore_ascii_case("requester"))
}

#[async_trait::async_trait]
impl S3Access for TestAccess {
    async fn check(&self, cx: &mut S3AccessContext<'_>) -> S3Result<()> {
        let express_region = cx
            .extensions_mut()
            .get::<ExpressAuth>()
            .map(|a| a.region.clone());
        let slot = cx.extensions_mut().get::<RefusalSlot>().cloned();
        let (bucket, key) = match cx.s3_path() {
            S3Path::Root => (None, None),
            S3Path::Bucket { bucket } => (Some(&**bucket), None),
            S3Path::Object { bucket, key } => (Some(&**bucket), Some(&**key)),
        };
        let view = RequestView {
            uri: cx.uri(),
            headers: cx.headers(),
            signed: cx.credentials().is_some() || express_region.is_some(),
            express_region: express_region.as_deref(),
            slot: slot.as_ref(),
        };
        authorize(&self.shared, cx.s3_op().name(), bucket, key, &view)
    }
}
