//! Keys that are also folders: which of `a` and `a/b` is downloaded.
//!
//! A bucket can hold both `a` and `a/b`, but on disk `a` is a file or a directory, not both.
//! The rule: **the file wins**. Key `a` is downloaded to the file `a`, and every key under
//! `a/` is reported as a conflict and never creates the directory, whatever order the
//! downloads run in. The listing settles it, with no extra request in the common case
//! ([`Ancestry`]); which prefixes of a key are folder names: [`Folders`].

use std::collections::BTreeMap;

use crate::object::ObjectInfo;
use crate::select::filter::KeyFilter;

/// What the listing knows about the folders on a key's local path.
///
/// The file wins, but a directory already on disk from an earlier run is kept: the keys under
/// it go in and the key that names it fails, since nothing already downloaded is ever removed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Parent {
    /// No folder on the path is named by a key of this run.
    Clear,
    /// This wanted key names a folder on the path: it is downloaded as a file there.
    File(String),
    /// These folder names were not seen by the listing: whether they are keys of this run
    /// must be asked.
    Unknown(Vec<String>),
}

/// How keys map to folders: the separators and the listing prefix (no key outside it is
/// listed, so none outside it takes a path).
///
/// Folder names are the key's prefixes that end just before a separator (the delimiter, or
/// `/`, which always separates local directories), under the listing prefix, whose last
/// segment is a real name. Keys that reach one local path by different spellings (`a//b`,
/// `./a/b`) are not matched up: there the first to reach the disk wins and the other gets
/// a per-object error.
#[derive(Debug, Clone)]
pub(crate) struct Folders {
    list_prefix: String,
    /// The delimiter first, then `/` if it is not the delimiter.
    separators: Vec<String>,
}

impl Folders {
    pub(crate) fn new(list_prefix: &str, delimiter: &str) -> Self {
        let mut separators = vec![delimiter.to_owned()];
        if delimiter != "/" {
            separators.push("/".to_owned());
        }
        Folders {
            list_prefix: list_prefix.to_owned(),
            separators,
        }
    }

    /// The folder names on `key`'s path, shallowest first.
    pub(crate) fn names<'a>(&'a self, key: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        let start = self.list_prefix.len().min(key.len());
        (start.max(1)..key.len())
            .filter(|&i| key.is_char_boundary(i))
            .filter(move |&i| self.separators.iter().any(|s| key[i..].starts_with(s)))
            .map(move |i| &key[..i])
            .filter(move |name| self.real_name(name))
    }

    /// Whether `name` (a key's prefix that ends before a separator) is a folder name of a
    /// key under the listing prefix, as [`Folders::names`] gives them.
    pub(crate) fn is_name(&self, name: &str) -> bool {
        name.len() >= self.list_prefix.len().max(1) && self.real_name(name)
    }

    /// A name whose last segment is a real name: `a/.` and `a/` name no folder of their own.
    fn real_name(&self, name: &str) -> bool {
        let last_start = self
            .separators
            .iter()
            .filter_map(|s| name.rfind(s.as_str()).map(|i| i + s.len()))
            .max()
            .unwrap_or(0);
        !matches!(&name[last_start.min(name.len())..], "" | ".")
    }

    /// Whether a key at or after `key` (in listing order) can be under folder `name`.
    fn may_hold(&self, name: &str, key: &str) -> bool {
        key.strip_prefix(name).is_some_and(|rest| {
            self.separators
                .iter()
                .any(|s| rest.starts_with(s.as_str()) || rest < s.as_str())
        })
    }
}

/// What the sub-folder listing of the prefix (delimited, first page) showed: the wanted
/// objects at the first level, complete up to `upto` (everything when `None`).
#[derive(Debug, Default)]
pub(crate) struct FirstLevel {
    objects: BTreeMap<String, ObjectInfo>,
    upto: Option<String>,
    /// False until the listing has come back: it answers nothing.
    known: bool,
}

