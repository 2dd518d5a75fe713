//! Writing objects safely under the download directory.
//!
//! Every object is written to a temporary file in its target directory and renamed into place
//! only when complete, so a reader never sees a partial file. The temporary name is short and
//! fixed-length (`.s3fetch-<pid>-<n>.tmp`) whatever the target name's length, and a
//! [`TempFile`] removes itself when dropped unless it was committed: on error, on panic and on
//! cancellation alike. Directories are created one level at a time and each is checked not to
//! be a symlink, so a link inside the download directory is never followed to write outside.
//!
//! A process that dies hard (SIGKILL, power loss) cannot remove its temporary files; the
//! next run sweeps each directory it works in, once, for the temporary files of processes
//! that no longer exist ([`DownloadDir::sweep`]).

use std::collections::{BTreeSet, HashSet};
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::SystemTime;

use bytes::Bytes;

use crate::checksum::Hasher;
use crate::error::{DirProblem, Error, Result};
use crate::resume;

/// The download directory and the subdirectories already checked or created in it.
#[derive(Debug)]
pub(crate) struct DownloadDir {
    root: PathBuf,
    /// Relative directories known to exist as real directories (not symlinks).
    ready: Mutex<HashSet<PathBuf>>,
    /// Relative directories already swept for dead runs' temporary files.
    swept: Mutex<HashSet<PathBuf>>,
    /// Journals of partial files found in the swept directories, and the partial files this
    /// run opened: see [`DownloadDir::remove_unwanted_partials`].
    journals_seen: Mutex<Vec<PathBuf>>,
    partials_opened: Mutex<HashSet<PathBuf>>,
    /// This run's temporary files.
    temps: Arc<Temps>,
    /// Partial files kept for a later run to resume.
    kept: Arc<AtomicU64>,
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
            swept: Mutex::new(HashSet::new()),
            journals_seen: Mutex::default(),
            partials_opened: Mutex::default(),
            temps: Temps::register(),
            kept: Arc::default(),
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

    /// The resumable partial file of `dest` for `identity`, sized, with the parts its
    /// journal lists as done (see [`crate::resume`]); kept when dropped unless committed or
    /// [discarded](TempFile::discard). `None` when another process is writing it.
    pub fn partial_file(
        &self,
        dest: &Path,
        identity: resume::Identity,
    ) -> Result<Option<TempFile>> {
        let (key, size) = (identity.key.clone(), identity.size);
        let error = |e| Error::io(&key, "opening the partial file of", dest.to_owned(), e);
        let Some((path, file, journal)) = resume::open(dest, identity).map_err(error)? else {
            return Ok(None);
        };
        self.partials_opened
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(path.clone());
        let temp = TempFile {
            path,
            dest: dest.to_owned(),
            file,
            writing: Mutex::new(()),
            temps: self.temps.clone(),
            partial: Some(Partial {
                journal: Mutex::new(journal),
                discard: AtomicBool::new(false),
                kept: self.kept.clone(),
            }),
        };
        temp.set_len(&key, size)?;
        Ok(Some(temp))
    }

    /// Removes the partial files (and journals) found in the directories this run worked
    /// in whose object `wanted` selects but this run did not download: the object is gone
    /// from the bucket (a complete listing did not list it). Partials of keys the run does
    /// not select are another run's and stay. Returns how many were removed.
    pub fn remove_unwanted_partials(&self, wanted: impl Fn(&str) -> bool) -> usize {
        let journals =
            std::mem::take(&mut *self.journals_seen.lock().unwrap_or_else(|e| e.into_inner()));
        let opened = self
            .partials_opened
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        let mut removed = 0;
        for journal in journals {
            let partial = journal.with_extension("");
            if opened.contains(&partial) {
                continue;
            }
            if resume::journal_key(&journal).is_some_and(|key| wanted(&key))
                && resume::remove(&partial)
            {
                tracing::debug!(path = %partial.display(), "removing the partial file of an object no longer listed");
                removed += 1;
            }
        }
        removed
    }

