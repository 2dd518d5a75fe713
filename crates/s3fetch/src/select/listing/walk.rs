//! Listing without relying on key order, for stores whose keys do not come in byte order
//! (S3 Express directory buckets, hierarchical namespaces, stores that list a file system)
//! or that ignore or refuse `StartAfter`: a directory bucket folder by folder ([`walk`]),
//! any other store page after page by its own continuation tokens ([`pages`]). Keys sent
//! already ([`Sent`]) are not sent again.

use std::collections::{HashMap, HashSet, VecDeque};
use std::hash::{BuildHasher, RandomState};
use std::sync::Arc;

use tokio::sync::mpsc;
use tokio::task::JoinSet;

use super::guard::Sent;
use super::{Listed, Pages};
use crate::error::{Error, Result};
use crate::progress::Reporter;
use crate::s3::list_xml::Listing;
use crate::s3::ListRequest;
use crate::select::filter::KeyFilter;
use crate::select::folders::{Folders, Parent};

/// One folder being listed.
struct Folder {
    /// The request's prefix: the folder's name with the delimiter after it (or the listing's
    /// root).
    prefix: String,
    /// The wanted key that names this folder or one above it, if any: every key under it is
    /// then that file's conflict.
    taken_by: Option<String>,
    /// Names of this folder or ones above it that the walk could not settle (a folder of
    /// more files than it remembers): asked of the server.
    undecided: Vec<String>,
    /// The wanted keys directly in this folder, hashed (a sub-folder of the same name is
    /// theirs): 8 bytes a key while the folder is listed, up to [`FILES_KEPT`]; `None`
    /// past that.
    files: Option<HashSet<u64>>,
    /// Sub-folders seen so far, listed once this folder is complete.
    children: HashSet<String>,
    /// Hashes of the tokens sent and of each page's first key: a store that hands one back
    /// would list forever.
    seen: HashSet<u64>,
}

/// The most files of one folder remembered to settle its sub-folders' names (8 MiB of
/// hashes); a name in a larger folder is asked with a HEAD instead.
const FILES_KEPT: usize = 1 << 20;

/// Lists every key under `prefix` that `filter` wants into `tx`, folder by folder, for a
/// store that takes only prefixes that end with the delimiter (a directory bucket). Returns
/// how many were sent.
///
/// Each folder is listed with the delimiter, page after page by `NextContinuationToken`,
/// folders in parallel. A folder's sub-folders are listed once the folder itself is
/// complete: only then is it known, in any order of keys, whether a wanted key names a
/// sub-folder (`a` beside `a/b`: the file wins, as with an ordered listing, see
/// [`crate::select::folders`]), so each key goes out with its verdict. A prefix that does
/// not end with the delimiter is listed from its parent folder.
pub(crate) async fn walk(
    source: Arc<Pages>,
    prefix: &str,
    delimiter: &str,
    concurrency: usize,
    filter: &KeyFilter,
    reporter: &dyn Reporter,
    tx: mpsc::Sender<Listed>,
) -> Result<u64> {
    let folders = Folders::new(prefix, delimiter);
    // A prefix ending inside a name is listed from its folder, keeping what is under it.
    let root = match prefix.rfind(delimiter) {
        Some(at) => &prefix[..at + delimiter.len()],
        None => "",
    };
    let mut listing: HashMap<u64, Folder> = HashMap::from([(0, Folder::new(root.to_owned()))]);
    let mut next_id = 1;
    let mut queue = VecDeque::from([(0u64, None::<String>)]);
    let mut requests = JoinSet::new();
    let mut found = 0;
    let hashes = RandomState::new();
    loop {
        while requests.len() < concurrency.max(1) {
            let Some((id, token)) = queue.pop_front() else {
                break;
            };
            let folder = &listing[&id];
            let (source, folder_prefix, delimiter) =
                (source.clone(), folder.prefix.clone(), delimiter.to_owned());
            requests.spawn(async move {
                let page = source
                    .list(ListRequest {
                        prefix: &folder_prefix,
                        token: token.as_deref(),
                        delimiter: Some(&delimiter),
                        start_after: None,
                        wanted: source.wanted(),
                    })
                    .await;
                (id, page)
            });
        }
        let Some(joined) = requests.join_next().await else {
            return Ok(found);
        };
        let (id, page) = match joined {
            Ok(done) => done,
            Err(join) if join.is_panic() => std::panic::resume_unwind(join.into_panic()),
            Err(_) => return Err(Error::Cancelled),
        };
        let page: Listing = page?;
        let folder = listing
            .get_mut(&id)
            .expect("an answered folder is being listed");
        let broken = |what: String| source.broken(format!("listing {:?}, {what}", folder.prefix));
        if let Some(first) = page.objects.first() {
            if !folder.seen.insert(hashes.hash_one(("key", &first.key))) {
                return Err(broken(format!("the store sent {:?} twice", first.key)));
            }
        }
        for object in page.objects {
            let Some(rest) = object.key.strip_prefix(folder.prefix.as_str()) else {
                return Err(broken(format!(
                    "the store sent {:?}, not under it",
                    object.key
                )));
            };
            if !object.key.starts_with(prefix) || !filter.wants_object(&object) {
                continue;
            }
            if !rest.contains(delimiter) {
                match &mut folder.files {
                    Some(files) if files.len() >= FILES_KEPT => folder.files = None,
                    Some(files) => {
                        files.insert(hashes.hash_one(&object.key));
                    }
                    None => {}
                }
            }
            let parent = folder.verdict(&folders, delimiter, &object.key);
            reporter.object_found(&object);
            found += 1;
            if tx.send(Listed { object, parent }).await.is_err() {
                return Ok(found);
            }
        }
        for child in page.common_prefixes {
            // Under the prefix, below this folder, a folder name: else the store is broken.
            let Some(name) = child.strip_suffix(delimiter) else {
                return Err(broken(format!("the store sent the sub-folder {child:?}, which does not end with {delimiter:?}")));
            };
            if name.len() < folder.prefix.len() || !child.starts_with(folder.prefix.as_str()) {
                return Err(broken(format!(
                    "the store sent the sub-folder {child:?}, not under it"
                )));
            }
            if child.starts_with(prefix) {
                folder.children.insert(child);
            }
        }
        match page.next_token.filter(|_| page.truncated) {
            Some(token) => {
                if !folder.seen.insert(hashes.hash_one(("token", &token))) {
                    return Err(broken(format!(
                        "the store sent the continuation token {token:?} twice"
                    )));
                }
                queue.push_back((id, Some(token)));
            }
            None if page.truncated => {
                return Err(broken(
                    "the store said more keys follow but sent no continuation token".into(),
                ));
            }
            // The folder is complete: its sub-folders are listed now, each knowing whether a
            // wanted key of this folder takes its name.
            None => {
                let done = listing.remove(&id).expect("the folder was being listed");
                for child in done.children {
                    let name = &child[..child.len() - delimiter.len()];
                    let mut sub = Folder::new(child.clone());
                    sub.undecided.clone_from(&done.undecided);
                    sub.taken_by = done.taken_by.clone();
                    if sub.taken_by.is_none() && folders.is_name(name) {
                        match &done.files {
                            Some(files) if files.contains(&hashes.hash_one(name)) => {
                                sub.taken_by = Some(name.to_owned());
                            }
                            Some(_) => {}
                            None => sub.undecided.push(name.to_owned()),
                        }
                    }
                    listing.insert(next_id, sub);
                    queue.push_back((next_id, None));
                    next_id += 1;
                }
            }
        }
    }
}

