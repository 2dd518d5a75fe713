//! Every request to S3, in one room: list a page, GET an object (whole or a range), HEAD it.
//!
//! [`Store`] is one attempt of each request, with S3's answer turned into this crate's terms
//! (a listing page, the head of a GET with its body as a stream of chunks, the checksum an
//! answer vouches for, [`ServiceError`]s). [`S3`] implements it with the AWS SDK, whose client
//! is configured once per run (its own retries off: they are made in [`crate::retry`]); its
//! GETs, the one request sent once per object, skip the SDK's per-request machinery where
//! that sends the same request ([`lean`]). Tests plug in a fake bucket instead. [`Bucket`] is
//! what the rest of the crate uses: the store, the run's [`Budget`] and [`RetryPolicy`], and
//! errors that name the bucket and key. Nothing outside this module sends a request.

use std::pin::Pin;
use std::sync::Arc;

use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::OptionalObjectAttributes;
use aws_sdk_s3::Client;
use bytes::Bytes;
use futures::future::BoxFuture;
use futures::stream::{self, Stream};

use self::lean::Lean;
use crate::checksum::Expected;
use crate::client::Connection;
use crate::error::{Error, Result, ServiceError};
use crate::limit::Budget;
use crate::list_xml::{ListReader, Listing, TakeListBody};
use crate::retry::{RetryPolicy, RetryStats};

#[cfg(test)]
pub(crate) mod fake;
pub(crate) mod lean;

/// A response body: its chunks as they arrive.
pub(crate) type Body = Pin<Box<dyn Stream<Item = Result<Bytes, ServiceError>> + Send>>;

/// Bytes `start..end` of an object (`end` `None`: to its end).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ByteRange {
    pub start: u64,
    pub end: Option<u64>,
}

impl ByteRange {
    /// The `Range` header value.
    pub fn header(self) -> String {
        match self.end {
            Some(end) => format!("bytes={}-{}", self.start, end - 1),
            None => format!("bytes={}-", self.start),
        }
    }

    pub fn len(self) -> Option<u64> {
        self.end.map(|end| end - self.start)
    }
}

/// What a GET or a HEAD said about the object.
#[derive(Debug, Clone, Default)]
pub(crate) struct ObjectHead {
    pub etag: Option<String>,
    /// Bytes of this response's body (of the object, for a HEAD).
    pub length: Option<u64>,
    /// What the whole object's bytes must hash to, when verification is on and the answer
    /// is about the whole object (not a range).
    pub checksum: Option<Expected>,
    pub last_modified: Option<std::time::SystemTime>,
}

/// The head of a GET, and its body still to read.
pub(crate) struct GetResponse {
    pub head: ObjectHead,
    pub body: Body,
}

/// One attempt of each request S3fetch makes.
pub(crate) trait Store: Send + Sync + 'static {
    /// ListObjectsV2: keys under `prefix` after `start_after`, with `delimiter` folded.
    fn list<'a>(
        &'a self,
        prefix: &'a str,
        start_after: Option<&'a str>,
        delimiter: Option<&'a str>,
    ) -> BoxFuture<'a, Result<Listing, ServiceError>>;

    /// GetObject, whole or `range`, only if the ETag is `if_match` (when given).
    fn get<'a>(
        &'a self,
        key: &'a str,
        range: Option<ByteRange>,
        if_match: Option<&'a str>,
    ) -> BoxFuture<'a, Result<GetResponse, ServiceError>>;

    /// HeadObject, only if the ETag is `if_match` (when given).
    fn head<'a>(
        &'a self,
        key: &'a str,
        if_match: Option<&'a str>,
    ) -> BoxFuture<'a, Result<ObjectHead, ServiceError>>;
}

/// A bucket as the run sees it: requests through the budget and the retry loop, errors that
/// say where.
pub(crate) struct Bucket {
    store: Arc<dyn Store>,
    pub name: String,
    /// The URI's prefix, for messages about the listing.
    prefix: String,
    pub budget: Arc<Budget>,
    pub retry: RetryPolicy,
    pub stats: Arc<RetryStats>,
}

impl Bucket {
    pub fn new(
        store: Arc<dyn Store>,
        name: String,
        prefix: String,
        budget: Arc<Budget>,
        retry: RetryPolicy,
        stats: Arc<RetryStats>,
    ) -> Self {
        Bucket {
            store,
            name,
            prefix,
            budget,
            retry,
            stats,
        }
    }

    /// One listing page, retried, holding a list permit.
    pub async fn list_page(
        &self,
        prefix: &str,
        start_after: Option<&str>,
        delimiter: Option<&str>,
    ) -> Result<Listing> {
        let _permit = self.budget.list().await?;
        let error = |source| Error::List {
            bucket: self.name.clone(),
            prefix: self.prefix.clone(),
            after: start_after.map(str::to_owned),
            source,
        };
        self.retry
            .run(&self.stats, &mut || async move {
                let listing = self.paced(self.store.list(prefix, start_after, delimiter));
                self.retry
                    .timed(None, "ListObjectsV2", async {
                        listing.await.map_err(error)
                    })
                    .await
            })
            .await
    }

