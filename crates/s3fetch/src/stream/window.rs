//! The prefetch window: objects (in the order they come) cut into requests, each started as
//! soon as the memory cap and the request budget allow, its bytes held until the reader takes
//! them. Memory is reserved in the order the reader reads, so the next bytes it needs always
//! get their share: the window cannot deadlock, and never holds more than the cap (parts and
//! whole objects are never larger than it).

use std::collections::VecDeque;
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use futures::StreamExt;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::checksum::{Expected, Hasher};
use crate::error::{Error, Result, ServiceError};
use crate::object::ObjectInfo;
use crate::s3::memory::{Lease, Memory};
use crate::s3::retry::Attempt;
use crate::s3::{Bucket, ByteRange, GetResponse};
use crate::select::filter::KeyFilter;
use crate::select::folders::Parent;
use crate::select::listing::Listed;

/// The default cap on bytes held (fetched and not yet taken by the reader) without a cgroup
/// limit.
pub(crate) const DEFAULT_MEMORY: u64 = 128 << 20;
/// The cap under a cgroup's `memory.max`: this fraction of it, within these bounds.
const CGROUP_SHARE: u64 = 4;
const CGROUP_MIN: u64 = 16 << 20;
const CGROUP_MAX: u64 = 1 << 30;
/// HEADs of `keys_from` keys in flight ahead of the window at most.
const HEADS_AHEAD: usize = 64;

/// The bytes a stream may hold: `max_memory` (else `S3FETCH_CAT_MEMORY_MIB`), else a quarter
/// of the cgroup's `memory.max` (16 MiB to 1 GiB) when one is set, else [`DEFAULT_MEMORY`].
pub(crate) fn memory_cap(tuned: Option<u64>) -> u64 {
    tuned
        .or_else(|| {
            let max = cgroup_memory_max()?;
            Some((max / CGROUP_SHARE).clamp(CGROUP_MIN, CGROUP_MAX))
        })
        .unwrap_or(DEFAULT_MEMORY)
}

/// The `memory.max` of this process's cgroup (v2), when one is set.
#[cfg(target_os = "linux")]
fn cgroup_memory_max() -> Option<u64> {
    let text = std::fs::read_to_string("/sys/fs/cgroup/memory.max").ok()?;
    text.trim().parse::<u64>().ok()
}

/// Cgroups are Linux's: elsewhere the cap is the fixed default.
#[cfg(not(target_os = "linux"))]
fn cgroup_memory_max() -> Option<u64> {
    None
}

/// A spawned fetch, aborted when dropped (the reader went away or skipped it).
pub(crate) struct Task<T>(JoinHandle<Result<T>>);

impl<T: Send + 'static> Task<T> {
    fn spawn(future: impl std::future::Future<Output = Result<T>> + Send + 'static) -> Self {
        Task(tokio::spawn(future))
    }

    pub(crate) async fn join(mut self) -> Result<T> {
        match (&mut self.0).await {
            Ok(result) => result,
            Err(join) if join.is_panic() => std::panic::resume_unwind(join.into_panic()),
            Err(_) => Err(Error::Cancelled),
        }
    }
}

impl<T> Drop for Task<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Bytes fetched, with the memory they hold.
pub(crate) struct Held {
    pub chunks: VecDeque<Bytes>,
    /// For a part: the CRC of its bytes (of the object's CRC kind) and its length.
    pub crc: (u64, u64),
    pub memory: Lease,
}

/// One object as the reader gets it: its bytes on the way.
pub(crate) struct Pending {
    pub object: ObjectInfo,
    pub parent: Parent,
    pub body: PendingBody,
}

pub(crate) enum PendingBody {
    /// One GET, verified before it is handed over.
    Whole(Task<Held>),
    /// Ranged parts in order, `count` of them; their CRCs combine into `checksum`'s.
    Parts {
        checksum: Option<Expected>,
        count: u64,
        parts: mpsc::UnboundedReceiver<Task<Held>>,
    },
    /// It failed before any request for its bytes (its HEAD).
    Failed(Error),
}

/// What the window works with.
pub(crate) struct Window {
    pub bucket: Arc<Bucket>,
    pub memory: Arc<Memory>,
    pub part_size: u64,
    pub threshold: u64,
    pub filter: KeyFilter,
    /// Objects come without sizes (`keys_from`): each takes a HEAD first.
    pub from_keys: bool,
    pub include_archived: bool,
    /// The one object `cat` was named, as its HEAD found it: its parts need no second HEAD,
    /// and its first part may be on its way already (see [`Known`]).
    pub known: Option<Known>,
}