impl Folder {
    fn new(prefix: String) -> Self {
        Folder {
            prefix,
            taken_by: None,
            undecided: Vec::new(),
            files: Some(HashSet::new()),
            children: HashSet::new(),
            seen: HashSet::new(),
        }
    }

    /// What is known of the folders on `key`'s path: the names of this folder and the ones
    /// above it were settled when those were complete; a name the walk did not list as a
    /// folder (inside the rest of a key that a store did not fold, or a `/` in a key when
    /// the delimiter is another) is asked of the server.
    fn verdict(&self, folders: &Folders, delimiter: &str, key: &str) -> Parent {
        if let Some(name) = &self.taken_by {
            return Parent::File(name.clone());
        }
        let unknown: Vec<String> = folders
            .names(key)
            .filter(|name| {
                let walked = self.prefix.len() > name.len()
                    && self.prefix.starts_with(name)
                    && self.prefix[name.len()..].starts_with(delimiter);
                !walked || self.undecided.iter().any(|u| u == name)
            })
            .map(str::to_owned)
            .collect();
        match unknown.is_empty() {
            true => Parent::Clear,
            false => Parent::Unknown(unknown),
        }
    }
}

/// Lists every key under `prefix` that `filter` wants into `tx`, page after page by the
/// store's continuation tokens; `sent` holds the keys sent already and records the rest.
/// Returns how many were sent here.
///
/// This is how `aws s3 ls --recursive` lists: no delimiter, because a store that lists out
/// of order may also fold folders wrongly (s3rver leaves out a folder that holds only
/// folders), and a folder it leaves out would be lost without a word. A folder name not yet
/// seen as a key is asked of the server (one HEAD per name in a run).
pub(crate) async fn pages(
    source: &Pages,
    prefix: &str,
    delimiter: &str,
    filter: &KeyFilter,
    reporter: &dyn Reporter,
    tx: mpsc::Sender<Listed>,
    sent: &mut Sent,
) -> Result<u64> {
    let folders = Folders::new(prefix, delimiter);
    let mut token: Option<String> = None;
    // Hashes of the tokens sent and of each page's first key: a store that hands one back
    // would list forever.
    let mut seen = HashSet::new();
    let hashes = RandomState::new();
    let mut found = 0;
    loop {
        let page = source
            .list(ListRequest {
                prefix,
                token: token.as_deref(),
                ..ListRequest::default()
            })
            .await?;
        if let Some(first) = page.objects.first() {
            if !seen.insert(hashes.hash_one(("key", &first.key))) {
                return Err(source.broken(format!("the store sent {:?} twice", first.key)));
            }
        }
        for object in page.objects {
            if !object.key.starts_with(prefix)
                || !filter.wants_object(&object)
                || !sent.insert(&object.key)
            {
                continue;
            }
            // A wanted key sent already names its folder; one not seen yet may come later.
            let mut unknown = Vec::new();
            let mut parent = None;
            for name in folders.names(&object.key) {
                if sent.contains(name) {
                    parent = Some(Parent::File(name.to_owned()));
                    break;
                }
                unknown.push(name.to_owned());
            }
            let parent = parent.unwrap_or(match unknown.is_empty() {
                true => Parent::Clear,
                false => Parent::Unknown(unknown),
            });
            reporter.object_found(&object);
            found += 1;
            if tx.send(Listed { object, parent }).await.is_err() {
                return Ok(found);
            }
        }
        token = match page.next_token.filter(|_| page.truncated) {
            Some(next) if !seen.insert(hashes.hash_one(("token", &next))) => {
                return Err(source.broken(format!(
                    "the store sent the continuation token {next:?} twice"
                )));
            }
            Some(next) => Some(next),
            None if page.truncated => {
                return Err(source.broken(
                    "the store said more keys follow but sent no continuation token".into(),
                ));
            }
            None => return Ok(found),
        };
    }
}
