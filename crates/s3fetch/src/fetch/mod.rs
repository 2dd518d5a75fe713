//! Fetching one object into its file, by size: **small** objects in one GET collected in
//! memory ([`SMALL_OBJECT`], [`small`]), **medium** ones in one GET streamed into a temporary
//! file ([`body`]), **large** ones as ranged GETs, several at once ([`PartOptions`],
//! [`parts`]). Every request, whole object or part, holds one permit of the run's budget
//! ([`Budget`](crate::s3::limit::Budget): large and small objects share one) and runs in the
//! one retry loop ([`crate::s3::retry`]). The whole object is checked against its checksum
//! before it is renamed into place ([`Whole`]).

mod body;
mod disk;
mod parts;
pub(crate) mod skip;
mod small;
#[cfg(test)]
mod tests;

use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use tokio::sync::Semaphore;

use crate::checksum::{self, Expected};
use crate::error::{Error, Result};
use crate::object::ObjectInfo;
use crate::progress::Reporter;
use crate::resume;
use crate::s3::limit::Permit;
use crate::s3::retry::Attempt;
use crate::s3::Bucket;
use crate::write::{DownloadDir, Stamp, TempFile};
pub(crate) use disk::Disk;

/// Objects up to this size (by listed size) take one GET whose body is collected in memory,
/// verified, and written by one call that also creates the directories and renames the file
/// into place ([`small`]).
const SMALL_OBJECT: u64 = 256 * 1024;
/// Bytes read back per blocking call to check an MD5 (about 50 ms of hashing).
const READ_BACK_SLICE: u64 = 32 * 1024 * 1024;

/// How objects are split into requests.
///
/// Objects above `threshold` come as ranged GETs of `part_size` bytes or more
/// ([`PartOptions::part_size_for`]), several at once, each written at its offset with
/// `If-Match` on the listed ETag, so an object replaced mid-download fails instead of mixing
/// two versions ([`parts`]).
#[derive(Debug, Clone, Copy)]
pub(crate) struct PartOptions {
    pub part_size: u64,
    pub threshold: u64,
}

/// Parts an object is cut into before its parts grow beyond `part_size`: enough for
/// [`parts::PARTS_PER_OBJECT`] at once and a short tail, few enough that a large object
/// meets few request-level faults (each a retry, a SlowDown also slows the run's pace).
const MOST_PARTS: u64 = 16;
/// Parts grow up to this size (or `part_size`, if larger).
const LARGEST_PART: u64 = 64 << 20;

impl PartOptions {
    /// The part size for an object of `size` bytes: `part_size`, or larger for an object of
    /// more than [`MOST_PARTS`] of them — its size over [`MOST_PARTS`], rounded up to a
    /// multiple of `part_size`, up to [`LARGEST_PART`]. A 512 MiB object comes in 16 parts of 32 MiB (64 of 8 MiB before:
    /// 4.7× the SlowDowns of s5cmd's 50 MiB parts under the same fault rate).
    pub(crate) fn part_size_for(&self, size: u64) -> u64 {
        let part_size = self.part_size.max(1);
        let grown = size.div_ceil(MOST_PARTS).next_multiple_of(part_size);
        part_size.max(grown.min(LARGEST_PART))
    }
}

/// Everything a download needs, shared by all download tasks of a run.
pub(crate) struct Fetcher {
    pub bucket: Arc<Bucket>,
    pub dir: Arc<DownloadDir>,
    pub reporter: Arc<dyn Reporter>,
    pub parts: PartOptions,
    /// Set each file's modification time to its object's LastModified.
    pub preserve_mtime: bool,
    /// Large objects go to resumable partial files ([`crate::resume`]).
    pub resume: bool,
    /// Where file-system work runs ([`disk`]).
    pub disk: Disk,
    /// Creating, linking and renaming files takes the directory's lock in the kernel: with
    /// many at once they spin on it (a fifth of the CPU samples of one profiled run of small
    /// files). These permits keep them to about one per core.
    pub dir_ops: Semaphore,
}

impl Fetcher {
    /// Downloads `object` to `relative` (under the download directory), holding `permit` for
    /// its first request. Returns the bytes written.
    pub(crate) async fn fetch(
        &self,
        object: &ObjectInfo,
        relative: &Path,
        permit: Permit,
    ) -> Result<u64> {
        if object.size <= SMALL_OBJECT {
            return small::fetch(self, object, relative, permit).await;
        }
        let (dir, key, relative_path) = (self.dir.clone(), object.key.clone(), relative.to_owned());
        let size = object.size;
        let ranged = size > self.parts.threshold;
        // A large object with an ETag to check a resumed body against: a partial file.
        let identity = (ranged && self.resume)
            .then_some(())
            .and(object.etag.clone())
            .map(|etag| resume::Identity {
                key: key.clone(),
                etag,
                size,
                part_size: self.parts.part_size_for(size),
            });
        let clear = ranged && !self.resume;
        let entry = self.dir_ops.acquire().await.map_err(|_| Error::Cancelled)?;
        let temp = self
            .disk
            .quick(move || {
                let dest = dir.prepare(&key, &relative_path)?;
                if clear {
                    resume::discard(&dest);
                }
                if let Some(identity) = identity {
                    if let Some(partial) = dir.partial_file(&dest, identity)? {
                        return Ok(partial);
                    }
                }
                let temp = dir.temp_file(&key, &dest)?;
                if ranged {
                    temp.set_len(&key, size)?;
                }
                Ok(temp)
            })
            .await?;
        drop(entry);
        let temp = Arc::new(temp);
        let written = match self.fill(object, &temp, ranged, permit).await {
            Ok(written) => written,
            Err(error) => {
                // A partial file is kept for the next run only if that may succeed: not
                // for a missing, refused or changed object, nor for bytes that kept failing
                // their checksum.
                let transient = error.is_retryable() && !matches!(error, Error::Checksum { .. });
                if !transient && !matches!(error, Error::Cancelled) {
                    temp.discard();
                }
                return Err(error);
            }
        };
        let key = object.key.clone();
        let temp = Arc::into_inner(temp).expect("every part has finished");
        let stamp = self.stamp(object);
        let _entry = self.dir_ops.acquire().await.map_err(|_| Error::Cancelled)?;
        self.disk.quick(move || temp.commit(&key, &stamp)).await?;
        Ok(written)
    }

