//! Which existing files stand for their objects and are not downloaded again (`skip_existing`,
//! `sync`, `compare etag`): the one rule, for the dispatcher's quick check and a task's.

use std::path::Path;

use crate::write::DownloadDir;

/// Which existing files stand for their objects (and are not downloaded again).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Skip {
    Never,
    /// A regular file of the object's size.
    SameSize,
    /// A regular file of the object's size whose modification time is the object's
    /// LastModified (to the second).
    SameSizeAndTime,
    /// As `SameSizeAndTime`, and the ETag recorded on the file is the object's.
    SameSizeTimeAndEtag,
}

/// Whether the file at `dest` in `dir` stands for an object of `size` bytes last modified
/// at `modified` with `etag`, by `rule`.
pub(crate) fn file_is_up_to_date(
    dir: &DownloadDir,
    dest: &Path,
    size: u64,
    modified: Option<std::time::SystemTime>,
    rule: Skip,
    etag: Option<&str>,
) -> bool {
    let Ok(meta) = std::fs::symlink_metadata(dest) else {
        return false;
    };
    let same_time = || modified.is_some_and(|m| meta.modified().is_ok_and(|t| same_second(t, m)));
    meta.is_file()
        && meta.len() == size
        && match rule {
            Skip::Never => false,
            Skip::SameSize => true,
            Skip::SameSizeAndTime => same_time(),
            Skip::SameSizeTimeAndEtag => {
                same_time() && etag.is_some() && dir.recorded_etag(dest).as_deref() == etag
            }
        }
}

/// Whether two times fall in the same second since the epoch (S3 keeps LastModified to the
/// second; some file systems keep less than nanoseconds).
fn same_second(a: std::time::SystemTime, b: std::time::SystemTime) -> bool {
    let secs = |t: std::time::SystemTime| {
        t.duration_since(std::time::UNIX_EPOCH)
            .map_or(-1, |d| d.as_secs() as i64)
    };
    secs(a) == secs(b)
}
