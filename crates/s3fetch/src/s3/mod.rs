//! Every request to S3, in one room: list a page, GET an object (whole or a range), HEAD it.
//!
//! [`Store`] is one attempt of each request; [`S3`] implements it with the AWS SDK ([`sdk`]:
//! one client per run, following a bucket to its region; GETs through [`lean`]). [`Bucket`]
//! is what the rest of the crate uses: the store, the run's [`Budget`] and [`RetryPolicy`],
//! and errors that name the bucket and key. Nothing outside this module sends a request.
//! Beside them: the client ([`client`], [`http`]), the one budget, bandwidth and memory cap
//! ([`limit`], [`bandwidth`], [`memory`]), the one retry loop ([`retry`]), the listing reader
//! ([`list_xml`]), failures translated ([`errors`]) and the one fake store for tests (`fake`,
//! listing as S3 or a quirky store does by `model`).

use std::pin::Pin;
use std::sync::Arc;

use bytes::Bytes;
use futures::future::BoxFuture;
use futures::stream::Stream;

use crate::checksum::Expected;
use crate::error::{Error, Result, ServiceError};
use crate::s3::limit::{Budget, Permit};
use crate::s3::list_xml::Listing;
use crate::s3::memory::Lease;
use crate::s3::retry::{Attempt, RetryPolicy, RetryStats};

pub(crate) mod bandwidth;
pub(crate) mod client;
pub(crate) mod errors;
#[cfg(test)]
pub(crate) mod fake;
pub(crate) mod http;
pub(crate) mod lean;
pub(crate) mod limit;
pub(crate) mod list_xml;
pub(crate) mod memory;
#[cfg(test)]
pub(crate) mod model;
pub(crate) mod retry;
mod sdk;

pub(crate) use sdk::S3;

/// The header by which a request agrees to pay for itself (requester-pays buckets).
const REQUEST_PAYER: &str = "x-amz-request-payer";

/// Who pays for the requests of a requester-pays bucket (`--request-payer`, as the AWS
/// CLI's): with [`RequestPayer::Requester`] every request says that the caller agrees to
/// pay (`x-amz-request-payer: requester`); without it such a bucket answers 403.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum RequestPayer {
    /// The caller pays for the requests (`x-amz-request-payer: requester`).
    Requester,
}

impl RequestPayer {
    /// The value's name (`requester`), as [`str::parse`] takes it.
    pub fn as_str(self) -> &'static str {
        match self {
            RequestPayer::Requester => "requester",
        }
    }
}

impl std::str::FromStr for RequestPayer {
    type Err = Error;
    fn from_str(text: &str) -> Result<Self> {
        match text {
            "requester" => Ok(RequestPayer::Requester),
            _ => Err(Error::option(
                "request_payer",
                format!("must be \"requester\", not {text:?}"),
            )),
        }
    }
}

/// How every request to one bucket is made.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Settings {
    /// Ask for objects' checksums and read them from answers.
    pub verify: bool,
    /// Agree to pay for the requests (a requester-pays bucket).
    pub requester_pays: bool,
    /// An S3 Express One Zone directory bucket: listed without `StartAfter` or optional
    /// attributes, and its ETags are not MD5s.
    pub directory: bool,
}

impl Settings {
    /// Whether an ETag of 32 hex digits is the MD5 of the object's bytes.
    fn md5_etags(self) -> bool {
        !self.directory
    }
}

/// One ListObjectsV2 request: keys under `prefix`, after `start_after` or from where
/// `token` (a `NextContinuationToken`) left off, `delimiter` folded into sub-folders.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct ListRequest<'a> {
    pub prefix: &'a str,
    pub start_after: Option<&'a str>,
    pub token: Option<&'a str>,
    pub delimiter: Option<&'a str>,
    /// The keys the caller wants: the others come with their key alone (no size, ETag or
    /// time read), which is all a listing needs of them. `None`: every key in full.
    pub wanted: Option<KeyTest<'a>>,
}

/// Which keys of a listing are wanted (see [`ListRequest::wanted`]).
#[derive(Clone, Copy)]
pub(crate) struct KeyTest<'a>(pub &'a (dyn Fn(&str) -> bool + Sync));

impl std::fmt::Debug for KeyTest<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("KeyTest")
    }
}

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
    pub(crate) fn header(self) -> String {
        match self.end {
            Some(end) => format!("bytes={}-{}", self.start, end - 1),
            None => format!("bytes={}-", self.start),
        }
    }

    pub(crate) fn len(self) -> Option<u64> {
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
///
/// S3's answer is turned into this crate's terms: a listing page, the head of a GET with its
/// body as a stream of chunks, the checksum an answer vouches for, [`ServiceError`]s. [`S3`]
/// implements it with the AWS SDK, its GETs skipping the SDK's per-request machinery where
/// that sends the same request; tests plug in a fake bucket instead.
pub(crate) trait Store: Send + Sync + 'static {
    /// ListObjectsV2.
    fn list<'a>(&'a self, request: ListRequest<'a>)
        -> BoxFuture<'a, Result<Listing, ServiceError>>;

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

    /// Whether the store promises S3's listing: keys in byte order, `StartAfter` honoured
    /// (AWS's own endpoints, general-purpose buckets). Default: not known.
    fn promises_order(&self) -> bool {
        false
    }
}