    /// Partial files kept so far for a later run (interrupted large downloads).
    pub fn partials_kept(&self) -> u64 {
        self.kept.load(Ordering::Relaxed)
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Removes, once per directory and run, the temporary files that processes which no
    /// longer exist left in the directory of `relative` (a file's path under the root).
    ///
    /// Only names of this crate's form (`.s3fetch-<pid>-<n>.tmp`) whose process is gone are
    /// touched: another s3fetch writing into the same directory keeps its files. A process
    /// on another machine (a shared file system) is not seen, so two machines must not
    /// download into one directory at once.
    /// Whether the directory of `relative` has been swept in this run.
    pub fn is_swept(&self, relative: &Path) -> bool {
        let dir = relative.parent().unwrap_or(Path::new(""));
        self.swept
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .contains(dir)
    }

    pub fn sweep(&self, relative: &Path) {
        let dir = relative.parent().unwrap_or(Path::new("")).to_owned();
        if !self
            .swept
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(dir.clone())
        {
            return;
        }
        let Ok(entries) = fs::read_dir(self.root.join(&dir)) else {
            return;
        };
        for entry in entries.flatten() {
            let name = entry.file_name();
            if resume::is_journal_name(&name) {
                self.journals_seen
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .push(entry.path());
                continue;
            }
            let Some(pid) = name.to_str().and_then(temp_pid) else {
                continue;
            };
            if !process_exists(pid) {
                tracing::debug!(path = %entry.path().display(), pid, "removing a dead run's temporary file");
                let _ = fs::remove_file(entry.path());
            }
        }
    }

    /// Makes sure the parent directories of `relative` exist as real directories and returns
    /// the absolute destination path.
    pub fn prepare(&self, key: &str, relative: &Path) -> Result<PathBuf> {
        self.sweep(relative);
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
    /// Held for each write. Parts written at once from several threads would otherwise
    /// contend for the inode's lock in the kernel, which spins for it: with 16 parts of one
    /// file in flight, a third more kernel CPU (BENCHMARKS.md, `large`, write strategy).
    writing: Mutex<()>,
    temps: Arc<Temps>,
    /// A resumable partial file's journal (`None` for a plain temporary file).
    partial: Option<Partial>,
}

#[derive(Debug)]
struct Partial {
    journal: Mutex<resume::Journal>,
    /// Remove instead of keeping when dropped (the object cannot be resumed).
    discard: AtomicBool,
    kept: Arc<AtomicU64>,
}

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
                        writing: Mutex::new(()),
                        temps: temps.clone(),
                        partial: None,
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

    /// Writes `chunks`, in order, at `offset`, through the page cache in one vectored
    /// write where it can (no copy into a buffer of our own).
    ///
    /// Buffered, like every peer: on a machine whose disk is slower than the network the
    /// page cache lets the run end before the disk has caught up, where `O_DIRECT` made it
    /// wait for every byte (4 × 512 MiB: 4.4–6.2 s direct, 3.1–3.3 s buffered, same run;
    /// BENCHMARKS.md).
    pub fn write_chunks_at(&self, key: &str, chunks: &[Bytes], offset: u64) -> Result<()> {
        let _writing = self.writing.lock().unwrap_or_else(|e| e.into_inner());
        write_chunks_at(&self.file, chunks, offset)
            .map_err(|e| Error::io(key, "writing", self.dest.clone(), e))
    }

    /// `hasher` fed with `len` bytes of the file from `start`, read back (for checksums that
    /// cannot be combined from parts written out of order). The pages read are dropped from
    /// the cache afterwards: the file is complete and is not read again soon.
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

    /// Renames the file over the destination, first giving it `stamp`.
    pub fn commit(mut self, key: &str, stamp: &Stamp) -> Result<()> {
        stamp.apply(&self.file).map_err(|e| {
            Error::io(
                key,
                "setting the modification time of",
                self.dest.clone(),
                e,
            )
        })?;
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
        if let Some(partial) = &self.partial {
            partial.journal().remove();
        }
        Ok(())
    }

    /// A partial file's journal (`None` for a plain temporary file).
    pub fn journal(&self) -> Option<std::sync::MutexGuard<'_, resume::Journal>> {
        self.partial.as_ref().map(Partial::journal)
    }

    /// Removes a partial file and its journal when dropped, instead of keeping them: the
    /// object cannot be resumed (it is gone, changed, or refused).
    pub fn discard(&self) {
        if let Some(partial) = &self.partial {
            partial.discard.store(true, Ordering::Relaxed);
        }
    }
}

impl Partial {
    fn journal(&self) -> std::sync::MutexGuard<'_, resume::Journal> {
        self.journal.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        if self.path.as_os_str().is_empty() {
            return;
        }
        match &self.partial {
            // Not finished: kept, with its journal up to date, for the next run (unless
            // no part is done: nothing to resume then).
            Some(partial)
                if !partial.discard.load(Ordering::Relaxed)
                    && !partial.journal().done().is_empty() =>
            {
                partial.journal().write();
                partial.kept.fetch_add(1, Ordering::Relaxed);
            }
            Some(partial) => {
                partial.journal().remove();
                let _ = fs::remove_file(&self.path);
            }
            None => {
                let _ = fs::remove_file(&self.path);
                self.temps.live().remove(&self.path);
            }
        }
    }
}

