//! What the listing says about one object.

use std::time::SystemTime;

/// One object from the listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectInfo {
    /// The object's key, in full (the URI's prefix included).
    pub key: String,
    /// Size in bytes, from the listing (no HEAD request is made).
    pub size: u64,
    /// The object's ETag as S3 sends it, in double quotes; `None` when not known.
    pub etag: Option<String>,
    /// When the object was last written (S3's LastModified); `None` when not known.
    pub last_modified: Option<SystemTime>,
    /// In an archive storage class (`GLACIER`, `DEEP_ARCHIVE`) with no restored copy, as
    /// far as the listing says: a GET would fail (`InvalidObjectState`).
    pub archived: bool,
}
