//! A GET body streamed into the temporary file at its offset, resumable.
//!
//! A [`Span`] is `start..end` of an object (a ranged part) or all of it, as an [`Attempt`] of
//! the retry loop: each try asks for the bytes still missing and writes what arrives in
//! batches of about [`WRITE_BATCH`] bytes, so memory per request stays bounded whatever the
//! object's size; under a memory cap each try first waits for room for a batch and a chunk
//! ([`SPAN_MEMORY`]).

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;

use crate::checksum::{Expected, Hasher};
use crate::error::{Error, Result, ServiceError};
use crate::fetch::Fetcher;
use crate::object::ObjectInfo;
use crate::s3::retry::Attempt;
use crate::s3::ByteRange;
use crate::write::TempFile;

/// Bytes gathered from a body before they are written: small enough that they are still in
/// the CPU's cache when the kernel copies them into the page cache (512 KiB batches for parts
/// cost a third more system time and ~20 % more wall on `large`, BENCHMARKS.md), large enough
/// that a write's fixed cost (and, when writes go to the blocking pool, the hop there) is paid
/// once per 128 KiB.
const WRITE_BATCH: usize = 128 * 1024;
/// The room a streamed body takes under a memory cap: a batch and the chunk that completes it
/// (hyper hands over at most ~408 KiB at a time). A batch that a chunk would push past it is
/// written first.
const SPAN_MEMORY: u64 = WRITE_BATCH as u64 + 512 * 1024;

/// Chunks of a body not yet written, as they arrived.
#[derive(Default)]
struct Batch {
    chunks: Vec<Bytes>,
    len: usize,
}

/// All of `object` in one GET (resumed if it breaks off): the bytes written, and the checksum
/// its answer vouched for with the hash of the bytes, for the caller to compare.
pub(super) async fn fetch_whole(
    fetcher: &Fetcher,
    object: &ObjectInfo,
    temp: &Arc<TempFile>,
) -> Result<(u64, Option<Expected>, Option<Hasher>)> {
    let mut span = Span::new(fetcher, object, temp, 0, None, None);
    fetcher.bucket.retried(&mut span).await?;
    Ok((span.offset, span.checksum, span.hasher))
}

/// Bytes `start..end` of an object, or all of it: one [`Attempt`] of the retry loop.
///
/// Each try asks for the bytes still missing: a Range from the last byte written, `If-Match`
/// on the ETag first seen, so a resumed body is of the same version. A batch is written as
/// the chunks came, in one vectored write (no copy; where it runs: [`super::disk`]). A body
/// that breaks off or stalls ends the try; what arrived is written first, and the next try
/// continues from there.
pub(super) struct Span<'a> {
    fetcher: &'a Fetcher,
    object: &'a ObjectInfo,
    temp: &'a Arc<TempFile>,
    start: u64,
    /// Known for a part; for a whole object, from its first answer.
    end: Option<u64>,
    /// A part: every request carries a Range.
    part: bool,
    /// The next byte to write.
    pub offset: u64,
    /// The version every request must be of: the listed ETag for parts, the first answer's
    /// for a whole object.
    etag: Option<String>,
    /// What the whole object's first answer vouched for.
    pub checksum: Option<Expected>,
    /// Sees every byte in order: a part's CRC, or the whole object's checksum.
    pub hasher: Option<Hasher>,
}

impl<'a> Span<'a> {
    /// A whole object (`len` `None`), or the part of `len` bytes at `start` hashed by
    /// `hasher`.
    pub(super) fn new(
        fetcher: &'a Fetcher,
        object: &'a ObjectInfo,
        temp: &'a Arc<TempFile>,
        start: u64,
        len: Option<u64>,
        hasher: Option<Hasher>,
    ) -> Self {
        let part = len.is_some();
        Span {
            fetcher,
            object,
            temp,
            start,
            end: len.map(|len| start + len),
            part,
            offset: start,
            etag: if part { object.etag.clone() } else { None },
            checksum: None,
            hasher,
        }
    }