/// A bucket as the run sees it: requests through the budget and the retry loop, errors that
/// say where.
pub(crate) struct Bucket {
    store: Arc<dyn Store>,
    name: String,
    /// The URI's prefix, for messages about the listing.
    prefix: String,
    budget: Arc<Budget>,
    retry: RetryPolicy,
    stats: Arc<RetryStats>,
}

impl Bucket {
    pub(crate) fn new(
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

    pub(crate) fn name(&self) -> &str {
        &self.name
    }

    /// A transfer permit of the run's budget, waited for.
    pub(crate) async fn transfer_permit(&self) -> Result<Permit> {
        self.budget.transfer().await
    }

    /// A transfer permit if one is free now.
    pub(crate) fn free_transfer_permit(&self) -> Option<Permit> {
        self.budget.try_transfer()
    }

    /// Room for `bytes` of a body under the run's memory cap, waited for; give it back by
    /// releasing what was written, or by dropping it.
    pub(crate) async fn reserve_memory(&self, bytes: u64) -> Result<Lease> {
        self.budget.reserve(bytes).await
    }

    /// `attempt`, tried again by the run's retry rule (see [`RetryPolicy::run`]).
    pub(crate) async fn retried<A: Attempt>(&self, attempt: &mut A) -> Result<A::Output> {
        self.retry.run(&self.stats, attempt).await
    }

    /// The next chunk of a response body, or how long it was silent when given up (see
    /// [`RetryPolicy::next_chunk`]). Every GET's body, through the SDK or the lean path, is
    /// read here: its bytes pass the run's bandwidth cap before they are returned.
    pub(crate) async fn next_chunk<S>(
        &self,
        body: &mut S,
    ) -> std::result::Result<Option<S::Item>, std::time::Duration>
    where
        S: futures::Stream<Item = Result<Bytes, ServiceError>> + Unpin,
    {
        let next = self.retry.next_chunk(&self.stats, body).await;
        if let Ok(Some(Ok(chunk))) = &next {
            self.budget.received(chunk.len()).await;
        }
        next
    }

    /// Tells the retry rule the run moved (bytes arrived).
    pub(crate) fn progressed(&self) {
        self.stats.progressed();
    }

    /// The run's counts of retries, resumes, SlowDowns and verified objects.
    pub(crate) fn stats(&self) -> &RetryStats {
        &self.stats
    }

    /// See [`Store::promises_order`].
    pub(crate) fn promises_order(&self) -> bool {
        self.store.promises_order()
    }

    /// One listing page, retried, holding a list permit.
    pub(crate) async fn list_page(&self, request: ListRequest<'_>) -> Result<Listing> {
        let _permit = self.budget.list().await?;
        let error = |source| Error::List {
            bucket: self.name.clone(),
            prefix: self.prefix.clone(),
            after: request.start_after.map(str::to_owned),
            source,
        };
        self.retry
            .run(&self.stats, &mut || async move {
                let listing = self.paced(self.store.list(request));
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
    pub(crate) async fn get(
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
    pub(crate) async fn head(&self, key: &str, if_match: Option<&str>) -> Result<ObjectHead> {
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
    /// data files of an inventory (their bytes within the bandwidth cap too).
    pub(crate) async fn get_bytes(&self, key: &str) -> Result<Vec<u8>> {
        let _permit = self.budget.transfer().await?;
        self.retry
            .run(&self.stats, &mut || async move {
                let mut response = self.get(key, None, None).await?;
                let mut bytes = Vec::new();
                while let Some(chunk) = futures::StreamExt::next(&mut response.body).await {
                    let chunk = chunk.map_err(|e| self.get_error(key, e))?;
                    self.budget.received(chunk.len()).await;
                    bytes.extend_from_slice(&chunk);
                }
                Ok(bytes)
            })
            .await
    }

    /// What one HEAD says of `key`, `None` if it does not exist. Access denied counts as
    /// absent: such a key cannot be downloaded either.
    pub(crate) async fn find(&self, key: &str) -> Result<Option<ObjectHead>> {
        match self.head(key, None).await {
            Ok(head) => Ok(Some(head)),
            Err(e) if matches!(e.code(), Some("NotFound" | "NoSuchKey" | "AccessDenied")) => {
                Ok(None)
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
    pub(crate) fn get_error(&self, key: &str, source: ServiceError) -> Error {
        Error::Get {
            bucket: self.name.clone(),
            key: key.to_owned(),
            source,
        }
    }

    pub(crate) fn checksum_error(&self, key: &str, reason: String) -> Error {
        Error::Checksum {
            bucket: self.name.clone(),
            key: key.to_owned(),
            reason,
        }
    }
}
