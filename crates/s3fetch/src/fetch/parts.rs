//! A large object as ranged parts, several at once.
//!
//! Parts (of [`super::PartOptions::part_size_for`] bytes) are fetched [`PARTS_PER_OBJECT`] at a time at most, each with a
//! permit of the run's budget, and each is a [`Span`] in the retry loop: a failed part is
//! retried alone, a broken one resumed. Each part's CRC is kept for the caller to combine into
//! the object's ([`fetch`]). Into a resumable partial file ([`crate::resume`]), the parts its
//! journal lists are not fetched again ([`resumed_parts`]).

use std::collections::BTreeMap;
use std::sync::Arc;

use futures::stream::{FuturesUnordered, StreamExt};

use crate::checksum::{CrcKind, Expected};
use crate::error::Result;
use crate::fetch::body::Span;
use crate::fetch::Fetcher;
use crate::object::ObjectInfo;
use crate::s3::limit::Permit;
use crate::write::TempFile;

/// Parts of one object in flight at most (the run's budget limits the total).
pub(super) const PARTS_PER_OBJECT: usize = 6;

/// Fetches every part of `object` into `temp`; returns each part's `(crc, len)` in order (CRCs
/// of `checksum`'s kind when it is a CRC; else CRC64NVMEs for a partial file's journal, or 0).
///
/// Parts take the object's own first permit, then any that are free: a large object takes
/// idle capacity, never more than its share when small objects wait. The caller combines the
/// CRCs into the object's: free, unlike an MD5, which is read back from the file. Each part
/// fetched into a partial file is journaled when it is done. Every journaled part has a CRC,
/// whatever the object's checksum: where the object has no CRC (an MD5 or multipart ETag, or
/// checksums off) the part's is a CRC64NVME of its bytes made for the journal alone. So the
/// journal is never written with `fsync` and need not be: a part the journal lists whose bytes
/// a power loss took is told by its CRC and fetched.
pub(super) async fn fetch(
    fetcher: &Fetcher,
    object: &ObjectInfo,
    temp: &Arc<TempFile>,
    first: Option<Permit>,
    checksum: Option<Expected>,
) -> Result<Vec<(u64, u64)>> {
    let crc = checksum
        .filter(|e| matches!(e, Expected::Crc(..)))
        .or_else(|| temp.journal().map(|_| Expected::Crc(CrcKind::Crc64Nvme, 0)));
    let part_size = fetcher.parts.part_size_for(object.size);
    let parts = object.size.div_ceil(part_size);
    let mut crcs = vec![(0u64, 0u64); parts as usize];
    let resumed = resumed_parts(fetcher, object, temp, crc, part_size).await?;
    for (&index, &(len, crc)) in &resumed {
        crcs[index as usize] = (crc, len);
    }
    let todo: Vec<u64> = (0..parts).filter(|i| !resumed.contains_key(i)).collect();
    let parts = todo.len() as u64;
    let mut next = 0;
    let mut spare = first;
    let mut running = FuturesUnordered::new();
    while next < parts || !running.is_empty() {
        // Start parts while permits are at hand: this object's own, or free ones.
        while next < parts && running.len() < PARTS_PER_OBJECT {
            let Some(permit) = spare
                .take()
                .or_else(|| fetcher.bucket.free_transfer_permit())
            else {
                break;
            };
            let index = todo[next as usize] as usize;
            let start = index as u64 * part_size;
            let len = part_size.min(object.size - start);
            running.push(async move {
                let mut span = Span::new(
                    fetcher,
                    object,
                    temp,
                    start,
                    Some(len),
                    crc.map(Expected::hasher),
                );
                let outcome = fetcher
                    .bucket
                    .retried(&mut span)
                    .await
                    .map(|()| (index, len, span.hasher.map_or(0, |h| h.crc())));
                (outcome, permit)
            });
            next += 1;
        }
        if running.is_empty() {
            // Nothing in flight and no permit: wait for one, holding none.
            spare = Some(fetcher.bucket.transfer_permit().await?);
            continue;
        }
        let want_more = next < parts && running.len() < PARTS_PER_OBJECT;
        tokio::select! {
            Some((outcome, permit)) = running.next() => {
                let (index, len, crc) = outcome?;
                crcs[index] = (crc, len);
                if let Some(mut journal) = temp.journal() {
                    journal.finished(index as u64, len, crc);
                }
                spare = Some(permit);
            }
            permit = fetcher.bucket.transfer_permit(), if want_more => spare = Some(permit?),
        }
    }
    Ok(crcs)
}

/// The parts of a resumed partial file that are done and check out: by index, (length, CRC).
/// Each is read back and hashed (on the blocking pool) with `crc`'s kind; a part whose bytes
/// do not match its journal entry is forgotten and fetched.
async fn resumed_parts(
    fetcher: &Fetcher,
    object: &ObjectInfo,
    temp: &Arc<TempFile>,
    crc: Option<Expected>,
    part_size: u64,
) -> Result<BTreeMap<u64, (u64, u64)>> {
    let Some(listed) = temp.journal().map(|j| j.done().clone()) else {
        return Ok(BTreeMap::new());
    };
    let mut good = BTreeMap::new();
    for (index, (len, want)) in listed {
        let start = index * part_size;
        let fits = start < object.size && len == part_size.min(object.size - start);
        let checks = match (fits, crc) {
            // A journal always has a CRC kind to check with (see `fetch`).
            (false, _) | (true, None) => false,
            (true, Some(expected)) => {
                let (temp, key) = (temp.clone(), object.key.clone());
                let hasher = fetcher
                    .disk
                    .pool(move || temp.read_back(&key, expected.hasher(), start, len))
                    .await?;
                hasher.crc() == want
            }
        };
        if checks {
            good.insert(index, (len, want));
        } else if let Some(mut journal) = temp.journal() {
            tracing::debug!(
                key = object.key,
                index,
                "a journaled part does not check out"
            );
            journal.forget(Some(index));
        }
    }
    if !good.is_empty() {
        tracing::debug!(key = object.key, parts = good.len(), "resuming");
        fetcher.resumed(good.values().map(|(len, _)| len).sum());
    }
    Ok(good)
}
