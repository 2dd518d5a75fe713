//! ListObjectsV2 over keys in memory, for the fake bucket ([`super::fake`]): as S3 answers it
//! (prefix, delimiter, `StartAfter`, continuation tokens, pages of `max_keys`), and as stores
//! that list differently answer it ([`Quirks`]: keys out of order, `StartAfter` ignored or
//! refused, S3 Express directory buckets' rules) — so that tests can show nothing is lost or
//! listed twice there. The one place the tests' listing semantics live.

use std::collections::{BTreeMap, HashSet};
use std::hash::{BuildHasher, BuildHasherDefault, DefaultHasher};
use std::ops::Bound;

use super::ListRequest;
use crate::error::ServiceError;
use crate::object::ObjectInfo;
use crate::s3::list_xml::Listing;

/// The order a store lists keys in.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) enum Order {
    /// S3's: byte order of the keys.
    #[default]
    Lexicographic,
    /// A fixed order unrelated to the keys' (a hash of each key), as directory buckets list.
    Hashed,
    /// A file system's: folder by folder, each folder's names sorted, a folder's contents
    /// where its name sorts (`a/b` before `a-b`, which S3 lists the other way round).
    Hierarchical,
    /// S3's, but with some neighbouring keys swapped (about one in `n`, chosen by `seed`).
    Swapped { seed: u64, n: u64 },
}

/// What a store does with `StartAfter`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) enum StartAfter {
    /// Lists from where the key would be in the store's order (S3, and a store that sorts
    /// by its own rule and seeks in it, as hierarchical namespaces do).
    #[default]
    Honoured,
    /// Lists, in the store's order, the keys that sort above it in byte order (a naive
    /// server filtering an unordered scan).
    Filter,
    /// Lists from the start of the prefix, as if it had not been sent.
    Ignored,
    /// Answers `501 NotImplemented`.
    Refused,
}

/// How a store departs from S3's listing.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Quirks {
    pub order: Order,
    pub start_after: StartAfter,
    /// `start_after` applies from this request on (counting from 0): a store can look like
    /// S3 for a while.
    pub from_request: usize,
    /// An S3 Express directory bucket: `StartAfter` answers 400, a prefix must end in `/`
    /// and `/` is the only delimiter.
    pub directory: bool,
    /// The first page of every listing is empty and says more follow (as a store does over
    /// many deleted keys): only its continuation token goes on.
    pub empty_pages: bool,
}

/// The answer to the `number`th ListObjectsV2 request (from 0) of a store holding `objects`,
/// each listed as `info` makes it (called for the keys of the page only).
pub(crate) fn answer<V>(
    objects: &BTreeMap<String, V>,
    info: impl Fn(&str, &V) -> ObjectInfo,
    max_keys: usize,
    quirks: Quirks,
    number: usize,
    request: ListRequest<'_>,
) -> Result<Listing, ServiceError> {
    let invalid = || ServiceError::test_response(400, "InvalidArgument");
    if quirks.directory
        && (request.start_after.is_some()
            || !(request.prefix.is_empty() || request.prefix.ends_with('/'))
            || request.delimiter.is_some_and(|d| d != "/"))
    {
        return Err(invalid());
    }
    // The token holds the position, the prefix it is for (S3 refuses a token with another)
    // and the first request's StartAfter.
    let (from, mut start_after) = match request.token {
        Some(token) => {
            let mut parts = token.splitn(3, '|');
            let (at, prefix, after) = (parts.next(), parts.next(), parts.next());
            if prefix != Some(hex(request.prefix).as_str()) {
                return Err(invalid());
            }
            let at = at
                .and_then(|a| a.parse::<usize>().ok())
                .ok_or_else(invalid)?;
            (at, after.and_then(|a| a.strip_prefix('+')))
        }
        None => (0, request.start_after),
    };
    let token = |at: usize, after: Option<&str>| {
        let after = after.map(|a| format!("+{a}")).unwrap_or_default();
        format!("{at}|{}|{after}", hex(request.prefix))
    };
    if quirks.empty_pages && request.token.is_none() {
        return Ok(Listing {
            truncated: true,
            next_token: Some(token(0, start_after)),
            ..Listing::default()
        });
    }
    if number >= quirks.from_request && request.token.is_none() {
        match quirks.start_after {
            StartAfter::Ignored => start_after = None,
            StartAfter::Refused if start_after.is_some() => {
                return Err(ServiceError::test_response(501, "NotImplemented"));
            }
            _ => {}
        }
    }
    let under = objects
        .range::<str, _>((Bound::Included(request.prefix), Bound::Unbounded))
        .map(|(key, _)| key)
        .take_while(|k| k.starts_with(request.prefix));
    let arranged = quirks.order.arrange(under.collect());
    let keys = match start_after {
        None => arranged,
        Some(after) if quirks.start_after == StartAfter::Filter => arranged
            .into_iter()
            .filter(|k| k.as_str() > after)
            .collect(),
        Some(after) => quirks.order.after(arranged, after),
    };
    // Keys, with those under a sub-folder folded into it where the folder first appears.
    let mut folded = HashSet::new();
    let mut entries = Vec::new();
    for key in keys {
        let folder = request.delimiter.and_then(|d| {
            let rest = &key[request.prefix.len()..];
            rest.find(d)
                .map(|i| &key[..request.prefix.len() + i + d.len()])
        });
        match folder {
            Some(folder) if !folded.insert(folder) => {}
            Some(folder) => entries.push(Err(folder.to_owned())),
            None => entries.push(Ok(key)),
        }
    }
    let end = (from + max_keys.max(1)).min(entries.len());
    let truncated = end < entries.len();
    let mut listing = Listing {
        truncated,
        next_token: truncated.then(|| token(end, start_after)),
        ..Listing::default()
    };
    for entry in entries.drain(from.min(end)..end) {
        match entry {
            Ok(key) => listing.objects.push(info(key, &objects[key])),
            Err(folder) => listing.common_prefixes.push(folder),
        }
    }
    Ok(listing)
}

