//! The on-disk object store behind the test server: the public [`Store`] API.
//!
//! One subdirectory per bucket under the data directory, laid out and logged by `log.rs`
//! (append-only segments for small objects, own files for large ones, an `index.log`
//! replayed at startup). In memory every bucket keeps a sorted
//! `BTreeMap<String, ObjectMeta>` so a list page is `O(log n + page)`; reads of a range
//! seek and read only that range ([`DataSlice`]).
//!
//! Files: `meta.rs` (per-object metadata and its cached listing text), `log.rs` (data files
//! and the index log: writer and replay), `index.rs` (the list walk), `bucket.rs` (one open
//! bucket and range reads), this file (the API tying them together).

mod bucket;
mod index;
mod log;
mod meta;

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::{self, BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::SystemTime;

use bytes::Bytes;
use md5::{Digest, Md5};

pub use self::bucket::DataSlice;
use self::bucket::{lock_err, BucketData};
pub use self::index::{ListEntry, ListPage, ListQuery, ListSummary};
use self::log::obj_path;
pub use self::log::LARGE_OBJECT_THRESHOLD;
use self::meta::Location;
pub use self::meta::ObjectMeta;

/// Longest key S3 accepts (UTF-8 bytes).
pub const MAX_KEY_LEN: usize = 1024;

/// Errors returned by [`Store`] operations.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The bucket does not exist.
    #[error("no such bucket: {0}")]
    NoSuchBucket(String),
    /// The key does not exist in the bucket.
    #[error("no such key: {0}")]
    NoSuchKey(String),
    /// `create_bucket` on an existing bucket.
    #[error("bucket already exists: {0}")]
    BucketAlreadyExists(String),
    /// The bucket name is not a valid S3 bucket name.
    #[error("invalid bucket name: {0:?}")]
    InvalidBucketName(String),
    /// The key is empty or longer than 1024 bytes.
    #[error("invalid key ({0} bytes): keys must be 1..=1024 bytes")]
    InvalidKey(usize),
    /// The data directory is corrupt or an I/O error happened.
    #[error("i/o error: {0}")]
    Io(#[from] io::Error),
}

/// Result alias for store operations.
pub type StoreResult<T> = Result<T, StoreError>;

/// Name and creation time of a bucket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BucketInfo {
    /// Bucket name.
    pub name: String,
    /// Creation time (directory timestamp).
    pub created: SystemTime,
}

/// A handle to an open data directory. Cheap to clone; all clones share state.
#[derive(Clone)]
pub struct Store {
    inner: Arc<StoreInner>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("root", &self.inner.root)
            .finish_non_exhaustive()
    }
}

struct StoreInner {
    root: PathBuf,
    buckets: RwLock<BTreeMap<String, Arc<BucketData>>>,
}

fn check_key(key: &str) -> StoreResult<()> {
    if key.is_empty() || key.len() > MAX_KEY_LEN {
        return Err(StoreError::InvalidKey(key.len()));
    }
    Ok(())
}

impl Store {
    /// Opens (creating if needed) a data directory and loads every bucket's index.
    ///
    /// # Errors
    /// I/O errors reading the directory.
    pub fn open(root: impl AsRef<Path>) -> StoreResult<Store> {
        let root = root.as_ref().to_owned();
        fs::create_dir_all(&root)?;
        let mut buckets = BTreeMap::new();
        for entry in fs::read_dir(&root)? {
            let entry = entry?;
            if !entry.file_type()?.is_dir() {
                continue;
            }
            let Some(name) = entry.file_name().to_str().map(str::to_owned) else {
                continue;
            };
            if !s3s::path::check_bucket_name(&name) {
                continue;
            }
            buckets.insert(name, Arc::new(BucketData::open(entry.path())?));
        }
        Ok(Store {
            inner: Arc::new(StoreInner {
                root,
                buckets: RwLock::new(buckets),
            }),
        })
    }