/// One object named by its key: its checksum from the HEAD that found it, and the GET of
/// its first part, sent beside that HEAD so the first bytes come one round trip sooner.
pub(crate) struct Known {
    pub key: String,
    pub checksum: Option<Expected>,
    /// The answer to `GET bytes=0-(part size - 1)`, its body unread, when it is of the
    /// version the HEAD saw (the same ETag).
    pub first: std::sync::Mutex<Option<GetResponse>>,
}

impl Window {
    /// A window over `bucket` holding at most `cap_bytes`; sizes and archived objects are
    /// judged as `filter` and `include_archived` say. Parts are at most the cap, and objects
    /// larger than it come in parts.
    pub(crate) fn new(
        bucket: Arc<Bucket>,
        cap_bytes: u64,
        part_size: u64,
        threshold: u64,
        filter: KeyFilter,
    ) -> Self {
        let cap_bytes = cap_bytes.max(1);
        Window {
            bucket,
            memory: Memory::new(cap_bytes),
            part_size: part_size.clamp(1, cap_bytes),
            threshold: threshold.min(cap_bytes),
            filter,
            from_keys: false,
            include_archived: false,
            known: None,
        }
    }

    /// Memory for `bytes`, waited for (never more than the cap: see [`Window::new`]).
    async fn reserve(&self, bytes: u64) -> Result<Lease> {
        self.memory.reserve(bytes).await
    }

    /// Takes the objects `rx` brings, in that order, and hands each to `tx` with its
    /// requests started as memory and budget allow. Ends when `rx` does or the reader is
    /// gone.
    pub(crate) async fn run(
        self: Arc<Self>,
        rx: mpsc::Receiver<Listed>,
        tx: mpsc::Sender<Pending>,
    ) {
        // `keys_from` keys come without sizes: their HEADs run ahead, each in a task of its
        // own (so a HEAD never waits on the window), the answers taken in order.
        let window = self.clone();
        let objects = futures::stream::unfold(rx, |mut rx| async move {
            rx.recv().await.map(|listed| (listed, rx))
        })
        .map(move |listed| {
            let window = window.clone();
            Task::spawn(async move { Ok(window.sized(listed).await) }).join()
        })
        .buffered(match self.from_keys {
            true => HEADS_AHEAD,
            false => 1,
        });
        let mut objects = std::pin::pin!(objects);
        while let Some(sized) = objects.next().await {
            let Ok(Some((Listed { object, parent }, failed))) = sized else {
                continue;
            };
            let sent = match failed {
                Some(error) => {
                    let body = PendingBody::Failed(error);
                    let pending = Pending {
                        object,
                        parent,
                        body,
                    };
                    tx.send(pending).await.is_ok()
                }
                None if object.size > self.threshold => self.parts(&object, parent, &tx).await,
                None => self.whole(&object, parent, &tx).await,
            };
            if !sent {
                return;
            }
        }
    }

    /// `listed` with its size, ETag and time from a HEAD for a `keys_from` key (and the
    /// HEAD's failure, if it failed); `None` for an object left out (archived, or outside
    /// the size and time limits).
    async fn sized(&self, listed: Listed) -> Option<(Listed, Option<Error>)> {
        let Listed { mut object, parent } = listed;
        if object.archived && !self.include_archived {
            return None;
        }
        if self.from_keys {
            match self.head(&object.key, None).await {
                Ok(head) => {
                    object.size = head.length.unwrap_or(0);
                    object.etag = head.etag;
                    object.last_modified = head.last_modified;
                    if !self.filter.wants_object(&object) {
                        return None;
                    }
                }
                Err(error) => return Some((Listed { object, parent }, Some(error))),
            }
        }
        Some((Listed { object, parent }, None))
    }

    /// The answer to the GET sent beside `key`'s HEAD, and the checksum that HEAD found,
    /// when `key` is the object named (see [`Known`]).
    fn first(&self, key: &str) -> Option<(GetResponse, Option<Expected>)> {
        let known = self.known.as_ref().filter(|known| known.key == key)?;
        let first = known
            .first
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()?;
        Some((first, known.checksum))
    }

    /// A HEAD, holding a transfer permit.
    async fn head(&self, key: &str, etag: Option<&str>) -> Result<crate::s3::ObjectHead> {
        let _permit = self.bucket.transfer_permit().await?;
        self.bucket.head(key, etag).await
    }

    /// `object` in one GET; false when the reader is gone.
    async fn whole(&self, object: &ObjectInfo, parent: Parent, tx: &mpsc::Sender<Pending>) -> bool {
        let Ok(memory) = self.reserve(object.size).await else {
            return false;
        };
        let Ok(permit) = self.bucket.transfer_permit().await else {
            return false;
        };
        let (bucket, key, size) = (self.bucket.clone(), object.key.clone(), object.size);
        // The named object's first part is all of it when it is no larger.
        let early = self
            .first(&key)
            .filter(|(first, _)| first.head.length == Some(size));
        let task = Task::spawn(async move {
            let (chunks, memory) = fetch_whole(&bucket, &key, size, memory, early).await?;
            drop(permit);
            Ok(Held {
                chunks,
                crc: (0, size),
                memory,
            })
        });
        let pending = Pending {
            object: object.clone(),
            parent,
            body: PendingBody::Whole(task),
        };
        tx.send(pending).await.is_ok()
    }

