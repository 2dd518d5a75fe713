//! What the request handlers share (`s3.rs`, the ListObjectsV2 fast path, the quirk
//! listings, CreateSession): store errors as S3 errors, the plain ETag, and the listing
//! helpers (continuation tokens, `encoding-type=url`, `max-keys`, the list latency and
//! gate, a page as DTOs).

use s3s::dto::{CommonPrefix, ETag, EncodingType, Object, ObjectStorageClass, Timestamp};
use s3s::{s3_error, S3Error, S3Result};

use crate::state::Shared;
use crate::store::{ListPage, ObjectMeta, StoreError};

pub(crate) fn store_err(e: StoreError) -> S3Error {
    match e {
        StoreError::NoSuchBucket(_) => {
            s3_error!(NoSuchBucket, "The specified bucket does not exist")
        }
        StoreError::NoSuchKey(_) => s3_error!(NoSuchKey, "The specified key does not exist."),
        StoreError::BucketAlreadyExists(_) => s3_error!(BucketAlreadyOwnedByYou),
        StoreError::InvalidBucketName(_) => s3_error!(InvalidBucketName),
        StoreError::InvalidKey(n) if n > crate::store::MAX_KEY_LEN => s3_error!(KeyTooLongError),
        StoreError::InvalidKey(_) => s3_error!(InvalidArgument, "invalid key"),
        StoreError::Io(e) => S3Error::internal_error(e),
    }
}

pub(crate) fn etag_of(meta: &ObjectMeta) -> ETag {
    ETag::Strong(meta.etag_hex())
}

pub(crate) fn to_i64(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// Percent-encodes like S3 does for `encoding-type=url` (everything but unreserved and `/`).
pub(crate) fn url_encode(s: &str) -> String {
    let mut out = Vec::with_capacity(s.len());
    url_encode_into(&mut out, s);
    // Only ASCII was written.
    String::from_utf8(out).unwrap_or_default()
}

/// [`url_encode`], appending to `out`.
pub(crate) fn url_encode_into(out: &mut Vec<u8>, s: &str) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    for &b in s.as_bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~' | b'/') {
            out.push(b);
        } else {
            out.extend_from_slice(&[b'%', HEX[usize::from(b >> 4)], HEX[usize::from(b & 0xf)]]);
        }
    }
}

pub(crate) fn encode_token(last: &str) -> String {
    hex::encode(last.as_bytes())
}

pub(crate) fn decode_token(token: &str) -> S3Result<String> {
    hex::decode(token)
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .ok_or_else(|| {
            s3_error!(
                InvalidArgument,
                "The continuation token provided is incorrect"
            )
        })
}

pub(crate) fn max_keys_of(max_keys: Option<i32>) -> S3Result<usize> {
    match max_keys {
        None => Ok(1000),
        Some(n) if n < 0 => Err(s3_error!(InvalidArgument, "max-keys must be non-negative")),
        Some(n) => Ok(usize::try_from(n.min(1000)).unwrap_or(1000)),
    }
}

pub(crate) struct Listed {
    pub(crate) contents: Vec<Object>,
    pub(crate) common_prefixes: Vec<CommonPrefix>,
}

/// The DTOs of a page; `etag` gives each object's ETag.
pub(crate) fn render_page(
    page: &ListPage,
    url: bool,
    etag: impl Fn(&ObjectMeta) -> ETag,
) -> Listed {
    let enc = |s: &str| if url { url_encode(s) } else { s.to_owned() };
    let contents = page
        .objects
        .iter()
        .map(|(k, m)| Object {
            key: Some(enc(k)),
            size: Some(to_i64(m.size)),
            e_tag: Some(etag(m)),
            last_modified: Some(Timestamp::from(m.last_modified)),
            storage_class: Some(ObjectStorageClass::from_static(
                ObjectStorageClass::STANDARD,
            )),
            ..Default::default()
        })
        .collect();
    let common_prefixes = page
        .common_prefixes
        .iter()
        .map(|p| CommonPrefix {
            prefix: Some(enc(p)),
        })
        .collect();
    Listed {
        contents,
        common_prefixes,
    }
}

pub(crate) fn wants_url(e: Option<&EncodingType>) -> bool {
    e.is_some_and(|e| e.as_str() == EncodingType::URL)
}

/// What every list request goes through before reading the index: the configured list
/// latency, then (for pages other than the first) the [`ListGate`](crate::ListGate).
pub(crate) async fn list_prelude(shared: &Shared, not_first_page: bool) {
    let d = shared.options.list_latency;
    if !d.is_zero() {
        tokio::time::sleep(d).await;
    }
    if not_first_page {
        shared.gate.wait_open().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_encoding() {
        assert_eq!(url_encode("a b/c+d%é"), "a%20b/c%2Bd%25%C3%A9");
    }

    #[test]
    fn token_roundtrip() {
        let k = "dir/ünï cødé+%&=/";
        assert_eq!(decode_token(&encode_token(k)).unwrap(), k);
        assert!(decode_token("zz").is_err());
    }
}
