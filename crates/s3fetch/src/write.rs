//! Writing objects safely under the download directory.
//!
//! Every object is written to a temporary file in its target directory and renamed into place
//! only when complete, so a reader never sees a partial file. The temporary name is short and
//! fixed-length (`.s3fetch-<pid>-<n>.tmp`) whatever the target name's length, and a
//! [`TempFile`] removes itself when dropped unless it was committed: on error, on panic and on
//! cancellation alike. Directories are created one level at a time and each is checked not to
//! be a symlink, so a link inside the download directory is never followed to write outside.

use std::collections::{BTreeSet, HashSet};
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};

use crate::checksum::Hasher;
use crate::error::{DirProblem, Error, Result};

/// The download directory and the subdirectories already checked or created in it.
#[derive(Debug)]
pub(crate) struct DownloadDir {
    root: PathBuf,
    /// Relative directories known to exist as real directories (not symlinks).
    ready: Mutex<HashSet<PathBuf>>,
    /// This run's temporary files.
    temps: Arc<Temps>,
}

impl DownloadDir {
    /// Opens an existing directory; it is never created.
    pub fn open(path: &Path) -> Result<Self> {
        let error = |problem, source| Error::DownloadDir {
            path: path.to_owned(),
            problem,
            source,
        };
        let meta = fs::metadata(path).map_err(|e| match e.kind() {
            io::ErrorKind::NotFound => error(DirProblem::Missing, None),
            _ => error(DirProblem::Inaccessible, Some(e)),
        })?;
        if !meta.is_dir() {
            return Err(error(DirProblem::NotADirectory, None));
        }
        let root = fs::canonicalize(path).map_err(|e| error(DirProblem::Inaccessible, Some(e)))?;
        Ok(DownloadDir {
            root,
            ready: Mutex::new(HashSet::new()),
            temps: Temps::register(),
        })
    }

    /// Fails unless files can be created in the directory (a read-only file system, no
    /// write permission): better one clear error than one per object.
    pub fn check_writable(&self) -> Result<()> {
        #[cfg(unix)]
        rustix::fs::access(&self.root, rustix::fs::Access::WRITE_OK).map_err(|e| {
            Error::DownloadDir {
                path: self.root.clone(),
                problem: DirProblem::NotWritable,
                source: Some(io::Error::from(e)),
            }
        })?;
        Ok(())
    }

    /// A new temporary file beside `dest`, removed when dropped unless committed.
    pub fn temp_file(&self, key: &str, dest: &Path) -> Result<TempFile> {
        TempFile::create(key, dest, &self.temps)
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Makes sure the parent directories of `relative` exist as real directories and returns
    /// the absolute destination path.
    pub fn prepare(&self, key: &str, relative: &Path) -> Result<PathBuf> {
        if let Some(parent) = relative.parent() {
            if !parent.as_os_str().is_empty() && !self.is_ready(parent) {
                let mut dir = PathBuf::new();
                for component in parent.components() {
                    dir.push(component);
                    if !self.is_ready(&dir) {
                        self.make_dir(key, &dir)?;
                        self.ready
                            .lock()
                            .unwrap_or_else(|e| e.into_inner())
                            .insert(dir.clone());
                    }
                }
            }
        }
        Ok(self.root.join(relative))
    }

    fn is_ready(&self, dir: &Path) -> bool {
        self.ready
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .contains(dir)
    }

    fn make_dir(&self, key: &str, relative: &Path) -> Result<()> {
        let path = self.root.join(relative);
        let check = |meta: fs::Metadata| {
            if meta.file_type().is_symlink() {
                Err(Error::UnsafeKey {
                    key: key.to_owned(),
                    reason: format!(
                        "{} is a symlink; refusing to write through it",
                        path.display()
                    ),
                })
            } else if !meta.is_dir() {
                Err(Error::io(
                    key,
                    "creating directory",
                    path.clone(),
                    io::Error::new(io::ErrorKind::AlreadyExists, "a file is in the way"),
                ))
            } else {
                Ok(())
            }
        };
        match fs::symlink_metadata(&path) {
            Ok(meta) => check(meta),
            Err(e) if e.kind() == io::ErrorKind::NotFound => match fs::create_dir(&path) {
                Ok(()) => Ok(()),
                // Another task created it meanwhile: check what is there now.
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => check(
                    fs::symlink_metadata(&path)
                        .map_err(|e| Error::io(key, "inspecting", path.clone(), e))?,
                ),
                Err(e) => Err(Error::io(key, "creating directory", path.clone(), e)),
            },
            Err(e) => Err(Error::io(key, "inspecting", path.clone(), e)),
        }
    }
}

/// A temporary file beside its destination; removed on drop unless [`TempFile::commit`]ed.
/// Parts of it can be written concurrently at their offsets ([`TempFile::write_at`]).
#[derive(Debug)]
pub(crate) struct TempFile {
    path: PathBuf,
    dest: PathBuf,
    file: File,
    /// A second handle that bypasses the page cache, for aligned writes (see
    /// [`TempFile::enable_direct`]).
    direct: Option<File>,
    temps: Arc<Temps>,
}

/// Offsets, lengths and buffer addresses of direct writes are multiples of this.
pub(crate) const DIRECT_ALIGN: usize = 4096;

static NEXT_TEMP: AtomicU64 = AtomicU64::new(0);

/// The temporary files of one run that are not yet renamed or removed, so that a hard exit
/// (a second Ctrl-C) can still remove them: see [`remove_temporary_files`]. One set per run
/// rather than one per process: the process-wide list is only touched when a run starts, so
/// a child forked while a download runs in another thread does not find a lock held by a
/// thread it does not have; and each set knows its process, so a forked child never removes
/// its parent's files.
#[derive(Debug)]
pub(crate) struct Temps {
    pid: u32,
    live: Mutex<BTreeSet<PathBuf>>,
}

static RUNS: Mutex<Vec<Weak<Temps>>> = Mutex::new(Vec::new());

impl Temps {
    fn register() -> Arc<Temps> {
        let temps = Arc::new(Temps {
            pid: std::process::id(),
            live: Mutex::new(BTreeSet::new()),
        });
        let mut runs = RUNS.lock().unwrap_or_else(|e| e.into_inner());
        runs.retain(|run| run.strong_count() > 0);
        runs.push(Arc::downgrade(&temps));
        temps
    }

