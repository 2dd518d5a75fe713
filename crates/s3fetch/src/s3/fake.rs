//! A fake bucket for unit tests: objects in memory, answers scripted per request.
//!
//! Each object has its bytes, an ETag and its CRC64NVME (sent, like S3, on whole-object GETs
//! and HEADs). A test queues [`Fault`]s for a key; each GET or HEAD of that key takes the next
//! one (or none). Every request is recorded, with its range, so tests can check what was asked
//! for and how many bytes were sent.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Mutex;
use std::time::Duration;

use bytes::Bytes;
use futures::future::BoxFuture;
use futures::stream;

use super::model::{self, Quirks};
use super::{ByteRange, GetResponse, ListRequest, ObjectHead, Store};
use crate::checksum::{CrcKind, Expected};
use crate::error::ServiceError;
use crate::object::ObjectInfo;
use crate::s3::list_xml::Listing;

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

#[derive(Default)]
pub(crate) struct FakeStore {
    objects: Mutex<BTreeMap<String, Object>>,
    faults: Mutex<BTreeMap<String, VecDeque<Fault>>>,
    seen: Mutex<Vec<Seen>>,
    /// Body bytes sent, over all GETs.
    sent: Mutex<u64>,
    /// Lists answered (see [`model`]).
    lists: std::sync::atomic::AtomicUsize,
}

impl FakeStore {
    pub fn put(&self, key: &str, bytes: impl Into<Bytes>) -> ObjectInfo {
        self.insert(key, bytes.into(), true)
    }

    /// An object with no checksum to verify: a multipart ETag, no full-object CRC.
    pub fn put_unchecked(&self, key: &str, bytes: impl Into<Bytes>) -> ObjectInfo {
        self.insert(key, bytes.into(), false)
    }

    fn insert(&self, key: &str, bytes: Bytes, with_crc: bool) -> ObjectInfo {
        let crc = crc_fast::checksum(crc_fast::CrcAlgorithm::Crc64Nvme, &bytes);
        let etag = match with_crc {
            true => format!("\"{crc:016x}\""),
            false => format!("\"{crc:016x}-2\""),
        };
        let crc = with_crc.then_some(crc);
        let info = ObjectInfo {
            key: key.to_owned(),
            size: bytes.len() as u64,
            etag: Some(etag.clone()),
            last_modified: None,
            archived: false,
        };
        self.objects
            .lock()
            .unwrap()
            .insert(key.to_owned(), Object { bytes, etag, crc });
        info
    }

    /// Queues `faults` for the next requests of `key`, in order.
    pub fn fail(&self, key: &str, faults: impl IntoIterator<Item = Fault>) {
        self.faults
            .lock()
            .unwrap()
            .entry(key.to_owned())
            .or_default()
            .extend(faults);
    }

    pub fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }

    pub fn sent(&self) -> u64 {
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
        let objects = self.objects.lock().unwrap();
        let listed: BTreeMap<String, ObjectInfo> = objects
            .iter()
            .map(|(key, object)| {
                let info = ObjectInfo {
                    key: key.clone(),
                    size: object.bytes.len() as u64,
                    etag: Some(object.etag.clone()),
                    last_modified: None,
                    archived: false,
                };
                (key.clone(), info)
            })
            .collect();
        let number = self
            .lists
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let answer = model::answer(&listed, 1000, Quirks::default(), number, request);
        Box::pin(async move { answer })
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