    /// `object` in ranged parts, after a HEAD for its checksum (unless one was made already);
    /// false when the reader is gone.
    async fn parts(&self, object: &ObjectInfo, parent: Parent, tx: &mpsc::Sender<Pending>) -> bool {
        let known = self.known.as_ref().filter(|known| known.key == object.key);
        let head = match known {
            Some(known) => Ok(known.checksum),
            None => {
                (self.head(&object.key, object.etag.as_deref()).await).map(|head| head.checksum)
            }
        };
        let mut first = self.first(&object.key).map(|(first, _)| first);
        let checksum = match head {
            Ok(checksum) => checksum,
            Err(error) => {
                let pending = Pending {
                    object: object.clone(),
                    parent,
                    body: PendingBody::Failed(error),
                };
                return tx.send(pending).await.is_ok();
            }
        };
        let count = object.size.div_ceil(self.part_size);
        let (parts_tx, parts) = mpsc::unbounded_channel();
        let pending = Pending {
            object: object.clone(),
            parent,
            body: PendingBody::Parts {
                checksum,
                count,
                parts,
            },
        };
        if tx.send(pending).await.is_err() {
            return false;
        }
        let crc = match checksum {
            Some(Expected::Crc(kind, _)) => Some(kind),
            _ => None,
        };
        for index in 0..count {
            let start = index * self.part_size;
            let len = self.part_size.min(object.size - start);
            let Ok(memory) = self.reserve(len).await else {
                return false;
            };
            let Ok(permit) = self.bucket.transfer_permit().await else {
                return false;
            };
            let mut span = Part {
                bucket: self.bucket.clone(),
                key: object.key.clone(),
                etag: object.etag.clone(),
                start,
                end: start + len,
                offset: start,
                buffer: Slabs::new(len),
                hasher: crc.map(|kind| Expected::Crc(kind, 0).hasher()),
                memory,
                early: first.take(),
            };
            let task = Task::spawn(async move {
                let bucket = span.bucket.clone();
                bucket.retried(&mut span).await?;
                drop(permit);
                Ok(Held {
                    crc: (span.hasher.map_or(0, |h| h.crc()), len),
                    chunks: span.buffer.freeze(),
                    memory: span.memory,
                })
            });
            if parts_tx.send(task).is_err() {
                // The reader skipped the rest of this object; on to the next.
                return true;
            }
        }
        true
    }
}

