//! Listing: one page of a bucket's sorted in-memory index with S3's exact semantics
//! (UTF-8 byte order, strictly after `start_after`, common prefixes rolled up and counted
//! toward `max_keys`).
//!
//! [`walk`] visits the entries of a page in order without copying them (the ListObjectsV2
//! fast path renders straight from it under the index read lock); it seeks past a whole
//! common prefix with one range lookup instead of stepping over its keys, so a page costs
//! `O(log n + page)` whatever lies under its folders.

use std::collections::BTreeMap;
use std::ops::Bound;

use super::meta::ObjectMeta;

/// Parameters of one list page; see [`Store::list`](super::Store::list).
#[derive(Debug, Clone, Default)]
pub struct ListQuery<'a> {
    /// Only keys starting with this prefix.
    pub prefix: &'a str,
    /// Group keys containing this after the prefix into common prefixes (empty = none).
    pub delimiter: Option<&'a str>,
    /// Only items strictly after this key. If it is itself a common prefix (under the same
    /// prefix/delimiter), everything under that common prefix is skipped too.
    pub start_after: Option<&'a str>,
    /// Maximum number of entries (objects + common prefixes).
    pub max_keys: usize,
}

/// One page of a listing.
#[derive(Debug, Clone, Default)]
pub struct ListPage {
    /// Objects, sorted by key.
    pub objects: Vec<(String, ObjectMeta)>,
    /// Common prefixes, sorted.
    pub common_prefixes: Vec<String>,
    /// Whether more entries follow.
    pub is_truncated: bool,
    /// The last entry returned (key or common prefix), to be passed as `start_after` to
    /// fetch the next page.
    pub last_item: Option<String>,
}

impl ListPage {
    /// Number of entries (objects + common prefixes).
    #[must_use]
    pub fn len(&self) -> usize {
        self.objects.len() + self.common_prefixes.len()
    }

    /// Whether the page has no entries.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Returns the smallest string greater than every string that starts with `s`, if any.
fn prefix_successor(s: &str) -> Option<String> {
    let mut chars: Vec<char> = s.chars().collect();
    while let Some(c) = chars.pop() {
        let mut u = u32::from(c) + 1;
        if u == 0xD800 {
            u = 0xE000;
        }
        if let Some(n) = char::from_u32(u) {
            chars.push(n);
            return Some(chars.into_iter().collect());
        }
    }
    None
}

/// The common prefix `key` rolls up into, if any.
fn common_prefix<'k>(key: &'k str, prefix: &str, delimiter: Option<&str>) -> Option<&'k str> {
    let d = delimiter?;
    let rest = key.strip_prefix(prefix)?;
    let i = rest.find(d)?;
    Some(&key[..prefix.len() + i + d.len()])
}

/// One entry of a list page, borrowed from the index; see
/// [`Store::list_visit`](super::Store::list_visit).
#[derive(Debug, Clone, Copy)]
pub enum ListEntry<'a> {
    /// An object: key and metadata.
    Object(&'a str, &'a ObjectMeta),
    /// A common prefix (ends with the delimiter).
    CommonPrefix(&'a str),
}

/// What [`Store::list_visit`](super::Store::list_visit) found besides the entries it visited.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListSummary {
    /// Number of entries visited (objects + common prefixes).
    pub count: usize,
    /// Whether more entries follow.
    pub is_truncated: bool,
    /// When truncated, the last entry visited (to pass as `start_after` for the next page).
    pub last_item: Option<String>,
}

/// Walks one list page of `index` in order, calling `visit` for every entry. Returns the
/// entry count and, when the page is truncated, its last entry.
pub(super) fn walk<'a>(
    index: &'a BTreeMap<String, ObjectMeta>,
    q: &ListQuery<'_>,
    mut visit: impl FnMut(ListEntry<'a>),
) -> (usize, Option<&'a str>) {
    let mut count = 0usize;
    if q.max_keys == 0 {
        return (0, None);
    }
    let prefix = q.prefix;
    let delim = q.delimiter.filter(|d| !d.is_empty());
    let mut lower: Bound<String> = match q.start_after.filter(|s| !s.is_empty() && *s >= prefix) {
        None => Bound::Included(prefix.to_owned()),
        Some(sa) => match common_prefix(sa, prefix, delim) {
            Some(cp) if cp == sa => match prefix_successor(sa) {
                Some(next) => Bound::Included(next),
                None => return (0, None),
            },
            _ => Bound::Excluded(sa.to_owned()),
        },
    };
    // Keys starting with `prefix` are exactly those below its successor (none = no bound),
    // so the range needs no per-key prefix check.
    let upper: Bound<String> = if prefix.is_empty() {
        Bound::Unbounded
    } else {
        prefix_successor(prefix).map_or(Bound::Unbounded, Bound::Excluded)
    };
    let upper = upper.as_ref().map(String::as_str);
    if let (Bound::Included(lo) | Bound::Excluded(lo), Bound::Excluded(hi)) = (&lower, upper) {
        if lo.as_str() >= hi {
            return (0, None);
        }
    }
    let mut last: Option<&'a str> = None;
    let mut iter = index.range::<str, _>((lower.as_ref().map(String::as_str), upper));
    while let Some((key, meta)) = iter.next() {
        debug_assert!(key.starts_with(prefix));
        if count == q.max_keys {
            return (count, last);
        }
        count += 1;
        if let Some(cp) = common_prefix(key, prefix, delim) {
            visit(ListEntry::CommonPrefix(cp));
            last = Some(cp);
            match prefix_successor(cp) {
                Some(next) => {
                    if let Bound::Excluded(hi) = upper {
                        if next.as_str() >= hi {
                            break;
                        }
                    }
                    lower = Bound::Included(next);
                    iter = index.range::<str, _>((lower.as_ref().map(String::as_str), upper));
                }
                None => break,
            }
        } else {
            visit(ListEntry::Object(key, meta));
            last = Some(key);
        }
    }
    (count, None)
}

pub(super) fn list(index: &BTreeMap<String, ObjectMeta>, q: &ListQuery<'_>) -> ListPage {
    let mut page = ListPage::default();
    let (_, last) = walk(index, q, |entry| match entry {
        ListEntry::Object(k, m) => page.objects.push((k.to_owned(), m.clone())),
        ListEntry::CommonPrefix(p) => page.common_prefixes.push(p.to_owned()),
    });
    page.is_truncated = last.is_some();
    page.last_item = last.map(str::to_owned);
    page
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn successor() {
        assert_eq!(prefix_successor("a/").as_deref(), Some("a0"));
        assert_eq!(prefix_successor("a\u{10FFFF}").as_deref(), Some("b"));
        assert_eq!(prefix_successor("\u{D7FF}").as_deref(), Some("\u{E000}"));
        assert_eq!(prefix_successor("\u{10FFFF}"), None);
    }
}
