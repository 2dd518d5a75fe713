//! Resuming large downloads across runs: a partial file and its journal.
//!
//! A large object (fetched in ranged parts) is written to `.s3fetch-part-<h>` in its target
//! directory ([`partial_paths`]); beside it, a [`Journal`] records the parts finished. A run
//! that is interrupted in any way — Ctrl-C, SIGTERM, SIGKILL, a lost network, power loss —
//! leaves both behind; the next run into the same directory that wants the same object
//! ([`Identity`]) fetches only the parts the journal does not list. A partial is never
//! visible under the final name.

use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::hash::fnv1a;

/// The longest a finished part may wait to be journaled: the journal is rewritten at most
/// once a second while parts finish, and once more when the download stops without
/// finishing.
const JOURNAL_EVERY: Duration = Duration::from_secs(1);

/// Names of a destination's partial file and journal: `.s3fetch-part-<h>` and
/// `.s3fetch-part-<h>.json` in its directory, `<h>` a stable hash of the file name, instead of
/// a per-process temporary name, so that the next run finds them.
pub(crate) fn partial_paths(dest: &Path) -> (PathBuf, PathBuf) {
    let name = dest.file_name().unwrap_or_default();
    let hash = fnv1a(name.as_encoded_bytes());
    let dir = dest.parent().unwrap_or(Path::new("."));
    (
        dir.join(format!(".s3fetch-part-{hash:016x}")),
        dir.join(format!(".s3fetch-part-{hash:016x}.json")),
    )
}

/// What identifies the download a journal belongs to: a later run resumes only the same
/// object with the same ETag, size and part size.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Identity {
    pub key: String,
    pub etag: String,
    pub size: u64,
    pub part_size: u64,
}

/// A partial file's journal: the parts finished so far, kept in memory and written now and
/// then.
///
/// It records the key, the ETag, the size, the part size and each finished part's index,
/// length and CRC, and is rewritten whole, then renamed over the old one ([`JOURNAL_EVERY`]).
/// Nothing in it is trusted blindly: before a part is taken as done its bytes are read back
/// from the partial file and their CRC compared with the journal's (the object's own CRC
/// kind, or a CRC64NVME made for the journal where the object has none, see
/// [`crate::fetch`]), and the whole object's checksum is checked as for any download before
/// the file is renamed into place. So neither file is written with `fsync`: a part whose
/// bytes a power loss took is told by its CRC and fetched again.
#[derive(Debug)]
pub(crate) struct Journal {
    path: PathBuf,
    identity: Identity,
    /// Part index -> (length, CRC).
    done: BTreeMap<u64, (u64, u64)>,
    written: Instant,
    /// Parts finished since the last write.
    dirty: bool,
}

impl Journal {
    /// The journal at `path` if it is of this download, else an empty one (a different or
    /// unreadable journal is a fresh start).
    fn load(path: PathBuf, identity: Identity) -> Journal {
        let done = fs::read(&path)
            .ok()
            .and_then(|bytes| serde_json::from_slice::<Value>(&bytes).ok())
            .filter(|v| {
                v["version"] == 1
                    && v["key"] == identity.key.as_str()
                    && v["etag"] == identity.etag.as_str()
                    && v["size"] == identity.size
                    && v["part_size"] == identity.part_size
            })
            .and_then(|v| {
                v["done"].as_array().map(|parts| {
                    parts
                        .iter()
                        .filter_map(|p| Some((p[0].as_u64()?, (p[1].as_u64()?, p[2].as_u64()?))))
                        .collect()
                })
            })
            .unwrap_or_default();
        Journal {
            path,
            identity,
            done,
            written: Instant::now(),
            dirty: false,
        }
    }

    /// Finished parts, by index: (length, CRC).
    pub(crate) fn done(&self) -> &BTreeMap<u64, (u64, u64)> {
        &self.done
    }

    /// Forgets a part (its bytes did not check out) or all of them.
    pub(crate) fn forget(&mut self, index: Option<u64>) {
        match index {
            Some(index) => self.done.remove(&index),
            None => {
                self.done.clear();
                None
            }
        };
        self.dirty = true;
    }

