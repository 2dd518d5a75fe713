//! The on-disk layout of one bucket and the log that makes it durable.
//!
//! * `seg-NNNNNNNN.dat`: append-only segment files packing small objects back to back
//!   (rotated past 1 GiB), so a million small objects are a few files, not a million;
//! * `obj-NNNNNNNNNNNNNNNN.dat`: one file per large object (≥ [`LARGE_OBJECT_THRESHOLD`]);
//! * `index.log`: an append-only binary log of puts and deletes. [`replay`] rebuilds the
//!   in-memory index from it at startup (a later record for a key replaces the earlier
//!   one) and truncates a torn tail, so a crash mid-write loses at most that record.
//!
//! [`Writer`] is the only thing that appends to these files.

use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

use super::meta::{from_nanos, to_nanos, Location, ObjectMeta};

/// Objects at least this large get their own data file instead of going into a segment.
pub const LARGE_OBJECT_THRESHOLD: u64 = 1024 * 1024;
/// A segment file is rotated once it grows past this size.
const SEGMENT_MAX: u64 = 1024 * 1024 * 1024;
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

pub(super) fn seg_path(dir: &Path, id: u64) -> PathBuf {
    dir.join(format!("seg-{id:08}.dat"))
}

pub(super) fn obj_path(dir: &Path, id: u64) -> PathBuf {
    dir.join(format!("obj-{id:016}.dat"))
}

pub(super) fn data_path(dir: &Path, loc: Location) -> PathBuf {
    match loc {
        Location::Segment { id, .. } => seg_path(dir, id),
        Location::File { id } => obj_path(dir, id),
    }
}

/// Appends object data to segments / own files and records to `index.log`.
pub(super) struct Writer {
    dir: PathBuf,
    log: BufWriter<File>,
    seg_id: u64,
    seg: BufWriter<File>,
    seg_len: u64,
    /// Id of the next large object's own data file.
    pub(super) next_file_id: u64,
}

impl Writer {
    /// Opens the bucket directory `dir` for appending (after the highest existing ids).
    pub(super) fn open(dir: &Path) -> io::Result<Self> {
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
    pub(super) fn write_data(&mut self, data: &[u8]) -> io::Result<Location> {
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

    pub(super) fn log_put(&mut self, key: &str, meta: &ObjectMeta) -> io::Result<()> {
        let mut rec = Vec::with_capacity(3 + key.len() + PUT_TAIL_LEN + 8);
        rec.push(if meta.crc64nvme().is_some() {
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

    pub(super) fn log_delete(&mut self, key: &str) -> io::Result<()> {
        self.log.write_all(&[OP_DELETE])?;
        self.log.write_all(
            &u16::try_from(key.len())
                .map_err(io::Error::other)?
                .to_le_bytes(),
        )?;
        self.log.write_all(key.as_bytes())
    }

    pub(super) fn flush(&mut self) -> io::Result<()> {
        self.seg.flush()?;
        self.log.flush()
    }
}

/// Replays `index.log`, truncating a torn tail.
pub(super) fn replay(dir: &Path) -> io::Result<BTreeMap<String, ObjectMeta>> {
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
