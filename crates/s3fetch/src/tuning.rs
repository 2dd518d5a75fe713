//! Switches that are not options: another way to do the same work, to compare in a
//! benchmark or to test a path this machine would not take. They are read from the
//! environment once, where a run (or a client) starts, and handed down; nothing deeper reads
//! the environment. Each changes how objects are fetched, never which, nor their bytes.

/// The switches, as `S3FETCH_*` variables set them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Tuning {
    /// `S3FETCH_HTTP_CLIENT=sdk`: the SDK's own HTTP client instead of ours
    /// ([`crate::s3::http`]); GETs then go through the SDK as well.
    pub sdk_http: bool,
    /// `S3FETCH_GET=sdk`: GETs through the SDK instead of the lean path
    /// ([`crate::s3::lean`]).
    pub sdk_get: bool,
    /// `S3FETCH_FS=pool` or `inline`: where file-system work runs ([`crate::fetch::Disk`]).
    pub fs: FsMode,
    /// `S3FETCH_TEST_NO_XATTR` (set to anything): ETags are recorded in the download
    /// directory's index file, as on a file system without extended attributes.
    pub no_xattr: bool,
    /// `S3FETCH_CAT_MEMORY_MIB=N`: the MiB `cat` may hold in memory, instead of the default
    /// (see `stream::window::memory_cap`).
    pub cat_memory: Option<u64>,
}

/// Where a run's file-system work runs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) enum FsMode {
    /// On the download's own task while such work is quick, else on the blocking pool.
    #[default]
    Adaptive,
    /// Always on the blocking pool.
    Pool,
    /// Always on the download's own task.
    Inline,
}

impl Tuning {
    /// The switches the environment sets (unset or unknown values: the default way).
    pub(crate) fn from_env() -> Tuning {
        let var = |name| std::env::var(name).ok();
        Tuning {
            sdk_http: var("S3FETCH_HTTP_CLIENT").as_deref() == Some("sdk"),
            sdk_get: var("S3FETCH_GET").as_deref() == Some("sdk"),
            fs: match var("S3FETCH_FS").as_deref() {
                Some("pool") => FsMode::Pool,
                Some("inline") => FsMode::Inline,
                _ => FsMode::Adaptive,
            },
            no_xattr: std::env::var_os("S3FETCH_TEST_NO_XATTR").is_some(),
            cat_memory: var("S3FETCH_CAT_MEMORY_MIB")
                .and_then(|mib| mib.trim().parse::<u64>().ok())
                .map(|mib| mib.max(1) << 20),
        }
    }
}