    /// Records a finished part; writes the journal if the last write is a second old.
    pub(crate) fn finished(&mut self, index: u64, len: u64, crc: u64) {
        self.done.insert(index, (len, crc));
        self.dirty = true;
        if self.written.elapsed() >= JOURNAL_EVERY {
            self.write();
        }
    }

    /// Writes the journal if anything changed since the last write. Failures are logged
    /// only: a journal that could not be written costs a refetch, never a wrong file.
    pub(crate) fn write(&mut self) {
        if !self.dirty {
            return;
        }
        let done: Vec<Value> = self
            .done
            .iter()
            .map(|(index, (len, crc))| json!([index, len, crc]))
            .collect();
        let text = json!({
            "version": 1,
            "key": self.identity.key,
            "etag": self.identity.etag,
            "size": self.identity.size,
            "part_size": self.identity.part_size,
            "done": done,
        })
        .to_string();
        let temp = self.path.with_extension("json.new");
        let written = fs::write(&temp, text).and_then(|()| fs::rename(&temp, &self.path));
        if let Err(error) = written {
            let _ = fs::remove_file(&temp);
            tracing::debug!(path = %self.path.display(), %error, "journal not written");
        }
        self.written = Instant::now();
        self.dirty = false;
    }

    /// Removes the journal file (the object is complete, or its partial is discarded).
    pub(crate) fn remove(&self) {
        let _ = fs::remove_file(&self.path);
    }
}

/// Opens (creating it if need be) the partial file of `dest` for `identity` and locks it.
/// `None` when another process holds it. The file is emptied unless its journal is of this
/// download.
///
/// The lock (`flock`) is held while a run writes the partial, so a second s3fetch running into
/// the same directory at the same time downloads that object into a temporary file of its own
/// instead.
pub(crate) fn open(
    dest: &Path,
    identity: Identity,
) -> io::Result<Option<(PathBuf, File, Journal)>> {
    let (path, journal_path) = partial_paths(dest);
    let mut file = open_no_follow(&path)?;
    if !lock(&file)? {
        return Ok(None);
    }
    let journal = Journal::load(journal_path, identity);
    if journal.done.is_empty() && file.metadata()?.len() > 0 {
        // Another download's bytes: start from a new file. Not by truncating this one: ext4
        // takes a file truncated to zero for a rewrite in place and, when it is closed,
        // pushes all of its new data to disk (`auto_da_alloc`) — which made every large
        // download wait for the disk (4 × 512 MiB: 6 s instead of 3).
        fs::remove_file(&path)?;
        file = open_no_follow(&path)?;
        if !lock(&file)? {
            return Ok(None);
        }
    }
    Ok(Some((path, file, journal)))
}

/// Removes `dest`'s partial file and journal, unless another process holds them
/// (`--no-resume`).
pub(crate) fn discard(dest: &Path) {
    remove(&partial_paths(dest).0);
}

/// Removes the partial file at `partial` and its journal unless another process holds it;
/// whether they were removed.
pub(crate) fn remove(partial: &Path) -> bool {
    let journal = partial.with_extension("json");
    match File::open(partial) {
        Ok(file) if lock(&file).unwrap_or(false) => {
            let _ = fs::remove_file(&journal);
            fs::remove_file(partial).is_ok()
        }
        Ok(_) => false,
        // A journal without its partial file.
        Err(_) => fs::remove_file(&journal).is_ok(),
    }
}

/// Whether `name` is a partial file's journal (`.s3fetch-part-<hash>.json`).
pub(crate) fn is_journal_name(name: &std::ffi::OsStr) -> bool {
    name.to_str()
        .is_some_and(|n| n.starts_with(".s3fetch-part-") && n.ends_with(".json"))
}

/// The key a journal is about, if it can be read.
pub(crate) fn journal_key(journal: &Path) -> Option<String> {
    let value: Value = serde_json::from_slice(&fs::read(journal).ok()?).ok()?;
    value["key"].as_str().map(str::to_owned)
}

