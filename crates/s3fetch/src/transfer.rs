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
//! Bodies are written in batches of [`WRITE_BATCH`] bytes on the blocking pool, so memory per
//! request stays bounded whatever the object's size.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use aws_sdk_s3::Client;
use futures::stream::{FuturesUnordered, StreamExt};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_util::task::TaskTracker;

use crate::error::{Error, Result, ServiceError};
use crate::progress::{ObjectInfo, Reporter};
use crate::write::{self, AlignedBuffer, DownloadDir, TempFile};

/// Objects up to this size are collected in memory and written with one call.
const SMALL_OBJECT: u64 = 256 * 1024;
/// Bytes gathered from a body before they are written (a multiple of the direct-write
/// alignment, so that the batches of a large object's parts can bypass the page cache).
const WRITE_BATCH: usize = 128 * 1024;

/// Default size of a ranged part.
pub const DEFAULT_PART_SIZE: u64 = 8 * 1024 * 1024;
/// Default size above which objects are fetched in ranged parts.
pub const DEFAULT_MULTIPART_THRESHOLD: u64 = 16 * 1024 * 1024;
/// Parts of one object in flight at most (the run's semaphore limits the total).
const PARTS_PER_OBJECT: usize = 8;

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
            let response = self.get(key, None, None).await?;
            let bytes = response
                .body
                .collect()
                .await
                .map_err(|e| self.get_error(key, ServiceError::body(e)))?
                .into_bytes();
            drop(permit);
            let len = bytes.len() as u64;
            let (dir, key_owned, relative) =
                (self.dir.clone(), key.to_owned(), relative.to_owned());
            self.blocking(move || write::write_whole(&dir, &key_owned, &relative, &bytes))
                .await?;
            self.reporter.bytes_written(key, len);
            return Ok(len);
        }

        let (dir, key_owned, relative) = (self.dir.clone(), key.to_owned(), relative.to_owned());
        let size = object.size;
        let ranged = size > self.parts.threshold;
        let temp = self
            .blocking(move || {
                let dest = dir.prepare(&key_owned, &relative)?;
                let mut temp = TempFile::create(&key_owned, &dest)?;
                if ranged {
                    temp.set_len(&key_owned, size)?;
                    temp.enable_direct();
                }
                Ok(temp)
            })
            .await?;
        let temp = Arc::new(temp);
        let written = if ranged {
            self.fetch_parts(object, &temp, permit).await?
        } else {
            let written = self.fetch_range(object, &temp, 0, None).await?;
            drop(permit);
            written
        };
        let key_owned = key.to_owned();
        let temp = Arc::into_inner(temp).expect("every part has finished");
        self.blocking(move || temp.commit(&key_owned)).await?;
        Ok(written)
    }

    /// The parts of a large object, up to [`PARTS_PER_OBJECT`] at once, each with a permit.
    async fn fetch_parts(
        &self,
        object: &ObjectInfo,
        temp: &Arc<TempFile>,
        first: OwnedSemaphorePermit,
    ) -> Result<u64> {
        let part_size = self.parts.part_size.max(1);
        let parts = object.size.div_ceil(part_size);
        let mut next = 0;
        let mut spare = Some(first);
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
                running.push(async move {
                    let written = self.fetch_range(object, temp, start, Some(len)).await;
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
                    written += result?;
                    spare = Some(permit);
                }
                permit = self.acquire(), if want_more => spare = Some(permit?),
            }
        }
        Ok(written)
    }

    /// One GET, whole (`len` `None`) or of `len` bytes from `start`, written at `start`.
    async fn fetch_range(
        &self,
        object: &ObjectInfo,
        temp: &Arc<TempFile>,
        start: u64,
        len: Option<u64>,
    ) -> Result<u64> {
        let key = object.key.as_str();
        let range = len.map(|len| format!("bytes={start}-{}", start + len - 1));
        // Parts must all come from the version that was listed.
        let if_match = len.and(object.etag.clone());
        let response = self.get(key, range, if_match).await?;
        if let (Some(len), Some(got)) = (len, response.content_length()) {
            if got as u64 != len {
                return Err(self.get_error(
                    key,
                    ServiceError::protocol(format!(
                        "asked for {len} bytes at offset {start}, the server sent {got}: it may ignore Range requests"
                    )),
                ));
            }
        }
        let mut body = response.body;
        let mut batch = AlignedBuffer::new(WRITE_BATCH);
        let mut offset = start;
        loop {
            let chunk = body
                .try_next()
                .await
                .map_err(|e| self.get_error(key, ServiceError::body(e)))?;
            let done = chunk.is_none();
            let mut data: &[u8] = chunk.as_deref().unwrap_or_default();
            while !data.is_empty() || (done && !batch.is_empty()) {
                data = &data[batch.push(data)..];
                if !batch.is_full() && !done {
                    break;
                }
                // Full (or the body is over): write it on the blocking pool and take the
                // buffer back for the next batch.
                let (temp, key_owned, at) = (temp.clone(), key.to_owned(), offset);
                let full = std::mem::replace(&mut batch, AlignedBuffer::new(0));
                let (result, mut full) = self
                    .blocking(move || Ok((temp.write_at(&key_owned, full.filled(), at), full)))
                    .await?;
                result?;
                let len = full.filled().len() as u64;
                self.reporter.bytes_written(key, len);
                offset += len;
                full.clear();
                batch = full;
            }
            if done {
                break;
            }
        }
        let written = offset - start;
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

    async fn get(
        &self,
        key: &str,
        range: Option<String>,
        if_match: Option<String>,
    ) -> Result<aws_sdk_s3::operation::get_object::GetObjectOutput> {
        self.client
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .set_range(range)
            .set_if_match(if_match)
            .send()
            .await
            .map_err(|e| self.get_error(key, ServiceError::from_sdk(e)))
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

/// The destination of `relative` under `dir`, for results.
pub(crate) fn destination(dir: &DownloadDir, relative: &Path) -> PathBuf {
    dir.root().join(relative)
}
