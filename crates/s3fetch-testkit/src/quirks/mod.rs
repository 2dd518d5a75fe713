//! Per-bucket behaviours of real S3 and S3-compatible stores that clients must cope with,
//! switched on by [`ServerOptions`] fields (and `serve` flags):
//! buckets in other regions (`regions.rs`), requester pays (`access.rs`), stores that list in their
//! own order or don't know `start-after` (`listing.rs`), and S3 Express One Zone directory
//! buckets (their listing rules live in `listing.rs`, their auth and sessions in
//! [`crate::express`]).
//!
//! [`Quirks`] (this file) is the table built once at start from the options, a leaf below
//! `state.rs`. Every request for a bucket passes `access.rs`'s `check_quirks` (from the
//! access hook and the list fast path, after counting); with no quirk configured that is one
//! boolean test, so normal buckets and the fast path pay nothing.

mod hash_order;
pub(crate) mod listing;
pub(crate) mod regions;

use std::collections::{HashMap, HashSet};

use crate::options::ServerOptions;

/// How a bucket's listings differ from plain S3's.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct ListMode {
    /// Keys (and common prefixes) in a fixed non-lexicographic order (see `listing.rs`).
    pub(crate) hash_order: bool,
    /// What ListObjectsV2 does with `start-after`.
    pub(crate) start_after: StartAfter,
    /// S3 Express One Zone directory bucket rules (which imply `hash_order`).
    pub(crate) directory: bool,
}

/// What ListObjectsV2 does with a non-empty `start-after`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) enum StartAfter {
    /// As S3: only keys after it.
    #[default]
    Honour,
    /// Lists from the start of the prefix, as a server that doesn't know the parameter.
    Ignore,
    /// `501 NotImplemented`.
    Refuse,
}

/// The per-bucket quirks of a server, from its options.
#[derive(Debug, Default)]
pub(crate) struct Quirks {
    regions: HashMap<String, String>,
    requester_pays: HashSet<String>,
    unordered: HashSet<String>,
    ignore_start_after: HashSet<String>,
    refuse_start_after: HashSet<String>,
    directory: HashSet<String>,
    /// Directory bucket → folders (ending in `/`) holding an in-progress multipart upload.
    pending_uploads: HashMap<String, Vec<String>>,
    /// Whether any bucket has a quirk: the one test normal requests pay.
    any: bool,
}

/// A configuration the server refuses to start with.
#[derive(Debug, thiserror::Error)]
pub enum QuirkError {
    /// Not a valid S3 bucket name.
    #[error("invalid bucket name {0:?}")]
    BucketName(String),
    /// Not a region name (`[a-z0-9-]+`).
    #[error("invalid region {region:?} for bucket {bucket:?}")]
    Region {
        /// The bucket.
        bucket: String,
        /// The region given.
        region: String,
    },
    /// A directory bucket name must look like `base--usw2-az1--x-s3`.
    #[error(
        "invalid directory bucket name {0:?}: S3 Express One Zone names look like \
         BASE--ZONE-ID--x-s3, e.g. data--usw2-az1--x-s3"
    )]
    DirectoryBucketName(String),
    /// A pending upload must name a configured directory bucket and a folder ending in `/`.
    #[error(
        "invalid pending upload {bucket:?}/{prefix:?}: the bucket must be a directory bucket \
         and the folder must end in '/'"
    )]
    PendingUpload {
        /// The bucket.
        bucket: String,
        /// The folder.
        prefix: String,
    },
}

/// Whether `name` is an S3 Express One Zone directory bucket name: `BASE--ZONE-ID--x-s3`,
/// BASE of lowercase letters, digits and hyphens, ZONE-ID of such words joined by hyphens
/// (`usw2-az1`, `use1-az4`, `usw2-lax1-az1`).
#[must_use]
pub fn is_directory_bucket_name(name: &str) -> bool {
    let Some(rest) = name.strip_suffix("--x-s3") else {
        return false;
    };
    let Some((base, zone)) = rest.rsplit_once("--") else {
        return false;
    };
    let word = |w: &str| {
        !w.is_empty()
            && w.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
    };
    s3s::path::check_bucket_name(name)
        && !base.is_empty()
        && base
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && zone.split('-').count() >= 2
        && zone.split('-').all(word)
}