    fn live(&self) -> std::sync::MutexGuard<'_, BTreeSet<PathBuf>> {
        self.live.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Removes every temporary file this process's runs still have open, for a caller about to
/// exit without letting the runs finish (a second Ctrl-C). Returns how many were removed.
pub fn remove_temporary_files() -> usize {
    let pid = std::process::id();
    let runs: Vec<Arc<Temps>> = RUNS
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .iter()
        .filter_map(Weak::upgrade)
        .filter(|run| run.pid == pid)
        .collect();
    let mut removed = 0;
    for run in runs {
        let mut live = run.live();
        removed += live
            .iter()
            .filter(|path| fs::remove_file(path).is_ok())
            .count();
        live.clear();
    }
    removed
}

impl TempFile {
    /// Creates a new, empty temporary file in `dest`'s directory.
    fn create(key: &str, dest: &Path, temps: &Arc<Temps>) -> Result<Self> {
        let dir = dest.parent().unwrap_or(Path::new("."));
        loop {
            let n = NEXT_TEMP.fetch_add(1, Ordering::Relaxed);
            let path = dir.join(format!(".s3fetch-{}-{n}.tmp", std::process::id()));
            // create_new: O_EXCL, never follows or reuses an existing file or link.
            match OpenOptions::new().write(true).create_new(true).open(&path) {
                Ok(file) => {
                    temps.live().insert(path.clone());
                    return Ok(TempFile {
                        path,
                        dest: dest.to_owned(),
                        file,
                        direct: None,
                        temps: temps.clone(),
                    });
                }
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
                // Errors name the destination: the temporary name means nothing to a user.
                Err(e) => return Err(Error::io(key, "creating", dest.to_owned(), e)),
            }
        }
    }

    /// Sets the final size up front, so parts can be written at any offset.
    pub fn set_len(&self, key: &str, len: u64) -> Result<()> {
        self.file
            .set_len(len)
            .map_err(|e| Error::io(key, "sizing", self.dest.clone(), e))
    }

    /// Sends aligned writes of this file around the page cache (`O_DIRECT`, Linux only).
    /// Large downloads are written once and not read back soon: copying them through the
    /// page cache costs several times the CPU (on some machines more than the download
    /// itself) and evicts useful data. Where the file system refuses, writes stay buffered.
    pub fn enable_direct(&mut self) {
        #[cfg(target_os = "linux")]
        {
            use std::os::unix::fs::OpenOptionsExt;
            self.direct = OpenOptions::new()
                .write(true)
                .custom_flags(libc::O_DIRECT)
                .open(&self.path)
                .ok();
        }
    }

