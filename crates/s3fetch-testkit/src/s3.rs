//! The `s3s::S3` implementation (request handlers), plus the auth and access hooks.
//!
//! Handlers translate S3 operations onto the [`Store`](crate::Store). Authentication
//! ([`TestAuth`]) maps unknown access keys to `InvalidAccessKeyId`; access control
//! ([`TestAccess`]) counts every operation and enforces public / denied buckets and
//! denied keys. GetObject and HeadObject answer from one [`ObjectRead`] (conditions, the
//! range honoured, the checksum fields), so a HEAD always describes what the GET sends.

use std::io;
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use futures::StreamExt;
use s3s::access::{S3Access, S3AccessContext};
use s3s::auth::{S3Auth, SecretKey};
use s3s::dto::{
    Bucket, ChecksumMode, ChecksumType, CommonPrefix, CreateBucketInput, CreateBucketOutput,
    DeleteObjectInput, DeleteObjectOutput, ETag, ETagCondition, EncodingType,
    GetBucketLocationInput, GetBucketLocationOutput, GetObjectInput, GetObjectOutput,
    HeadBucketInput, HeadBucketOutput, HeadObjectInput, HeadObjectOutput, ListBucketsInput,
    ListBucketsOutput, ListObjectsInput, ListObjectsOutput, ListObjectsV2Input,
    ListObjectsV2Output, Object, ObjectStorageClass, PutObjectInput, PutObjectOutput, Range,
    StreamingBlob, Timestamp,
};
use s3s::path::S3Path;
use s3s::{s3_error, S3Error, S3Request, S3Response, S3Result, S3};

use crate::checksum::crc64nvme_header;
use crate::state::{Archive, Shared};
use crate::store::{DataSlice, ListPage, ListQuery, ObjectMeta, StoreError};

/// Chunk size for streamed GET bodies.
const CHUNK: u64 = 256 * 1024;

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

/// Counts `op` and applies access control: denied buckets and keys get `AccessDenied`,
/// and so does every anonymous request except reads of a public bucket. Shared by
/// [`TestAccess`] and the ListObjectsV2 fast path ([`crate::list_route`]).
pub(crate) fn authorize(
    shared: &Shared,
    op: &str,
    bucket: Option<&str>,
    key: Option<&str>,
    signed: bool,
) -> S3Result<()> {
    shared.counters.record(op);
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
    if !signed {
        let public = bucket.is_some_and(|b| controls.public_buckets.contains(b));
        if !(public && ANONYMOUS_READ_OPS.contains(&op)) {
            return Err(s3_error!(AccessDenied, "Access Denied"));
        }
    }
    Ok(())
}

#[async_trait::async_trait]
impl S3Access for TestAccess {
    async fn check(&self, cx: &mut S3AccessContext<'_>) -> S3Result<()> {
        let (bucket, key) = match cx.s3_path() {
            S3Path::Root => (None, None),
            S3Path::Bucket { bucket } => (Some(&**bucket), None),
            S3Path::Object { bucket, key } => (Some(&**bucket), Some(&**key)),
        };
        authorize(
            &self.shared,
            cx.s3_op().name(),
            bucket,
            key,
            cx.credentials().is_some(),
        )
    }
}

/// The S3 backend.
pub(crate) struct TestS3 {
    pub(crate) shared: Arc<Shared>,
}

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

fn etag_of(meta: &ObjectMeta) -> ETag {
    ETag::Strong(meta.etag_hex())
}

fn etag_matches(cond: &ETagCondition, meta: &ObjectMeta) -> bool {
    match cond {
        ETagCondition::Any => true,
        ETagCondition::ETag(e) => e.value() == meta.etag_hex(),
    }
}

fn check_conditions(
    meta: &ObjectMeta,
    if_match: Option<&ETagCondition>,
    if_none_match: Option<&ETagCondition>,
) -> S3Result<()> {
    if let Some(c) = if_match {
        if !etag_matches(c, meta) {
            return Err(s3_error!(
                PreconditionFailed,
                "At least one of the pre-conditions you specified did not hold"
            ));
        }
    }
    if let Some(c) = if_none_match {
        if etag_matches(c, meta) {
            return Err(s3_error!(NotModified));
        }
    }
    Ok(())
}

/// Resolves an optional Range header to `(start, len, Content-Range)`.
fn resolve_range(range: Option<&Range>, size: u64) -> S3Result<(u64, u64, Option<String>)> {
    match range {
        None => Ok((0, size, None)),
        Some(r) => {
            let rg = r.check(size)?;
            let content_range = format!("bytes {}-{}/{}", rg.start, rg.end - 1, size);
            Ok((rg.start, rg.end - rg.start, Some(content_range)))
        }
    }
}

