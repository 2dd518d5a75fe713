//! The on-disk object store behind the test server.
//!
//! Layout: one subdirectory per bucket under the data directory. Inside a bucket:
//!
//! * `seg-NNNNNNNN.dat`: append-only segment files packing small objects back to back;
//! * `obj-NNNNNNNNNNNNNNNN.dat`: one file per large object (≥ [`LARGE_OBJECT_THRESHOLD`]);
//! * `index.log`: an append-only binary log of puts and deletes, replayed at startup
//!   (a later record for a key replaces the earlier one; a torn tail is truncated).
//!
//! In memory every bucket keeps a sorted `BTreeMap<String, ObjectMeta>` so a list page is
//! `O(log n + page)`. Reads of a range seek and read only that range.

use std::collections::{BTreeMap, HashMap};
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufWriter, Read, Write};
use std::ops::Bound;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use md5::{Digest, Md5};

/// Objects at least this large get their own data file instead of going into a segment.
pub const LARGE_OBJECT_THRESHOLD: u64 = 1024 * 1024;
/// A segment file is rotated once it grows past this size.
const SEGMENT_MAX: u64 = 1024 * 1024 * 1024;
/// Longest key S3 accepts (UTF-8 bytes).
pub const MAX_KEY_LEN: usize = 1024;

const INDEX_LOG: &str = "index.log";
const OP_PUT: u8 = b'P';
/// A put record followed by the object's CRC64NVME (8 bytes, little-endian). Logs written
/// before checksums existed hold only [`OP_PUT`] records (loaded as "no checksum").
const OP_PUT_CRC: u8 = b'C';
const OP_DELETE: u8 = b'D';
const LOC_SEGMENT: u8 = 0;
const LOC_FILE: u8 = 1;
/// size + mtime + md5 + loc kind + id + offset
const PUT_TAIL_LEN: usize = 8 + 8 + 16 + 1 + 8 + 8;

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

/// Where an object's bytes live.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Location {
    Segment { id: u64, offset: u64 },
    File { id: u64 },
}

/// Metadata of one stored object.
///
/// Besides the fields it caches the text S3 listings show for it (ETag hex and
/// `LastModified`), computed once when the object is stored or loaded, so a list page
/// renders without formatting anything per object (56 bytes, no heap).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectMeta {
    /// Content length in bytes.
    pub size: u64,
    /// MD5 of the content.
    pub md5: [u8; 16],
    /// Time of the put.
    pub last_modified: SystemTime,
    /// Bitwise NOT of the CRC64NVME (see [`ObjectMeta::crc64nvme`]); the niche keeps the
    /// struct at 128 bytes.
    crc_not: Option<std::num::NonZeroU64>,
    loc: Location,
    /// `md5` as lowercase hex.
    etag_text: [u8; 32],
    /// `last_modified` as `YYYY-MM-DDTHH:MM:SS.mmmZ`.
    last_modified_text: [u8; 24],
}

/// Lowercase hex of 16 bytes.
fn hex32(md5: &[u8; 16]) -> [u8; 32] {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = [0u8; 32];
    for (i, b) in md5.iter().enumerate() {
        out[2 * i] = DIGITS[usize::from(b >> 4)];
        out[2 * i + 1] = DIGITS[usize::from(b & 0xf)];
    }
    out
}

/// Civil date `(year, month, day)` of a day count since 1970-01-01 (proleptic Gregorian;
/// Howard Hinnant's `civil_from_days`).
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + u64::from(m <= 2);
    (y, m, d)
}

