//! The parallel listing's check on the store, page by page: keys strictly increasing and
//! all after the `StartAfter` sent (one comparison per key). Listing ranges at once relies on
//! both, and not every store keeps them (a hierarchical namespace lists folder by folder; a
//! minimal server ignores or refuses `StartAfter`): a range that trusted them would miss keys
//! without a word or list forever. The first page that breaks a rule is not used; the
//! listing goes on with [`super::walk`], skipping the keys already sent ([`Sent`]).

use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasher, RandomState};

use crate::error::Error;
use crate::object::ObjectInfo;

/// How the store departed from S3's listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Disorder {
    /// Keys out of byte order: `later` came after `earlier`.
    Unordered { earlier: String, later: String },
    /// A page asked for the keys after `after` (by `StartAfter` or the store's own
    /// continuation token) began at or before it.
    IgnoredStartAfter { after: String, first: String },
    /// A request with `StartAfter` was refused.
    RefusedStartAfter(String),
    /// A page that says more keys follow held none to carry on from.
    EmptyPage,
    /// Two ranges that meet at `point` disagree on the first key after it.
    Seam {
        point: String,
        ended: Option<String>,
        began: Option<String>,
    },
}

impl std::fmt::Display for Disorder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Disorder::Unordered { earlier, later } => write!(
                f,
                "the store lists keys out of order ({later:?} came after {earlier:?})"
            ),
            Disorder::IgnoredStartAfter { after, first } => write!(
                f,
                "the store ignored where the listing was (asked for the keys after {after:?}, it sent {first:?})"
            ),
            Disorder::RefusedStartAfter(error) => {
                write!(f, "the store refused StartAfter ({error})")
            }
            Disorder::EmptyPage => f.write_str("the store sent an empty page that said more follow"),
            Disorder::Seam {
                point,
                ended,
                began,
            } => write!(
                f,
                "the store lists keys out of order (the first key after {point:?} was {} to one request and {} to another)",
                describe(ended.as_deref()),
                describe(began.as_deref())
            ),
        }
    }
}

fn describe(key: Option<&str>) -> String {
    key.map_or_else(|| "none".to_owned(), |k| format!("{k:?}"))
}

/// Where neighbouring ranges meet: the range that ends at a point and the one that begins
/// after it must agree on the first key after the point — the key that ended the one is the
/// first the other lists (or neither has one). S3 always agrees with itself; a store whose
/// pages are each in order but that lists in another order overall (or reads `StartAfter` as
/// a position in its own order) shows itself here, where no single page shows it.
#[derive(Debug, Default)]
pub(crate) struct Seams(HashMap<String, Seam>);

#[derive(Debug, Default)]
struct Seam {
    ended: Option<Option<String>>,
    began: Option<Option<String>>,
}

impl Seams {
    /// The range up to `point` ended at `past`, the first key after it (`None`: the prefix
    /// had no more keys).
    pub(super) fn ended(&mut self, point: &str, past: Option<&str>) -> Result<(), Disorder> {
        let seam = self.0.entry(point.to_owned()).or_default();
        seam.ended = Some(past.map(str::to_owned));
        self.settle(point)
    }

    /// The range after `point` began with `first` (`None`: it held no key). A range listed
    /// within a sub-folder sees only that folder, so only a key it found counts.
    pub(super) fn began(
        &mut self,
        point: &str,
        first: Option<&str>,
        in_folder: bool,
    ) -> Result<(), Disorder> {
        if in_folder && first.is_none() {
            return Ok(());
        }
        let seam = self.0.entry(point.to_owned()).or_default();
        seam.began = Some(first.map(str::to_owned));
        self.settle(point)
    }

    fn settle(&mut self, point: &str) -> Result<(), Disorder> {
        let Some(Seam {
            ended: Some(ended),
            began: Some(began),
        }) = self.0.get(point)
        else {
            return Ok(());
        };
        let agree = ended == began;
        let disorder = Disorder::Seam {
            point: point.to_owned(),
            ended: ended.clone(),
            began: began.clone(),
        };
        self.0.remove(point);
        match agree {
            true => Ok(()),
            false => Err(disorder),
        }
    }
}

/// Whether a page of keys asked for after `after` is one S3 could have sent.
pub(crate) fn check_page(
    after: Option<&str>,
    objects: &[ObjectInfo],
    truncated: bool,
) -> Result<(), Disorder> {
    if truncated && objects.is_empty() {
        return Err(Disorder::EmptyPage);
    }
    if let (Some(after), Some(first)) = (after, objects.first()) {
        if first.key.as_str() <= after {
            return Err(Disorder::IgnoredStartAfter {
                after: after.to_owned(),
                first: first.key.clone(),
            });
        }
    }
    increasing(objects.iter().map(|o| o.key.as_str()))
}

/// Whether a delimited page's keys and sub-folders are each in byte order.
pub(crate) fn check_delimited(objects: &[ObjectInfo], prefixes: &[String]) -> Result<(), Disorder> {
    increasing(objects.iter().map(|o| o.key.as_str()))?;
    increasing(prefixes.iter().map(String::as_str))
}

fn increasing<'a>(mut keys: impl Iterator<Item = &'a str>) -> Result<(), Disorder> {
    let Some(mut earlier) = keys.next() else {
        return Ok(());
    };
    for later in keys {
        if later <= earlier {
            return Err(Disorder::Unordered {
                earlier: earlier.to_owned(),
                later: later.to_owned(),
            });
        }
        earlier = later;
    }
    Ok(())
}