    /// All of `object`'s bytes into `temp`, verified: the bytes written.
    async fn fill(
        &self,
        object: &ObjectInfo,
        temp: &Arc<TempFile>,
        ranged: bool,
        permit: Permit,
    ) -> Result<u64> {
        // The checksum of a ranged download comes from a HEAD of the listed version (parts
        // carry none); a whole object's from its GET.
        let checksum = match ranged {
            true => {
                self.bucket
                    .head(&object.key, object.etag.as_deref())
                    .await?
                    .checksum
            }
            false => None,
        };
        let mut whole = Whole {
            fetcher: self,
            object,
            temp,
            ranged,
            checksum,
            permit: Some(permit),
        };
        self.bucket.retried(&mut whole).await
    }

    /// What `object`'s file is to carry: its modification time (unless not preserved) and
    /// its ETag.
    fn stamp(&self, object: &ObjectInfo) -> Stamp {
        Stamp {
            mtime: object.last_modified.filter(|_| self.preserve_mtime),
            etag: object.etag.clone(),
        }
    }

    /// Counts bytes taken from an earlier run's partial file.
    fn resumed(&self, bytes: u64) {
        let stats = self.bucket.stats();
        stats.resumed_bytes.fetch_add(bytes, Ordering::Relaxed);
    }

    /// Counts an object whose bytes were checked against a checksum.
    fn verified(&self) {
        self.bucket.stats().verified.fetch_add(1, Ordering::Relaxed);
    }
}

/// All of an object's bytes into its temporary file, then checked against its checksum: one
/// try of the object. Its requests retry on their own; a mismatch tries the object again.
///
/// A body that breaks off or stalls continues from its last byte (Range, `If-Match`), a failed
/// part is retried alone. A mismatch of the whole object cannot be pinned on a part: it
/// fetches the object again (the same retry loop, retrying only that).
struct Whole<'a> {
    fetcher: &'a Fetcher,
    object: &'a ObjectInfo,
    temp: &'a Arc<TempFile>,
    ranged: bool,
    /// A ranged download's checksum, from its HEAD.
    checksum: Option<Expected>,
    /// The object's first permit, for its first request.
    permit: Option<Permit>,
}

impl Attempt for Whole<'_> {
    type Output = u64;

    async fn attempt(&mut self) -> Result<u64> {
        let fetcher = self.fetcher;
        let key = &self.object.key;
        if !self.ranged {
            let (written, checksum, hasher) =
                body::fetch_whole(fetcher, self.object, self.temp).await?;
            self.temp.set_len(key, written)?;
            if let (Some(checksum), Some(hasher)) = (checksum, hasher) {
                hasher
                    .verify(checksum)
                    .map_err(|reason| fetcher.bucket.checksum_error(key, reason))?;
                fetcher.verified();
            }
            return Ok(written);
        }
        let crcs = parts::fetch(
            fetcher,
            self.object,
            self.temp,
            self.permit.take(),
            self.checksum,
        )
        .await?;
        let size = self.object.size;
        let mismatch = |reason| {
            // Tried again whole: no part of this try is taken as done.
            if let Some(mut journal) = self.temp.journal() {
                journal.forget(None);
            }
            fetcher.bucket.checksum_error(key, reason)
        };
        match self.checksum {
            Some(expected @ Expected::Crc(..)) => {
                checksum::verify_parts(&crcs, expected).map_err(mismatch)?
            }
            // No full-object CRC but a plain-MD5 ETag: read the file back (the only cost of
            // verification that is not free; objects with a CRC never pay it).
            Some(expected @ Expected::Md5(_)) => {
                let mut hasher = expected.hasher();
                // In slices: a cancelled run waits for one slice, not for a whole file.
                for start in (0..size).step_by(READ_BACK_SLICE as usize) {
                    let (temp, key) = (self.temp.clone(), key.clone());
                    let len = READ_BACK_SLICE.min(size - start);
                    hasher = fetcher
                        .disk
                        .pool(move || temp.read_back(&key, hasher, start, len))
                        .await?;
                }
                hasher.verify(expected).map_err(mismatch)?
            }
            None => return Ok(size),
        }
        fetcher.verified();
        Ok(size)
    }

    /// The requests retried themselves: only a mismatch of the whole is tried again.
    fn retries(&self, error: &Error) -> bool {
        matches!(error, Error::Checksum { .. })
    }
}
