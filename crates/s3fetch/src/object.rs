//! What the listing says about one object.

use std::time::SystemTime;

/// One object from the listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectInfo {
    pub key: String,
    /// Size in bytes, from the listing (no HEAD request is made).
    pub size: u64,
    pub etag: Option<String>,
    pub last_modified: Option<SystemTime>,
    /// In an archive storage class (`GLACIER`, `DEEP_ARCHIVE`) with no restored copy, as
    /// far as the listing says: a GET would fail (`InvalidObjectState`).
    pub archived: bool,
}
