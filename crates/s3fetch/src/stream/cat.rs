//! `cat`: an [`ObjectStream`] written to a pipe, raw (bytes one after the other) or as a tar
//! stream whose entries are the paths a download would write. Writes run on a thread of
//! their own, chunk by chunk as received (no copy); a reader that closes the pipe ends the
//! run quietly, its requests cancelled.

use std::io::Write;
use std::path::PathBuf;
use std::time::UNIX_EPOCH;

use bytes::Bytes;
use tokio::sync::mpsc;

use super::{tar, ObjectStream};
use crate::error::{Error, Result};
use crate::options::DownloadOptions;
use crate::progress::Failure;

/// Chunks on their way to the writing thread, at most.
const CHUNKS_QUEUED: usize = 4;

/// How `cat` writes the objects.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CatFormat {
    /// Each object's bytes, one object after the other.
    #[default]
    Raw,
    /// A POSIX tar stream (ustar, pax headers for long paths): each object an entry named by
    /// the path a download would write it to, with its size and modification time.
    Tar,
}

impl CatFormat {
    /// Every value's name, as [`str::parse`] takes them.
    pub const NAMES: [&'static str; 2] = ["raw", "tar"];

    /// The format's name (`raw`, `tar`).
    pub fn as_str(self) -> &'static str {
        match self {
            CatFormat::Raw => "raw",
            CatFormat::Tar => "tar",
        }
    }
}

impl std::fmt::Display for CatFormat {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for CatFormat {
    type Err = Error;
    fn from_str(text: &str) -> Result<Self> {
        match text {
            "raw" => Ok(CatFormat::Raw),
            "tar" => Ok(CatFormat::Tar),
            _ => Err(Error::option(
                "format",
                format!("must be \"raw\" or \"tar\", not {text:?}"),
            )),
        }
    }
}

/// What a `cat` run did.
#[derive(Debug, Default)]
#[non_exhaustive]
pub struct CatSummary {
    /// Objects written whole.
    pub objects: u64,
    /// Bytes of objects written (tar headers not counted).
    pub bytes: u64,
    /// Objects verified against a checksum.
    pub verified: u64,
    /// Objects left out because they failed before any of their bytes were written (a
    /// failure after that ends the run with its error instead).
    pub failures: Vec<Failure>,
    /// The reader closed the pipe: the run stopped there, quietly.
    pub closed: bool,
    /// The most bytes of bodies held at once (see [`ObjectStream::memory_peak`]).
    pub memory_peak: u64,
}

/// Writes the objects `options` selects to `out` in key order as `format` says (see
/// [`ObjectStream::open`] for which objects).
///
/// An object that fails before any of its bytes are written is left out and listed in
/// [`CatSummary::failures`]; one that fails after (a body that cannot be completed, a
/// checksum mismatch found at its end) ends the run with `Err` naming its key: the bytes
/// already written cannot be taken back, so a consumer of the pipe must check the exit
/// status. A reader that closes the pipe ends the run with `Ok` and [`CatSummary::closed`].
pub async fn cat(
    options: DownloadOptions,
    format: CatFormat,
    out: impl Write + Send + 'static,
) -> Result<CatSummary> {
    let mut stream = ObjectStream::open(options).await?;
    let (tx, rx) = mpsc::channel::<Bytes>(CHUNKS_QUEUED);
    let writer = std::thread::Builder::new()
        .name("s3fetch-cat".into())
        .spawn(move || write_all(out, rx))
        .map_err(Error::Runtime)?;
    let mut summary = CatSummary::default();
    let mut key = String::new();
    let written = copy(&mut stream, format, &tx, &mut summary, &mut key).await;
    drop(tx);
    drop(stream);
    let wrote = writer
        .join()
        .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
    match (written, wrote) {
        // The reader is gone: whatever the copy was doing stops there, quietly.
        (_, Err(error)) if error.kind() == std::io::ErrorKind::BrokenPipe => {
            summary.closed = true;
            Ok(summary)
        }
        (_, Err(error)) => Err(Error::io(
            &key,
            "writing",
            PathBuf::from("the output"),
            error,
        )),
        (Err(error), Ok(())) => Err(error),
        (Ok(()), Ok(())) => Ok(summary),
    }
}

/// The writing thread: every chunk to `out` as it comes, then a flush.
fn write_all(mut out: impl Write, mut rx: mpsc::Receiver<Bytes>) -> std::io::Result<()> {
    while let Some(chunk) = rx.blocking_recv() {
        out.write_all(&chunk)?;
    }
    out.flush()
}

/// Every object of `stream` into `tx`; `key` is the one being written. `Ok` also when the
/// writer is gone (it tells why).
async fn copy(
    stream: &mut ObjectStream,
    format: CatFormat,
    tx: &mpsc::Sender<Bytes>,
    summary: &mut CatSummary,
    key: &mut String,
) -> Result<()> {
    while let Some(object) = stream.next().await {
        let mut object = object?;
        key.clone_from(&object.info.key);
        // Nothing of an object is written before its first bytes are here: one that fails
        // by then is left out whole.
        let path = match format {
            CatFormat::Tar => match object.path() {
                Ok(path) => Some(path),
                Err(error) => {
                    summary.failures.push(Failure {
                        key: key.clone(),
                        error,
                    });
                    continue;
                }
            },
            CatFormat::Raw => None,
        };
        let first = match object.chunk().await {
            Ok(first) => first,
            Err(error) => {
                summary.failures.push(Failure {
                    key: key.clone(),
                    error,
                });
                continue;
            }
        };
        let size = object.info.size;
        if let Some(path) = path {
            let mtime = object
                .info
                .last_modified
                .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
                .map_or(0, |d| d.as_secs());
            let header = tar::header(&path.to_string_lossy(), size, mtime);
            if tx.send(header.into()).await.is_err() {
                return Ok(());
            }
        }
        let mut chunk = first;
        while let Some(bytes) = chunk {
            summary.bytes += bytes.len() as u64;
            if tx.send(bytes).await.is_err() {
                return Ok(());
            }
            chunk = object.chunk().await?;
        }
        if format == CatFormat::Tar {
            let padding = tar::padding(size);
            if padding > 0 && tx.send(Bytes::from(vec![0; padding])).await.is_err() {
                return Ok(());
            }
        }
        summary.objects += 1;
    }
    if format == CatFormat::Tar {
        let _ = tx.send(Bytes::from_static(&tar::END)).await;
    }
    summary.verified = stream.verified();
    summary.memory_peak = stream.memory_peak();
    Ok(())
}