    /// The data directory.
    #[must_use]
    pub fn root(&self) -> &Path {
        &self.inner.root
    }

    fn bucket(&self, name: &str) -> StoreResult<Arc<BucketData>> {
        self.inner
            .buckets
            .read()
            .map_err(lock_err)?
            .get(name)
            .cloned()
            .ok_or_else(|| StoreError::NoSuchBucket(name.to_owned()))
    }

    /// Creates an empty bucket. Fails with [`StoreError::BucketAlreadyExists`] if it exists.
    ///
    /// # Errors
    /// Invalid name, existing bucket, I/O.
    pub fn create_bucket(&self, name: &str) -> StoreResult<()> {
        if !s3s::path::check_bucket_name(name) {
            return Err(StoreError::InvalidBucketName(name.to_owned()));
        }
        let mut buckets = self.inner.buckets.write().map_err(lock_err)?;
        if buckets.contains_key(name) {
            return Err(StoreError::BucketAlreadyExists(name.to_owned()));
        }
        let dir = self.inner.root.join(name);
        fs::create_dir_all(&dir)?;
        buckets.insert(name.to_owned(), Arc::new(BucketData::open(dir)?));
        Ok(())
    }

    /// Creates the bucket unless it already exists.
    ///
    /// # Errors
    /// Invalid name, I/O.
    pub fn ensure_bucket(&self, name: &str) -> StoreResult<()> {
        match self.create_bucket(name) {
            Ok(()) | Err(StoreError::BucketAlreadyExists(_)) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Deletes a bucket and all of its objects (unlike S3, it need not be empty).
    ///
    /// # Errors
    /// Missing bucket, I/O.
    pub fn delete_bucket(&self, name: &str) -> StoreResult<()> {
        let removed = self.inner.buckets.write().map_err(lock_err)?.remove(name);
        let Some(b) = removed else {
            return Err(StoreError::NoSuchBucket(name.to_owned()));
        };
        fs::remove_dir_all(&b.dir)?;
        Ok(())
    }

    /// Whether the bucket exists.
    #[must_use]
    pub fn bucket_exists(&self, name: &str) -> bool {
        self.bucket(name).is_ok()
    }

    /// All buckets, sorted by name.
    #[must_use]
    pub fn list_buckets(&self) -> Vec<BucketInfo> {
        let Ok(buckets) = self.inner.buckets.read() else {
            return Vec::new();
        };
        buckets
            .iter()
            .map(|(name, b)| BucketInfo {
                name: name.clone(),
                created: b.created,
            })
            .collect()
    }

    /// Number of objects in the bucket.
    ///
    /// # Errors
    /// Missing bucket.
    pub fn object_count(&self, bucket: &str) -> StoreResult<usize> {
        Ok(self.bucket(bucket)?.index.read().map_err(lock_err)?.len())
    }

    /// Stores an object (replacing any existing one) and returns its metadata.
    ///
    /// # Errors
    /// Missing bucket, invalid key, I/O.
    pub fn put_object(
        &self,
        bucket: &str,
        key: &str,
        data: impl AsRef<[u8]>,
    ) -> StoreResult<ObjectMeta> {
        self.put_object_at(bucket, key, data, SystemTime::now())
    }

    /// [`Store::put_object`] with a given `LastModified` (tests of modification times and
    /// of sync runs).
    ///
    /// # Errors
    /// Missing bucket, invalid key, I/O.
    pub fn put_object_at(
        &self,
        bucket: &str,
        key: &str,
        data: impl AsRef<[u8]>,
        last_modified: SystemTime,
    ) -> StoreResult<ObjectMeta> {
        check_key(key)?;
        let b = self.bucket(bucket)?;
        let data = data.as_ref();
        let md5: [u8; 16] = Md5::digest(data).into();
        let crc = crate::checksum::crc64nvme(data);
        let meta = {
            let mut w = b.writer.lock().map_err(lock_err)?;
            let loc = w.write_data(data)?;
            let meta = ObjectMeta::new(data.len() as u64, md5, last_modified, loc).with_crc(crc);
            w.log_put(key, &meta)?;
            w.flush()?;
            meta
        };
        b.insert(key.to_owned(), meta.clone())?;
        Ok(meta)
    }

    /// Stores many objects with a single flush at the end (fast bulk loading).
    /// Returns the number of objects written.
    ///
    /// # Errors
    /// Missing bucket, invalid key, I/O. Objects written before an error are not indexed
    /// in memory but may be in the log.
    pub fn put_objects<K, D, I>(&self, bucket: &str, objects: I) -> StoreResult<usize>
    where
        K: Into<String>,
        D: AsRef<[u8]>,
        I: IntoIterator<Item = (K, D)>,
    {
        let b = self.bucket(bucket)?;
        let mut metas = Vec::new();
        {
            let mut w = b.writer.lock().map_err(lock_err)?;
            let now = SystemTime::now();
            for (key, data) in objects {
                let key = key.into();
                check_key(&key)?;
                let data = data.as_ref();
                let md5: [u8; 16] = Md5::digest(data).into();
                let crc = crate::checksum::crc64nvme(data);
                let loc = w.write_data(data)?;
                let meta = ObjectMeta::new(data.len() as u64, md5, now, loc).with_crc(crc);
                w.log_put(&key, &meta)?;
                metas.push((key, meta));
            }
            w.flush()?;
        }
        let n = metas.len();
        let mut olds = Vec::new();
        {
            let mut index = b.index.write().map_err(lock_err)?;
            for (k, m) in metas {
                if let Some(old) = index.insert(k, m) {
                    olds.push(old);
                }
            }
        }
        for old in olds {
            b.forget_replaced(Some(old));
        }
        Ok(n)
    }

    /// Streams an object of any size from `reader` into its own data file (MD5 computed on
    /// the fly, constant memory).
    ///
    /// # Errors
    /// Missing bucket, invalid key, I/O.
    pub fn put_object_from_reader(
        &self,
        bucket: &str,
        key: &str,
        mut reader: impl Read,
    ) -> StoreResult<ObjectMeta> {
        check_key(key)?;
        let b = self.bucket(bucket)?;
        let id = {
            let mut w = b.writer.lock().map_err(lock_err)?;
            let id = w.next_file_id;
            w.next_file_id += 1;
            id
        };
        let path = obj_path(&b.dir, id);
        let mut out = BufWriter::with_capacity(1024 * 1024, File::create(&path)?);
        let mut hasher = Md5::new();
        let mut crc = crate::checksum::Crc64Digest::new();
        let mut buf = vec![0u8; 256 * 1024];
        let mut size = 0u64;
        loop {
            let n = match reader.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    drop(out);
                    let _ = fs::remove_file(&path);
                    return Err(e.into());
                }
            };
            hasher.update(&buf[..n]);
            crc.update(&buf[..n]);
            out.write_all(&buf[..n])?;
            size += n as u64;
        }
        out.flush()?;
        drop(out);
        let meta = ObjectMeta::new(
            size,
            hasher.finalize().into(),
            SystemTime::now(),
            Location::File { id },
        )
        .with_crc(crc.finalize());
        {
            let mut w = b.writer.lock().map_err(lock_err)?;
            w.log_put(key, &meta)?;
            w.flush()?;
        }
        b.insert(key.to_owned(), meta.clone())?;
        Ok(meta)
    }

