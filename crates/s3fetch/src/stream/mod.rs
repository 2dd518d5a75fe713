//! Objects as a stream of bytes, in key order, at download speed: `s3fetch cat`, Python's
//! `iter_objects`. The run's selection (listing, filters, shards) feeds a prefetch window
//! ([`window`]): objects ahead of the one being read download in parallel, a large one in
//! ranged parts, all within one memory cap. Each object is verified as a download is; its
//! bytes are handed over in order ([`ObjectStream`], [`StreamedObject`]), written to a pipe
//! raw or as a tar stream by [`cat()`].

mod cat;
mod tar;
mod window;

use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::Arc;

use bytes::Bytes;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::checksum::{self, Expected, Hasher};
use crate::error::{Error, Result};
use crate::object::ObjectInfo;
use crate::options::DownloadOptions;
use crate::paths;
use crate::progress::NoReporter;
use crate::run::{source, AbortOnDrop, Requests};
use crate::s3::memory::{Lease, Memory};
use crate::s3::{Bucket, ByteRange};
use crate::select::folders::Parent;
use crate::select::listing::{Listed, Order};
use crate::select::source::Source;
use window::{Held, Known, Pending, PendingBody, Task, Window};

pub use cat::{cat, CatFormat, CatSummary};

/// The selected objects of a [`DownloadOptions`], one after the other in key order, with
/// their bytes: see [`ObjectStream::open`].
///
/// Dropping it (or cancelling the options' token) stops the listing and every request.
pub struct ObjectStream {
    rx: mpsc::Receiver<Pending>,
    lister: Option<tokio::task::JoinHandle<Result<u64>>>,
    _tasks: Vec<AbortOnDrop>,
    bucket: Arc<Bucket>,
    memory: Arc<Memory>,
    prefix: String,
    delimiter: String,
    cancel: CancellationToken,
}

impl ObjectStream {
    /// Starts the selection of `options` (its download directory, sync and output options
    /// play no part) and the prefetch window.
    ///
    /// Which objects: a URI whose prefix does not end in the delimiter and names an existing
    /// key is that one object (as `aws s3 cp s3://bucket/key -` takes it); any other URI is a
    /// prefix, listed and filtered as a download is. A listing of S3 comes in key order
    /// (page after page, as it is read); objects from `keys_from`, an inventory or a
    /// directory bucket are gathered first and sorted.
    pub async fn open(options: DownloadOptions) -> Result<ObjectStream> {
        let mut options = options.validate()?;
        options.concurrent_downloads =
            crate::s3::limit::within_open_file_limit(options.concurrent_downloads);
        let requests = Requests::connect(&options).await;
        let settings = options.settings();
        let uri = options.uri.clone();
        let bucket = Arc::new(requests.bucket(&uri, settings).await);
        let cancel = options.cancel.clone();
        let (tx, listed) = mpsc::channel::<Listed>(options.concurrent_downloads.max(1000));
        let cap = window::memory_cap(options.max_memory.or(options.tuning.cat_memory));
        let mut window = Window::new(
            bucket.clone(),
            cap,
            options.part_size,
            options.multipart_threshold,
            options.filter.clone(),
        );
        let single = match uri.prefix.is_empty()
            || uri.prefix.ends_with(&options.delimiter)
            || options.keys.is_some()
            || options.inventory.is_some()
        {
            true => None,
            false => single(&bucket, &uri.prefix, window.part_size).await?,
        };
        let (single, known) = match single {
            Some((head, known)) => (Some(head), Some(known)),
            None => (None, None),
        };
        let lister = match single {
            Some(head) => {
                let object = ObjectInfo {
                    key: uri.prefix.clone(),
                    size: head.length.unwrap_or(0),
                    etag: head.etag,
                    last_modified: head.last_modified,
                    archived: false,
                };
                let wanted =
                    options.filter.wants(&object.key) && options.filter.wants_object(&object);
                tokio::spawn(async move {
                    if wanted {
                        let _ = tx
                            .send(Listed {
                                object,
                                parent: Parent::Clear,
                            })
                            .await;
                    }
                    Ok(u64::from(wanted))
                })
            }
            None => {
                let mut source = source(&options, &requests, &bucket, settings).await;
                // Page by page: the keys come in order, and the first bytes start with the
                // first page.
                let in_order = match &mut source {
                    Source::Listing {
                        order, concurrency, ..
                    } => {
                        *concurrency = 1;
                        *order != Order::Unordered
                    }
                    _ => false,
                };
                let (filter, delimiter) = (options.filter.clone(), options.delimiter.clone());
                let uri = uri.clone();
                tokio::spawn(async move {
                    match in_order {
                        true => {
                            source
                                .send(&uri, &delimiter, &filter, &NoReporter, tx)
                                .await
                        }
                        false => {
                            let (all_tx, mut all) = mpsc::channel(1024);
                            let gather = async {
                                let mut objects = Vec::new();
                                while let Some(listed) = all.recv().await {
                                    objects.push(listed);
                                }
                                objects
                            };
                            let (sent, mut objects) = tokio::join!(
                                source.send(&uri, &delimiter, &filter, &NoReporter, all_tx),
                                gather
                            );
                            objects.sort_by(|a: &Listed, b| a.object.key.cmp(&b.object.key));
                            for listed in objects {
                                if tx.send(listed).await.is_err() {
                                    break;
                                }
                            }
                            sent
                        }
                    }
                })
            }
        };
        window.from_keys = options.keys.is_some();
        window.include_archived = options.include_archived;
        window.known = known;
        let memory = window.memory.clone();
        let (pending_tx, rx) = mpsc::channel(options.concurrent_downloads.max(1));
        let scheduler = tokio::spawn(Arc::new(window).run(listed, pending_tx));
        Ok(ObjectStream {
            rx,
            _tasks: vec![
                AbortOnDrop(lister.abort_handle()),
                AbortOnDrop(scheduler.abort_handle()),
            ],
            lister: Some(lister),
            bucket,
            memory,
            prefix: uri.prefix,
            delimiter: options.delimiter,
            cancel,
        })
    }

