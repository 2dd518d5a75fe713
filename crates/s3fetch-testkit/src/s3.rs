//! The `s3s::S3` implementation (request handlers; the auth and access hooks are in
//! `access.rs`).
//!
//! Handlers translate S3 operations onto the [`Store`](crate::Store). GetObject and
//! HeadObject answer from one [`ObjectRead`] (conditions, the range honoured, the checksum
//! fields), so a HEAD always describes what the GET sends. Buckets with listing quirks are
//! listed by `quirks/listing.rs`, CreateSession is [`crate::express`]'s.

use std::io;
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use futures::StreamExt;
use s3s::dto::{
    Bucket, BucketLocationConstraint, ChecksumMode, ChecksumType, CreateBucketInput,
    CreateBucketOutput, CreateSessionInput, CreateSessionOutput, DeleteObjectInput,
    DeleteObjectOutput, ETag, ETagCondition, GetBucketLocationInput, GetBucketLocationOutput,
    GetObjectInput, GetObjectOutput, HeadBucketInput, HeadBucketOutput, HeadObjectInput,
    HeadObjectOutput, ListBucketsInput, ListBucketsOutput, ListObjectsInput, ListObjectsOutput,
    ListObjectsV2Input, ListObjectsV2Output, PutObjectInput, PutObjectOutput, Range, StreamingBlob,
    Timestamp,
};
use s3s::{s3_error, S3Error, S3Request, S3Response, S3Result, S3};

use crate::checksum::crc64nvme_header;
use crate::protocol::{
    decode_token, encode_token, etag_of, list_prelude, max_keys_of, render_page, store_err, to_i64,
    url_encode, wants_url,
};
use crate::quirks::listing::request_charged;
use crate::state::Shared;
use crate::store::{DataSlice, ListQuery, ObjectMeta, StoreError};

/// Chunk size for streamed GET bodies.
const CHUNK: u64 = 256 * 1024;

/// The S3 backend.
pub(crate) struct TestS3 {
    pub(crate) shared: Arc<Shared>,
}

/// The ETag (hex) `bucket` shows for an object: its MD5, or a directory bucket's opaque one.
fn bucket_etag(shared: &Shared, bucket: &str, meta: &ObjectMeta) -> String {
    if shared.quirks.is_directory(bucket) {
        crate::express::etag(meta)
    } else {
        meta.etag_hex()
    }
}

fn etag_matches(cond: &ETagCondition, etag: &str) -> bool {
    match cond {
        ETagCondition::Any => true,
        ETagCondition::ETag(e) => e.value() == etag,
    }
}

fn check_conditions(
    etag: &str,
    if_match: Option<&ETagCondition>,
    if_none_match: Option<&ETagCondition>,
) -> S3Result<()> {
    if let Some(c) = if_match {
        if !etag_matches(c, etag) {
            return Err(s3_error!(
                PreconditionFailed,
                "At least one of the pre-conditions you specified did not hold"
            ));
        }
    }
    if let Some(c) = if_none_match {
        if etag_matches(c, etag) {
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
    etag: ETag,
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
        let etag = bucket_etag(shared, bucket, &meta);
        check_conditions(&etag, req.if_match, req.if_none_match)?;
        // A server that ignores ranges answers `200` with the whole object.
        let range = req
            .range
            .filter(|_| !shared.options.range_returns_full_object);
        let (start, len, content_range) = resolve_range(range, meta.size)?;
        let (checksum_crc64nvme, checksum_type) =
            checksum_fields(shared, &meta, req.checksum_mode, range.is_none());
        Ok(Self {
            meta,
            etag: ETag::Strong(etag),
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

    /// The region `bucket` lives in: its own, else the server's.
    fn region_of(&self, bucket: &str) -> &str {
        self.shared
            .quirks
            .region_of(bucket)
            .unwrap_or(&self.shared.options.region)
    }
}

#[async_trait::async_trait]
impl S3 for TestS3 {
    async fn list_objects_v2(
        &self,
        req: S3Request<ListObjectsV2Input>,
    ) -> S3Result<S3Response<ListObjectsV2Output>> {
        if let Some(mode) = self.shared.quirks.list_mode(&req.input.bucket) {
            return crate::quirks::listing::list_objects_v2(&self.shared, mode, req).await;
        }
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
        let listed = render_page(&page, url, etag_of);
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
            request_charged: request_charged(&self.shared, &input.bucket),
        };
        Ok(S3Response::new(output))
    }

    async fn list_objects(
        &self,
        req: S3Request<ListObjectsInput>,
    ) -> S3Result<S3Response<ListObjectsOutput>> {
        if let Some(mode) = self.shared.quirks.list_mode(&req.input.bucket) {
            return crate::quirks::listing::list_objects(&self.shared, mode, req).await;
        }
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
        let listed = render_page(&page, url, etag_of);
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
            request_charged: request_charged(&self.shared, &input.bucket),
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
            e_tag: Some(read.etag),
            last_modified: Some(Timestamp::from(read.meta.last_modified)),
            content_range: read.content_range,
            checksum_crc64nvme: read.checksum_crc64nvme,
            checksum_type: read.checksum_type,
            request_charged: request_charged(&self.shared, &input.bucket),
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
            e_tag: Some(read.etag),
            last_modified: Some(Timestamp::from(read.meta.last_modified)),
            content_range: read.content_range,
            checksum_crc64nvme: read.checksum_crc64nvme,
            checksum_type: read.checksum_type,
            request_charged: request_charged(&self.shared, &input.bucket),
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
        let (bucket, key) = (input.bucket.clone(), input.key);
        let meta =
            tokio::task::spawn_blocking(move || store.put_object(&bucket, &key, buf.freeze()))
                .await
                .map_err(S3Error::internal_error)?
                .map_err(store_err)?;
        let bucket = input.bucket;
        let output = PutObjectOutput {
            e_tag: Some(ETag::Strong(bucket_etag(&self.shared, &bucket, &meta))),
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
            bucket_region: Some(self.region_of(&req.input.bucket).to_owned()),
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
        // Buckets without a configured region keep the answer of before regions existed:
        // none (us-east-1), whatever the server's region.
        let location_constraint = self
            .shared
            .quirks
            .region_of(&req.input.bucket)
            .filter(|r| *r != "us-east-1")
            .map(|r| BucketLocationConstraint::from(r.to_owned()));
        Ok(S3Response::new(GetBucketLocationOutput {
            location_constraint,
        }))
    }

    async fn create_session(
        &self,
        req: S3Request<CreateSessionInput>,
    ) -> S3Result<S3Response<CreateSessionOutput>> {
        crate::express::create_session(&self.shared, req)
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
                bucket_region: Some(self.region_of(&b.name).to_owned()),
                name: Some(b.name),
                creation_date: Some(Timestamp::from(b.created)),
            })
            .collect();
        let output = ListBucketsOutput {
            buckets: Some(buckets),
            ..Default::default()
        };
        Ok(S3Response::new(output))
    }
}