/// The request fields GetObject and HeadObject share that decide what they answer.
struct Preconditions<'a> {
    if_match: Option<&'a ETagCondition>,
    if_none_match: Option<&'a ETagCondition>,
    range: Option<&'a Range>,
    checksum_mode: Option<&'a ChecksumMode>,
}

/// What a GetObject or HeadObject answers, resolved the same way for both: the object's
/// metadata, the conditions checked, the range honoured and the checksum fields.
struct ObjectRead {
    meta: ObjectMeta,
    /// First byte sent.
    start: u64,
    /// Bytes sent (`Content-Length`).
    len: u64,
    content_range: Option<String>,
    checksum_crc64nvme: Option<String>,
    checksum_type: Option<ChecksumType>,
}

impl ObjectRead {
    fn resolve(shared: &Shared, bucket: &str, key: &str, req: Preconditions<'_>) -> S3Result<Self> {
        let meta = shared.store.head_object(bucket, key).map_err(store_err)?;
        check_conditions(&meta, req.if_match, req.if_none_match)?;
        // A server that ignores ranges answers `200` with the whole object.
        let range = req
            .range
            .filter(|_| !shared.options.range_returns_full_object);
        let (start, len, content_range) = resolve_range(range, meta.size)?;
        let (checksum_crc64nvme, checksum_type) =
            checksum_fields(shared, &meta, req.checksum_mode, range.is_none());
        Ok(Self {
            meta,
            start,
            len,
            content_range,
            checksum_crc64nvme,
            checksum_type,
        })
    }
}

/// The checksum response fields (`x-amz-checksum-crc64nvme`, `x-amz-checksum-type`; see
/// [`crate::checksum`]): present only when the client asked for them, the response is the
/// whole object, the object has a checksum and the server is configured to send them
/// ([`ServerOptions::checksums`](crate::ServerOptions)).
fn checksum_fields(
    shared: &Shared,
    meta: &ObjectMeta,
    mode: Option<&ChecksumMode>,
    whole_object: bool,
) -> (Option<String>, Option<ChecksumType>) {
    let enabled = mode.is_some_and(|m| m.as_str().eq_ignore_ascii_case(ChecksumMode::ENABLED));
    match meta.crc64nvme() {
        Some(crc) if enabled && whole_object && shared.options.checksums => (
            Some(crc64nvme_header(crc)),
            Some(ChecksumType::from_static(ChecksumType::FULL_OBJECT)),
        ),
        _ => (None, None),
    }
}