impl FirstLevel {
    /// A delimited page of the first level added (the first, or the one after the last
    /// added): its objects, and its last entry if it was truncated (`None`: the first level
    /// is known to its end).
    pub(crate) fn extend(
        &mut self,
        objects: Vec<ObjectInfo>,
        upto: Option<String>,
        filter: &KeyFilter,
    ) {
        self.objects.extend(
            objects
                .into_iter()
                .filter(|o| filter.wants_object(o))
                .map(|o| (o.key.clone(), o)),
        );
        self.upto = upto;
        self.known = true;
    }

    /// Whether the page shows every first-level key up to `key`.
    pub(crate) fn covers(&self, key: &str) -> bool {
        self.known && self.upto.as_deref().is_none_or(|upto| key <= upto)
    }

    /// The wanted first-level objects with `after < key < before`.
    pub(crate) fn between(&self, after: &str, before: &str) -> impl Iterator<Item = &ObjectInfo> {
        use std::ops::Bound::Excluded;
        self.objects
            .range::<str, _>((Excluded(after), Excluded(before)))
            .map(|(_, object)| object)
    }

    /// `Some(is a wanted key)` when the page answers it for `name`.
    fn answers(&self, folders: &Folders, name: &str) -> Option<bool> {
        let delimiter = folders.separators[0].as_str();
        let first_level = name
            .strip_prefix(folders.list_prefix.as_str())
            .is_some_and(|rest| !rest.contains(delimiter));
        (first_level && self.covers(name)).then(|| self.objects.contains_key(name))
    }
}

/// Along one range of the listing: what its keys so far tell about the folders of the keys
/// to come.
///
/// Each listed range reads its keys in order, and a folder's name sorts before the keys under
/// it (`a` < `a!` < `a/b`): a range that has listed everything from before `a` has seen key
/// `a` if it exists. An `Ancestry` carries along a range the wanted keys that later keys may
/// sit under. A range that starts at a split point inside a folder has not seen the folder's
/// name: unless the listing of the prefix's sub-folders (which seeds the split points, see
/// [`FirstLevel`]) showed it, the name is [`Parent::Unknown`] and the run asks the server
/// (one HEAD per name in a run, `folder_taken_by` in `run.rs`).
#[derive(Debug, Clone, Default)]
pub(crate) struct Ancestry {
    /// Every key after this one (every key at all when `None`) has been seen, in order.
    seen_after: Option<String>,
    /// Wanted keys seen that later keys may sit under.
    open: Vec<String>,
    /// Names at or before `seen_after` known not to be wanted keys.
    cleared: Vec<String>,
    /// The last wanted key seen: it joins `open` only if the next key may sit under it, so
    /// that most keys cost no allocation here.
    last: String,
}

impl Ancestry {
    /// A range listed from the start of the prefix.
    pub(crate) fn from_start() -> Self {
        Ancestry::default()
    }

    /// A range starting after `point`, which has seen none of the keys before it. The
    /// names at or before `point` that its keys may sit under are looked up in `first`.
    pub(crate) fn after(point: &str, folders: &Folders, first: &FirstLevel) -> Self {
        let mut ancestry = Ancestry {
            seen_after: Some(point.to_owned()),
            ..Ancestry::default()
        };
        let start = folders.list_prefix.len().min(point.len()).max(1);
        for i in (start..=point.len()).filter(|&i| point.is_char_boundary(i)) {
            let name = &point[..i];
            if !folders.may_hold(name, point) {
                continue;
            }
            match first.answers(folders, name) {
                Some(true) => ancestry.open.push(name.to_owned()),
                Some(false) => ancestry.cleared.push(name.to_owned()),
                None => {}
            }
        }
        ancestry
    }

