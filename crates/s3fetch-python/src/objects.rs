//! `iter_objects`: the library's object stream as a Python iterator. The stream runs on the
//! process's runtime and prefetches within its memory cap; [`Objects::__next__`] waits for
//! the next whole object with the GIL released and hands it over as `bytes` (one copy).
//! Dropping or closing the iterator cancels the rest: the listing and every request stop.

use std::sync::Mutex;

use bytes::Bytes;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict};
use s3fetch::{DownloadOptions, Error, ObjectInfo, ObjectStream, S3Uri};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::errors;
use crate::run::TICK;
use crate::runtime;

/// Whole objects handed over and not yet taken by Python, at most (the stream itself holds
/// what its memory cap allows).
const READY: usize = 2;

type Item = Result<(ObjectInfo, Vec<Bytes>), Error>;

/// The objects of one `iter_objects` call, in key order.
#[pyclass(module = "s3fetch._s3fetch")]
pub(crate) struct Objects {
    cancel: CancellationToken,
    items: Mutex<mpsc::Receiver<Item>>,
    /// The task that feeds `items`, until `close` waits for it.
    task: Mutex<Option<tokio::task::JoinHandle<()>>>,
}

#[pymethods]
impl Objects {
    fn __iter__(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        slf
    }

    /// `(key, size, etag, last_modified as seconds since the epoch or None, data)`; raises
    /// the object's (or the listing's) error as an exception of `s3fetch.exceptions`.
    #[allow(clippy::type_complexity)]
    fn __next__<'py>(
        &self,
        py: Python<'py>,
    ) -> PyResult<
        Option<(
            String,
            u64,
            Option<String>,
            Option<f64>,
            Bound<'py, PyBytes>,
        )>,
    > {
        let runtime = runtime::get(py)?;
        let mut guard = self.items.lock().unwrap_or_else(|e| e.into_inner());
        let items: &mut mpsc::Receiver<Item> = &mut guard;
        let item = loop {
            let received = py.detach(|| {
                runtime.block_on(async { tokio::time::timeout(TICK, items.recv()).await })
            });
            match received {
                Ok(item) => break item,
                Err(_) => {
                    if let Err(interrupt) = py.check_signals() {
                        self.cancel.cancel();
                        return Err(interrupt);
                    }
                }
            }
        };
        let Some(item) = item else {
            return Ok(None);
        };
        let (info, chunks) = item.map_err(|error| {
            self.cancel.cancel();
            errors::to_err(py, &error)
        })?;
        let len = chunks.iter().map(Bytes::len).sum();
        let data = PyBytes::new_with(py, len, |buffer| {
            let mut at = 0;
            for chunk in &chunks {
                buffer[at..at + chunk.len()].copy_from_slice(chunk);
                at += chunk.len();
            }
            Ok(())
        })?;
        let modified = info
            .last_modified
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map(|d| d.as_secs_f64());
        Ok(Some((info.key, info.size, info.etag, modified, data)))
    }

    /// Stops the stream and waits (with the GIL released) until it has: the listing and
    /// every request are cancelled.
    fn close(&self, py: Python<'_>) -> PyResult<()> {
        self.cancel.cancel();
        let task = self.task.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(task) = task {
            let runtime = runtime::get(py)?;
            let _ = py.detach(|| runtime.block_on(task));
        }
        Ok(())
    }
}

impl Drop for Objects {
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}

/// Starts the stream of the objects `s3_uri` and `options` select (the keywords `api.py`
/// normalized, as for `download`) and returns its iterator.
#[pyfunction]
pub(crate) fn iter_objects(
    py: Python<'_>,
    s3_uri: &str,
    options: &Bound<'_, PyDict>,
    connection: &Bound<'_, PyDict>,
) -> PyResult<Objects> {
    let fail = |error: Error| errors::to_err(py, &error);
    let mut selection = DownloadOptions::new(S3Uri::parse(s3_uri).map_err(fail)?);
    crate::options::apply(&mut selection, options)?.map_err(fail)?;
    let cancel = CancellationToken::new();
    let selection = selection
        .client_options(crate::options::client_options(connection)?)
        .cancel_token(cancel.clone());
    let (tx, items) = mpsc::channel(READY);
    let stop = cancel.clone();
    let task = runtime::get(py)?.spawn(async move {
        tokio::select! {
            _ = stop.cancelled() => {}
            _ = stream(selection, &tx) => {}
        }
    });
    Ok(Objects {
        cancel,
        items: Mutex::new(items),
        task: Mutex::new(Some(task)),
    })
}

/// Every object of the stream, whole, into `tx`; the first error ends it.
async fn stream(options: DownloadOptions, tx: &mpsc::Sender<Item>) {
    let mut stream = match ObjectStream::open(options).await {
        Ok(stream) => stream,
        Err(error) => {
            let _ = tx.send(Err(error)).await;
            return;
        }
    };
    while let Some(next) = stream.next().await {
        let item = match next {
            Ok(mut object) => {
                let mut chunks = Vec::new();
                loop {
                    match object.chunk().await {
                        Ok(Some(chunk)) => chunks.push(chunk),
                        Ok(None) => break Ok((object.info, chunks)),
                        Err(error) => break Err(error),
                    }
                }
            }
            Err(error) => Err(error),
        };
        let failed = item.is_err();
        if tx.send(item).await.is_err() || failed {
            return;
        }
    }
}
