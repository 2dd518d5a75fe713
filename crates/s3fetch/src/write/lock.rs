//! One run at a time per download directory (`lock`): several identical commands on one node
//! (the ranks of a job) download once. The lock is an advisory `flock` on `.s3fetch.lock` in
//! the directory, which the kernel releases when its holder exits however it exits: there is
//! never a stale lock to clean up. The holder writes its pid and host into the file, for the
//! waiters to say whom they wait for, and removes the file when done; a waiter that then finds
//! its file unlinked opens the path again, so the lock is always on the file the path names.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::error::{DirProblem, Error, Result};

/// The lock file's name in the download directory.
pub(crate) const LOCK_FILE: &str = ".s3fetch.lock";

/// The download directory's lock, held until dropped.
#[derive(Debug)]
pub(crate) struct DirLock {
    path: PathBuf,
    file: Option<File>,
}

/// How [`DirLock::acquire`] went.
#[derive(Debug)]
pub(crate) enum Acquired {
    /// Held, by this run (`waited`: after another run released it).
    Held { lock: DirLock, waited: bool },
    /// Cancelled while waiting.
    Cancelled,
}

impl DirLock {
    /// Takes the lock of the directory `root`. When another process holds it, `waiting` is
    /// told once whom this run waits for, then the wait lasts until that process is done (or
    /// `cancel` fires).
    pub(crate) async fn acquire(
        root: &Path,
        cancel: &CancellationToken,
        waiting: impl FnOnce(&str),
    ) -> Result<Acquired> {
        let path = root.join(LOCK_FILE);
        let error = |e: io::Error| Error::DownloadDir {
            path: root.to_owned(),
            problem: DirProblem::NotLockable,
            source: Some(e),
        };
        let mut waiting = Some(waiting);
        let mut waited = false;
        loop {
            let file = OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(false)
                .open(&path)
                .map_err(error)?;
            let file = match file.try_lock() {
                Ok(()) => file,
                Err(fs::TryLockError::Error(e)) => return Err(error(e)),
                Err(fs::TryLockError::WouldBlock) => {
                    if let Some(tell) = waiting.take() {
                        tell(&holder_of(&file).await);
                    }
                    waited = true;
                    match lock_in_thread(file, cancel).await {
                        None => return Ok(Acquired::Cancelled),
                        Some(locked) => locked.map_err(error)?,
                    }
                }
            };
            // The holder before removed the file as it let go: lock the file the path names.
            if !same_file(&file, &path) {
                continue;
            }
            let mut lock = DirLock {
                path: path.clone(),
                file: Some(file),
            };
            lock.write_holder().map_err(error)?;
            return Ok(Acquired::Held { lock, waited });
        }
    }

    /// Writes this process's pid and host into the lock file.
    fn write_holder(&mut self) -> io::Result<()> {
        let Some(file) = self.file.as_mut() else {
            return Ok(());
        };
        let holder = serde_json::json!({"pid": std::process::id(), "host": host_name()});
        file.set_len(0)?;
        file.rewind()?;
        file.write_all(format!("{holder}\n").as_bytes())
    }
}

impl Drop for DirLock {
    fn drop(&mut self) {
        // Removed while still locked, so that no one takes a lock on a file about to go.
        let _ = fs::remove_file(&self.path);
        drop(self.file.take());
    }
}

/// Waits for the lock on a thread of its own (`flock` blocks and cannot be interrupted):
/// `None` when `cancel` fires first. The thread then ends when it gets the lock, releasing
/// it at once.
async fn lock_in_thread(file: File, cancel: &CancellationToken) -> Option<io::Result<File>> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    let spawned = std::thread::Builder::new()
        .name("s3fetch-lock".into())
        .spawn(move || {
            let _ = tx.send(file.lock().map(|()| file));
        });
    if let Err(e) = spawned {
        return Some(Err(e));
    }
    tokio::select! {
        _ = cancel.cancelled() => None,
        locked = rx => Some(locked.unwrap_or_else(|_| Err(io::Error::other("the lock's thread ended")))),
    }
}

/// Whom the lock file names as its holder: `s3fetch pid N on HOST`. The holder writes it
/// just after taking the lock, so an empty file is read again for a moment.
async fn holder_of(file: &File) -> String {
    for _ in 0..50 {
        let mut text = String::new();
        let read = (&*file)
            .rewind()
            .and_then(|()| (&*file).read_to_string(&mut text));
        if read.is_ok() {
            if let Ok(holder) = serde_json::from_str::<serde_json::Value>(&text) {
                let pid = holder["pid"].as_u64().map_or("?".into(), |p| p.to_string());
                let host = holder["host"].as_str().unwrap_or("?");
                return format!("s3fetch pid {pid} on {host}");
            }
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    "another s3fetch".into()
}

/// Whether `file` is the file `path` names now.
#[cfg(unix)]
fn same_file(file: &File, path: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (file.metadata(), fs::metadata(path)) {
        (Ok(held), Ok(named)) => held.dev() == named.dev() && held.ino() == named.ino(),
        _ => false,
    }
}

#[cfg(not(unix))]
fn same_file(_file: &File, path: &Path) -> bool {
    path.exists()
}

/// This machine's name, as `uname -n` prints it.
fn host_name() -> String {
    #[cfg(unix)]
    {
        rustix::system::uname()
            .nodename()
            .to_string_lossy()
            .into_owned()
    }
    #[cfg(not(unix))]
    {
        "this machine".into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn held(acquired: Acquired) -> (DirLock, bool) {
        match acquired {
            Acquired::Held { lock, waited } => (lock, waited),
            Acquired::Cancelled => panic!("cancelled"),
        }
    }

    #[tokio::test]
    async fn a_second_taker_waits_for_the_first_is_told_whom_and_the_file_goes_with_the_last() {
        let dir = tempfile::tempdir().unwrap();
        let cancel = CancellationToken::new();
        let (first, waited) = held(
            DirLock::acquire(dir.path(), &cancel, |_| panic!("no one holds it"))
                .await
                .unwrap(),
        );
        assert!(!waited);
        let (told_tx, told_rx) = tokio::sync::oneshot::channel();
        let second = tokio::spawn({
            let (root, cancel) = (dir.path().to_owned(), cancel.clone());
            async move {
                DirLock::acquire(&root, &cancel, move |holder| {
                    let _ = told_tx.send(holder.to_owned());
                })
                .await
            }
        });
        let holder = told_rx.await.unwrap();
        assert_eq!(
            holder,
            format!("s3fetch pid {} on {}", std::process::id(), host_name())
        );
        assert!(!second.is_finished());
        drop(first);
        let (second, waited) = held(second.await.unwrap().unwrap());
        assert!(waited);
        assert!(dir.path().join(LOCK_FILE).exists());
        drop(second);
        assert!(!dir.path().join(LOCK_FILE).exists());
    }

    #[tokio::test]
    async fn a_wait_ends_when_cancelled() {
        let dir = tempfile::tempdir().unwrap();
        let cancel = CancellationToken::new();
        let _first = held(DirLock::acquire(dir.path(), &cancel, |_| {}).await.unwrap());
        let waiter = CancellationToken::new();
        waiter.cancel();
        let second = DirLock::acquire(dir.path(), &waiter, |_| {}).await.unwrap();
        assert!(matches!(second, Acquired::Cancelled));
    }
}
