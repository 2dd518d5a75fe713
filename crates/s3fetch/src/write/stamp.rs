//! What a finished file carries besides its bytes: its object's modification time, and the
//! ETag it was downloaded from, which a `compare: etag` run checks before it skips the file.
//!
//! The ETag is recorded where it travels with the file, in the extended attribute
//! [`ETAG_XATTR`], else in an index in the download directory ([`EtagIndex`]). A record that
//! is lost or out of date costs a download, never a file wrongly skipped: the size and
//! modification time are compared too, and a different ETag downloads.

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::{self, BufRead, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::SystemTime;

/// The extended attribute that holds the ETag a file was downloaded from.
pub(crate) const ETAG_XATTR: &str = "user.s3fetch.etag";

/// The index of ETags in the download directory, where extended attributes cannot be set
/// (some network and FAT file systems keep none).
///
/// One JSON line `{"path": …, "etag": …, "ino": …}` is appended per file: the path relative
/// to the download directory, and the file's inode number, so that a file replaced by other
/// means loses its record, as it would lose an attribute. The last line for a path wins.
pub(crate) const ETAG_INDEX: &str = ".s3fetch-etags.jsonl";

#[derive(Debug, Clone, Default)]
pub(crate) struct Stamp {
    pub mtime: Option<SystemTime>,
    /// Recorded for `compare: etag` runs ([`ETAG_XATTR`], else [`ETAG_INDEX`]).
    pub etag: Option<String>,
}

impl Stamp {
    /// Sets the modification time of `file`, which is to become `dest` (an error is the
    /// caller's), and records the ETag.
    pub(super) fn apply(&self, file: &File, dest: &Path, etags: &EtagIndex) -> io::Result<()> {
        if let Some(time) = self.mtime {
            file.set_modified(time)?;
        }
        if let Some(etag) = &self.etag {
            if etags.no_xattr || set_xattr(file, etag).is_err() {
                etags.record(dest, etag, inode(&file.metadata()?));
            }
        }
        Ok(())
    }
}

/// The ETags recorded for files of one download directory where extended attributes fail.
///
/// The index ([`ETAG_INDEX`]) is read once per run when a comparison first needs it, and
/// rewritten without its stale lines when they are most of it. Where neither record can be
/// written a warning says so, once, and such files are downloaded again by the next
/// `compare: etag` run.
#[derive(Debug)]
pub(crate) struct EtagIndex {
    root: PathBuf,
    no_xattr: bool,
    /// The index opened for appending, at the first record.
    appender: Mutex<Option<File>>,
    /// The index as read at the first lookup: relative path → ETag and inode.
    records: OnceLock<HashMap<String, Record>>,
    warned: AtomicBool,
}

impl EtagIndex {
    /// The index of `root`; `no_xattr`: used for every file, as where extended attributes
    /// fail (a test seam, see [`crate::tuning::Tuning::no_xattr`]).
    pub(super) fn new(root: &Path, no_xattr: bool) -> Self {
        EtagIndex {
            root: root.to_owned(),
            no_xattr,
            appender: Mutex::default(),
            records: OnceLock::new(),
            warned: AtomicBool::new(false),
        }
    }

    /// The ETag recorded for the file at `dest` when it was downloaded, if any.
    pub(super) fn recorded(&self, dest: &Path) -> Option<String> {
        if !self.no_xattr {
            if let Ok(Some(etag)) = get_xattr(dest) {
                return Some(etag);
            }
        }
        let records = self.records.get_or_init(|| self.load());
        let record = records.get(&*self.relative(dest)?)?;
        let meta = std::fs::symlink_metadata(dest).ok()?;
        (inode(&meta) == record.ino).then(|| record.etag.clone())
    }

    fn relative(&self, dest: &Path) -> Option<String> {
        Some(dest.strip_prefix(&self.root).ok()?.to_str()?.to_owned())
    }

    fn path(&self) -> PathBuf {
        self.root.join(ETAG_INDEX)
    }

    /// Appends `dest`'s record: one write of one line, so that lines of runs appending at
    /// once (`O_APPEND`) do not interleave.
    fn record(&self, dest: &Path, etag: &str, ino: u64) {
        let Some(path) = self.relative(dest) else {
            return;
        };
        let mut line = index_line(&path, etag, ino);
        line.push('\n');
        let mut appender = self.appender.lock().unwrap_or_else(|e| e.into_inner());
        let written = match &mut *appender {
            Some(file) => file.write_all(line.as_bytes()),
            None => OpenOptions::new()
                .append(true)
                .create(true)
                .open(self.path())
                .and_then(|mut file| {
                    file.write_all(line.as_bytes())?;
                    *appender = Some(file);
                    Ok(())
                }),
        };
        if let Err(error) = written {
            if !self.warned.swap(true, Ordering::Relaxed) {
                tracing::warn!(
                    index = %self.path().display(),
                    %error,
                    "cannot record ETags (no extended attributes here, and the index cannot be written): a compare etag run downloads these files again"
                );
            }
        }
    }

    /// Reads the index; rewrites it when most of its lines are stale (it only grows
    /// otherwise). Lines that do not parse are skipped: a torn last line of a killed run.
    fn load(&self) -> HashMap<String, Record> {
        let mut records = HashMap::new();
        let Ok(file) = File::open(self.path()) else {
            return records;
        };
        let mut lines = 0usize;
        for line in io::BufReader::new(file).split(b'\n').map_while(|l| l.ok()) {
            lines += 1;
            let Ok(serde_json::Value::Object(line)) = serde_json::from_slice(&line) else {
                continue;
            };
            let field = |name| line.get(name).cloned();
            if let (Some(serde_json::Value::String(path)), Some(serde_json::Value::String(etag))) =
                (field("path"), field("etag"))
            {
                let ino = field("ino").and_then(|ino| ino.as_u64()).unwrap_or(0);
                records.insert(path, Record { etag, ino });
            }
        }
        if lines > 1000 && lines > 2 * records.len() {
            self.rewrite(&records);
        }
        records
    }

    /// Replaces the index by `records`, one line each (written aside, then renamed over it).
    /// A record another process appends meanwhile may be lost: a download, later.
    fn rewrite(&self, records: &HashMap<String, Record>) {
        let mut appender = self.appender.lock().unwrap_or_else(|e| e.into_inner());
        let lines: Vec<String> = records
            .iter()
            .map(|(path, record)| index_line(path, &record.etag, record.ino))
            .collect();
        let lines: Vec<&str> = lines.iter().map(String::as_str).collect();
        match super::write_lines(&self.path(), &lines) {
            // This run's appends go to the new file from now on.
            Ok(()) => *appender = None,
            Err(error) => tracing::debug!(%error, "could not rewrite the ETag index"),
        }
    }
}

/// One file's line in the index: its ETag, and its inode number when it was recorded.
#[derive(Debug)]
struct Record {
    etag: String,
    ino: u64,
}

fn index_line(path: &str, etag: &str, ino: u64) -> String {
    serde_json::json!({ "path": path, "etag": etag, "ino": ino }).to_string()
}

#[cfg(unix)]
fn inode(meta: &std::fs::Metadata) -> u64 {
    std::os::unix::fs::MetadataExt::ino(meta)
}

#[cfg(not(unix))]
fn inode(_meta: &std::fs::Metadata) -> u64 {
    0
}

#[cfg(target_os = "linux")]
fn set_xattr(file: &File, etag: &str) -> io::Result<()> {
    rustix::fs::fsetxattr(
        file,
        ETAG_XATTR,
        etag.as_bytes(),
        rustix::fs::XattrFlags::empty(),
    )
    .map_err(io::Error::from)
}

#[cfg(not(target_os = "linux"))]
fn set_xattr(_file: &File, _etag: &str) -> io::Result<()> {
    Err(io::ErrorKind::Unsupported.into())
}

/// The ETag in `path`'s extended attribute: `Ok(None)` when it has none, `Err` when the file
/// system keeps no extended attributes.
#[cfg(target_os = "linux")]
fn get_xattr(path: &Path) -> io::Result<Option<String>> {
    let mut buffer = [0u8; 256];
    match rustix::fs::lgetxattr(path, ETAG_XATTR, &mut buffer[..]) {
        Ok(n) => Ok(String::from_utf8(buffer[..n].to_vec()).ok()),
        Err(rustix::io::Errno::NODATA | rustix::io::Errno::RANGE) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

#[cfg(not(target_os = "linux"))]
fn get_xattr(_path: &Path) -> io::Result<Option<String>> {
    Err(io::ErrorKind::Unsupported.into())
}
