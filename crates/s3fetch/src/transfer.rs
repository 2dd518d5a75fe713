//! Fetching one object into its file.
//!
//! - Small objects (by listed size) take one GET whose body is collected in memory and
//!   written by one blocking call that also creates the directories and renames the file into
//!   place: one thread hop per object.
//! - Medium objects take one GET streamed into a temporary file.
//! - Large objects are fetched as ranged GETs of `part_size` bytes, several at once, each
//!   written at its offset with `If-Match` on the listed ETag, so an object replaced
//!   mid-download fails instead of mixing two versions. Every request, part or whole object,
//!   holds one permit of the run's semaphore: large and small objects share one budget.
//!
//! Bodies are written in batches of [`WRITE_BATCH`] bytes ([`PART_WRITE_BATCH`] for the parts
//! of large objects, which go around the page cache) on the blocking pool, so memory per
//! request stays bounded whatever the object's size.
//!
//! Transient failures are retried with backoff ([`RetryPolicy`]); a body that breaks off or
//! stalls is resumed from the last byte written, with a Range and `If-Match` on the ETag, not
//! fetched again from the start.

use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use aws_sdk_s3::Client;
use futures::stream::{FuturesUnordered, StreamExt};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_util::task::TaskTracker;

use aws_sdk_s3::operation::get_object::GetObjectOutput;
use aws_sdk_s3::operation::head_object::HeadObjectOutput;

use crate::checksum::{self, Expected, Hasher};
use crate::error::{Error, Result, ServiceError};
use crate::progress::{ObjectInfo, Reporter};
use crate::retry::{RetryPolicy, RetryStats, Throttle};
use crate::write::{self, AlignedBuffer, DownloadDir, TempFile};

/// Objects up to this size are collected in memory and written with one call.
const SMALL_OBJECT: u64 = 256 * 1024;
/// Bytes gathered from a body before they are written (a multiple of the direct-write
/// alignment, so that the batches of a large object's parts can bypass the page cache).
const WRITE_BATCH: usize = 128 * 1024;
/// Larger batches for ranged parts: each batch is one direct write and one thread hop, and
/// 512 KiB batches take 40 % less CPU than 128 KiB ones (BENCHMARKS.md, `large`).
const PART_WRITE_BATCH: usize = 512 * 1024;

/// Parts of one object in flight at most (the run's semaphore limits the total).
const PARTS_PER_OBJECT: usize = 6;
/// Bytes read back per blocking call to check an MD5 (about 50 ms of hashing).
const READ_BACK_SLICE: u64 = 32 * 1024 * 1024;

/// How objects are split into requests.
#[derive(Debug, Clone, Copy)]
pub(crate) struct PartOptions {
    pub part_size: u64,
    pub threshold: u64,
}

/// Everything a download needs, shared by all download tasks of a run.
pub(crate) struct Fetcher {
    pub client: Client,
    pub bucket: String,
    pub dir: Arc<DownloadDir>,
    pub reporter: Arc<dyn Reporter>,
    pub permits: Arc<Semaphore>,
    pub parts: PartOptions,
    /// File-system work on the blocking pool, tracked so the run can wait for it.
    pub blocking: TaskTracker,
    pub retry: RetryPolicy,
    pub stats: Arc<RetryStats>,
    pub throttle: Arc<Throttle>,
    /// Ask for checksums and verify them (see [`crate::checksum`]).
    pub verify: bool,
    /// Creating, linking and renaming files takes the directory's lock in the kernel: with
    /// many at once they spin on it (a fifth of the CPU samples of one profiled run of small
    /// files). These permits keep them to about one per core.
    pub dir_ops: Semaphore,
}

