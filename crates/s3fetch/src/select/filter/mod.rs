//! Which listed objects are wanted: directory markers are skipped; then the key must pass the
//! regex (searched in the full key) and the include/exclude globs (matched against the key
//! relative to the URI's prefix); then the object's size and modification time must be
//! within the limits given. Pure functions, no I/O; everything is compiled and checked once,
//! when the run's options are validated. The key rules can be asked with a key alone
//! ([`KeyFilter::wants`]), the limits need more ([`KeyFilter::wants_object`]); a literal that
//! every wanted key starts with narrows the listing ([`KeyFilter::narrow_prefix`]).

mod glob;
mod regex;
mod time;

use std::time::SystemTime;

pub use glob::GlobRule;
pub use time::parse_time;

use crate::keyspace::{KeyRange, Shard};

use crate::error::{Error, Result};
use crate::object::ObjectInfo;
use glob::Globs;
use regex::Matcher;

/// Decides, object by object, what to download.
#[derive(Debug, Clone)]
pub struct KeyFilter {
    matcher: Option<Matcher>,
    /// The literal every regex match starts with, when the pattern is anchored on one.
    anchored: Option<String>,
    globs: Option<Globs>,
    shard: Option<Shard>,
    range: Option<KeyRange>,
    delimiter: String,
    min_size: Option<u64>,
    max_size: Option<u64>,
    newer_than: Option<SystemTime>,
    older_than: Option<SystemTime>,
}

impl KeyFilter {
    /// A filter with an optional regex (searched, not anchored) and the delimiter that marks
    /// "directory" keys.
    pub fn new(regex: Option<&str>, delimiter: &str) -> Result<Self> {
        if delimiter.is_empty() {
            return Err(Error::option("delimiter", "must not be empty"));
        }
        let (matcher, anchored) = match regex {
            None => (None, None),
            Some(pattern) => {
                let (matcher, anchored) = regex::compile(pattern)?;
                (Some(matcher), anchored)
            }
        };
        Ok(KeyFilter {
            matcher,
            anchored,
            globs: None,
            shard: None,
            range: None,
            delimiter: delimiter.to_owned(),
            min_size: None,
            max_size: None,
            newer_than: None,
            older_than: None,
        })
    }

    /// Adds include/exclude rules, matched against keys with `prefix` (the URI's) taken off.
    pub fn globs(mut self, prefix: &str, rules: &[GlobRule]) -> Result<Self> {
        self.globs = Globs::new(prefix, rules)?;
        Ok(self)
    }

    /// Wants only the keys of `shard` (see [`Shard`]).
    pub fn shard(mut self, shard: Option<Shard>) -> Self {
        self.shard = shard;
        self
    }

    /// Wants only the keys of `range` (a range shard, see [`KeyRange`]); the listing then
    /// lists only that range.
    pub fn range(mut self, range: Option<KeyRange>) -> Self {
        self.range = range;
        self
    }

    /// The range of keys this filter can want: all the listing needs to list.
    pub fn key_range(&self) -> Option<&KeyRange> {
        self.range.as_ref()
    }

    /// Wants only objects of `min..=max` bytes.
    pub fn sizes(mut self, min: Option<u64>, max: Option<u64>) -> Result<Self> {
        if let (Some(min), Some(max)) = (min, max) {
            if min > max {
                return Err(Error::option(
                    "min_size",
                    format!("{min} bytes is more than the maximum size ({max} bytes): nothing could match"),
                ));
            }
        }
        (self.min_size, self.max_size) = (min, max);
        Ok(self)
    }

    /// Wants only objects last modified at or after `newer_than` and before `older_than`.
    pub fn times(
        mut self,
        newer_than: Option<SystemTime>,
        older_than: Option<SystemTime>,
    ) -> Result<Self> {
        if let (Some(newer), Some(older)) = (newer_than, older_than) {
            if newer >= older {
                return Err(Error::option(
                    "newer_than",
                    "is not earlier than the older-than limit: nothing could match",
                ));
            }
        }
        (self.newer_than, self.older_than) = (newer_than, older_than);
        Ok(self)
    }

    /// The prefix to list for `prefix`: when every wanted key starts with a longer literal
    /// (the one a regex is anchored on, as in `^data/2024-`, or the common head of the
    /// includes), only keys under it are listed.
    /// `None` when no key under `prefix` can match at all.
    pub fn narrow_prefix(&self, prefix: &str) -> Option<String> {
        let heads = [
            self.anchored.clone(),
            self.globs.as_ref().and_then(Globs::head),
        ];
        heads
            .into_iter()
            .flatten()
            .try_fold(prefix.to_owned(), |narrowed, head| {
                if head.starts_with(&narrowed) {
                    Some(head)
                } else if narrowed.starts_with(&head) {
                    Some(narrowed)
                } else {
                    None
                }
            })
    }

    /// True if the key rules take `key`: it is no directory marker, passes the regex and
    /// the globs, and is of this process's shard. A key alone is enough (a `keys_from` line,
    /// a partial file's journal).
    pub fn wants(&self, key: &str) -> bool {
        !key.ends_with(&self.delimiter)
            && self.range.as_ref().is_none_or(|r| r.contains(key))
            && self.matcher.as_ref().is_none_or(|m| m.is_match(key))
            && self.globs.as_ref().is_none_or(|g| g.wants(key))
            && self.shard.is_none_or(|s| s.contains(key))
    }

    /// True if `object` should be downloaded: its key is wanted, its size and time within
    /// the limits. An object of unknown modification time does not pass a time limit. The
    /// size and time limits need the listing's (or a HEAD's) fields.
    pub fn wants_object(&self, object: &ObjectInfo) -> bool {
        let size = object.size;
        let time_ok =
            |limit: Option<SystemTime>, ok: fn(SystemTime, SystemTime) -> bool| match limit {
                None => true,
                Some(limit) => object.last_modified.is_some_and(|t| ok(t, limit)),
            };
        self.wants(&object.key)
            && self.min_size.is_none_or(|min| size >= min)
            && self.max_size.is_none_or(|max| size <= max)
            && time_ok(self.newer_than, |t, limit| t >= limit)
            && time_ok(self.older_than, |t, limit| t < limit)
    }

    /// Whether some limit needs the object's size or time, so that a key alone cannot
    /// tell (a `keys_from` key is decided after its HEAD).
    pub fn has_object_limits(&self) -> bool {
        self.min_size.is_some()
            || self.max_size.is_some()
            || self.newer_than.is_some()
            || self.older_than.is_some()
    }

    /// True when the pattern needed the backtracking engine (look-around, backreferences).
    pub fn is_backtracking(&self) -> bool {
        matches!(self.matcher, Some(Matcher::Fancy(_)))
    }
}

#[cfg(test)]
mod tests;
