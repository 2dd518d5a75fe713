//! Limits the run must stay within: the process's open-file limit.
//!
//! Each download in flight holds a connection and an open file. The soft open-file limit is
//! often 1,024 while the hard one is far higher, so when the requested concurrency needs it,
//! the soft limit is raised (up to the hard limit, never lowered); if even that is too low,
//! the run uses fewer downloads at once than asked, with a warning, instead of failing with
//! "too many open files" halfway through.

/// File descriptors kept free for everything else the process has open.
const SPARE_FILES: u64 = 64;

/// `requested`, lowered if need be so that every request can hold a connection and an open
/// file within the open-file limit (`ulimit -n`), which is raised first if that helps.
pub(crate) fn within_open_file_limit(requested: usize) -> usize {
    #[cfg(unix)]
    {
        use rustix::process::{getrlimit, setrlimit, Resource};
        let needed = (requested as u64)
            .saturating_mul(2)
            .saturating_add(SPARE_FILES);
        let mut limit = getrlimit(Resource::Nofile);
        let Some(current) = limit.current else {
            return requested; // unlimited
        };
        if current < needed {
            let raised = limit.maximum.map_or(needed, |max| max.min(needed));
            if raised > current {
                limit.current = Some(raised);
                if setrlimit(Resource::Nofile, limit).is_ok() {
                    tracing::debug!(from = current, to = raised, "raised the open-file limit");
                    return fitting(requested, raised);
                }
            }
        }
        fitting(requested, current)
    }
    #[cfg(not(unix))]
    requested
}

#[cfg(unix)]
fn fitting(requested: usize, limit: u64) -> usize {
    let fits = usize::try_from(limit.saturating_sub(SPARE_FILES) / 2)
        .unwrap_or(usize::MAX)
        .max(1);
    if requested > fits {
        tracing::warn!(
            requested,
            fits,
            limit,
            "fewer downloads at once than asked: the open-file limit (ulimit -n) is too low"
        );
        return fits;
    }
    requested
}
