//! Writing objects safely under the download directory.
//!
//! Every object is written to a temporary file in its target directory and renamed into place
//! only when complete, so a reader never sees a partial file ([`DownloadDir::temp_file`]).
//! Directories are created one level at a time and each is checked not to be a symlink, so a
//! link inside the download directory is never followed to write outside
//! ([`DownloadDir::prepare`]). The next run sweeps away the temporary files of a process that
//! died hard ([`DownloadDir::sweep`]).

mod lock;
mod stamp;
mod temp;

pub(crate) use lock::{Acquired, DirLock, LOCK_FILE};
use stamp::EtagIndex;
pub(crate) use stamp::Stamp;
pub use temp::remove_temporary_files;
pub(crate) use temp::TempFile;
use temp::{process_exists, temp_pid, Temps};
#[cfg(test)]
mod tests;

use std::collections::HashSet;
use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use crate::error::{DirProblem, Error, Result};
use crate::resume;
use crate::tuning::Tuning;

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
    /// Where ETags go when extended attributes fail.
    etags: Arc<EtagIndex>,
    /// Partial files kept for a later run to resume.
    kept: Arc<AtomicU64>,
}

impl DownloadDir {
    /// Opens an existing directory; it is never created.
    pub(crate) fn open(path: &Path, tuning: &Tuning) -> Result<Self> {
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
            etags: Arc::new(EtagIndex::new(&root, tuning.no_xattr)),
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
    pub(crate) fn check_writable(&self) -> Result<()> {
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
    ///
    /// Its name is short and fixed-length (`.s3fetch-<pid>-<n>.tmp`) whatever the target
    /// name's length, and the [`TempFile`] removes itself when dropped unless it was
    /// committed: on error, on panic and on cancellation alike.
    pub(crate) fn temp_file(&self, key: &str, dest: &Path) -> Result<TempFile> {
        TempFile::create(key, dest, &self.temps, &self.etags)
    }

    /// The resumable partial file of `dest` for `identity`, sized, with the parts its
    /// journal lists as done (see [`crate::resume`]); kept when dropped unless committed or
    /// [discarded](TempFile::discard). `None` when another process is writing it.
    pub(crate) fn partial_file(
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
        let temp = TempFile::partial(
            path,
            dest,
            file,
            journal,
            (&self.temps, &self.etags, &self.kept),
        );
        temp.set_len(&key, size)?;
        Ok(Some(temp))
    }

    /// Removes the partial files (and journals) found in the directories this run worked
    /// in whose object `wanted` selects but this run did not download: the object is gone
    /// from the bucket (a complete listing did not list it). Partials of keys the run does
    /// not select are another run's and stay. Returns how many were removed.
    pub(crate) fn remove_unwanted_partials(&self, wanted: impl Fn(&str) -> bool) -> usize {
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
    pub(crate) fn partials_kept(&self) -> u64 {
        self.kept.load(Ordering::Relaxed)
    }

    /// The ETag recorded for the file at `dest` when it was downloaded, if any (see
    /// [`stamp`]).
    pub(crate) fn recorded_etag(&self, dest: &Path) -> Option<String> {
        self.etags.recorded(dest)
    }

    pub(crate) fn root(&self) -> &Path {
        &self.root
    }

    /// Whether the directory of `relative` has been swept in this run.
    pub(crate) fn is_swept(&self, relative: &Path) -> bool {
        let dir = relative.parent().unwrap_or(Path::new(""));
        self.swept
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .contains(dir)
    }

    /// Removes, once per directory and run, the temporary files that processes which no
    /// longer exist left in the directory of `relative` (a file's path under the root).
    ///
    /// A process that dies hard (SIGKILL, power loss) cannot remove its temporary files;
    /// the next run sweeps each directory it works in, once. Only names of this crate's form
    /// (`.s3fetch-<pid>-<n>.tmp`) whose process is gone are touched: another s3fetch writing
    /// into the same directory keeps its files. A process on another machine (a shared file
    /// system) is not seen, so two machines must not download into one directory at once.
    pub(crate) fn sweep(&self, relative: &Path) {
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
    ///
    /// Directories are created one level at a time and each is checked not to be a symlink,
    /// so a link inside the download directory is never followed to write outside.
    pub(crate) fn prepare(&self, key: &str, relative: &Path) -> Result<PathBuf> {
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
    if let Some(linked) = write_unnamed(&dest, chunks, stamp, &dir.etags) {
        return linked.map_err(|e| Error::io(key, "writing", dest, e));
    }
    let file = dir.temp_file(key, &dest)?;
    for chunk in chunks {
        file.write_all(key, chunk.as_ref())?;
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
    etags: &EtagIndex,
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
    if let Err(e) = stamp.apply(&file, dest, etags) {
        return Some(Err(e));
    }
    let proc_path = format!("/proc/self/fd/{}", file.as_raw_fd());
    match linkat(CWD, proc_path.as_str(), CWD, dest, AtFlags::SYMLINK_FOLLOW) {
        Ok(()) => Some(Ok(())),
        Err(_) => None,
    }
}