/// Whether a failed list request was the store refusing a parameter it does not take
/// (`StartAfter`, or a continuation token of its own): 501, or 400 with a code that says
/// so — not a 400 about credentials, a region or a timeout.
pub(crate) fn refused(error: &Error) -> bool {
    error.service_error().is_some_and(|service| {
        service.status() == Some(501)
            || (service.status() == Some(400)
                && matches!(
                    service.code(),
                    Some("InvalidArgument" | "NotImplemented" | "InvalidRequest" | "BadRequest")
                ))
    })
}

/// [`refused`] for a request with `StartAfter`, as the disorder it is.
pub(crate) fn refused_start_after(error: &Error) -> Option<Disorder> {
    refused(error).then(|| {
        Disorder::RefusedStartAfter(
            error
                .service_error()
                .map(|s| s.to_string())
                .unwrap_or_default(),
        )
    })
}

/// The keys a listing has sent, as 128-bit hashes (two SipHashes with keys drawn for this
/// run: 16 bytes a key, about 20–40 in the set, and no two keys of a run share one but with
/// odds of 1 in 2^70 for a billion keys), so that a listing that starts over sends none
/// twice. A listing of a store that promises S3's order remembers none (see
/// [`Sent::forgetful`]).
pub(crate) struct Sent {
    keys: HashSet<u128>,
    hashers: (RandomState, RandomState),
    remember: bool,
    /// Keys sent while nothing was remembered.
    forgotten: usize,
}

impl Default for Sent {
    fn default() -> Self {
        Sent {
            keys: HashSet::new(),
            hashers: (RandomState::new(), RandomState::new()),
            remember: true,
            forgotten: 0,
        }
    }
}

impl Sent {
    /// A record that keeps nothing until [`Sent::remember`]: memory stays flat.
    pub(super) fn forgetful() -> Self {
        Sent {
            remember: false,
            ..Sent::default()
        }
    }

    /// Keeps every key from now on.
    pub(super) fn remember(&mut self) {
        self.remember = true;
    }

    fn hash(&self, key: &str) -> u128 {
        u128::from(self.hashers.0.hash_one(key)) << 64 | u128::from(self.hashers.1.hash_one(key))
    }

    /// Records `key`; false if it was sent before (as far as the record knows).
    pub(super) fn insert(&mut self, key: &str) -> bool {
        if !self.remember {
            self.forgotten += 1;
            return true;
        }
        let hash = self.hash(key);
        self.keys.insert(hash)
    }

    pub(super) fn contains(&self, key: &str) -> bool {
        self.keys.contains(&self.hash(key))
    }

    /// Keys sent: those remembered, and those sent while none were.
    pub(super) fn len(&self) -> usize {
        self.keys.len() + self.forgotten
    }

    /// Keys sent while none were remembered: a listing that starts over may send them again.
    pub(super) fn forgotten(&self) -> usize {
        self.forgotten
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::s3::model::object;

    fn page(keys: &[&str]) -> Vec<ObjectInfo> {
        keys.iter().map(|k| object((*k).to_owned())).collect()
    }

    #[test]
    fn pages_s3_could_send_pass() {
        assert_eq!(
            check_page(None, &page(&["a", "a-b", "a/b", "b"]), true),
            Ok(())
        );
        assert_eq!(check_page(Some("a"), &page(&["a0"]), false), Ok(()));
        assert_eq!(check_page(Some("z"), &page(&[]), false), Ok(()));
    }

    #[test]
    fn pages_s3_could_not_send_are_told() {
        assert!(matches!(
            check_page(None, &page(&["a", "a/b", "a-b"]), true),
            Err(Disorder::Unordered { .. })
        ));
        assert!(matches!(
            check_page(None, &page(&["a", "a"]), true),
            Err(Disorder::Unordered { .. })
        ));
        assert!(matches!(
            check_page(Some("m"), &page(&["a", "b"]), true),
            Err(Disorder::IgnoredStartAfter { .. })
        ));
        assert!(matches!(
            check_page(Some("m"), &page(&["m"]), true),
            Err(Disorder::IgnoredStartAfter { .. })
        ));
        assert_eq!(check_page(Some("m"), &[], true), Err(Disorder::EmptyPage));
        assert!(check_delimited(&page(&["a"]), &["b/".into(), "a/".into()]).is_err());
    }

    #[test]
    fn neighbouring_ranges_must_agree_on_the_key_between_them() {
        let mut seams = Seams::default();
        assert_eq!(seams.ended("m", Some("n")), Ok(()));
        assert_eq!(seams.began("m", Some("n"), false), Ok(()));
        assert_eq!(seams.began("p", None, false), Ok(()));
        assert_eq!(seams.ended("p", None), Ok(()));
        // A folder's range that found nothing says nothing of the keys after the folder.
        assert_eq!(seams.began("q/", None, true), Ok(()));
        assert_eq!(seams.ended("q/", Some("r")), Ok(()));
        assert!(seams.began("s", None, false).is_ok());
        assert!(matches!(
            seams.ended("s", Some("t")),
            Err(Disorder::Seam { .. })
        ));
        assert!(seams.ended("u", Some("v")).is_ok());
        assert!(matches!(
            seams.began("u", Some("w"), false),
            Err(Disorder::Seam { .. })
        ));
    }

    #[test]
    fn sent_keys_are_remembered() {
        let mut sent = Sent::default();
        assert!(sent.insert("a"));
        assert!(!sent.insert("a"));
        assert!(sent.contains("a") && !sent.contains("b"));
        assert_eq!(sent.len(), 1);
        let mut forgetful = Sent::forgetful();
        assert!(forgetful.insert("a") && forgetful.insert("a"));
        assert_eq!((forgetful.len(), forgetful.forgotten()), (2, 2));
        forgetful.remember();
        assert!(forgetful.insert("b") && !forgetful.insert("b"));
    }
}
