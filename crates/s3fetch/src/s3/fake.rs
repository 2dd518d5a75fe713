//! A fake bucket for unit tests: objects in memory, answers scripted per request. The one
//! stand-in for S3 behind [`Store`]: listing, planning and transfer tests all run through a
//! real [`Bucket`] over it ([`bucket`]).
//!
//! Each object has its bytes, an ETag and its CRC64NVME (sent, like S3, on whole-object GETs
//! and HEADs); objects that only need listing are put by key ([`FakeStore::put_keys`]: empty,
//! cheap by the hundred thousand). A test queues [`Fault`]s for a key; each GET or HEAD of that
//! key takes the next one (or none). Listings answer as S3 does, or as a quirky store does
//! ([`Quirks`], see [`model`]), in pages of a chosen size, each after a chosen latency (virtual
//! time in paused tests); a test of a store that breaks the protocol scripts every answer
//! instead ([`FakeStore::scripted`]). Every request is recorded, with its range (a list, with
//! its prefix as the key), so tests can check what was asked for and how many bytes were sent.

use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use futures::future::BoxFuture;
use futures::stream;

use super::limit::Budget;
use super::model::{self, Quirks};
use super::retry::{RetryPolicy, RetryStats};
use super::{Bucket, ByteRange, GetResponse, ListRequest, ObjectHead, Store};
use crate::checksum::{CrcKind, Expected};
use crate::error::ServiceError;
use crate::object::ObjectInfo;
use crate::s3::list_xml::Listing;

/// List requests a [`bucket`] lets be in flight: more than any test's list concurrency, so
/// that the budget never caps a listing and its request counts and virtual times mean what
/// they say.
const LISTS_IN_FLIGHT: usize = 1024;

/// A bucket named `bkt` over `store`, as a run builds one (budget, retries, stats), for a
/// listing of `prefix` (named in its errors): 8 transfers and [`LISTS_IN_FLIGHT`] list
/// requests in flight, retries after a millisecond or so, bodies given up after 200 ms of
/// silence.
pub(crate) fn bucket(store: Arc<FakeStore>, prefix: &str) -> Arc<Bucket> {
    let retry = RetryPolicy {
        base_delay: Duration::from_millis(1),
        max_delay: Duration::from_millis(5),
        idle_timeout: Duration::from_millis(200),
        ..RetryPolicy::default()
    };
    Arc::new(Bucket::new(
        store,
        "bkt".into(),
        prefix.to_owned(),
        Arc::new(Budget::new(8, LISTS_IN_FLIGHT)),
        retry,
        Arc::new(RetryStats::default()),
    ))
}

/// What one request of a key gets instead of a plain answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Fault {
    /// A plain answer (to let a request through in a queue of faults).
    Pass,
    /// An error answer with this status (503 is SlowDown, 404 NoSuchKey, 412 PreconditionFailed).
    Status(u16),
    /// The body breaks off after this many bytes.
    Cut(usize),
    /// One byte of the body is flipped (length and checksum kept).
    Corrupt,
    /// The body sends nothing for this long after the head, then the rest.
    Stall(Duration),
}

/// One request as the fake saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Seen {
    pub method: &'static str,
    pub key: String,
    pub range: Option<ByteRange>,
    pub if_match: Option<String>,
}

struct Object {
    bytes: Bytes,
    etag: String,
    /// The full-object CRC the store vouches for (`None`: a multipart ETag and no checksum).
    crc: Option<u64>,
}

impl Object {
    /// The object as a listing shows it.
    fn info(&self, key: &str) -> ObjectInfo {
        ObjectInfo {
            key: key.to_owned(),
            size: self.bytes.len() as u64,
            etag: Some(self.etag.clone()),
            last_modified: None,
            archived: false,
        }
    }
}