    /// Writes `bytes` at `offset`: directly when it is aligned and direct writes are on,
    /// through the page cache otherwise.
    pub fn write_at(&self, key: &str, bytes: &[u8], offset: u64) -> Result<()> {
        if let Some(direct) = &self.direct {
            let aligned = offset.is_multiple_of(DIRECT_ALIGN as u64)
                && bytes.len().is_multiple_of(DIRECT_ALIGN)
                && bytes.as_ptr().align_offset(DIRECT_ALIGN) == 0;
            if aligned {
                match write_at(direct, bytes, offset) {
                    Ok(()) => return Ok(()),
                    // Not supported here after all: write through the page cache.
                    Err(e) if e.kind() == io::ErrorKind::InvalidInput => {}
                    Err(e) => return Err(Error::io(key, "writing", self.dest.clone(), e)),
                }
            }
        }
        write_at(&self.file, bytes, offset)
            .map_err(|e| Error::io(key, "writing", self.dest.clone(), e))
    }

    /// `hasher` fed with `len` bytes of the file from `start`, read back (for checksums that
    /// cannot be combined from parts written out of order). The pages read are dropped from
    /// the cache afterwards, as the direct writes kept them out.
    pub fn read_back(&self, key: &str, mut hasher: Hasher, start: u64, len: u64) -> Result<Hasher> {
        let error = |e| Error::io(key, "reading back", self.dest.clone(), e);
        let file = File::open(&self.path).map_err(error)?;
        let mut buffer = vec![0u8; (256 << 10).min(len as usize)];
        let mut offset = start;
        while offset < start + len {
            let want = buffer.len().min((start + len - offset) as usize);
            match read_at(&file, &mut buffer[..want], offset) {
                Ok(0) => return Err(error(io::ErrorKind::UnexpectedEof.into())),
                Ok(n) => {
                    hasher.update(&buffer[..n]);
                    offset += n as u64;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(error(e)),
            }
        }
        #[cfg(target_os = "linux")]
        let _ = rustix::fs::fadvise(
            &file,
            start,
            std::num::NonZeroU64::new(len),
            rustix::fs::Advice::DontNeed,
        );
        Ok(hasher)
    }

    /// Renames the file over the destination.
    pub fn commit(mut self, key: &str) -> Result<()> {
        fs::rename(&self.path, &self.dest).map_err(|e| {
            let e = match fs::symlink_metadata(&self.dest) {
                Ok(meta) if meta.is_dir() => {
                    io::Error::new(e.kind(), format!("a directory is in the way ({e})"))
                }
                _ => e,
            };
            Error::io(key, "renaming into place", self.dest.clone(), e)
        })?;
        // Renamed: nothing to remove any more.
        self.temps.live().remove(&self.path);
        self.path = PathBuf::new();
        Ok(())
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        if !self.path.as_os_str().is_empty() {
            let _ = fs::remove_file(&self.path);
            self.temps.live().remove(&self.path);
        }
    }
}

#[cfg(unix)]
fn write_at(file: &File, bytes: &[u8], offset: u64) -> io::Result<()> {
    std::os::unix::fs::FileExt::write_all_at(file, bytes, offset)
}

#[cfg(unix)]
fn read_at(file: &File, buffer: &mut [u8], offset: u64) -> io::Result<usize> {
    std::os::unix::fs::FileExt::read_at(file, buffer, offset)
}

#[cfg(windows)]
fn read_at(file: &File, buffer: &mut [u8], offset: u64) -> io::Result<usize> {
    std::os::windows::fs::FileExt::seek_read(file, buffer, offset)
}

#[cfg(windows)]
fn write_at(file: &File, mut bytes: &[u8], mut offset: u64) -> io::Result<()> {
    while !bytes.is_empty() {
        let n = std::os::windows::fs::FileExt::seek_write(file, bytes, offset)?;
        bytes = &bytes[n..];
        offset += n as u64;
    }
    Ok(())
}

/// A fixed-capacity byte buffer whose start is aligned for direct writes.
pub(crate) struct AlignedBuffer {
    bytes: Vec<u8>,
    start: usize,
    len: usize,
    capacity: usize,
}

impl AlignedBuffer {
    pub fn new(capacity: usize) -> Self {
        let bytes = vec![0u8; capacity + DIRECT_ALIGN];
        let start = bytes.as_ptr().align_offset(DIRECT_ALIGN).min(DIRECT_ALIGN);
        AlignedBuffer {
            bytes,
            start,
            len: 0,
            capacity,
        }
    }