    /// The next wanted key of the range, in order: what is known of its folders.
    pub(crate) fn observe(&mut self, folders: &Folders, key: &str) -> Parent {
        if !self.last.is_empty() && folders.may_hold(&self.last, key) {
            self.open.push(std::mem::take(&mut self.last));
        }
        self.open.retain(|name| folders.may_hold(name, key));
        self.cleared.retain(|name| folders.may_hold(name, key));
        let mut unknown = Vec::new();
        let mut parent = None;
        for name in folders.names(key) {
            if self.open.iter().any(|open| open == name) {
                parent = Some(Parent::File(name.to_owned()));
                break;
            }
            let seen = self.seen_after.as_deref().is_none_or(|after| name > after);
            if !seen && !self.cleared.iter().any(|c| c == name) {
                unknown.push(name.to_owned());
            }
        }
        self.last.clear();
        self.last.push_str(key);
        parent.unwrap_or(match unknown.is_empty() {
            true => Parent::Clear,
            false => Parent::Unknown(unknown),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(prefix: &str, delimiter: &str, key: &str) -> Vec<String> {
        Folders::new(prefix, delimiter)
            .names(key)
            .map(str::to_owned)
            .collect()
    }

    #[test]
    fn folder_names_of_a_key() {
        assert_eq!(names("", "/", "a/b/c"), ["a", "a/b"]);
        assert_eq!(names("data/", "/", "data/a/b"), ["data/a"]);
        // The prefix's own folders are rolled up, except a prefix that ends in a name.
        assert_eq!(names("data/fi", "/", "data/file/x"), ["data/file"]);
        assert_eq!(names("", "/", "a//b/./c"), ["a", "a//b"]);
        assert_eq!(names("", "/", "/a"), Vec::<String>::new());
        assert_eq!(names("", "-", "a-b/c"), ["a", "a-b"]);
        assert_eq!(names("", "/", "é/ü"), ["é"]);
    }

    fn object(key: &str) -> ObjectInfo {
        ObjectInfo {
            key: key.to_owned(),
            size: 1,
            etag: None,
            last_modified: None,
            archived: false,
        }
    }

    /// Observes `keys` (sorted, all wanted) in one range from the start.
    fn observe_all(keys: &[&str]) -> Vec<Parent> {
        let folders = Folders::new("", "/");
        let mut ancestry = Ancestry::from_start();
        keys.iter().map(|k| ancestry.observe(&folders, k)).collect()
    }

    #[test]
    fn a_key_named_like_a_folder_is_seen_before_the_keys_under_it() {
        let file = |k: &str| Parent::File(k.to_owned());
        assert_eq!(
            observe_all(&["a", "a!", "a.txt", "a/b", "a/b/c", "ab/c", "b/c"]),
            [
                Parent::Clear,
                Parent::Clear,
                Parent::Clear,
                file("a"),
                file("a"),
                Parent::Clear,
                Parent::Clear
            ]
        );
    }

    #[test]
    fn a_range_after_a_split_point_does_not_know_earlier_names() {
        let folders = Folders::new("d/", "/");
        let mut ancestry = Ancestry::after("d/x/k5", &folders, &FirstLevel::default());
        assert_eq!(
            ancestry.observe(&folders, "d/x/k6"),
            Parent::Unknown(vec!["d/x".into()])
        );
        assert_eq!(ancestry.observe(&folders, "d/y/z"), Parent::Clear);
        // The sub-folder listing answers for first-level names.
        let filter = KeyFilter::new(None, "/").unwrap();
        let mut first = FirstLevel::default();
        first.extend(vec![object("d/x")], None, &filter);
        let mut ancestry = Ancestry::after("d/x/k5", &folders, &first);
        assert_eq!(
            ancestry.observe(&folders, "d/x/k6"),
            Parent::File("d/x".into())
        );
        let mut first = FirstLevel::default();
        first.extend(vec![object("d/w")], None, &filter);
        let mut ancestry = Ancestry::after("d/x/", &folders, &first);
        assert_eq!(ancestry.observe(&folders, "d/x/k6"), Parent::Clear);
    }
}