    fn stalled(&self, silent: Duration) -> Error {
        Error::Timeout {
            key: Some(self.object.key.clone()),
            reason: format!(
                "GET s3://{}/{}: no bytes for {silent:.1?}",
                self.fetcher.bucket.name(),
                self.object.key
            ),
        }
    }

    fn protocol(&self, message: String) -> Error {
        self.fetcher
            .bucket
            .get_error(&self.object.key, ServiceError::protocol(message))
    }

    /// Writes `batch` at the current offset; returns it emptied.
    async fn write(&mut self, batch: Batch) -> Result<Batch> {
        let (temp, key, at) = (self.temp.clone(), self.object.key.clone(), self.offset);
        let (result, mut batch) = self
            .fetcher
            .disk
            .quick(move || Ok((temp.write_chunks_at(&key, &batch.chunks, at), batch)))
            .await?;
        result?;
        let len = batch.len as u64;
        self.offset += len;
        self.fetcher.reporter.bytes_written(&self.object.key, len);
        self.fetcher.bucket.progressed();
        batch.chunks.clear();
        batch.len = 0;
        Ok(batch)
    }
}

impl Attempt for Span<'_> {
    type Output = ();

    async fn attempt(&mut self) -> Result<()> {
        let bucket = &self.fetcher.bucket;
        let key = self.object.key.as_str();
        let range = (self.part || self.offset > self.start).then_some(ByteRange {
            start: self.offset,
            end: self.end,
        });
        let if_match = range.and(self.etag.as_deref());
        let missing = self
            .end
            .unwrap_or(self.object.size)
            .saturating_sub(self.offset);
        let mut memory = bucket.reserve_memory(missing.clamp(1, SPAN_MEMORY)).await?;
        let response = bucket.get(key, range, if_match).await?;
        if range.is_none() {
            // A whole object, first try: its answer carries the checksum to verify.
            self.checksum = response.head.checksum;
            self.hasher = self.checksum.map(Expected::hasher);
        }
        if self.etag.is_none() {
            self.etag = response.head.etag.clone();
        }
        let length = response.head.length;
        if self.end.is_none() {
            self.end = length.map(|n| self.offset + n);
        }
        if let (Some(want), Some(got)) = (range.and_then(ByteRange::len), length) {
            if got != want {
                return Err(bucket.get_error(
                    key,
                    ServiceError::unsupported(format!(
                        "asked for {want} bytes at offset {}, the server sent {got}: it may ignore Range requests",
                        self.offset
                    )),
                ));
            }
        }
        let mut body = response.body;
        let mut batch = Batch::default();
        loop {
            // A broken or stalled body ends this try; what arrived is written first.
            let (chunk, error) = match bucket.next_chunk(&mut body).await {
                Ok(Some(Ok(chunk))) => (Some(chunk), None),
                Ok(None) => (None, None),
                Ok(Some(Err(e))) => (None, Some(bucket.get_error(key, e))),
                Err(silent) => (None, Some(self.stalled(silent))),
            };
            let done = chunk.is_none();
            if let Some(chunk) = &chunk {
                if batch.len > 0 && (chunk.len() as u64) > memory.room() {
                    let len = batch.len as u64;
                    batch = self.write(batch).await?;
                    memory.release(len);
                }
                memory.hold(chunk.len() as u64);
            }
            if let Some(chunk) = chunk {
                if let Some(hasher) = self.hasher.as_mut() {
                    hasher.update(&chunk);
                }
                batch.len += chunk.len();
                batch.chunks.push(chunk);
            }
            if batch.len >= WRITE_BATCH || (done && batch.len > 0) {
                let len = batch.len as u64;
                batch = self.write(batch).await?;
                memory.release(len);
            }
            if let Some(error) = error {
                // The body broke off after its last byte: nothing is missing.
                return match self.end == Some(self.offset) {
                    true => Ok(()),
                    false => Err(error),
                };
            }
            if done {
                break;
            }
        }
        match self.end {
            Some(end) if end != self.offset => Err(self.protocol(format!(
                "the body ended after {} of {} bytes",
                self.offset - self.start,
                end - self.start
            ))),
            _ => Ok(()),
        }
    }

    fn progress(&self) -> u64 {
        self.offset - self.start
    }
}