/// `chunks` written back to back at `offset`: `pwritev`, continued after a short write.
#[cfg(unix)]
fn write_chunks_at(file: &File, mut chunks: &[Bytes], mut offset: u64) -> io::Result<()> {
    let mut skip = 0; // bytes of chunks[0] already written
    loop {
        while chunks.first().is_some_and(|c| c.len() == skip) {
            chunks = &chunks[1..];
            skip = 0;
        }
        if chunks.is_empty() {
            return Ok(());
        }
        let slices: Vec<io::IoSlice<'_>> = std::iter::once(&chunks[0][skip..])
            .chain(chunks[1..].iter().map(|c| &c[..]))
            .take(1024) // IOV_MAX
            .map(io::IoSlice::new)
            .collect();
        let mut n = match rustix::io::pwritev(file, &slices, offset) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => n,
            Err(rustix::io::Errno::INTR) => continue,
            Err(e) => return Err(e.into()),
        };
        offset += n as u64;
        while n > 0 {
            let left = chunks[0].len() - skip;
            if n < left {
                skip += n;
                break;
            }
            n -= left;
            skip = 0;
            chunks = &chunks[1..];
        }
    }
}

#[cfg(windows)]
fn write_chunks_at(file: &File, chunks: &[Bytes], mut offset: u64) -> io::Result<()> {
    for chunk in chunks {
        write_at(file, chunk, offset)?;
        offset += chunk.len() as u64;
    }
    Ok(())
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

/// What a finished file carries besides its bytes: its object's modification time and ETag.
#[derive(Debug, Clone, Default)]
pub(crate) struct Stamp {
    pub mtime: Option<SystemTime>,
    /// Recorded in the extended attribute [`ETAG_XATTR`] for `compare: etag` runs.
    pub etag: Option<String>,
}

/// The extended attribute that holds the ETag a file was downloaded from.
pub(crate) const ETAG_XATTR: &str = "user.s3fetch.etag";

impl Stamp {
    /// Sets the modification time (an error is the caller's) and records the ETag where
    /// the file system keeps extended attributes (elsewhere it is not recorded: see
    /// [`recorded_etag`]).
    fn apply(&self, file: &File) -> io::Result<()> {
        if let Some(time) = self.mtime {
            file.set_modified(time)?;
        }
        #[cfg(target_os = "linux")]
        if let Some(etag) = &self.etag {
            let _ = rustix::fs::fsetxattr(
                file,
                ETAG_XATTR,
                etag.as_bytes(),
                rustix::fs::XattrFlags::empty(),
            );
        }
        Ok(())
    }
}

/// The ETag recorded on the file at `path` when it was downloaded: `Ok(None)` when it has
/// none, `Err` when the file system keeps no extended attributes (or no such support here).
pub(crate) fn recorded_etag(path: &Path) -> io::Result<Option<String>> {
    #[cfg(target_os = "linux")]
    {
        let mut buffer = vec![0u8; 256];
        match rustix::fs::lgetxattr(path, ETAG_XATTR, &mut buffer[..]) {
            Ok(n) => Ok(String::from_utf8(buffer[..n].to_vec()).ok()),
            Err(rustix::io::Errno::NODATA | rustix::io::Errno::RANGE) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = path;
        Err(io::ErrorKind::Unsupported.into())
    }
}

/// Writes a complete object held in memory: directories, temporary file, `stamp`, rename.
pub(crate) fn write_whole(
    dir: &DownloadDir,
    key: &str,
    relative: &Path,
    chunks: &[impl AsRef<[u8]>],
    stamp: &Stamp,
) -> Result<()> {
    let dest = dir.prepare(key, relative)?;
    #[cfg(target_os = "linux")]
    if let Some(linked) = write_unnamed(&dest, chunks, stamp) {
        return linked.map_err(|e| Error::io(key, "writing", dest, e));
    }
    let file = dir.temp_file(key, &dest)?;
    for chunk in chunks {
        (&file.file)
            .write_all(chunk.as_ref())
            .map_err(|e| Error::io(key, "writing", file.dest.clone(), e))?;
    }
    file.commit(key, stamp)
}

/// Writes `lines` to `path`, one per line, replacing it whole: written beside it under a
/// temporary name and renamed over it, so a reader sees the old file or the new one.
pub(crate) fn write_lines(path: &Path, lines: &[&str]) -> io::Result<()> {
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    let temp = path.with_file_name(format!(".{name}.s3fetch-{}.tmp", std::process::id()));
    let write = || {
        let mut file = io::BufWriter::new(File::create(&temp)?);
        for line in lines {
            file.write_all(line.as_bytes())?;
            file.write_all(b"\n")?;
        }
        file.into_inner()
            .map_err(io::IntoInnerError::into_error)?
            .sync_all()?;
        fs::rename(&temp, path)
    };
    write().inspect_err(|_| {
        let _ = fs::remove_file(&temp);
    })
}

/// The process id in a temporary file's name (`.s3fetch-<pid>-<n>.tmp`).
fn temp_pid(name: &str) -> Option<u32> {
    let rest = name.strip_prefix(".s3fetch-")?.strip_suffix(".tmp")?;
    let (pid, n) = rest.split_once('-')?;
    n.parse::<u64>().ok()?;
    pid.parse().ok()
}

/// Whether a process with this id exists on this machine (of any user). Unknown answers
/// count as "exists": a file is only removed when its process is surely gone.
#[cfg(unix)]
fn process_exists(pid: u32) -> bool {
    if pid == std::process::id() {
        return true;
    }
    let Some(pid) = i32::try_from(pid)
        .ok()
        .and_then(rustix::process::Pid::from_raw)
    else {
        return true;
    };
    !matches!(
        rustix::process::test_kill_process(pid),
        Err(rustix::io::Errno::SRCH)
    )
}

#[cfg(not(unix))]
fn process_exists(_pid: u32) -> bool {
    true
}

/// Linux: writes the object into an unnamed file in the target directory (`O_TMPFILE`) and
/// links it in under its name when complete. One directory update instead of two (create a
/// temporary name, then rename it), and nothing to clean up if the process dies: an unnamed
/// file vanishes with it. `None` when this cannot be used here (no `O_TMPFILE` support, no
/// `/proc`, or the name exists already: replacing a file needs the rename).
#[cfg(target_os = "linux")]
fn write_unnamed(
    dest: &Path,
    chunks: &[impl AsRef<[u8]>],
    stamp: &Stamp,
) -> Option<io::Result<()>> {
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
    if let Err(e) = stamp.apply(&file) {
        return Some(Err(e));
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
        t.write_chunks_at("k", &[Bytes::from_static(b"partial")], 0)
            .unwrap();
        drop(t);
        assert!(entries(tmp.path()).is_empty());
        write_whole(
            &dir,
            "k",
            Path::new("x"),
            &[&b"who"[..], &b"le"[..]],
            &Stamp::default(),
        )
        .unwrap();
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
        write_whole(
            &dir,
            "k",
            Path::new(&"n".repeat(250)),
            &[b"x"],
            &Stamp::default(),
        )
        .unwrap();
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
        t.write_chunks_at("k", &[Bytes::from_static(b"def")], 3)
            .unwrap();
        t.write_chunks_at(
            "k",
            &[Bytes::from_static(b"a"), Bytes::from_static(b"bc")],
            0,
        )
        .unwrap();
        t.commit("k", &Stamp::default()).unwrap();
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
        t.write_chunks_at("k", &[Bytes::from(body.clone())], 0)
            .unwrap();
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
    fn chunks_are_written_back_to_back_past_the_iov_limit() {
        let tmp = tempfile::tempdir().unwrap();
        let dest = tmp.path().join("c");
        let t = DownloadDir::open(tmp.path())
            .unwrap()
            .temp_file("k", &dest)
            .unwrap();
        // More chunks than one pwritev takes, empty ones among them.
        let chunks: Vec<Bytes> = (0..3000u32)
            .map(|i| match i % 7 {
                0 => Bytes::new(),
                _ => Bytes::from(vec![i as u8; (i % 13) as usize + 1]),
            })
            .collect();
        t.write_chunks_at("k", &[Bytes::new()], 0).unwrap();
        t.write_chunks_at("k", &chunks, 5).unwrap();
        t.commit("k", &Stamp::default()).unwrap();
        let want: Vec<u8> = [0u8; 5]
            .into_iter()
            .chain(chunks.iter().flat_map(|c| c.iter().copied()))
            .collect();
        assert_eq!(fs::read(&dest).unwrap(), want);
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
