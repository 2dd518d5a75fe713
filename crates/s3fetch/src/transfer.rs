//! Downloading one object: a single GET whose body is streamed into a temporary file that is
//! renamed into place when complete.
//!
//! Small objects (by their listed size) are collected in memory and written with one blocking
//! call: one thread hop per object instead of one per chunk. Larger ones are streamed chunk by
//! chunk, so memory per object stays bounded whatever its size.

use std::path::Path;

use aws_sdk_s3::Client;
use tokio::io::AsyncWriteExt;
use tokio_util::task::TaskTracker;

use crate::error::{Error, Result, ServiceError};
use crate::progress::{ObjectInfo, Reporter};
use crate::write::{self, TempFile};

/// Objects up to this size are buffered whole before writing.
const SMALL_OBJECT: u64 = 256 * 1024;

/// Fetches `object` from `bucket` and writes it atomically to `dest`. Returns bytes written.
pub(crate) async fn download_object(
    client: &Client,
    bucket: &str,
    object: &ObjectInfo,
    dest: &Path,
    reporter: &dyn Reporter,
    blocking: &TaskTracker,
) -> Result<u64> {
    let key = object.key.as_str();
    let get_error = |source| Error::Get {
        bucket: bucket.to_owned(),
        key: key.to_owned(),
        source,
    };
    let response = client
        .get_object()
        .bucket(bucket)
        .key(key)
        .send()
        .await
        .map_err(|e| get_error(ServiceError::from_sdk(e)))?;
    let mut body = response.body;

    if object.size <= SMALL_OBJECT {
        let bytes = body
            .collect()
            .await
            .map_err(|e| get_error(ServiceError::body(e)))?
            .into_bytes();
        let len = bytes.len() as u64;
        let (key_owned, dest_owned) = (key.to_owned(), dest.to_owned());
        run_blocking(blocking, move || {
            write::write_whole(&key_owned, &dest_owned, &bytes)
        })
        .await?;
        reporter.bytes_written(key, len);
        return Ok(len);
    }

    let (key_owned, dest_owned) = (key.to_owned(), dest.to_owned());
    let temp = run_blocking(blocking, move || TempFile::create(&key_owned, &dest_owned)).await?;
    let mut file = tokio::fs::File::from_std(
        temp.file()
            .try_clone()
            .map_err(|e| Error::io(key, "opening", dest.to_owned(), e))?,
    );
    let mut written = 0u64;
    while let Some(chunk) = body
        .try_next()
        .await
        .map_err(|e| get_error(ServiceError::body(e)))?
    {
        file.write_all(&chunk)
            .await
            .map_err(|e| Error::io(key, "writing", dest.to_owned(), e))?;
        written += chunk.len() as u64;
        reporter.bytes_written(key, chunk.len() as u64);
    }
    file.flush()
        .await
        .map_err(|e| Error::io(key, "writing", dest.to_owned(), e))?;
    drop(file);
    let key_owned = key.to_owned();
    run_blocking(blocking, move || temp.commit(&key_owned)).await?;
    Ok(written)
}

/// Runs file-system work on the blocking pool, tracked so that the run can wait for it: a
/// write that outlives its cancelled task still finishes (or cleans up) before the run ends.
async fn run_blocking<T: Send + 'static>(
    tracker: &TaskTracker,
    f: impl FnOnce() -> Result<T> + Send + 'static,
) -> Result<T> {
    match tracker.spawn_blocking(f).await {
        Ok(result) => result,
        Err(join) if join.is_panic() => std::panic::resume_unwind(join.into_panic()),
        Err(_) => Err(Error::Cancelled),
    }
}