    /// Deletes an object. Returns whether it existed.
    ///
    /// # Errors
    /// Missing bucket, I/O.
    pub fn delete_object(&self, bucket: &str, key: &str) -> StoreResult<bool> {
        let b = self.bucket(bucket)?;
        if !b.index.read().map_err(lock_err)?.contains_key(key) {
            return Ok(false);
        }
        {
            let mut w = b.writer.lock().map_err(lock_err)?;
            w.log_delete(key)?;
            w.flush()?;
        }
        let old = b.index.write().map_err(lock_err)?.remove(key);
        let existed = old.is_some();
        b.forget_replaced(old);
        Ok(existed)
    }

    /// Metadata of one object.
    ///
    /// # Errors
    /// [`StoreError::NoSuchBucket`], [`StoreError::NoSuchKey`].
    pub fn head_object(&self, bucket: &str, key: &str) -> StoreResult<ObjectMeta> {
        let b = self.bucket(bucket)?;
        let index = b.index.read().map_err(lock_err)?;
        index
            .get(key)
            .cloned()
            .ok_or_else(|| StoreError::NoSuchKey(key.to_owned()))
    }

    /// A handle to bytes `start..start+len` of the object described by `meta` (no data is
    /// read yet).
    ///
    /// # Errors
    /// Missing bucket, a range outside the object, I/O opening the data file.
    pub fn slice(
        &self,
        bucket: &str,
        meta: &ObjectMeta,
        start: u64,
        len: u64,
    ) -> StoreResult<DataSlice> {
        if start.checked_add(len).is_none_or(|end| end > meta.size) {
            return Err(StoreError::Io(io::Error::new(
                io::ErrorKind::InvalidInput,
                "range outside object",
            )));
        }
        let b = self.bucket(bucket)?;
        let file = b.reader(meta.loc)?;
        let base = match meta.loc {
            Location::Segment { offset, .. } => offset,
            Location::File { .. } => 0,
        };
        Ok(DataSlice {
            file,
            offset: base + start,
            len,
        })
    }