/// `t` as S3 lists it: ISO 8601 in UTC with milliseconds (truncated), e.g.
/// `2024-03-01T12:34:56.789Z`. Times before 1970 show as the epoch; years past 9999
/// (unreachable: the index stores `u64` nanoseconds) as 9999.
fn iso8601_millis(t: SystemTime) -> [u8; 24] {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = d.as_secs();
    let (y, mo, da) = civil_from_days(secs / 86_400);
    let sod = secs % 86_400;
    let fields = [
        (y.min(9999), 4usize),
        (mo, 2),
        (da, 2),
        (sod / 3600, 2),
        (sod / 60 % 60, 2),
        (sod % 60, 2),
        (u64::from(d.subsec_millis()), 3),
    ];
    let mut out = *b"0000-00-00T00:00:00.000Z";
    let mut pos = 0;
    for (value, width) in fields {
        let mut v = value;
        for i in (0..width).rev() {
            // `v % 10` < 10, so the cast is lossless.
            #[allow(clippy::cast_possible_truncation)]
            let digit = (v % 10) as u8;
            out[pos + i] = b'0' + digit;
            v /= 10;
        }
        pos += width + 1;
    }
    out
}

impl ObjectMeta {
    fn new(size: u64, md5: [u8; 16], last_modified: SystemTime, loc: Location) -> Self {
        Self {
            size,
            md5,
            last_modified,
            crc_not: None,
            loc,
            etag_text: hex32(&md5),
            last_modified_text: iso8601_millis(last_modified),
        }
    }

    fn with_crc(mut self, crc: u64) -> Self {
        self.crc_not = std::num::NonZeroU64::new(!crc);
        self
    }

    /// CRC64NVME of the content (see [`crate::checksum`]); `None` for objects loaded from
    /// an index log written before checksums were kept (and, by construction, for the
    /// one-in-2^64 objects whose CRC is `u64::MAX`).
    #[must_use]
    pub fn crc64nvme(&self) -> Option<u64> {
        self.crc_not.map(|c| !c.get())
    }

    /// The MD5 as lowercase hex, without quotes.
    #[must_use]
    pub fn etag_hex(&self) -> String {
        self.etag_hex_str().to_owned()
    }

    /// The MD5 as lowercase hex, without quotes (cached, no allocation).
    #[must_use]
    pub fn etag_hex_str(&self) -> &str {
        std::str::from_utf8(&self.etag_text).unwrap_or_default()
    }

    /// `LastModified` as S3 lists it: ISO 8601 in UTC with milliseconds, e.g.
    /// `2024-03-01T12:34:56.789Z` (cached, no allocation).
    #[must_use]
    pub fn last_modified_iso(&self) -> &str {
        std::str::from_utf8(&self.last_modified_text).unwrap_or_default()
    }

    /// [`ObjectMeta::etag_hex_str`] as (ASCII) bytes.
    pub(crate) fn etag_hex_bytes(&self) -> &[u8] {
        &self.etag_text
    }

    /// [`ObjectMeta::last_modified_iso`] as (ASCII) bytes.
    pub(crate) fn last_modified_iso_bytes(&self) -> &[u8] {
        &self.last_modified_text
    }

    /// The S3 ETag: quoted lowercase MD5 hex, e.g. `"d41d8cd98f00b204e9800998ecf8427e"`.
    #[must_use]
    pub fn etag(&self) -> String {
        format!("\"{}\"", self.etag_hex())
    }
}

/// Name and creation time of a bucket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BucketInfo {
    /// Bucket name.
    pub name: String,
    /// Creation time (directory timestamp).
    pub created: SystemTime,
}

/// Parameters of one list page; see [`Store::list`].
#[derive(Debug, Clone, Default)]
pub struct ListQuery<'a> {
    /// Only keys starting with this prefix.
    pub prefix: &'a str,
    /// Group keys containing this after the prefix into common prefixes (empty = none).
    pub delimiter: Option<&'a str>,
    /// Only items strictly after this key. If it is itself a common prefix (under the same
    /// prefix/delimiter), everything under that common prefix is skipped too.
    pub start_after: Option<&'a str>,
    /// Maximum number of entries (objects + common prefixes).
    pub max_keys: usize,
}

/// One page of a listing.
#[derive(Debug, Clone, Default)]
pub struct ListPage {
    /// Objects, sorted by key.
    pub objects: Vec<(String, ObjectMeta)>,
    /// Common prefixes, sorted.
    pub common_prefixes: Vec<String>,
    /// Whether more entries follow.
    pub is_truncated: bool,
    /// The last entry returned (key or common prefix), to be passed as `start_after` to
    /// fetch the next page.
    pub last_item: Option<String>,
}