    /// The next object, `None` after the last. An `Err` is the listing's failure (the
    /// stream ends with it) or a cancel; an object's own failure comes from
    /// [`StreamedObject::chunk`].
    pub async fn next(&mut self) -> Option<Result<StreamedObject>> {
        let pending = tokio::select! {
            biased;
            _ = self.cancel.cancelled() => return Some(Err(Error::Cancelled)),
            pending = self.rx.recv() => pending,
        };
        let Some(Pending {
            object,
            parent,
            body,
        }) = pending
        else {
            let lister = self.lister.take()?;
            return match lister.await {
                Ok(Ok(_)) => None,
                Ok(Err(error)) => Some(Err(error)),
                Err(join) if join.is_panic() => std::panic::resume_unwind(join.into_panic()),
                Err(_) => Some(Err(Error::Cancelled)),
            };
        };
        let relative = paths::relative_path(&self.prefix, &object.key, &self.delimiter);
        let body = match body {
            PendingBody::Whole(task) => Body::Whole(Some(task)),
            PendingBody::Failed(error) => Body::Failed(Some(error)),
            PendingBody::Parts {
                checksum,
                count,
                parts,
            } => Body::Parts {
                md5: match checksum {
                    Some(expected @ Expected::Md5(_)) => Some(expected.hasher()),
                    _ => None,
                },
                checksum,
                count,
                parts,
                crcs: Vec::new(),
            },
        };
        Some(Ok(StreamedObject {
            info: object,
            relative,
            file_key: match parent {
                Parent::File(name) => Some(name),
                _ => None,
            },
            body,
            current: VecDeque::new(),
            memory: None,
            bucket: self.bucket.clone(),
            cancel: self.cancel.clone(),
            done: false,
        }))
    }

    /// The memory cap the stream keeps to (`max_memory`, or its default), in bytes.
    pub fn memory_cap(&self) -> u64 {
        self.memory.cap()
    }

    /// The most bytes of bodies the stream has held at once (fetched and not yet handed
    /// over): never above [`ObjectStream::memory_cap`].
    pub fn memory_peak(&self) -> u64 {
        self.memory.peak()
    }

    /// The run's count of objects whose bytes were checked against a checksum.
    pub fn verified(&self) -> u64 {
        self.bucket
            .stats()
            .verified
            .load(std::sync::atomic::Ordering::Relaxed)
    }
}

