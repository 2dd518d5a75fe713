//! Temporary and partial files: written beside their destination, renamed into place when
//! complete, removed when dropped unless committed (on error, on panic and on cancellation
//! alike). A resumable partial file (see [`crate::resume`]) is kept instead, with its journal,
//! for the next run. Each run's temporary files are registered so that a hard exit (a second
//! Ctrl-C) can still remove them ([`remove_temporary_files`]); the files of a process that
//! died without removing them are recognised by name ([`temp_pid`]) and swept by the next run.

use std::collections::BTreeSet;
use std::fs::{self, File, OpenOptions};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};

use bytes::Bytes;

use super::stamp::{EtagIndex, Stamp};
use crate::checksum::Hasher;
use crate::error::{Error, Result};
use crate::resume;

/// A temporary file beside its destination; removed on drop unless [`TempFile::commit`]ed.
/// Parts of it can be written concurrently at their offsets ([`TempFile::write_chunks_at`]).
#[derive(Debug)]
pub(crate) struct TempFile {
    pub(super) path: PathBuf,
    dest: PathBuf,
    file: File,
    /// Held for each write. Parts written at once from several threads would otherwise
    /// contend for the inode's lock in the kernel, which spins for it: with 16 parts of one
    /// file in flight, a third more kernel CPU (BENCHMARKS.md, `large`, write strategy).
    writing: Mutex<()>,
    temps: Arc<Temps>,
    etags: Arc<EtagIndex>,
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
    pub(super) fn register() -> Arc<Temps> {
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
    pub(super) fn create(
        key: &str,
        dest: &Path,
        temps: &Arc<Temps>,
        etags: &Arc<EtagIndex>,
    ) -> Result<Self> {
        let dir = dest.parent().unwrap_or(Path::new("."));
        loop {
            let n = NEXT_TEMP.fetch_add(1, Ordering::Relaxed);
            let path = dir.join(format!(".s3fetch-{}-{n}.tmp", std::process::id()));
            // create_new: O_EXCL, never follows or reuses an existing file or link.
            match OpenOptions::new().write(true).create_new(true).open(&path) {
                Ok(file) => {
                    temps.live().insert(path.clone());
                    return Ok(TempFile::new(path, dest, file, (temps, etags), None));
                }
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
                // Errors name the destination: the temporary name means nothing to a user.
                Err(e) => return Err(Error::io(key, "creating", dest.to_owned(), e)),
            }
        }
    }

    /// A resumable partial file at `path` (opened by [`resume::open`]), with its journal;
    /// kept for a later run when dropped unfinished, counted in `kept`.
    pub(super) fn partial(
        path: PathBuf,
        dest: &Path,
        file: File,
        journal: resume::Journal,
        (temps, etags, kept): (&Arc<Temps>, &Arc<EtagIndex>, &Arc<AtomicU64>),
    ) -> Self {
        let partial = Partial {
            journal: Mutex::new(journal),
            discard: AtomicBool::new(false),
            kept: kept.clone(),
        };
        TempFile::new(path, dest, file, (temps, etags), Some(partial))
    }

    fn new(
        path: PathBuf,
        dest: &Path,
        file: File,
        (temps, etags): (&Arc<Temps>, &Arc<EtagIndex>),
        partial: Option<Partial>,
    ) -> Self {
        TempFile {
            path,
            dest: dest.to_owned(),
            file,
            writing: Mutex::new(()),
            temps: temps.clone(),
            etags: etags.clone(),
            partial,
        }
    }

    /// Appends `bytes` (a file written from start to end in one go).
    pub(super) fn write_all(&self, key: &str, bytes: &[u8]) -> Result<()> {
        use std::io::Write as _;
        (&self.file)
            .write_all(bytes)
            .map_err(|e| Error::io(key, "writing", self.dest.clone(), e))
    }

    /// Sets the final size up front, so parts can be written at any offset.
    pub(crate) fn set_len(&self, key: &str, len: u64) -> Result<()> {
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
    pub(crate) fn write_chunks_at(&self, key: &str, chunks: &[Bytes], offset: u64) -> Result<()> {
        let _writing = self.writing.lock().unwrap_or_else(|e| e.into_inner());
        write_chunks_at(&self.file, chunks, offset)
            .map_err(|e| Error::io(key, "writing", self.dest.clone(), e))
    }

    /// `hasher` fed with `len` bytes of the file from `start`, read back (for checksums that
    /// cannot be combined from parts written out of order). The pages read are dropped from
    /// the cache afterwards: the file is complete and is not read again soon.
    pub(crate) fn read_back(
        &self,
        key: &str,
        mut hasher: Hasher,
        start: u64,
        len: u64,
    ) -> Result<Hasher> {
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
    pub(crate) fn commit(mut self, key: &str, stamp: &Stamp) -> Result<()> {
        stamp
            .apply(&self.file, &self.dest, &self.etags)
            .map_err(|e| {
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
    pub(crate) fn journal(&self) -> Option<std::sync::MutexGuard<'_, resume::Journal>> {
        self.partial.as_ref().map(Partial::journal)
    }

    /// Removes a partial file and its journal when dropped, instead of keeping them: the
    /// object cannot be resumed (it is gone, changed, or refused).
    pub(crate) fn discard(&self) {
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

/// The process id in a temporary file's name (`.s3fetch-<pid>-<n>.tmp`).
pub(super) fn temp_pid(name: &str) -> Option<u32> {
    let rest = name.strip_prefix(".s3fetch-")?.strip_suffix(".tmp")?;
    let (pid, n) = rest.split_once('-')?;
    n.parse::<u64>().ok()?;
    pid.parse().ok()
}

/// Whether a process with this id exists on this machine (of any user). Unknown answers
/// count as "exists": a file is only removed when its process is surely gone.
#[cfg(unix)]
pub(super) fn process_exists(pid: u32) -> bool {
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
pub(super) fn process_exists(_pid: u32) -> bool {
    true
}