impl Order {
    /// The keys of `arranged` (in this order) from where `after` would be in it.
    fn after<'a>(self, arranged: Vec<&'a String>, after: &str) -> Vec<&'a String> {
        let hasher = BuildHasherDefault::<DefaultHasher>::default();
        match self {
            Order::Lexicographic => arranged
                .into_iter()
                .filter(|k| k.as_str() > after)
                .collect(),
            Order::Hashed => {
                let at = (hasher.hash_one(after), after);
                arranged
                    .into_iter()
                    .filter(|k| (hasher.hash_one(k.as_str()), k.as_str()) > at)
                    .collect()
            }
            Order::Hierarchical => arranged
                .into_iter()
                .filter(|k| k.split('/').cmp(after.split('/')).is_gt())
                .collect(),
            Order::Swapped { .. } => {
                let at = arranged.iter().filter(|k| k.as_str() <= after).count();
                arranged[at..].to_vec()
            }
        }
    }

    /// `keys`, in byte order, put in this order.
    fn arrange(self, mut keys: Vec<&String>) -> Vec<&String> {
        match self {
            Order::Lexicographic => {}
            Order::Hashed => {
                let hasher = BuildHasherDefault::<DefaultHasher>::default();
                keys.sort_by_key(|k| (hasher.hash_one(k.as_str()), *k));
            }
            Order::Hierarchical => keys.sort_by(|a, b| a.split('/').cmp(b.split('/'))),
            Order::Swapped { seed, n } => {
                let hasher = BuildHasherDefault::<DefaultHasher>::default();
                let mut i = 0;
                while i + 1 < keys.len() {
                    if hasher.hash_one((seed, keys[i])) % n.max(1) == 0 {
                        keys.swap(i, i + 1);
                        i += 1;
                    }
                    i += 1;
                }
            }
        }
        keys
    }
}

fn hex(text: &str) -> String {
    text.bytes().map(|b| format!("{b:02x}")).collect()
}

/// An object known by its key only, for pages a test writes by hand.
pub(crate) fn object(key: String) -> ObjectInfo {
    ObjectInfo {
        key,
        size: 1,
        etag: None,
        last_modified: None,
        archived: false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::s3::fake::FakeStore;
    use crate::s3::Store;

    fn store(max_keys: usize, quirks: Quirks) -> FakeStore {
        let store = FakeStore::default().max_keys(max_keys).quirks(quirks);
        store.put_keys(["a", "a-b", "a/b", "a/c/d", "b"]);
        store
    }

    /// One answer of `store` (which takes no time: no runtime needed).
    fn list(store: &FakeStore, request: ListRequest<'_>) -> Result<Listing, ServiceError> {
        futures::executor::block_on(store.list(request))
    }

    fn keys(store: &FakeStore, request: ListRequest<'_>) -> (Vec<String>, Vec<String>) {
        let mut token: Option<String> = None;
        let (mut keys, mut folders) = (Vec::new(), Vec::new());
        loop {
            let request = ListRequest {
                token: token.as_deref(),
                ..request
            };
            let page = list(store, request).unwrap();
            keys.extend(page.objects.into_iter().map(|o| o.key));
            folders.extend(page.common_prefixes);
            token = page.next_token;
            if token.is_none() {
                return (keys, folders);
            }
        }
    }

    #[test]
    fn lists_as_s3_does() {
        let store = store(2, Quirks::default());
        let all = ListRequest::default();
        assert_eq!(keys(&store, all).0, ["a", "a-b", "a/b", "a/c/d", "b"]);
        let delimited = ListRequest {
            delimiter: Some("/"),
            ..all
        };
        assert_eq!(
            keys(&store, delimited),
            (
                vec!["a".into(), "a-b".into(), "b".into()],
                vec!["a/".into()]
            )
        );
        let after = ListRequest {
            start_after: Some("a-b"),
            ..all
        };
        assert_eq!(list(&store, after).unwrap().objects[0].key, "a/b");
    }

    #[test]
    fn quirky_stores() {
        let names = ["a", "a-b", "a/b", "a/c/d", "b"].map(String::from);
        let quirky = |quirks| store(10, quirks);
        let hierarchical = quirky(Quirks {
            order: Order::Hierarchical,
            ..Quirks::default()
        });
        let all = ListRequest::default();
        assert_eq!(
            keys(&hierarchical, all).0,
            ["a", "a/b", "a/c/d", "a-b", "b"]
        );
        let ignoring = quirky(Quirks {
            start_after: StartAfter::Ignored,
            ..Quirks::default()
        });
        let after = ListRequest {
            start_after: Some("a/b"),
            ..all
        };
        assert_eq!(list(&ignoring, after).unwrap().objects[0].key, "a");
        let refusing = quirky(Quirks {
            start_after: StartAfter::Refused,
            from_request: 1,
            ..Quirks::default()
        });
        assert!(list(&refusing, after).is_ok(), "like S3 at first");
        assert_eq!(list(&refusing, after).unwrap_err().status(), Some(501));
        let directory = quirky(Quirks {
            directory: true,
            order: Order::Hashed,
            ..Quirks::default()
        });
        assert_eq!(list(&directory, after).unwrap_err().status(), Some(400));
        let partial = ListRequest { prefix: "a", ..all };
        assert_eq!(list(&directory, partial).unwrap_err().status(), Some(400));
        let mut listed = keys(&directory, all).0;
        listed.sort();
        assert_eq!(listed, names);
    }
}