/// Every answer of a scripted listing, made from its request.
type Script = Box<dyn Fn(ListRequest<'_>) -> Listing + Send + Sync>;

/// A bucket in memory (see the module note); configured by its builder methods before it
/// is shared.
pub(crate) struct FakeStore {
    objects: Mutex<BTreeMap<String, Object>>,
    faults: Mutex<BTreeMap<String, VecDeque<Fault>>>,
    seen: Mutex<Vec<Seen>>,
    /// Body bytes sent, over all GETs.
    sent: Mutex<u64>,
    /// Keys a listing page holds at most (S3's 1,000 by default).
    max_keys: usize,
    /// How the listing departs from S3's (none by default).
    quirks: Quirks,
    /// How long each list request takes.
    latency: Option<Duration>,
    /// Answers to every list request, instead of the objects' listing.
    script: Option<Script>,
    /// Lists answered (the request number of [`Quirks::from_request`]).
    lists: AtomicUsize,
}

impl Default for FakeStore {
    fn default() -> Self {
        FakeStore {
            objects: Mutex::default(),
            faults: Mutex::default(),
            seen: Mutex::default(),
            sent: Mutex::default(),
            max_keys: 1000,
            quirks: Quirks::default(),
            latency: None,
            script: None,
            lists: AtomicUsize::new(0),
        }
    }
}

impl FakeStore {
    /// A store whose every list request is answered by `answer`, whatever it holds: a store
    /// that breaks the protocol.
    pub(crate) fn scripted(
        answer: impl Fn(ListRequest<'_>) -> Listing + Send + Sync + 'static,
    ) -> Self {
        FakeStore {
            script: Some(Box::new(answer)),
            ..FakeStore::default()
        }
    }

    /// Listing pages of at most `max_keys` keys.
    pub(crate) fn max_keys(self, max_keys: usize) -> Self {
        FakeStore { max_keys, ..self }
    }

    /// Listings as a store with these quirks answers them.
    pub(crate) fn quirks(self, quirks: Quirks) -> Self {
        FakeStore { quirks, ..self }
    }

    /// Each list request answered after `latency` (virtual time, in a paused runtime).
    pub(crate) fn latency(self, latency: Duration) -> Self {
        FakeStore {
            latency: Some(latency),
            ..self
        }
    }

    /// List requests answered so far.
    pub(crate) fn lists(&self) -> usize {
        self.lists.load(Ordering::Relaxed)
    }

    /// Empty objects under `keys`, for tests that only list them.
    pub(crate) fn put_keys<K: AsRef<str>>(&self, keys: impl IntoIterator<Item = K>) {
        let crc = crc_fast::checksum(crc_fast::CrcAlgorithm::Crc64Nvme, b"");
        let etag = format!("\"{crc:016x}\"");
        let mut objects = self.objects.lock().unwrap();
        for key in keys {
            let object = Object {
                bytes: Bytes::new(),
                etag: etag.clone(),
                crc: Some(crc),
            };
            objects.insert(key.as_ref().to_owned(), object);
        }
    }

    pub(crate) fn put(&self, key: &str, bytes: impl Into<Bytes>) -> ObjectInfo {
        self.insert(key, bytes.into(), true)
    }

    /// An object with no checksum to verify: a multipart ETag, no full-object CRC.
    pub(crate) fn put_unchecked(&self, key: &str, bytes: impl Into<Bytes>) -> ObjectInfo {
        self.insert(key, bytes.into(), false)
    }

    fn insert(&self, key: &str, bytes: Bytes, with_crc: bool) -> ObjectInfo {
        let crc = crc_fast::checksum(crc_fast::CrcAlgorithm::Crc64Nvme, &bytes);
        let etag = match with_crc {
            true => format!("\"{crc:016x}\""),
            false => format!("\"{crc:016x}-2\""),
        };
        let crc = with_crc.then_some(crc);
        let object = Object { bytes, etag, crc };
        let info = object.info(key);
        self.objects.lock().unwrap().insert(key.to_owned(), object);
        info
    }

    /// Queues `faults` for the next requests of `key`, in order.
    pub(crate) fn fail(&self, key: &str, faults: impl IntoIterator<Item = Fault>) {
        self.faults
            .lock()
            .unwrap()
            .entry(key.to_owned())
            .or_default()
            .extend(faults);
    }

    pub(crate) fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }

    pub(crate) fn sent(&self) -> u64 {
        *self.sent.lock().unwrap()
    }

    fn next_fault(&self, key: &str) -> Option<Fault> {
        self.faults.lock().unwrap().get_mut(key)?.pop_front()
    }

    fn record(
        &self,
        method: &'static str,
        key: &str,
        range: Option<ByteRange>,
        if_match: Option<&str>,
    ) {
        self.seen.lock().unwrap().push(Seen {
            method,
            key: key.to_owned(),
            range,
            if_match: if_match.map(str::to_owned),
        });
    }

    fn error(status: u16) -> ServiceError {
        let code = match status {
            503 => "SlowDown",
            404 => "NoSuchKey",
            412 => "PreconditionFailed",
            403 => "AccessDenied",
            _ => "InternalError",
        };
        ServiceError::test_response(status, code)
    }

    /// The object, or the error for a missing key or an ETag that does not match.
    fn resolve(
        &self,
        key: &str,
        if_match: Option<&str>,
    ) -> Result<(Bytes, String, Option<u64>), ServiceError> {
        let objects = self.objects.lock().unwrap();
        let object = objects.get(key).ok_or_else(|| Self::error(404))?;
        if if_match.is_some_and(|etag| etag != object.etag) {
            return Err(Self::error(412));
        }
        Ok((object.bytes.clone(), object.etag.clone(), object.crc))
    }
}

impl Store for FakeStore {
    fn list<'a>(
        &'a self,
        request: ListRequest<'a>,
    ) -> BoxFuture<'a, Result<Listing, ServiceError>> {
        Box::pin(async move {
            if let Some(latency) = self.latency {
                tokio::time::sleep(latency).await;
            }
            self.record("LIST", request.prefix, None, None);
            let number = self.lists.fetch_add(1, Ordering::Relaxed);
            if let Some(script) = &self.script {
                return Ok(script(request));
            }
            let objects = self.objects.lock().unwrap();
            let info = |key: &str, object: &Object| object.info(key);
            model::answer(&*objects, info, self.max_keys, self.quirks, number, request)
        })
    }

    fn get<'a>(
        &'a self,
        key: &'a str,
        range: Option<ByteRange>,
        if_match: Option<&'a str>,
    ) -> BoxFuture<'a, Result<GetResponse, ServiceError>> {
        Box::pin(async move {
            self.record("GET", key, range, if_match);
            let fault = self.next_fault(key);
            if let Some(Fault::Status(status)) = fault {
                return Err(Self::error(status));
            }
            let (bytes, etag, crc) = self.resolve(key, if_match)?;
            let slice = match range {
                None => bytes.clone(),
                Some(r) => {
                    let end = r.end.unwrap_or(bytes.len() as u64).min(bytes.len() as u64);
                    bytes.slice(r.start as usize..end as usize)
                }
            };
            let head = ObjectHead {
                etag: Some(etag),
                length: Some(slice.len() as u64),
                checksum: crc
                    .filter(|_| range.is_none())
                    .map(|crc| Expected::Crc(CrcKind::Crc64Nvme, crc)),
                last_modified: None,
            };
            let mut body = slice.to_vec();
            let mut stall = None;
            let mut cut = None;
            match fault {
                Some(Fault::Corrupt) if !body.is_empty() => {
                    let middle = body.len() / 2;
                    body[middle] ^= 0xff;
                }
                Some(Fault::Cut(n)) => cut = Some(n.min(body.len())),
                Some(Fault::Stall(wait)) => stall = Some(wait),
                _ => {}
            }
            let send = cut.unwrap_or(body.len());
            *self.sent.lock().unwrap() += send as u64;
            // In chunks of 16 KiB, like a socket would deliver them.
            let mut chunks: Vec<Result<Bytes, ServiceError>> = body[..send]
                .chunks(16 * 1024)
                .map(|c| Ok(Bytes::copy_from_slice(c)))
                .collect();
            if cut.is_some() {
                chunks.push(Err(ServiceError::protocol("connection reset".into())));
            }
            let body = stream::iter(chunks);
            let body: super::Body = match stall {
                Some(wait) => Box::pin(futures::StreamExt::chain(
                    stream::once(async move {
                        tokio::time::sleep(wait).await;
                        Ok(Bytes::new())
                    }),
                    body,
                )),
                None => Box::pin(body),
            };
            Ok(GetResponse { head, body })
        })
    }

    fn head<'a>(
        &'a self,
        key: &'a str,
        if_match: Option<&'a str>,
    ) -> BoxFuture<'a, Result<ObjectHead, ServiceError>> {
        Box::pin(async move {
            self.record("HEAD", key, None, if_match);
            if let Some(Fault::Status(status)) = self.next_fault(key) {
                return Err(Self::error(status));
            }
            let (bytes, etag, crc) = self.resolve(key, if_match)?;
            Ok(ObjectHead {
                etag: Some(etag),
                length: Some(bytes.len() as u64),
                checksum: crc.map(|crc| Expected::Crc(CrcKind::Crc64Nvme, crc)),
                last_modified: None,
            })
        })
    }
}