impl ListPage {
    /// Number of entries (objects + common prefixes).
    #[must_use]
    pub fn len(&self) -> usize {
        self.objects.len() + self.common_prefixes.len()
    }

    /// Whether the page has no entries.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
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

struct BucketData {
    dir: PathBuf,
    created: SystemTime,
    index: RwLock<BTreeMap<String, ObjectMeta>>,
    writer: Mutex<Writer>,
    readers: Mutex<HashMap<Location, Arc<File>>>,
}

struct Writer {
    dir: PathBuf,
    log: BufWriter<File>,
    seg_id: u64,
    seg: BufWriter<File>,
    seg_len: u64,
    next_file_id: u64,
}

fn lock_err<T>(_: T) -> io::Error {
    io::Error::other("store lock poisoned")
}

fn seg_path(dir: &Path, id: u64) -> PathBuf {
    dir.join(format!("seg-{id:08}.dat"))
}

fn obj_path(dir: &Path, id: u64) -> PathBuf {
    dir.join(format!("obj-{id:016}.dat"))
}

fn data_path(dir: &Path, loc: Location) -> PathBuf {
    match loc {
        Location::Segment { id, .. } => seg_path(dir, id),
        Location::File { id } => obj_path(dir, id),
    }
}

fn check_key(key: &str) -> StoreResult<()> {
    if key.is_empty() || key.len() > MAX_KEY_LEN {
        return Err(StoreError::InvalidKey(key.len()));
    }
    Ok(())
}

fn to_nanos(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}

fn from_nanos(n: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_nanos(n)
}

impl Writer {
    fn open(dir: &Path) -> io::Result<Self> {
        let mut max_seg = None::<u64>;
        let mut max_obj = None::<u64>;
        for entry in fs::read_dir(dir)? {
            let name = entry?.file_name();
            let Some(name) = name.to_str() else { continue };
            if let Some(n) = name
                .strip_prefix("seg-")
                .and_then(|s| s.strip_suffix(".dat"))
            {
                if let Ok(n) = n.parse::<u64>() {
                    max_seg = Some(max_seg.map_or(n, |m| m.max(n)));
                }
            } else if let Some(n) = name
                .strip_prefix("obj-")
                .and_then(|s| s.strip_suffix(".dat"))
            {
                if let Ok(n) = n.parse::<u64>() {
                    max_obj = Some(max_obj.map_or(n, |m| m.max(n)));
                }
            }
        }
        let seg_id = max_seg.unwrap_or(0);
        let seg_file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(seg_path(dir, seg_id))?;
        let seg_len = seg_file.metadata()?.len();
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.join(INDEX_LOG))?;
        Ok(Self {
            dir: dir.to_owned(),
            log: BufWriter::with_capacity(256 * 1024, log),
            seg_id,
            seg: BufWriter::with_capacity(1024 * 1024, seg_file),
            seg_len,
            next_file_id: max_obj.map_or(0, |n| n + 1),
        })
    }

    /// Appends `data` to the current segment (or its own file when large).
    fn write_data(&mut self, data: &[u8]) -> io::Result<Location> {
        if data.len() as u64 >= LARGE_OBJECT_THRESHOLD {
            let id = self.next_file_id;
            self.next_file_id += 1;
            let path = obj_path(&self.dir, id);
            fs::write(&path, data)?;
            return Ok(Location::File { id });
        }
        if self.seg_len > 0 && self.seg_len + data.len() as u64 > SEGMENT_MAX {
            self.seg.flush()?;
            self.seg_id += 1;
            let f = OpenOptions::new()
                .create(true)
                .append(true)
                .open(seg_path(&self.dir, self.seg_id))?;
            self.seg = BufWriter::with_capacity(1024 * 1024, f);
            self.seg_len = 0;
        }
        let offset = self.seg_len;
        self.seg.write_all(data)?;
        self.seg_len += data.len() as u64;
        Ok(Location::Segment {
            id: self.seg_id,
            offset,
        })
    }