fn to_i64(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// A response body reading `slice` in chunks of [`CHUNK`] bytes; small bodies are read at once.
fn body_of(slice: DataSlice) -> S3Result<StreamingBlob> {
    if slice.len() <= CHUNK {
        let bytes = slice.read_all().map_err(S3Error::internal_error)?;
        return Ok(StreamingBlob::wrap(futures::stream::once(async move {
            Ok::<_, io::Error>(bytes)
        })));
    }
    let stream = futures::stream::try_unfold((slice, 0u64), |(slice, pos)| async move {
        if pos >= slice.len() {
            return Ok(None);
        }
        let n = usize::try_from(CHUNK.min(slice.len() - pos)).map_err(io::Error::other)?;
        let reader = slice.clone();
        let chunk = tokio::task::spawn_blocking(move || reader.read_chunk(pos, n))
            .await
            .map_err(io::Error::other)??;
        Ok::<_, io::Error>(Some((chunk, (slice, pos + n as u64))))
    });
    Ok(StreamingBlob::wrap(stream))
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

struct Listed {
    contents: Vec<Object>,
    common_prefixes: Vec<CommonPrefix>,
}

fn render_page(page: &ListPage, url: bool) -> Listed {
    let enc = |s: &str| if url { url_encode(s) } else { s.to_owned() };
    let contents = page
        .objects
        .iter()
        .map(|(k, m)| Object {
            key: Some(enc(k)),
            size: Some(to_i64(m.size)),
            e_tag: Some(etag_of(m)),
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

fn wants_url(e: Option<&EncodingType>) -> bool {
    e.is_some_and(|e| e.as_str() == EncodingType::URL)
}

impl TestS3 {
    async fn get_latency(&self) {
        let d = self.shared.options.get_latency;
        if !d.is_zero() {
            tokio::time::sleep(d).await;
        }
    }

    async fn list_prelude(&self, not_first_page: bool) {
        list_prelude(&self.shared, not_first_page).await;
    }
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

#[async_trait::async_trait]
impl S3 for TestS3 {
    async fn list_objects_v2(
        &self,
        req: S3Request<ListObjectsV2Input>,
    ) -> S3Result<S3Response<ListObjectsV2Output>> {
        let input = req.input;
        let token_key = input
            .continuation_token
            .as_deref()
            .map(decode_token)
            .transpose()?;
        let start_after = input.start_after.as_deref().filter(|s| !s.is_empty());
        self.list_prelude(token_key.is_some() || start_after.is_some())
            .await;
        let max_keys = max_keys_of(input.max_keys)?;
        let prefix = input.prefix.as_deref().unwrap_or("");
        let query = ListQuery {
            prefix,
            delimiter: input.delimiter.as_deref(),
            start_after: token_key.as_deref().or(start_after),
            max_keys,
        };
        let page = self
            .shared
            .store
            .list(&input.bucket, &query)
            .map_err(store_err)?;
        let url = wants_url(input.encoding_type.as_ref());
        let enc = |s: &str| if url { url_encode(s) } else { s.to_owned() };
        let listed = render_page(&page, url);
        let output = ListObjectsV2Output {
            name: Some(input.bucket.clone()),
            prefix: Some(enc(prefix)),
            max_keys: Some(i32::try_from(max_keys).unwrap_or(1000)),
            key_count: Some(i32::try_from(page.len()).unwrap_or(i32::MAX)),
            continuation_token: input.continuation_token.clone(),
            is_truncated: Some(page.is_truncated),
            next_continuation_token: page.last_item.as_deref().map(encode_token),
            contents: (!listed.contents.is_empty()).then_some(listed.contents),
            common_prefixes: (!listed.common_prefixes.is_empty()).then_some(listed.common_prefixes),
            delimiter: input.delimiter.as_deref().map(enc),
            encoding_type: input.encoding_type.clone(),
            start_after: start_after.map(enc),
            ..Default::default()
        };
        Ok(S3Response::new(output))
    }

    async fn list_objects(
        &self,
        req: S3Request<ListObjectsInput>,
    ) -> S3Result<S3Response<ListObjectsOutput>> {
        let input = req.input;
        let marker = input.marker.as_deref().filter(|s| !s.is_empty());
        self.list_prelude(marker.is_some()).await;
        let max_keys = max_keys_of(input.max_keys)?;
        let prefix = input.prefix.as_deref().unwrap_or("");
        let query = ListQuery {
            prefix,
            delimiter: input.delimiter.as_deref(),
            start_after: marker,
            max_keys,
        };
        let page = self
            .shared
            .store
            .list(&input.bucket, &query)
            .map_err(store_err)?;
        let url = wants_url(input.encoding_type.as_ref());
        let enc = |s: &str| if url { url_encode(s) } else { s.to_owned() };
        let listed = render_page(&page, url);
        let output = ListObjectsOutput {
            name: Some(input.bucket.clone()),
            prefix: Some(enc(prefix)),
            marker: Some(marker.map(enc).unwrap_or_default()),
            max_keys: Some(i32::try_from(max_keys).unwrap_or(1000)),
            is_truncated: Some(page.is_truncated),
            contents: (!listed.contents.is_empty()).then_some(listed.contents),
            common_prefixes: (!listed.common_prefixes.is_empty()).then_some(listed.common_prefixes),
            delimiter: input.delimiter.as_deref().map(enc),
            next_marker: page.last_item.as_deref().map(enc),
            encoding_type: input.encoding_type.clone(),
            ..Default::default()
        };
        Ok(S3Response::new(output))
    }

    async fn get_object(
        &self,
        req: S3Request<GetObjectInput>,
    ) -> S3Result<S3Response<GetObjectOutput>> {
        self.get_latency().await;
        let input = req.input;
        let read = ObjectRead::resolve(
            &self.shared,
            &input.bucket,
            &input.key,
            Preconditions {
                if_match: input.if_match.as_ref(),
                if_none_match: input.if_none_match.as_ref(),
                range: input.range.as_ref(),
                checksum_mode: input.checksum_mode.as_ref(),
            },
        )?;
        let slice = self
            .shared
            .store
            .slice(&input.bucket, &read.meta, read.start, read.len)
            .map_err(store_err)?;
        let output = GetObjectOutput {
            body: Some(body_of(slice)?),
            content_length: Some(to_i64(read.len)),
            accept_ranges: Some("bytes".to_owned()),
            e_tag: Some(etag_of(&read.meta)),
            last_modified: Some(Timestamp::from(read.meta.last_modified)),
            content_range: read.content_range,
            checksum_crc64nvme: read.checksum_crc64nvme,
            checksum_type: read.checksum_type,
            ..Default::default()
        };
        Ok(S3Response::new(output))
    }

    async fn head_object(
        &self,
        req: S3Request<HeadObjectInput>,
    ) -> S3Result<S3Response<HeadObjectOutput>> {
        self.get_latency().await;
        let input = req.input;
        let read = ObjectRead::resolve(
            &self.shared,
            &input.bucket,
            &input.key,
            Preconditions {
                if_match: input.if_match.as_ref(),
                if_none_match: input.if_none_match.as_ref(),
                range: input.range.as_ref(),
                checksum_mode: input.checksum_mode.as_ref(),
            },
        )?;
        let output = HeadObjectOutput {
            content_length: Some(to_i64(read.len)),
            accept_ranges: Some("bytes".to_owned()),
            e_tag: Some(etag_of(&read.meta)),
            last_modified: Some(Timestamp::from(read.meta.last_modified)),
            content_range: read.content_range,
            checksum_crc64nvme: read.checksum_crc64nvme,
            checksum_type: read.checksum_type,
            ..Default::default()
        };
        Ok(S3Response::new(output))
    }

    async fn put_object(
        &self,
        req: S3Request<PutObjectInput>,
    ) -> S3Result<S3Response<PutObjectOutput>> {
        let input = req.input;
        if !self.shared.store.bucket_exists(&input.bucket) {
            return Err(store_err(StoreError::NoSuchBucket(input.bucket)));
        }
        let mut buf = BytesMut::new();
        if let Some(mut body) = input.body {
            while let Some(chunk) = body.next().await {
                let chunk: Bytes =
                    chunk.map_err(|e| s3_error!(IncompleteBody, "failed to read body: {e}"))?;
                buf.extend_from_slice(&chunk);
            }
        }
        let store = self.shared.store.clone();
        let (bucket, key) = (input.bucket, input.key);
        let meta =
            tokio::task::spawn_blocking(move || store.put_object(&bucket, &key, buf.freeze()))
                .await
                .map_err(S3Error::internal_error)?
                .map_err(store_err)?;
        let output = PutObjectOutput {
            e_tag: Some(etag_of(&meta)),
            size: Some(to_i64(meta.size)),
            ..Default::default()
        };
        Ok(S3Response::new(output))
    }

    async fn delete_object(
        &self,
        req: S3Request<DeleteObjectInput>,
    ) -> S3Result<S3Response<DeleteObjectOutput>> {
        let input = req.input;
        self.shared
            .store
            .delete_object(&input.bucket, &input.key)
            .map_err(store_err)?;
        Ok(S3Response::new(DeleteObjectOutput::default()))
    }

    async fn create_bucket(
        &self,
        req: S3Request<CreateBucketInput>,
    ) -> S3Result<S3Response<CreateBucketOutput>> {
        let bucket = req.input.bucket;
        self.shared
            .store
            .create_bucket(&bucket)
            .map_err(store_err)?;
        let output = CreateBucketOutput {
            location: Some(format!("/{bucket}")),
        };
        Ok(S3Response::new(output))
    }

    async fn head_bucket(
        &self,
        req: S3Request<HeadBucketInput>,
    ) -> S3Result<S3Response<HeadBucketOutput>> {
        if !self.shared.store.bucket_exists(&req.input.bucket) {
            return Err(store_err(StoreError::NoSuchBucket(req.input.bucket)));
        }
        let output = HeadBucketOutput {
            bucket_region: Some(self.shared.options.region.clone()),
            ..Default::default()
        };
        Ok(S3Response::new(output))
    }

    async fn get_bucket_location(
        &self,
        req: S3Request<GetBucketLocationInput>,
    ) -> S3Result<S3Response<GetBucketLocationOutput>> {
        if !self.shared.store.bucket_exists(&req.input.bucket) {
            return Err(store_err(StoreError::NoSuchBucket(req.input.bucket)));
        }
        Ok(S3Response::new(GetBucketLocationOutput::default()))
    }

    async fn list_buckets(
        &self,
        _req: S3Request<ListBucketsInput>,
    ) -> S3Result<S3Response<ListBucketsOutput>> {
        let buckets = self
            .shared
            .store
            .list_buckets()
            .into_iter()
            .map(|b| Bucket {
                name: Some(b.name),
                creation_date: Some(Timestamp::from(b.created)),
                bucket_region: Some(self.shared.options.region.clone()),
            })
            .collect();
        let output = ListBucketsOutput {
            buckets: Some(buckets),
            ..Default::default()
        };
        Ok(S3Response::new(output))
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