impl Fetcher {
    /// Downloads `object` to `relative` (under the download directory), holding `permit` for
    /// its first request. Returns the bytes written and the destination.
    pub async fn fetch(
        &self,
        object: &ObjectInfo,
        relative: &Path,
        permit: OwnedSemaphorePermit,
    ) -> Result<u64> {
        let key = object.key.as_str();
        if object.size <= SMALL_OBJECT {
            let bytes = self
                .retry
                .run(&self.stats, Some(&self.throttle), || async {
                    let response = self.get(key, None, None).await?;
                    let expected = self.expected(&response, true);
                    let body = response.body.collect();
                    let bytes = match tokio::time::timeout(self.retry.idle_timeout, body).await {
                        // The chunks as received: no copy into one buffer.
                        Ok(Ok(body)) => body.into_segments().collect::<Vec<_>>(),
                        Ok(Err(e)) => return Err(self.get_error(key, ServiceError::body(e))),
                        Err(_) => return Err(self.stalled(key)),
                    };
                    if let Some(expected) = expected {
                        let mut hasher = expected.hasher();
                        bytes.iter().for_each(|chunk| hasher.update(chunk));
                        hasher
                            .verify(expected)
                            .map_err(|reason| self.checksum_error(key, reason))?;
                        self.stats.verified.fetch_add(1, Ordering::Relaxed);
                    }
                    Ok(bytes)
                })
                .await?;
            let len = bytes.iter().map(|b| b.len() as u64).sum();
            let (dir, key_owned, relative) =
                (self.dir.clone(), key.to_owned(), relative.to_owned());
            let _entry = self.dir_ops.acquire().await.map_err(|_| Error::Cancelled)?;
            self.blocking(move || write::write_whole(&dir, &key_owned, &relative, &bytes))
                .await?;
            // Held until written: a download's memory is bounded by the requests in flight.
            drop(permit);
            self.reporter.bytes_written(key, len);
            return Ok(len);
        }

        let (dir, key_owned, relative) = (self.dir.clone(), key.to_owned(), relative.to_owned());
        let size = object.size;
        let ranged = size > self.parts.threshold;
        let entry = self.dir_ops.acquire().await.map_err(|_| Error::Cancelled)?;
        let temp = self
            .blocking(move || {
                let dest = dir.prepare(&key_owned, &relative)?;
                let mut temp = dir.temp_file(&key_owned, &dest)?;
                if ranged {
                    temp.set_len(&key_owned, size)?;
                    temp.enable_direct();
                }
                Ok(temp)
            })
            .await?;
        drop(entry);
        let temp = Arc::new(temp);
        let mut permit = Some(permit);
        let mut retry = 0;
        let written = loop {
            let attempt = if ranged {
                self.fetch_parts(object, &temp, permit.take()).await
            } else {
                self.fetch_whole(object, &temp).await
            };
            match attempt {
                // A mismatch cannot be pinned on a part: fetch the object again.
                Err(error @ Error::Checksum { .. }) if retry < self.retry.retries => {
                    tracing::debug!(key, %error, "fetching again");
                    self.stats.retries.fetch_add(1, Ordering::Relaxed);
                    retry += 1;
                }
                outcome => break outcome?,
            }
        };
        drop(permit);
        let key_owned = key.to_owned();
        let temp = Arc::into_inner(temp).expect("every part has finished");
        let _entry = self.dir_ops.acquire().await.map_err(|_| Error::Cancelled)?;
        self.blocking(move || temp.commit(&key_owned)).await?;
        Ok(written)
    }