    /// One GET attempt: the response's head (within the attempt timeout), its body to read.
    /// The caller holds a permit and runs the retry loop (see `transfer`).
    pub async fn get(
        &self,
        key: &str,
        range: Option<ByteRange>,
        if_match: Option<&str>,
    ) -> Result<GetResponse> {
        let request = self.paced(self.store.get(key, range, if_match));
        self.retry
            .timed(Some(key), "GET", async {
                request.await.map_err(|e| self.get_error(key, e))
            })
            .await
    }

    /// HeadObject, retried (the caller holds a permit).
    pub async fn head(&self, key: &str, if_match: Option<&str>) -> Result<ObjectHead> {
        self.retry
            .run(&self.stats, &mut || async move {
                let request = self.paced(self.store.head(key, if_match));
                self.retry
                    .timed(Some(key), "HEAD", async {
                        request.await.map_err(|source| Error::Head {
                            bucket: self.name.clone(),
                            key: key.to_owned(),
                            source,
                        })
                    })
                    .await
            })
            .await
    }

    /// A whole (small) object's bytes, retried, holding a transfer permit: the manifest and
    /// data files of an inventory.
    pub async fn get_bytes(&self, key: &str) -> Result<Vec<u8>> {
        let _permit = self.budget.transfer().await?;
        self.retry
            .run(&self.stats, &mut || async move {
                let mut response = self.get(key, None, None).await?;
                let mut bytes = Vec::new();
                while let Some(chunk) = futures::StreamExt::next(&mut response.body).await {
                    bytes.extend_from_slice(&chunk.map_err(|e| self.get_error(key, e))?);
                }
                Ok(bytes)
            })
            .await
    }

    /// Whether `key` exists: one HEAD. Access denied counts as absent: such a key cannot be
    /// downloaded either.
    pub async fn exists(&self, key: &str) -> Result<bool> {
        match self.head(key, None).await {
            Ok(_) => Ok(true),
            Err(e) if matches!(e.code(), Some("NotFound" | "NoSuchKey" | "AccessDenied")) => {
                Ok(false)
            }
            Err(e) => Err(e),
        }
    }

    /// `request`, sent when the budget's pace allows, its answer reported to the pace.
    async fn paced<T>(
        &self,
        request: BoxFuture<'_, Result<T, ServiceError>>,
    ) -> Result<T, ServiceError> {
        let sent = self.budget.pace().await;
        let outcome = request.await;
        self.budget
            .answered(sent, matches!(&outcome, Err(e) if e.is_throttling()));
        outcome
    }

    /// `source` as the error of a GET of `key`.
    pub fn get_error(&self, key: &str, source: ServiceError) -> Error {
        Error::Get {
            bucket: self.name.clone(),
            key: key.to_owned(),
            source,
        }
    }

    pub fn checksum_error(&self, key: &str, reason: String) -> Error {
        Error::Checksum {
            bucket: self.name.clone(),
            key: key.to_owned(),
            reason,
        }
    }
}

/// The AWS SDK's client, for one bucket, and its GETs sent without the SDK where they can
/// be (see [`lean`]).
pub(crate) struct S3 {
    client: Client,
    bucket: String,
    /// Checksums are asked for (see [`configure`]) and read from answers.
    verify: bool,
    lean: Option<Lean>,
}

impl S3 {
    /// The connection's client configured for the run (see [`configure`]), its GETs sent
    /// without it where they can be.
    pub async fn new(connection: &Connection, bucket: String, verify: bool) -> Self {
        let lean = match &connection.direct {
            Some(direct) => Lean::new(direct, &connection.client, &bucket, verify).await,
            None => None,
        };
        S3 {
            lean,
            ..S3::sdk(connection.client.clone(), bucket, verify)
        }
    }

    /// Every request through the SDK's `client`, configured for the run.
    pub fn sdk(client: Client, bucket: String, verify: bool) -> Self {
        S3 {
            client: configure(client, verify),
            bucket,
            verify,
            lean: None,
        }
    }

    /// One ListObjectsV2, its body read by [`ListReader`] as it arrives, not by the SDK.
    async fn list_page(
        &self,
        prefix: &str,
        start_after: Option<&str>,
        delimiter: Option<&str>,
    ) -> Result<Listing, ServiceError> {
        let take = TakeListBody::default();
        self.client
            .list_objects_v2()
            .bucket(&self.bucket)
            .prefix(prefix)
            .set_start_after(start_after.map(str::to_owned))
            .set_delimiter(delimiter.map(str::to_owned))
            // Archived objects' restore status: a restored one is downloaded, others skipped.
            .optional_object_attributes(OptionalObjectAttributes::RestoreStatus)
            .customize()
            .interceptor(take.clone())
            .send()
            .await
            .map_err(ServiceError::from_sdk)?;
        let body = take
            .take()
            .ok_or_else(|| ServiceError::protocol("the listing response had no body".into()))?;
        let not_a_listing =
            || ServiceError::protocol("the listing response is not a ListBucketResult".into());
        let mut body = ByteStream::new(body);
        let mut reader = ListReader::default();
        while let Some(chunk) = body.try_next().await.map_err(ServiceError::body)? {
            reader.feed(&chunk).ok_or_else(not_a_listing)?;
        }
        reader.finish().ok_or_else(not_a_listing)
    }