    fn log_put(&mut self, key: &str, meta: &ObjectMeta) -> io::Result<()> {
        let mut rec = Vec::with_capacity(3 + key.len() + PUT_TAIL_LEN + 8);
        rec.push(if meta.crc_not.is_some() {
            OP_PUT_CRC
        } else {
            OP_PUT
        });
        rec.extend_from_slice(
            &u16::try_from(key.len())
                .map_err(io::Error::other)?
                .to_le_bytes(),
        );
        rec.extend_from_slice(key.as_bytes());
        rec.extend_from_slice(&meta.size.to_le_bytes());
        rec.extend_from_slice(&to_nanos(meta.last_modified).to_le_bytes());
        rec.extend_from_slice(&meta.md5);
        let (kind, id, offset) = match meta.loc {
            Location::Segment { id, offset } => (LOC_SEGMENT, id, offset),
            Location::File { id } => (LOC_FILE, id, 0),
        };
        rec.push(kind);
        rec.extend_from_slice(&id.to_le_bytes());
        rec.extend_from_slice(&offset.to_le_bytes());
        if let Some(crc) = meta.crc64nvme() {
            rec.extend_from_slice(&crc.to_le_bytes());
        }
        self.log.write_all(&rec)
    }

    fn log_delete(&mut self, key: &str) -> io::Result<()> {
        self.log.write_all(&[OP_DELETE])?;
        self.log.write_all(
            &u16::try_from(key.len())
                .map_err(io::Error::other)?
                .to_le_bytes(),
        )?;
        self.log.write_all(key.as_bytes())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.seg.flush()?;
        self.log.flush()
    }
}

/// Replays `index.log`, truncating a torn tail.
fn replay_index(dir: &Path) -> io::Result<BTreeMap<String, ObjectMeta>> {
    let path = dir.join(INDEX_LOG);
    let buf = match fs::read(&path) {
        Ok(b) => b,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(BTreeMap::new()),
        Err(e) => return Err(e),
    };
    let mut index = BTreeMap::new();
    let mut pos = 0usize;
    let u64_at = |b: &[u8], p: usize| u64::from_le_bytes(b[p..p + 8].try_into().expect("8 bytes"));
    let good_end = loop {
        if pos == buf.len() {
            break pos;
        }
        if buf.len() - pos < 3 {
            break pos;
        }
        let op = buf[pos];
        let klen = usize::from(u16::from_le_bytes([buf[pos + 1], buf[pos + 2]]));
        let kstart = pos + 3;
        let kend = kstart + klen;
        let tail = match op {
            OP_PUT => PUT_TAIL_LEN,
            OP_PUT_CRC => PUT_TAIL_LEN + 8,
            OP_DELETE => 0,
            _ => break pos,
        };
        if buf.len() < kend + tail {
            break pos;
        }
        let Ok(key) = std::str::from_utf8(&buf[kstart..kend]) else {
            break pos;
        };
        if op == OP_DELETE {
            index.remove(key);
        } else {
            let t = kend;
            let size = u64_at(&buf, t);
            let mtime = u64_at(&buf, t + 8);
            let md5: [u8; 16] = buf[t + 16..t + 32].try_into().expect("16 bytes");
            let kind = buf[t + 32];
            let id = u64_at(&buf, t + 33);
            let offset = u64_at(&buf, t + 41);
            let loc = match kind {
                LOC_SEGMENT => Location::Segment { id, offset },
                LOC_FILE => Location::File { id },
                _ => break pos,
            };
            let mut meta = ObjectMeta::new(size, md5, from_nanos(mtime), loc);
            if op == OP_PUT_CRC {
                meta = meta.with_crc(u64_at(&buf, t + PUT_TAIL_LEN));
            }
            index.insert(key.to_owned(), meta);
        }
        pos = kend + tail;
    };
    if good_end != buf.len() {
        tracing::warn!(path = %path.display(), good_end, len = buf.len(), "truncating torn index log tail");
        let f = OpenOptions::new().write(true).open(&path)?;
        f.set_len(good_end as u64)?;
    }
    Ok(index)
}

