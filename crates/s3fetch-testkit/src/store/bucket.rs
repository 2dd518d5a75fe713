//! One open bucket: its sorted index, the [`Writer`] appending to its files and a small
//! cache of open data files, plus [`DataSlice`], the handle a GET reads its bytes through
//! (positioned reads on a shared file, so concurrent range reads need no seek lock).

use std::collections::{BTreeMap, HashMap};
use std::fs::{self, File};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;

use super::log::{data_path, replay, Writer};
use super::meta::{Location, ObjectMeta};

pub(super) fn lock_err<T>(_: T) -> io::Error {
    io::Error::other("store lock poisoned")
}

/// One bucket of an open `Store`.
pub(super) struct BucketData {
    pub(super) dir: PathBuf,
    pub(super) created: SystemTime,
    pub(super) index: RwLock<BTreeMap<String, ObjectMeta>>,
    pub(super) writer: Mutex<Writer>,
    readers: Mutex<HashMap<Location, Arc<File>>>,
}

impl BucketData {
    pub(super) fn open(dir: PathBuf) -> io::Result<Self> {
        let index = replay(&dir)?;
        let md = fs::metadata(&dir)?;
        let created = md
            .created()
            .or_else(|_| md.modified())
            .unwrap_or(UNIX_EPOCH);
        let writer = Writer::open(&dir)?;
        Ok(Self {
            dir,
            created,
            index: RwLock::new(index),
            writer: Mutex::new(writer),
            readers: Mutex::new(HashMap::new()),
        })
    }

    pub(super) fn insert(&self, key: String, meta: ObjectMeta) -> io::Result<()> {
        let old = self.index.write().map_err(lock_err)?.insert(key, meta);
        self.forget_replaced(old);
        Ok(())
    }

    /// Removes the own data file of a replaced/deleted large object.
    pub(super) fn forget_replaced(&self, old: Option<ObjectMeta>) {
        if let Some(ObjectMeta {
            loc: loc @ Location::File { .. },
            ..
        }) = old
        {
            if let Ok(mut r) = self.readers.lock() {
                r.remove(&loc);
            }
            let _ = fs::remove_file(data_path(&self.dir, loc));
        }
    }

    pub(super) fn reader(&self, loc: Location) -> io::Result<Arc<File>> {
        let key = match loc {
            Location::Segment { id, .. } => Location::Segment { id, offset: 0 },
            l @ Location::File { .. } => l,
        };
        let mut readers = self.readers.lock().map_err(lock_err)?;
        if let Some(f) = readers.get(&key) {
            return Ok(f.clone());
        }
        let f = Arc::new(File::open(data_path(&self.dir, loc))?);
        if readers.len() > 256 {
            readers.clear();
        }
        readers.insert(key, f.clone());
        Ok(f)
    }
}

/// A readable slice of one object's bytes: a shared file handle plus an absolute offset.
#[derive(Debug, Clone)]
pub struct DataSlice {
    pub(super) file: Arc<File>,
    /// Absolute file offset of the first byte.
    pub(super) offset: u64,
    /// Number of bytes.
    pub(super) len: u64,
}

impl DataSlice {
    /// Number of bytes in the slice.
    #[must_use]
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Whether the slice is empty.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Reads `len` bytes starting `rel` bytes into the slice (positioned read, no seek state).
    ///
    /// # Errors
    /// I/O errors, or reading past the end of the slice.
    pub fn read_chunk(&self, rel: u64, len: usize) -> io::Result<Bytes> {
        if rel + len as u64 > self.len {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "read past end of object",
            ));
        }
        let mut buf = vec![0u8; len];
        self.file.read_exact_at(&mut buf, self.offset + rel)?;
        Ok(Bytes::from(buf))
    }

    /// Reads the whole slice into memory.
    ///
    /// # Errors
    /// I/O errors.
    pub fn read_all(&self) -> io::Result<Bytes> {
        let len = usize::try_from(self.len).map_err(io::Error::other)?;
        self.read_chunk(0, len)
    }
}