/// What a HEAD of `key` finds (`None`: no such object, so the URI is a prefix), and the GET
/// of its first `part_size` bytes sent beside the HEAD, kept when it is of the same version.
async fn single(
    bucket: &Bucket,
    key: &str,
    part_size: u64,
) -> Result<Option<(crate::s3::ObjectHead, Known)>> {
    let find = async {
        let _permit = bucket.transfer_permit().await?;
        bucket.find(key).await
    };
    let first = async {
        let _permit = bucket.transfer_permit().await.ok()?;
        let range = ByteRange {
            start: 0,
            end: Some(part_size),
        };
        bucket.get(key, Some(range), None).await.ok()
    };
    let (head, first) = tokio::join!(find, first);
    let Some(head) = head? else {
        return Ok(None);
    };
    // Another version than the HEAD's (written in between) is of no use: the part asks
    // again, with If-Match.
    let first = first.filter(|first| head.etag.is_some() && first.head.etag == head.etag);
    let known = Known {
        key: key.to_owned(),
        checksum: head.checksum,
        first: std::sync::Mutex::new(first),
    };
    Ok(Some((head, known)))
}

/// One object of an [`ObjectStream`]: what the listing said of it, and its bytes in order
/// from [`StreamedObject::chunk`].
pub struct StreamedObject {
    /// The key, size, ETag and modification time the listing (or a HEAD) gave.
    pub info: ObjectInfo,
    relative: std::result::Result<PathBuf, String>,
    /// A wanted key that names a folder on this key's path.
    file_key: Option<String>,
    body: Body,
    current: VecDeque<Bytes>,
    memory: Option<Lease>,
    bucket: Arc<Bucket>,
    cancel: CancellationToken,
    done: bool,
}

enum Body {
    Whole(Option<Task<Held>>),
    Parts {
        checksum: Option<Expected>,
        count: u64,
        parts: mpsc::UnboundedReceiver<Task<Held>>,
        crcs: Vec<(u64, u64)>,
        md5: Option<Hasher>,
    },
    Failed(Option<Error>),
}

impl StreamedObject {
    /// The path, relative to a download directory, a download would write this object to
    /// (see [`crate::paths::relative_path`]); an error for a key that maps to none, or whose
    /// path a file of another key takes (key `a` beside `a/b`, as a download decides).
    pub fn path(&self) -> Result<PathBuf> {
        let key = &self.info.key;
        let relative = self.relative.clone().map_err(|reason| Error::UnsafeKey {
            key: key.clone(),
            reason,
        })?;
        if let Some(file_key) = &self.file_key {
            return Err(Error::Conflict {
                key: key.clone(),
                path: self.relative.clone().unwrap_or_default(),
                file_key: file_key.clone(),
            });
        }
        Ok(relative)
    }

    /// The next bytes of the object, `None` after the last, which is verified before it is
    /// told (`Err` for a mismatch, as for any failed request: the key is named).
    pub async fn chunk(&mut self) -> Result<Option<Bytes>> {
        let cancel = self.cancel.clone();
        tokio::select! {
            biased;
            _ = cancel.cancelled() => Err(Error::Cancelled),
            chunk = self.next_chunk() => chunk,
        }
    }

    async fn next_chunk(&mut self) -> Result<Option<Bytes>> {
        loop {
            if let Some(chunk) = self.current.pop_front() {
                if let Body::Parts { md5: Some(md5), .. } = &mut self.body {
                    md5.update(&chunk);
                }
                return Ok(Some(chunk));
            }
            self.memory = None;
            if self.done {
                return Ok(None);
            }
            let held = match &mut self.body {
                Body::Failed(error) => {
                    self.done = true;
                    return Err(error.take().unwrap_or(Error::Cancelled));
                }
                Body::Whole(task) => {
                    self.done = true;
                    match task.take() {
                        Some(task) => task.join().await?,
                        None => return Ok(None),
                    }
                }
                Body::Parts {
                    checksum,
                    count,
                    parts,
                    crcs,
                    md5,
                } => {
                    if crcs.len() as u64 == *count {
                        self.done = true;
                        let verdict = match (*checksum, md5.take()) {
                            (Some(expected @ Expected::Crc(..)), _) => {
                                Some(checksum::verify_parts(crcs, expected))
                            }
                            (Some(expected), Some(md5)) => Some(md5.verify(expected)),
                            _ => None,
                        };
                        if let Some(verdict) = verdict {
                            verdict.map_err(|reason| {
                                self.bucket.checksum_error(&self.info.key, reason)
                            })?;
                            let stats = self.bucket.stats();
                            stats
                                .verified
                                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        }
                        return Ok(None);
                    }
                    let Some(task) = parts.recv().await else {
                        return Err(Error::Cancelled);
                    };
                    let held = task.join().await?;
                    crcs.push(held.crc);
                    held
                }
            };
            self.current = held.chunks;
            self.memory = Some(held.memory);
        }
    }
}