fn is_region_name(r: &str) -> bool {
    !r.is_empty()
        && r.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

fn bucket_set(names: &[String]) -> Result<HashSet<String>, QuirkError> {
    names
        .iter()
        .map(|n| {
            if s3s::path::check_bucket_name(n) {
                Ok(n.clone())
            } else {
                Err(QuirkError::BucketName(n.clone()))
            }
        })
        .collect()
}

impl Quirks {
    /// The table for `options`, checked.
    pub(crate) fn new(options: &ServerOptions) -> Result<Self, QuirkError> {
        let mut regions = HashMap::new();
        for (bucket, region) in &options.bucket_regions {
            if !s3s::path::check_bucket_name(bucket) {
                return Err(QuirkError::BucketName(bucket.clone()));
            }
            if !is_region_name(region) {
                return Err(QuirkError::Region {
                    bucket: bucket.clone(),
                    region: region.clone(),
                });
            }
            regions.insert(bucket.clone(), region.clone());
        }
        let directory = bucket_set(&options.directory_buckets)?;
        if let Some(bad) = directory.iter().find(|n| !is_directory_bucket_name(n)) {
            return Err(QuirkError::DirectoryBucketName(bad.clone()));
        }
        let mut pending_uploads: HashMap<String, Vec<String>> = HashMap::new();
        for (bucket, prefix) in &options.directory_pending_uploads {
            if !directory.contains(bucket) || !prefix.ends_with('/') || prefix.starts_with('/') {
                return Err(QuirkError::PendingUpload {
                    bucket: bucket.clone(),
                    prefix: prefix.clone(),
                });
            }
            pending_uploads
                .entry(bucket.clone())
                .or_default()
                .push(prefix.clone());
        }
        let quirks = Self {
            regions,
            requester_pays: bucket_set(&options.requester_pays)?,
            unordered: bucket_set(&options.unordered)?,
            ignore_start_after: bucket_set(&options.ignore_start_after)?,
            refuse_start_after: bucket_set(&options.refuse_start_after)?,
            directory,
            pending_uploads,
            any: false,
        };
        Ok(Self {
            any: !(quirks.regions.is_empty()
                && quirks.requester_pays.is_empty()
                && quirks.unordered.is_empty()
                && quirks.ignore_start_after.is_empty()
                && quirks.refuse_start_after.is_empty()
                && quirks.directory.is_empty()),
            ..quirks
        })
    }

    /// Whether any bucket has a quirk.
    pub(crate) fn any(&self) -> bool {
        self.any
    }

    /// Whether some bucket lives in another region (the gateway then keeps a slot for a
    /// refusal's body, see `regions.rs`).
    pub(crate) fn has_regions(&self) -> bool {
        !self.regions.is_empty()
    }

    /// Whether directory buckets are configured (the gateway then checks `s3express`
    /// signatures, see [`crate::express`]).
    pub(crate) fn has_directory_buckets(&self) -> bool {
        !self.directory.is_empty()
    }

    /// The region `bucket` was configured in, if any.
    pub(crate) fn region_of(&self, bucket: &str) -> Option<&str> {
        self.regions.get(bucket).map(String::as_str)
    }

    /// Whether `bucket` is a directory bucket.
    pub(crate) fn is_directory(&self, bucket: &str) -> bool {
        self.any && self.directory.contains(bucket)
    }

    /// The folders of in-progress uploads in directory bucket `bucket`.
    pub(crate) fn pending_uploads(&self, bucket: &str) -> &[String] {
        self.pending_uploads.get(bucket).map_or(&[], Vec::as_slice)
    }

    /// Whether `bucket` is requester pays.
    pub(crate) fn requester_pays(&self, bucket: &str) -> bool {
        self.any && self.requester_pays.contains(bucket)
    }

    /// How `bucket` lists, `None` for plain S3 order and `start-after`.
    pub(crate) fn list_mode(&self, bucket: &str) -> Option<ListMode> {
        if !self.any {
            return None;
        }
        let directory = self.directory.contains(bucket);
        let mode = ListMode {
            hash_order: directory || self.unordered.contains(bucket),
            start_after: if self.refuse_start_after.contains(bucket) {
                StartAfter::Refuse
            } else if self.ignore_start_after.contains(bucket) {
                StartAfter::Ignore
            } else {
                StartAfter::Honour
            },
            directory,
        };
        (mode != ListMode::default()).then_some(mode)
    }

    /// Whether ListObjectsV2 of `bucket` must go through `s3s`'s handler (which knows the
    /// listing quirks and the requester-charged header) rather than the fast path.
    pub(crate) fn needs_generic_list(&self, bucket: &str) -> bool {
        self.any && (self.list_mode(bucket).is_some() || self.requester_pays.contains(bucket))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn directory_bucket_names_need_a_zone_and_the_x_s3_suffix() {
        for ok in [
            "data--usw2-az1--x-s3",
            "my-bucket--use1-az4--x-s3",
            "b1--usw2-lax1-az1--x-s3",
        ] {
            assert!(is_directory_bucket_name(ok), "{ok}");
        }
        for no in [
            "data",
            "data--x-s3",
            "data--usw2--x-s3",
            "--usw2-az1--x-s3",
            "Data--usw2-az1--x-s3",
            "data--usw2-az1--x-s3x",
            "da.ta--usw2-az1--x-s3",
            "data--usw2_az1--x-s3",
        ] {
            assert!(!is_directory_bucket_name(no), "{no}");
        }
    }

    #[test]
    fn bad_quirk_options_are_refused_and_modes_combine() {
        let base = ServerOptions::default();
        let bad = |o: ServerOptions| Quirks::new(&o).is_err();
        assert!(bad(ServerOptions {
            directory_buckets: vec!["plain".into()],
            ..base.clone()
        }));
        assert!(bad(ServerOptions {
            bucket_regions: vec![("bkt".into(), "US West".into())],
            ..base.clone()
        }));
        assert!(bad(ServerOptions {
            directory_buckets: vec!["d--usw2-az1--x-s3".into()],
            directory_pending_uploads: vec![("d--usw2-az1--x-s3".into(), "no-slash".into())],
            ..base.clone()
        }));
        assert!(bad(ServerOptions {
            requester_pays: vec!["UPPER".into()],
            ..base.clone()
        }));
        let q = Quirks::new(&ServerOptions {
            unordered: vec!["u".repeat(3)],
            refuse_start_after: vec!["u".repeat(3)],
            ..base.clone()
        })
        .unwrap();
        assert!(q.any());
        let mode = q.list_mode("uuu").unwrap();
        assert!(mode.hash_order && mode.start_after == StartAfter::Refuse && !mode.directory);
        assert_eq!(q.list_mode("other"), None);
        assert!(!Quirks::new(&base).unwrap().any());
    }
}