    /// Reads a whole object into memory (convenience for tests; use [`Store::slice`] for
    /// large objects).
    ///
    /// # Errors
    /// Missing bucket/key, I/O.
    pub fn get_object(&self, bucket: &str, key: &str) -> StoreResult<Bytes> {
        let meta = self.head_object(bucket, key)?;
        Ok(self.slice(bucket, &meta, 0, meta.size)?.read_all()?)
    }

    /// One page of a listing with exact S3 semantics (UTF-8 byte order, strictly after
    /// `start_after`, common prefixes counted toward `max_keys`).
    ///
    /// # Errors
    /// Missing bucket.
    pub fn list(&self, bucket: &str, query: &ListQuery<'_>) -> StoreResult<ListPage> {
        let b = self.bucket(bucket)?;
        let index = b.index.read().map_err(lock_err)?;
        Ok(index::list(&index, query))
    }

    /// Like [`Store::list`] but without copying: calls `visit` for every entry of the page,
    /// in order (all objects and common prefixes interleaved in key order), while holding
    /// the bucket index's read lock, so `visit` should be quick.
    ///
    /// # Errors
    /// Missing bucket.
    pub fn list_visit(
        &self,
        bucket: &str,
        query: &ListQuery<'_>,
        visit: impl FnMut(ListEntry<'_>),
    ) -> StoreResult<ListSummary> {
        let b = self.bucket(bucket)?;
        let index = b.index.read().map_err(lock_err)?;
        let (count, last) = index::walk(&index, query, visit);
        Ok(ListSummary {
            count,
            is_truncated: last.is_some(),
            last_item: last.map(str::to_owned),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checksum::crc64nvme;

    fn keys(page: &ListPage) -> Vec<&str> {
        page.objects.iter().map(|(k, _)| k.as_str()).collect()
    }

    #[test]
    fn put_list_persist() {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open(dir.path()).unwrap();
        s.create_bucket("bkt").unwrap();
        s.create_bucket("empty").unwrap();
        for k in ["a/1", "a/2", "b", "c/x/y", "c/z", "d"] {
            s.put_object("bkt", k, k.as_bytes()).unwrap();
        }
        s.put_object("bkt", "big", vec![7u8; 2 * 1024 * 1024])
            .unwrap();
        s.put_object("bkt", "b", b"replaced").unwrap();
        assert!(s.delete_object("bkt", "d").unwrap());
        let q = ListQuery {
            delimiter: Some("/"),
            max_keys: 2,
            ..Default::default()
        };
        let p1 = s.list("bkt", &q).unwrap();
        assert_eq!(p1.common_prefixes, ["a/"]);
        assert_eq!(keys(&p1), ["b"]);
        assert!(p1.is_truncated);
        let last = p1.last_item.clone().unwrap();
        let p2 = s
            .list(
                "bkt",
                &ListQuery {
                    start_after: Some(&last),
                    ..q.clone()
                },
            )
            .unwrap();
        assert_eq!(keys(&p2), ["big"]);
        assert_eq!(p2.common_prefixes, ["c/"]);
        assert!(!p2.is_truncated);
        drop(s);
        let s = Store::open(dir.path()).unwrap();
        assert!(s.bucket_exists("empty"));
        assert_eq!(s.object_count("bkt").unwrap(), 6);
        assert_eq!(&s.get_object("bkt", "b").unwrap()[..], b"replaced");
        assert_eq!(s.get_object("bkt", "big").unwrap().len(), 2 * 1024 * 1024);
        let meta = s.head_object("bkt", "c/x/y").unwrap();
        assert_eq!(
            &s.slice("bkt", &meta, 2, 3).unwrap().read_all().unwrap()[..],
            b"x/y"
        );
    }

    #[test]
    fn store_keeps_checksums_and_loads_old_logs() {
        let dir = tempfile::tempdir().unwrap();
        let s = crate::Store::open(dir.path()).unwrap();
        s.create_bucket("bkt").unwrap();
        s.put_object("bkt", "small", b"hello").unwrap();
        s.put_objects("bkt", [("many", b"world")]).unwrap();
        let big = vec![9u8; 3 * 1024 * 1024];
        s.put_object_from_reader("bkt", "big", &big[..]).unwrap();
        s.put_object("bkt", "empty", b"").unwrap();
        drop(s);
        let s = crate::Store::open(dir.path()).unwrap();
        let crc = |k: &str| s.head_object("bkt", k).unwrap().crc64nvme();
        assert_eq!(crc("small"), Some(crc64nvme(b"hello")));
        assert_eq!(crc("many"), Some(crc64nvme(b"world")));
        assert_eq!(crc("big"), Some(crc64nvme(&big)));
        assert_eq!(crc("empty"), Some(0));

        // A bucket written before checksums existed: one 'P' record, no CRC.
        let old = dir.path().join("old");
        std::fs::create_dir(&old).unwrap();
        std::fs::write(old.join("seg-00000000.dat"), b"legacy").unwrap();
        let mut rec = vec![b'P'];
        rec.extend_from_slice(&3u16.to_le_bytes());
        rec.extend_from_slice(b"key");
        rec.extend_from_slice(&6u64.to_le_bytes()); // size
        rec.extend_from_slice(&1_000_000_000u64.to_le_bytes()); // mtime ns
        rec.extend_from_slice(&[0u8; 16]); // md5
        rec.push(0); // segment
        rec.extend_from_slice(&0u64.to_le_bytes()); // id
        rec.extend_from_slice(&0u64.to_le_bytes()); // offset
        std::fs::write(old.join("index.log"), &rec).unwrap();
        drop(s);
        let s = crate::Store::open(dir.path()).unwrap();
        let meta = s.head_object("old", "key").unwrap();
        assert_eq!(meta.crc64nvme(), None);
        assert_eq!(&s.get_object("old", "key").unwrap()[..], b"legacy");
        // New puts into the old bucket append CRC records after the old one.
        s.put_object("old", "new", b"fresh").unwrap();
        drop(s);
        let s = crate::Store::open(dir.path()).unwrap();
        assert_eq!(s.head_object("old", "key").unwrap().crc64nvme(), None);
        let new = s.head_object("old", "new").unwrap().crc64nvme();
        assert_eq!(new, Some(crc64nvme(b"fresh")));
    }
}
