//! S3 Express One Zone directory buckets
//! ([`ServerOptions::directory_buckets`](crate::ServerOptions)), as the AWS SDKs reach them:
//! for a `NAME--ZONE--x-s3` bucket and a custom endpoint (an IP address, so path-style) the
//! SDK first calls CreateSession (`GET /NAME?session`, signed with the configured keys for
//! service `s3express`), then signs every request for the bucket with the session's keys
//! (`s3express` again) and sends the session token in `x-amz-s3session-token`.
//!
//! `s3s` 0.14 refuses any credential scope but `s3` and `sts` (`NotImplemented: unknown
//! service 's3express'`, in its signature check, before any hook), so `s3express`
//! signatures are checked here, in the gateway before `s3s` (`sigv4.rs`): a verified
//! request goes on without its `Authorization` header, as an anonymous one to `s3s`, and
//! with an [`ExpressAuth`] in its extensions that the access hook counts as signed.
//! Sessions (`session.rs`) last five minutes and are good for their bucket only.
//!
//! Listings follow the directory-bucket rules of `quirks/listing.rs`; objects show the
//! opaque ETags of [`etag`].

mod session;
mod sigv4;

use md5::{Digest, Md5};
use s3s::dto::{CreateSessionInput, CreateSessionOutput, SessionCredentials, Timestamp};
use s3s::{s3_error, S3Request, S3Response, S3Result};

use crate::protocol::store_err;
use crate::state::Shared;
use crate::store::{ObjectMeta, StoreError};

pub(crate) use self::session::Sessions;
pub(crate) use self::sigv4::authenticate;

/// A request whose `s3express` signature the gateway verified.
#[derive(Debug, Clone)]
pub(crate) struct ExpressAuth {
    /// The credential scope's region.
    pub(crate) region: String,
}

/// The ETag of an object in a directory bucket. S3 Express ETags are not the MD5 of the
/// content; this one is a salted hash of it (the same in listings, GET and HEAD), so a
/// client that takes ETags for MD5s fails here as it would there.
#[must_use]
pub(crate) fn etag(meta: &ObjectMeta) -> String {
    let mut h = Md5::new();
    h.update(b"s3fetch-testkit: S3 Express ETags are opaque\0");
    h.update(meta.md5);
    hex::encode(h.finalize())
}

/// CreateSession: session keys for a directory bucket.
pub(crate) fn create_session(
    shared: &Shared,
    req: S3Request<CreateSessionInput>,
) -> S3Result<S3Response<CreateSessionOutput>> {
    let bucket = req.input.bucket;
    if !shared.store.bucket_exists(&bucket) {
        return Err(store_err(StoreError::NoSuchBucket(bucket)));
    }
    if !shared.quirks.is_directory(&bucket) {
        return Err(s3_error!(
            InvalidRequest,
            "CreateSession is only supported for directory buckets"
        ));
    }
    let (access_key_id, session) = shared.sessions.create(&bucket);
    let output = CreateSessionOutput {
        credentials: SessionCredentials {
            access_key_id,
            expiration: Timestamp::from(session.expires),
            secret_access_key: session.secret,
            session_token: session.token,
        },
        ..Default::default()
    };
    Ok(S3Response::new(output))
}