    /// Copies as much of `data` as fits; returns how much that was.
    pub fn push(&mut self, data: &[u8]) -> usize {
        let n = data.len().min(self.capacity - self.len);
        let at = self.start + self.len;
        self.bytes[at..at + n].copy_from_slice(&data[..n]);
        self.len += n;
        n
    }

    pub fn is_full(&self) -> bool {
        self.len == self.capacity
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn filled(&self) -> &[u8] {
        &self.bytes[self.start..self.start + self.len]
    }

    pub fn clear(&mut self) {
        self.len = 0;
    }
}

/// Writes a complete object held in memory: directories, temporary file, rename.
pub(crate) fn write_whole(
    dir: &DownloadDir,
    key: &str,
    relative: &Path,
    chunks: &[impl AsRef<[u8]>],
) -> Result<()> {
    let dest = dir.prepare(key, relative)?;
    #[cfg(target_os = "linux")]
    if let Some(linked) = write_unnamed(&dest, chunks) {
        return linked.map_err(|e| Error::io(key, "writing", dest, e));
    }
    let file = dir.temp_file(key, &dest)?;
    for chunk in chunks {
        (&file.file)
            .write_all(chunk.as_ref())
            .map_err(|e| Error::io(key, "writing", file.dest.clone(), e))?;
    }
    file.commit(key)
}

/// Linux: writes the object into an unnamed file in the target directory (`O_TMPFILE`) and
/// links it in under its name when complete. One directory update instead of two (create a
/// temporary name, then rename it), and nothing to clean up if the process dies: an unnamed
/// file vanishes with it. `None` when this cannot be used here (no `O_TMPFILE` support, no
/// `/proc`, or the name exists already: replacing a file needs the rename).
#[cfg(target_os = "linux")]
fn write_unnamed(dest: &Path, chunks: &[impl AsRef<[u8]>]) -> Option<io::Result<()>> {
    use rustix::fs::{linkat, openat, AtFlags, Mode, OFlags, CWD};
    use std::os::fd::AsRawFd;
    let dir = dest.parent()?;
    let fd = openat(
        CWD,
        dir,
        OFlags::TMPFILE | OFlags::WRONLY | OFlags::CLOEXEC,
        Mode::from_raw_mode(0o666),
    )
    .ok()?;
    let mut file = File::from(fd);
    for chunk in chunks {
        if let Err(e) = file.write_all(chunk.as_ref()) {
            return Some(Err(e));
        }
    }
    let proc_path = format!("/proc/self/fd/{}", file.as_raw_fd());
    match linkat(CWD, proc_path.as_str(), CWD, dest, AtFlags::SYMLINK_FOLLOW) {
        Ok(()) => Some(Ok(())),
        Err(_) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entries(dir: &Path) -> Vec<String> {
        let mut names: Vec<_> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        names
    }

    #[test]
    fn temp_file_is_removed_unless_committed() {
        let tmp = tempfile::tempdir().unwrap();
        let dest = tmp.path().join("x");
        let dir = DownloadDir::open(tmp.path()).unwrap();
        let t = dir.temp_file("k", &dest).unwrap();
        t.write_at("k", b"partial", 0).unwrap();
        drop(t);
        assert!(entries(tmp.path()).is_empty());
        write_whole(&dir, "k", Path::new("x"), &[&b"who"[..], &b"le"[..]]).unwrap();
        assert_eq!(entries(tmp.path()), ["x"]);
        assert_eq!(fs::read(&dest).unwrap(), b"whole");
    }

    #[test]
    fn temp_name_fits_for_long_names() {
        let tmp = tempfile::tempdir().unwrap();
        let dest = tmp.path().join("n".repeat(250));
        let dir = DownloadDir::open(tmp.path()).unwrap();
        let t = dir.temp_file("k", &dest).unwrap();
        assert!(t.path.file_name().unwrap().len() < 64);
        drop(t);
        write_whole(&dir, "k", Path::new(&"n".repeat(250)), &[b"x"]).unwrap();
        assert_eq!(fs::read(&dest).unwrap(), b"x");
    }

    #[test]
    fn refuses_symlinked_directories_and_files_in_the_way() {
        let tmp = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink(outside.path(), tmp.path().join("link")).unwrap();
        fs::write(tmp.path().join("file"), b"").unwrap();
        let dir = DownloadDir::open(tmp.path()).unwrap();
        let err = dir.prepare("link/x", Path::new("link/x")).unwrap_err();
        assert!(err.to_string().contains("symlink"), "{err}");
        let err = dir.prepare("file/x", Path::new("file/x")).unwrap_err();
        let text = crate::error_chain(&err);
        assert!(text.contains("a file is in the way"), "{text}");
        let dest = dir.prepare("a/b/c", Path::new("a/b/c")).unwrap();
        assert_eq!(dest, dir.root().join("a/b/c"));
        assert!(dir.root().join("a/b").is_dir());
        assert!(entries(outside.path()).is_empty());
    }

    #[test]
    fn parts_land_at_their_offsets() {
        let tmp = tempfile::tempdir().unwrap();
        let dest = tmp.path().join("p");
        let t = DownloadDir::open(tmp.path())
            .unwrap()
            .temp_file("k", &dest)
            .unwrap();
        t.set_len("k", 6).unwrap();
        t.write_at("k", b"def", 3).unwrap();
        t.write_at("k", b"abc", 0).unwrap();
        t.commit("k").unwrap();
        assert_eq!(fs::read(&dest).unwrap(), b"abcdef");
    }

    #[test]
    fn reading_back_in_slices_hashes_the_whole_file() {
        use crate::checksum::Expected;
        let tmp = tempfile::tempdir().unwrap();
        let dir = DownloadDir::open(tmp.path()).unwrap();
        let t = dir.temp_file("k", &tmp.path().join("r")).unwrap();
        let body: Vec<u8> = (0..3_000_000u32)
            .map(|i| (i * 7 + i / 1000) as u8)
            .collect();
        t.write_at("k", &body, 0).unwrap();
        let md5 = |bytes: &[u8]| {
            use md5::Digest as _;
            Expected::Md5(md5::Md5::digest(bytes).into())
        };
        let expected = md5(&body);
        let mut hasher = expected.hasher();
        for start in (0..body.len() as u64).step_by(1_100_000) {
            let len = 1_100_000.min(body.len() as u64 - start);
            hasher = t.read_back("k", hasher, start, len).unwrap();
        }
        assert_eq!(hasher.verify(expected), Ok(()));
        // A read past the end is an error, not a short hash.
        let past = t.read_back("k", expected.hasher(), 2_999_999, 2);
        assert!(matches!(past, Err(e) if e.to_string().contains("reading back")));
        assert!(md5(b"other").hasher().verify(expected).is_err());
    }

    #[test]
    fn direct_and_buffered_writes_make_one_file() {
        let tmp = tempfile::tempdir().unwrap();
        let dest = tmp.path().join("d");
        let mut t = DownloadDir::open(tmp.path())
            .unwrap()
            .temp_file("k", &dest)
            .unwrap();
        t.enable_direct();
        let mut buffer = AlignedBuffer::new(2 * DIRECT_ALIGN);
        assert_eq!(buffer.push(&[7u8; 3 * DIRECT_ALIGN]), 2 * DIRECT_ALIGN);
        assert!(buffer.is_full());
        t.set_len("k", 2 * DIRECT_ALIGN as u64 + 3).unwrap();
        t.write_at("k", buffer.filled(), 0).unwrap();
        buffer.clear();
        buffer.push(b"end");
        t.write_at("k", buffer.filled(), 2 * DIRECT_ALIGN as u64)
            .unwrap();
        t.commit("k").unwrap();
        let data = fs::read(&dest).unwrap();
        assert_eq!(data.len(), 2 * DIRECT_ALIGN + 3);
        assert!(data[..2 * DIRECT_ALIGN].iter().all(|&b| b == 7));
        assert_eq!(&data[2 * DIRECT_ALIGN..], b"end");
    }

    #[test]
    fn download_dir_must_exist() {
        let tmp = tempfile::tempdir().unwrap();
        let err = DownloadDir::open(&tmp.path().join("nope")).unwrap_err();
        assert!(err.to_string().contains("does not exist"), "{err}");
        fs::write(tmp.path().join("f"), b"").unwrap();
        let err = DownloadDir::open(&tmp.path().join("f")).unwrap_err();
        assert!(err.to_string().contains("not a directory"), "{err}");
    }
}
