//! A small object: one GET collected in memory, verified, written by one call.
//!
//! The body's chunks are kept as received (no copy into one buffer) and checked against the
//! checksum the answer carries before anything touches the disk; a failed try, whether the
//! body broke off or did not match, fetches the object again whole (it is at most 256 KiB).
//! The file is created, filled and linked in with one call (see [`super::disk`] for where it
//! runs), taking one of the directory-operation permits. Under a memory cap the GET waits for
//! room for the object's bytes, held until they are written.

use std::path::Path;

use bytes::Bytes;

use crate::checksum::Expected;
use crate::error::{Error, Result};
use crate::fetch::Fetcher;
use crate::object::ObjectInfo;
use crate::s3::limit::Permit;
use crate::write;

pub(super) async fn fetch(
    fetcher: &Fetcher,
    object: &ObjectInfo,
    relative: &Path,
    permit: Permit,
) -> Result<u64> {
    let bucket = &fetcher.bucket;
    let key = object.key.as_str();
    let memory = std::sync::Mutex::new(bucket.reserve_memory(object.size).await?);
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
            let response = bucket.get(key, None, None).await?;
            let checksum = response.head.checksum;
            let mut body = response.body;
            let mut chunks: Vec<Bytes> = Vec::new();
            loop {
                match bucket.next_chunk(&mut body).await {
                    Ok(Some(Ok(chunk))) => {
                        count(Some(chunk.len() as u64));
                        chunks.push(chunk)
                    }
                    Ok(None) => break,
                    Ok(Some(Err(e))) => return Err(bucket.get_error(key, e)),
                    Err(silent) => {
                        return Err(Error::Timeout {
                            key: Some(key.to_owned()),
                            reason: format!(
                                "GET s3://{}/{key}: no bytes for {silent:.1?}",
                                bucket.name()
                            ),
                        })
                    }
                }
            }
            if let Some(expected) = checksum {
                let mut hasher = Expected::hasher(expected);
                chunks.iter().for_each(|chunk| hasher.update(chunk));
                hasher
                    .verify(expected)
                    .map_err(|reason| bucket.checksum_error(key, reason))?;
                fetcher.verified();
            }
            Ok(chunks)
        })
        .await?;
    let len = chunks.iter().map(|b| b.len() as u64).sum();
    let (dir, key_owned, relative) = (fetcher.dir.clone(), key.to_owned(), relative.to_owned());
    let stamp = fetcher.stamp(object);
    let _entry = fetcher
        .dir_ops
        .acquire()
        .await
        .map_err(|_| Error::Cancelled)?;
    fetcher
        .disk
        .quick(move || write::write_whole(&dir, &key_owned, &relative, &chunks, &stamp))
        .await?;
    // Held until written: a download's memory is bounded by the requests in flight.
    drop(permit);
    drop(memory);
    fetcher.reporter.bytes_written(key, len);
    Ok(len)
}