    /// The parts of a large object, up to [`PARTS_PER_OBJECT`] at once, each with a permit.
    async fn fetch_parts(
        &self,
        object: &ObjectInfo,
        temp: &Arc<TempFile>,
        first: Option<OwnedSemaphorePermit>,
    ) -> Result<u64> {
        let expected = match self.verify {
            true => self.head_checksum(object).await?,
            false => None,
        };
        let crc = expected.filter(|e| matches!(e, Expected::Crc(..)));
        let part_size = self.parts.part_size.max(1);
        let parts = object.size.div_ceil(part_size);
        let mut crcs = vec![(0u64, 0u64); parts as usize];
        let mut next = 0;
        let mut spare = first;
        let mut running = FuturesUnordered::new();
        let mut written = 0;
        while next < parts || !running.is_empty() {
            // Start parts while permits are at hand: this object's own, or free ones.
            while next < parts && running.len() < PARTS_PER_OBJECT {
                let permit = match spare.take() {
                    Some(permit) => permit,
                    None => match self.permits.clone().try_acquire_owned() {
                        Ok(permit) => permit,
                        Err(_) => break,
                    },
                };
                let start = next * part_size;
                let len = part_size.min(object.size - start);
                let index = next as usize;
                running.push(async move {
                    // CRCs of parts combine; an MD5 is computed once the file is whole.
                    let mut hasher = crc.map(Expected::hasher);
                    let written = self
                        .fetch_range(object, temp, start, Some(len), &mut hasher)
                        .await
                        .map(|n| (index, n, hasher.map_or(0, |h| h.crc())));
                    (written, permit)
                });
                next += 1;
            }
            if running.is_empty() {
                // Nothing in flight and no permit: wait for one, holding none.
                spare = Some(self.acquire().await?);
                continue;
            }
            let want_more = next < parts && running.len() < PARTS_PER_OBJECT;
            tokio::select! {
                Some((result, permit)) = running.next() => {
                    let (index, n, crc) = result?;
                    written += n;
                    crcs[index] = (crc, n);
                    spare = Some(permit);
                }
                permit = self.acquire(), if want_more => spare = Some(permit?),
            }
        }
        match expected {
            Some(expected @ Expected::Crc(..)) => checksum::verify_parts(&crcs, expected)
                .map_err(|reason| self.checksum_error(&object.key, reason))?,
            // No full-object CRC but a plain-MD5 ETag: read the file back (the only cost of
            // verification that is not free; objects with a CRC never pay it).
            Some(expected @ Expected::Md5(_)) => {
                let mut hasher = expected.hasher();
                // In slices: a cancelled run waits for one slice, not for a whole file.
                for start in (0..object.size).step_by(READ_BACK_SLICE as usize) {
                    let (temp, key) = (temp.clone(), object.key.clone());
                    let len = READ_BACK_SLICE.min(object.size - start);
                    hasher = self
                        .blocking(move || temp.read_back(&key, hasher, start, len))
                        .await?;
                }
                hasher
                    .verify(expected)
                    .map_err(|reason| self.checksum_error(&object.key, reason))?
            }
            None => return Ok(written),
        }
        self.stats.verified.fetch_add(1, Ordering::Relaxed);
        Ok(written)
    }

    /// The whole object in one GET (resumed if it breaks off), verified against the checksum
    /// its response carries.
    async fn fetch_whole(&self, object: &ObjectInfo, temp: &Arc<TempFile>) -> Result<u64> {
        let mut hasher = None;
        let written = self.fetch_range(object, temp, 0, None, &mut hasher).await?;
        temp.set_len(&object.key, written)?;
        Ok(written)
    }

    /// The full-object checksum of a large object (else its plain-MD5 ETag), from a HEAD of
    /// the listed version.
    async fn head_checksum(&self, object: &ObjectInfo) -> Result<Option<Expected>> {
        let head = self.head(&object.key, object.etag.clone()).await?;
        Ok(Expected::from_response(
            head.checksum_crc64_nvme(),
            head.checksum_crc32_c(),
            head.checksum_crc32(),
            head.checksum_type().map(|t| t.as_str()),
            head.e_tag(),
            head.server_side_encryption()
                .is_some_and(|s| s.as_str() != "AES256")
                || head.sse_customer_algorithm().is_some(),
            true,
        ))
    }

    /// Whether `key` exists: one HEAD, for a folder name the listing did not see (see
    /// [`crate::folders`]). Access denied counts as absent: such a key cannot be downloaded
    /// to take the path either.
    pub async fn exists(&self, key: &str) -> Result<bool> {
        match self.head(key, None).await {
            Ok(_) => Ok(true),
            Err(e) if matches!(e.code(), Some("NotFound" | "NoSuchKey" | "AccessDenied")) => {
                Ok(false)
            }
            Err(e) => Err(e),
        }
    }

    /// HeadObject, retried.
    async fn head(&self, key: &str, if_match: Option<String>) -> Result<HeadObjectOutput> {
        self.retry
            .run(&self.stats, Some(&self.throttle), || async {
                let request = self
                    .client
                    .head_object()
                    .bucket(&self.bucket)
                    .key(key)
                    .set_if_match(if_match.clone())
                    .send();
                self.retry
                    .timed(key, async {
                        request
                            .await
                            .map_err(|e| self.get_error(key, ServiceError::from_sdk(e)))
                    })
                    .await
            })
            .await
    }