/// A whole object's body in memory, verified against the checksum its answer carries, its
/// length against the listed `size`; a failed try fetches it again whole. Its bytes are
/// counted under `memory` as they arrive. `early` is an answer already on its way for the
/// first try (a ranged GET of all the bytes), with the checksum its HEAD found.
async fn fetch_whole(
    bucket: &Bucket,
    key: &str,
    size: u64,
    memory: Lease,
    early: Option<(GetResponse, Option<Expected>)>,
) -> Result<(VecDeque<Bytes>, Lease)> {
    let early = std::sync::Mutex::new(early);
    let memory = std::sync::Mutex::new(memory);
    let count = |bytes: Option<u64>| {
        let mut lease = memory.lock().unwrap_or_else(|e| e.into_inner());
        match bytes {
            Some(bytes) => lease.hold(bytes),
            // A failed try's bytes are dropped with it.
            None => lease.release_all(),
        }
    };
    let chunks = bucket
        .retried(&mut || async {
            count(None);
            let early = early.lock().unwrap_or_else(|e| e.into_inner()).take();
            let (response, checksum) = match early {
                Some(early) => early,
                None => {
                    let response = bucket.get(key, None, None).await?;
                    let checksum = response.head.checksum;
                    (response, checksum)
                }
            };
            let mut body = response.body;
            let mut buffer = Slabs::new(size);
            let mut hasher = checksum.map(Expected::hasher);
            let mut len = 0u64;
            loop {
                match bucket.next_chunk(&mut body).await {
                    Ok(Some(Ok(chunk))) => {
                        if let Some(hasher) = hasher.as_mut() {
                            hasher.update(&chunk);
                        }
                        len += chunk.len() as u64;
                        count(Some(chunk.len() as u64));
                        bucket.progressed();
                        buffer.push(&chunk);
                    }
                    Ok(None) => break,
                    Ok(Some(Err(e))) => return Err(bucket.get_error(key, e)),
                    Err(silent) => return Err(stalled(bucket, key, silent)),
                }
            }
            if len != size {
                return Err(bucket.get_error(
                    key,
                    ServiceError::protocol(format!(
                        "the body is {len} bytes, the listing said {size}: the object changed since it was listed"
                    )),
                ));
            }
            if let (Some(expected), Some(hasher)) = (checksum, hasher) {
                hasher
                    .verify(expected)
                    .map_err(|reason| bucket.checksum_error(key, reason))?;
                bucket.stats().verified.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
            Ok(buffer.freeze())
        })
        .await?;
    Ok((
        chunks,
        memory.into_inner().unwrap_or_else(|e| e.into_inner()),
    ))
}

fn stalled(bucket: &Bucket, key: &str, silent: std::time::Duration) -> Error {
    Error::Timeout {
        key: Some(key.to_owned()),
        reason: format!(
            "GET s3://{}/{key}: no bytes for {silent:.1?}",
            bucket.name()
        ),
    }
}

/// Bytes of a body copied into blocks of [`SLAB`] bytes, each filled before the next: what is
/// held is what is counted (chunks kept as received would pin the larger buffers they were
/// read into: the peak RSS of `large` grew by half the cap), and blocks of one size, below
/// glibc's mmap threshold, are reused from the heap instead of being mapped and faulted in
/// anew (8 MiB blocks cost a second of system time per 2 GiB).
struct Slabs {
    done: VecDeque<Bytes>,
    current: BytesMut,
    /// Bytes still expected after `current`'s capacity.
    rest: u64,
}

const SLAB: u64 = 512 * 1024;

impl Slabs {
    fn new(len: u64) -> Self {
        let first = len.min(SLAB);
        Slabs {
            done: VecDeque::new(),
            current: BytesMut::with_capacity(first as usize),
            rest: len - first,
        }
    }

    fn push(&mut self, mut bytes: &[u8]) {
        while !bytes.is_empty() {
            let room = self.current.capacity() - self.current.len();
            if room == 0 {
                let next = self.rest.clamp(1, SLAB);
                self.rest = self.rest.saturating_sub(next);
                let full =
                    std::mem::replace(&mut self.current, BytesMut::with_capacity(next as usize));
                self.done.push_back(full.freeze());
                continue;
            }
            let take = room.min(bytes.len());
            self.current.extend_from_slice(&bytes[..take]);
            bytes = &bytes[take..];
        }
    }

    fn freeze(mut self) -> VecDeque<Bytes> {
        if !self.current.is_empty() {
            self.done.push_back(self.current.freeze());
        }
        self.done
    }
}

/// Bytes `start..end` of the listed version (`If-Match`) into memory: one attempt of the
/// retry loop; a body that breaks off continues from its last byte.
struct Part {
    bucket: Arc<Bucket>,
    key: String,
    etag: Option<String>,
    start: u64,
    end: u64,
    offset: u64,
    buffer: Slabs,
    hasher: Option<Hasher>,
    /// The part's room; its bytes are counted as they arrive.
    memory: Lease,
    /// An answer already on its way for this part's first attempt (see [`Known::first`]).
    early: Option<GetResponse>,
}

impl Attempt for Part {
    type Output = ();

    async fn attempt(&mut self) -> Result<()> {
        let bucket = &self.bucket;
        let key = self.key.as_str();
        let range = ByteRange {
            start: self.offset,
            end: Some(self.end),
        };
        let response = match self.early.take() {
            Some(early) => early,
            None => bucket.get(key, Some(range), self.etag.as_deref()).await?,
        };
        let want = self.end - self.offset;
        if let Some(got) = response.head.length.filter(|&got| got != want) {
            return Err(bucket.get_error(
                key,
                ServiceError::unsupported(format!(
                    "asked for {want} bytes at offset {}, the server sent {got}: it may ignore Range requests",
                    self.offset
                )),
            ));
        }
        let mut body = response.body;
        loop {
            match bucket.next_chunk(&mut body).await {
                Ok(Some(Ok(chunk))) => {
                    if let Some(hasher) = self.hasher.as_mut() {
                        hasher.update(&chunk);
                    }
                    self.offset += chunk.len() as u64;
                    self.memory.hold(chunk.len() as u64);
                    bucket.progressed();
                    self.buffer.push(&chunk);
                }
                Ok(None) => break,
                // The body broke off after its last byte: nothing is missing.
                Ok(Some(Err(_))) if self.offset == self.end => break,
                Ok(Some(Err(e))) => return Err(bucket.get_error(key, e)),
                Err(silent) => return Err(stalled(bucket, key, silent)),
            }
        }
        if self.offset != self.end {
            return Err(bucket.get_error(
                key,
                ServiceError::protocol(format!(
                    "the body ended after {} of {} bytes",
                    self.offset - self.start,
                    self.end - self.start
                )),
            ));
        }
        Ok(())
    }

    fn progress(&self) -> u64 {
        self.offset - self.start
    }
}