    async fn get_object(
        &self,
        key: &str,
        range: Option<ByteRange>,
        if_match: Option<&str>,
    ) -> Result<GetResponse, ServiceError> {
        let response = self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .set_range(range.map(ByteRange::header))
            .set_if_match(if_match.map(str::to_owned))
            .send()
            .await
            .map_err(ServiceError::from_sdk)?;
        // A whole object's answer carries the checksum to verify; a range's does not.
        let checksum = (self.verify && range.is_none())
            .then(|| {
                Expected::from_response(
                    response.checksum_crc64_nvme(),
                    response.checksum_crc32_c(),
                    response.checksum_crc32(),
                    response.checksum_type().map(|t| t.as_str()),
                    response.e_tag(),
                    response
                        .server_side_encryption()
                        .is_some_and(|s| s.as_str() != "AES256")
                        || response.sse_customer_algorithm().is_some(),
                    true,
                )
            })
            .flatten();
        let head = ObjectHead {
            etag: response.e_tag().map(str::to_owned),
            length: response.content_length().map(|n| n.max(0) as u64),
            checksum,
            last_modified: response.last_modified().and_then(|t| (*t).try_into().ok()),
        };
        let body = stream::try_unfold(response.body, |mut body| async move {
            match body.try_next().await {
                Ok(Some(chunk)) => Ok(Some((chunk, body))),
                Ok(None) => Ok(None),
                Err(e) => Err(ServiceError::body(e)),
            }
        });
        Ok(GetResponse {
            head,
            body: Box::pin(body),
        })
    }

    async fn head_object(
        &self,
        key: &str,
        if_match: Option<&str>,
    ) -> Result<ObjectHead, ServiceError> {
        let head = self
            .client
            .head_object()
            .bucket(&self.bucket)
            .key(key)
            .set_if_match(if_match.map(str::to_owned))
            .send()
            .await
            .map_err(ServiceError::from_sdk)?;
        let checksum = self
            .verify
            .then(|| {
                Expected::from_response(
                    head.checksum_crc64_nvme(),
                    head.checksum_crc32_c(),
                    head.checksum_crc32(),
                    head.checksum_type().map(|t| t.as_str()),
                    head.e_tag(),
                    head.server_side_encryption()
                        .is_some_and(|s| s.as_str() != "AES256")
                        || head.sse_customer_algorithm().is_some(),
                    true,
                )
            })
            .flatten();
        Ok(ObjectHead {
            etag: head.e_tag().map(str::to_owned),
            length: head.content_length().map(|n| n.max(0) as u64),
            checksum,
            last_modified: head.last_modified().and_then(|t| (*t).try_into().ok()),
        })
    }
}

impl Store for S3 {
    fn list<'a>(
        &'a self,
        prefix: &'a str,
        start_after: Option<&'a str>,
        delimiter: Option<&'a str>,
    ) -> BoxFuture<'a, Result<Listing, ServiceError>> {
        Box::pin(self.list_page(prefix, start_after, delimiter))
    }

    fn get<'a>(
        &'a self,
        key: &'a str,
        range: Option<ByteRange>,
        if_match: Option<&'a str>,
    ) -> BoxFuture<'a, Result<GetResponse, ServiceError>> {
        match &self.lean {
            Some(lean) => Box::pin(lean.get(key, range, if_match)),
            None => Box::pin(self.get_object(key, range, if_match)),
        }
    }

    fn head<'a>(
        &'a self,
        key: &'a str,
        if_match: Option<&'a str>,
    ) -> BoxFuture<'a, Result<ObjectHead, ServiceError>> {
        Box::pin(self.head_object(key, if_match))
    }
}

/// The run's client: `client` with the SDK's own retries off (they are made in
/// [`crate::retry`]) and its response checksum validation off (made in [`crate::checksum`]),
/// asking for checksums when `verify` is on. Configured once per run, not per request:
/// per-request overrides cost a config merge on every call.
fn configure(client: Client, verify: bool) -> Client {
    let mut config = client
        .config()
        .to_builder()
        .retry_config(aws_sdk_s3::config::retry::RetryConfig::disabled())
        .response_checksum_validation(aws_sdk_s3::config::ResponseChecksumValidation::WhenRequired);
    if verify {
        config = config.interceptor(crate::checksum::AskForChecksums);
    }
    Client::from_conf(config.build())
}