    /// What the response vouches for, when verification is on.
    fn expected(&self, response: &GetObjectOutput, md5_allowed: bool) -> Option<Expected> {
        if !self.verify {
            return None;
        }
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
            md5_allowed,
        )
    }

    fn checksum_error(&self, key: &str, reason: String) -> Error {
        Error::Checksum {
            bucket: self.bucket.clone(),
            key: key.to_owned(),
            reason,
        }
    }

    /// `len` bytes from `start` (or, with `len` `None`, the whole object) written at their
    /// offset. A transient failure is retried; bytes already written are kept and the next
    /// attempt asks for the rest only.
    /// `hasher` sees every byte in order: a part's CRC, or (for a whole object, set from its
    /// first response) the object's checksum, verified at the end.
    async fn fetch_range(
        &self,
        object: &ObjectInfo,
        temp: &Arc<TempFile>,
        start: u64,
        len: Option<u64>,
        hasher: &mut Option<Hasher>,
    ) -> Result<u64> {
        let mut expected = None;
        let key = object.key.as_str();
        // Parts, and resumed requests, must all come from the version first seen.
        let mut etag = len.and(object.etag.clone());
        let mut end = len.map(|len| start + len);
        let mut offset = start;
        let mut retry = 0;
        loop {
            let resuming = offset > start;
            let range = match (end, resuming || len.is_some()) {
                (_, false) => None,
                (Some(end), true) => Some(format!("bytes={offset}-{}", end - 1)),
                (None, true) => Some(format!("bytes={offset}-")),
            };
            let if_match = if range.is_some() { etag.clone() } else { None };
            let mut attempt = Attempt::default();
            let outcome = self
                .stream(
                    key,
                    temp,
                    offset,
                    range,
                    if_match,
                    &mut attempt,
                    hasher,
                    &mut expected,
                )
                .await;
            offset += attempt.written;
            if etag.is_none() {
                etag = attempt.etag;
            }
            if end.is_none() {
                end = attempt.end;
            }
            match outcome {
                Ok(()) => break,
                // The body broke off after its last byte: nothing is missing.
                Err(_) if end == Some(offset) => break,
                Err(error) if error.is_retryable() && retry < self.retry.retries => {
                    self.throttle.failed(&error, &self.stats);
                    let counter = if attempt.written > 0 || resuming {
                        &self.stats.resumes
                    } else {
                        &self.stats.retries
                    };
                    counter.fetch_add(1, Ordering::Relaxed);
                    tracing::debug!(key, %error, offset, retry, "retrying");
                    tokio::time::sleep(self.retry.backoff(retry)).await;
                    retry += 1;
                }
                Err(error) => return Err(error),
            }
        }
        self.throttle.succeeded();
        let written = offset - start;
        // A whole object's checksum is verified here; a part's CRC is left in `hasher` for
        // the caller to combine.
        if let Some(expected) = expected {
            if let Some(hasher) = hasher.take() {
                hasher
                    .verify(expected)
                    .map_err(|reason| self.checksum_error(key, reason))?;
                self.stats.verified.fetch_add(1, Ordering::Relaxed);
            }
        }
        if let Some(len) = len {
            if written != len {
                return Err(self.get_error(
                    key,
                    ServiceError::protocol(format!(
                        "the body ended after {written} of {len} bytes"
                    )),
                ));
            }
        }
        Ok(written)
    }

    /// One GET from `offset`, its body written as it arrives. `attempt` says how far it got.
    #[allow(clippy::too_many_arguments)]
    async fn stream(
        &self,
        key: &str,
        temp: &Arc<TempFile>,
        offset: u64,
        range: Option<String>,
        if_match: Option<String>,
        attempt: &mut Attempt,
        hasher: &mut Option<Hasher>,
        expected: &mut Option<Expected>,
    ) -> Result<()> {
        let response = self.get(key, range.clone(), if_match).await?;
        if range.is_none() {
            // A whole object (first attempt): its response carries the checksum to verify.
            *expected = self.expected(&response, true);
            *hasher = expected.map(Expected::hasher);
        }
        attempt.etag = response.e_tag().map(str::to_owned);
        let length = response.content_length().map(|n| n.max(0) as u64);
        attempt.end = length.map(|n| offset + n);
        if let (Some(range), Some(got)) = (&range, length) {
            if let Some(want) = range_len(range) {
                if got != want {
                    return Err(self.get_error(
                        key,
                        ServiceError::protocol(format!(
                            "asked for {want} bytes at offset {offset}, the server sent {got}: it may ignore Range requests"
                        )),
                    ));
                }
            }
        }
        let mut body = response.body;
        let mut batch = AlignedBuffer::new(match range.is_some() {
            true => PART_WRITE_BATCH,
            false => WRITE_BATCH,
        });
        let mut at = offset;
        loop {
            // A broken or stalled body ends this attempt; what arrived is written first.
            let (chunk, error) =
                match tokio::time::timeout(self.retry.idle_timeout, body.try_next()).await {
                    Ok(Ok(chunk)) => (chunk, None),
                    Ok(Err(e)) => (None, Some(self.get_error(key, ServiceError::body(e)))),
                    Err(_) => (None, Some(self.stalled(key))),
                };
            let done = chunk.is_none();
            let mut data: &[u8] = chunk.as_deref().unwrap_or_default();
            if let Some(hasher) = hasher.as_mut() {
                hasher.update(data);
            }
            while !data.is_empty() || (done && !batch.is_empty()) {
                data = &data[batch.push(data)..];
                if !batch.is_full() && !done {
                    break;
                }
                // Full (or the body is over): write it on the blocking pool and take the
                // buffer back for the next batch.
                let (temp, key_owned) = (temp.clone(), key.to_owned());
                let full = std::mem::replace(&mut batch, AlignedBuffer::new(0));
                let (result, mut full) = self
                    .blocking(move || Ok((temp.write_at(&key_owned, full.filled(), at), full)))
                    .await?;
                result?;
                let len = full.filled().len() as u64;
                self.reporter.bytes_written(key, len);
                at += len;
                attempt.written += len;
                full.clear();
                batch = full;
            }
            if let Some(error) = error {
                return Err(error);
            }
            if done {
                return Ok(());
            }
        }
    }

    async fn get(
        &self,
        key: &str,
        range: Option<String>,
        if_match: Option<String>,
    ) -> Result<GetObjectOutput> {
        let request = self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .set_range(range)
            .set_if_match(if_match)
            .send();
        self.retry
            .timed(key, async {
                request
                    .await
                    .map_err(|e| self.get_error(key, ServiceError::from_sdk(e)))
            })
            .await
    }

    fn stalled(&self, key: &str) -> Error {
        Error::Timeout(format!(
            "GET s3://{}/{key}: no bytes for {:?}",
            self.bucket, self.retry.idle_timeout
        ))
    }

    async fn acquire(&self) -> Result<OwnedSemaphorePermit> {
        self.permits
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| Error::Cancelled)
    }

    fn get_error(&self, key: &str, source: ServiceError) -> Error {
        Error::Get {
            bucket: self.bucket.clone(),
            key: key.to_owned(),
            source,
        }
    }

    /// Runs file-system work on the blocking pool, tracked so that the run can wait for it:
    /// a write that outlives its cancelled task still finishes (or cleans up) before the run
    /// ends.
    async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce() -> Result<T> + Send + 'static,
    ) -> Result<T> {
        match self.blocking.spawn_blocking(f).await {
            Ok(result) => result,
            Err(join) if join.is_panic() => std::panic::resume_unwind(join.into_panic()),
            Err(_) => Err(Error::Cancelled),
        }
    }
}

/// What one GET attempt achieved.
#[derive(Debug, Default)]
struct Attempt {
    written: u64,
    etag: Option<String>,
    /// The offset just past the response's last byte, when its length was announced.
    end: Option<u64>,
}

/// The length of `bytes=a-b`.
fn range_len(range: &str) -> Option<u64> {
    let (a, b) = range.strip_prefix("bytes=")?.split_once('-')?;
    Some(b.parse::<u64>().ok()? - a.parse::<u64>().ok()? + 1)
}