impl BucketData {
    fn open(dir: PathBuf) -> io::Result<Self> {
        let index = replay_index(&dir)?;
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

    fn insert(&self, key: String, meta: ObjectMeta) -> io::Result<()> {
        let old = self.index.write().map_err(lock_err)?.insert(key, meta);
        self.forget_replaced(old);
        Ok(())
    }

    /// Removes the own data file of a replaced/deleted large object.
    fn forget_replaced(&self, old: Option<ObjectMeta>) {
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

    fn reader(&self, loc: Location) -> io::Result<Arc<File>> {
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
    file: Arc<File>,
    /// Absolute file offset of the first byte.
    offset: u64,
    /// Number of bytes.
    len: u64,
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

/// Returns the smallest string greater than every string that starts with `s`, if any.
fn prefix_successor(s: &str) -> Option<String> {
    let mut chars: Vec<char> = s.chars().collect();
    while let Some(c) = chars.pop() {
        let mut u = u32::from(c) + 1;
        if u == 0xD800 {
            u = 0xE000;
        }
        if let Some(n) = char::from_u32(u) {
            chars.push(n);
            return Some(chars.into_iter().collect());
        }
    }
    None
}

/// The common prefix `key` rolls up into, if any.
fn common_prefix<'k>(key: &'k str, prefix: &str, delimiter: Option<&str>) -> Option<&'k str> {
    let d = delimiter?;
    let rest = key.strip_prefix(prefix)?;
    let i = rest.find(d)?;
    Some(&key[..prefix.len() + i + d.len()])
}

/// One entry of a list page, borrowed from the index; see [`Store::list_visit`].
#[derive(Debug, Clone, Copy)]
pub enum ListEntry<'a> {
    /// An object: key and metadata.
    Object(&'a str, &'a ObjectMeta),
    /// A common prefix (ends with the delimiter).
    CommonPrefix(&'a str),
}

/// What [`Store::list_visit`] found besides the entries it visited.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListSummary {
    /// Number of entries visited (objects + common prefixes).
    pub count: usize,
    /// Whether more entries follow.
    pub is_truncated: bool,
    /// When truncated, the last entry visited (to pass as `start_after` for the next page).
    pub last_item: Option<String>,
}

/// Walks one list page of `index` in order, calling `visit` for every entry. Returns the
/// entry count and, when the page is truncated, its last entry.
fn walk_index<'a>(
    index: &'a BTreeMap<String, ObjectMeta>,
    q: &ListQuery<'_>,
    mut visit: impl FnMut(ListEntry<'a>),
) -> (usize, Option<&'a str>) {
    let mut count = 0usize;
    if q.max_keys == 0 {
        return (0, None);
    }
    let prefix = q.prefix;
    let delim = q.delimiter.filter(|d| !d.is_empty());
    let mut lower: Bound<String> = match q.start_after.filter(|s| !s.is_empty() && *s >= prefix) {
        None => Bound::Included(prefix.to_owned()),
        Some(sa) => match common_prefix(sa, prefix, delim) {
            Some(cp) if cp == sa => match prefix_successor(sa) {
                Some(next) => Bound::Included(next),
                None => return (0, None),
            },
            _ => Bound::Excluded(sa.to_owned()),
        },
    };
    // Keys starting with `prefix` are exactly those below its successor (none = no bound),
    // so the range needs no per-key prefix check.
    let upper: Bound<String> = if prefix.is_empty() {
        Bound::Unbounded
    } else {
        prefix_successor(prefix).map_or(Bound::Unbounded, Bound::Excluded)
    };
    let upper = upper.as_ref().map(String::as_str);
    if let (Bound::Included(lo) | Bound::Excluded(lo), Bound::Excluded(hi)) = (&lower, upper) {
        if lo.as_str() >= hi {
            return (0, None);
        }
    }
    let mut last: Option<&'a str> = None;
    let mut iter = index.range::<str, _>((lower.as_ref().map(String::as_str), upper));
    while let Some((key, meta)) = iter.next() {
        debug_assert!(key.starts_with(prefix));
        if count == q.max_keys {
            return (count, last);
        }
        count += 1;
        if let Some(cp) = common_prefix(key, prefix, delim) {
            visit(ListEntry::CommonPrefix(cp));
            last = Some(cp);
            match prefix_successor(cp) {
                Some(next) => {
                    if let Bound::Excluded(hi) = upper {
                        if next.as_str() >= hi {
                            break;
                        }
                    }
                    lower = Bound::Included(next);
                    iter = index.range::<str, _>((lower.as_ref().map(String::as_str), upper));
                }
                None => break,
            }
        } else {
            visit(ListEntry::Object(key, meta));
            last = Some(key);
        }
    }
    (count, None)
}

fn list_index(index: &BTreeMap<String, ObjectMeta>, q: &ListQuery<'_>) -> ListPage {
    let mut page = ListPage::default();
    let (_, last) = walk_index(index, q, |entry| match entry {
        ListEntry::Object(k, m) => page.objects.push((k.to_owned(), m.clone())),
        ListEntry::CommonPrefix(p) => page.common_prefixes.push(p.to_owned()),
    });
    page.is_truncated = last.is_some();
    page.last_item = last.map(str::to_owned);
    page
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
        check_key(key)?;
        let b = self.bucket(bucket)?;
        let data = data.as_ref();
        let md5: [u8; 16] = Md5::digest(data).into();
        let crc = crate::checksum::crc64nvme(data);
        let meta = {
            let mut w = b.writer.lock().map_err(lock_err)?;
            let loc = w.write_data(data)?;
            let meta =
                ObjectMeta::new(data.len() as u64, md5, SystemTime::now(), loc).with_crc(crc);
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
        Ok(list_index(&index, query))
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
        let (count, last) = walk_index(&index, query, visit);
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

    fn keys(page: &ListPage) -> Vec<&str> {
        page.objects.iter().map(|(k, _)| k.as_str()).collect()
    }

    #[test]
    fn cached_listing_text_matches_s3s() {
        let fmt = |t: SystemTime| {
            let mut buf = Vec::new();
            s3s::dto::Timestamp::from(t)
                .format(s3s::dto::TimestampFormat::DateTime, &mut buf)
                .unwrap();
            String::from_utf8(buf).unwrap()
        };
        let mut nanos = 0u64;
        let mut samples = vec![0, 999_999, 1_000_000, 951_782_400_123_456_789, u64::MAX];
        for _ in 0..20_000 {
            // xorshift: spread over the whole u64 nanosecond range (1970..2554)
            nanos ^= nanos << 13 | 0x9E37_79B9;
            nanos ^= nanos >> 7;
            nanos ^= nanos << 17;
            samples.push(nanos);
        }
        for n in samples {
            let t = from_nanos(n);
            let meta = ObjectMeta::new(1, [0xab; 16], t, Location::File { id: 0 });
            assert_eq!(meta.last_modified_iso(), fmt(t), "{n}");
        }
        let t = UNIX_EPOCH + Duration::from_millis(1_709_296_496_789);
        let meta = ObjectMeta::new(
            1,
            *b"\x00\x01\xfe\xff0123456789ab",
            t,
            Location::File { id: 0 },
        );
        assert_eq!(meta.last_modified_iso(), "2024-03-01T12:34:56.789Z");
        assert_eq!(meta.etag_hex_str(), hex::encode(meta.md5));
        assert_eq!(meta.etag_hex(), "0001feff303132333435363738396162");
        // The cached text must keep the index small (1M objects ≈ 300 MB with keys).
        assert!(std::mem::size_of::<ObjectMeta>() <= 128);
    }

    #[test]
    fn successor() {
        assert_eq!(prefix_successor("a/").as_deref(), Some("a0"));
        assert_eq!(prefix_successor("a\u{10FFFF}").as_deref(), Some("b"));
        assert_eq!(prefix_successor("\u{D7FF}").as_deref(), Some("\u{E000}"));
        assert_eq!(prefix_successor("\u{10FFFF}"), None);
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
}