fn open_no_follow(path: &Path) -> io::Result<File> {
    let mut options = OpenOptions::new();
    options.read(true).write(true).create(true).truncate(false);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        // Never through a link planted under the partial's name.
        options.custom_flags(rustix::fs::OFlags::NOFOLLOW.bits() as i32);
    }
    options.open(path)
}

/// An exclusive lock on the whole file, without waiting: `false` if another holds it. The
/// lock goes with the process, however it ends.
#[cfg(unix)]
fn lock(file: &File) -> io::Result<bool> {
    use rustix::fs::{flock, FlockOperation};
    match flock(file, FlockOperation::NonBlockingLockExclusive) {
        Ok(()) => Ok(true),
        Err(rustix::io::Errno::WOULDBLOCK) => Ok(false),
        Err(e) => Err(e.into()),
    }
}

/// Elsewhere (Windows: `LockFileEx`), the standard library's lock, with the same meaning.
#[cfg(not(unix))]
fn lock(file: &File) -> io::Result<bool> {
    match file.try_lock() {
        Ok(()) => Ok(true),
        Err(std::fs::TryLockError::WouldBlock) => Ok(false),
        Err(std::fs::TryLockError::Error(e)) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn identity() -> Identity {
        Identity {
            key: "d/big.bin".into(),
            etag: "\"abc\"".into(),
            size: 30,
            part_size: 10,
        }
    }

    #[test]
    fn names_are_stable_and_short() {
        assert_eq!(
            fnv1a(b"a"),
            0xaf63_dc4c_8601_ec8c,
            "the published FNV-1a test vector"
        );
        let (partial, journal) = partial_paths(Path::new("/x/y/a"));
        assert_eq!(partial, Path::new("/x/y/.s3fetch-part-af63dc4c8601ec8c"));
        assert_eq!(
            journal,
            Path::new("/x/y/.s3fetch-part-af63dc4c8601ec8c.json")
        );
        let long = partial_paths(&Path::new("/x").join("n".repeat(250))).0;
        assert!(long.file_name().unwrap().len() < 40);
    }

    #[test]
    fn a_journal_is_kept_only_for_the_same_download() {
        let tmp = tempfile::tempdir().unwrap();
        let dest = tmp.path().join("big.bin");
        let (_, file, mut journal) = open(&dest, identity()).unwrap().unwrap();
        file.set_len(30).unwrap();
        journal.finished(0, 10, 7);
        journal.finished(2, 10, 9);
        journal.write();
        drop(file);

        let (_, file, journal) = open(&dest, identity()).unwrap().unwrap();
        assert_eq!(journal.done().len(), 2);
        assert_eq!(journal.done()[&2], (10, 9));
        assert_eq!(
            file.metadata().unwrap().len(),
            30,
            "kept for the same download"
        );
        drop(file);

        let changed = Identity {
            etag: "\"other\"".into(),
            ..identity()
        };
        let (_, file, journal) = open(&dest, changed).unwrap().unwrap();
        assert!(journal.done().is_empty(), "another ETag: a fresh start");
        assert_eq!(file.metadata().unwrap().len(), 0);
    }

    #[test]
    fn a_locked_partial_is_left_to_its_owner() {
        let tmp = tempfile::tempdir().unwrap();
        let dest = tmp.path().join("big.bin");
        let held = open(&dest, identity()).unwrap().unwrap();
        // flock locks belong to the open file: a second open is a second owner.
        assert!(open(&dest, identity()).unwrap().is_none());
        discard(&dest);
        assert!(held.0.exists(), "not removed while held");
        drop(held);
        discard(&dest);
        assert!(!partial_paths(&dest).0.exists());
    }

    #[test]
    fn a_torn_journal_is_a_fresh_start() {
        let tmp = tempfile::tempdir().unwrap();
        let dest = tmp.path().join("big.bin");
        fs::write(partial_paths(&dest).1, b"{\"version\":1,\"key\":").unwrap();
        let (_, _, journal) = open(&dest, identity()).unwrap().unwrap();
        assert!(journal.done().is_empty());
    }
}
