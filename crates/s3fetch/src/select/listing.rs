//! ListObjectsV2 pages -> a stream of wanted objects, listed in parallel with flat memory.
//!
//! One prefix is listed as key ranges `(after, upto]` at once ([`in_ranges`]), cut where the
//! keys already seen suggest ([`crate::keyspace::split`]); pages go into a bounded channel,
//! so a slow download stage pauses the listing. Every page is checked ([`guard`]): a store
//! that lists out of order or ignores `StartAfter` is listed again by its own continuation
//! tokens, and a directory bucket folder by folder ([`walk`]). Each key goes out with a
//! verdict on the folders of its path ([`crate::select::folders`]).

use std::collections::{BTreeSet, VecDeque};
use std::sync::Arc;

use tokio::sync::mpsc;
use tokio::task::JoinSet;

use crate::error::{Error, Result, ServiceError};
use crate::keyspace::split::{alphabet, pages_ahead, split_points};
use crate::keyspace::KeyRange;
use crate::object::ObjectInfo;
use crate::progress::Reporter;
use crate::s3::list_xml::Listing;
use crate::s3::{Bucket, KeyTest, ListRequest};
use crate::select::filter::KeyFilter;
use crate::select::folders::{Ancestry, FirstLevel, Folders, Parent};
use guard::{Disorder, Seams, Sent};
use ranges::{cut, evenly, scope, Range, RequestBudget};

mod guard;
mod ranges;
mod walk;

/// One page of a listing.
#[derive(Debug, Default)]
pub(crate) struct Page {
    pub objects: Vec<ObjectInfo>,
    /// Per object, true when the key test of [`Pages::wanted`] said no (empty without one).
    pub unwanted: Vec<bool>,
    pub truncated: bool,
    /// The store's cursor to the next page.
    pub next_token: Option<String>,
}

impl From<Listing> for Page {
    fn from(listing: Listing) -> Self {
        Page {
            objects: listing.objects,
            unwanted: listing.unwanted,
            truncated: listing.truncated,
            next_token: listing.next_token,
        }
    }
}

/// The first page of a delimited listing of the prefix: its sub-folders (`data/a/`,
/// `data/b/` ...) and the objects beside them.
#[derive(Debug, Default)]
pub(crate) struct Delimited {
    pub prefixes: Vec<String>,
    pub objects: Vec<ObjectInfo>,
    pub truncated: bool,
    /// The token of the next page of the first level, if the store gave one.
    pub next_token: Option<String>,
}

/// A wanted object, and what the listing knows of the folders on its path (see
/// [`crate::select::folders`]).
#[derive(Debug)]
pub(crate) struct Listed {
    pub object: ObjectInfo,
    pub parent: Parent,
}

/// ListObjectsV2 pages of one prefix, through the run's bucket (budget, retries). Tests give
/// it a bucket over the fake store (`s3/fake.rs`).
pub(crate) struct Pages {
    pub bucket: Arc<Bucket>,
    pub prefix: String,
    /// The keys the run wants (its filter's key test): the others are read no further than
    /// their key. `None`: every key in full.
    pub wanted: Option<Wanted>,
}

/// A run's key test, shared by the listing's requests.
pub(crate) type Wanted = Arc<dyn Fn(&str) -> bool + Send + Sync>;

impl Pages {
    /// The key test of this listing's requests.
    pub(crate) fn wanted(&self) -> Option<KeyTest<'_>> {
        self.wanted
            .as_deref()
            .map(|wanted| KeyTest(wanted as &(dyn Fn(&str) -> bool + Sync)))
    }

    /// One ListObjectsV2 page.
    pub(crate) async fn list(&self, request: ListRequest<'_>) -> Result<Listing> {
        self.bucket.list_page(request).await
    }

    /// The error of a listing the store's answers cannot carry on (`message` says why).
    pub(crate) fn broken(&self, message: String) -> Error {
        Error::List {
            bucket: self.bucket.name().to_owned(),
            prefix: self.prefix.clone(),
            after: None,
            source: ServiceError::protocol(message),
        }
    }

    /// The first page of keys under the prefix (or under `scope`, a sub-folder of it) that
    /// sort after `start_after`.
    pub(crate) async fn page(
        &self,
        start_after: Option<&str>,
        scope: Option<&str>,
    ) -> Result<Page> {
        let request = ListRequest {
            prefix: scope.unwrap_or(&self.prefix),
            start_after,
            wanted: self.wanted(),
            ..ListRequest::default()
        };
        self.list(request).await.map(Page::from)
    }

    /// The page after the one that gave `token`, of the prefix (or of `scope`).
    pub(crate) async fn next_page(&self, token: &str, scope: Option<&str>) -> Result<Page> {
        let request = ListRequest {
            prefix: scope.unwrap_or(&self.prefix),
            token: Some(token),
            wanted: self.wanted(),
            ..ListRequest::default()
        };
        self.list(request).await.map(Page::from)
    }

    /// The first page of the prefix listed with `delimiter` (or the page after the one that
    /// gave `token`): its sub-folders seed the split points.
    pub(crate) async fn first_level(
        &self,
        delimiter: &str,
        token: Option<&str>,
    ) -> Result<Delimited> {
        let listing = self
            .list(ListRequest {
                prefix: &self.prefix,
                delimiter: Some(delimiter),
                token,
                ..ListRequest::default()
            })
            .await?;
        Ok(Delimited {
            prefixes: listing.common_prefixes,
            objects: listing.objects,
            truncated: listing.truncated,
            next_token: listing.next_token,
        })
    }
}

/// How a prefix is listed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Order {
    /// In key ranges at once, with `StartAfter`, as long as the store lists in order: every
    /// page is checked, every key sent remembered (16 bytes of hash), and the listing goes
    /// on page by page with the store's continuation tokens the moment a page is out of
    /// order, sending no key twice.
    Checked,
    /// The same for a store that promises S3's order (AWS's endpoints): nothing is
    /// remembered (memory stays flat); should a page break the promise, the keys sent
    /// before may be sent again.
    Promised,
    /// Folder by folder with continuation tokens from the start (directory buckets, whose
    /// keys are in no order and which refuse `StartAfter`).
    Unordered,
}

/// Lists everything under `prefix` with up to `concurrency` requests in flight and sends the
/// objects `filter` wants to `tx`, each with what the listing knows of its folders (see
/// [`Order`]). Returns how many were sent; stops early (with `Ok`) when the receiver is gone.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn list_into(
    source: Arc<Pages>,
    prefix: &str,
    delimiter: &str,
    order: Order,
    concurrency: usize,
    filter: &KeyFilter,
    reporter: &dyn Reporter,
    tx: mpsc::Sender<Listed>,
) -> Result<u64> {
    if order == Order::Unordered {
        return walk::walk(source, prefix, delimiter, concurrency, filter, reporter, tx).await;
    }
    let mut sent = match order {
        Order::Promised => Sent::forgetful(),
        _ => Sent::default(),
    };
    let disorder = match in_ranges(
        source.clone(),
        prefix,
        Some(delimiter),
        concurrency,
        filter,
        reporter,
        tx.clone(),
        &mut sent,
    )
    .await?
    {
        Ranges::Done(found) => return Ok(found),
        Ranges::Disorder(disorder) => disorder,
    };
    let sent_so_far = match sent.forgotten() {
        0 => format!("the {} keys sent so far are not sent again", sent.len()),
        forgotten => format!(
            "the {forgotten} keys sent so far may be sent again: this store promised S3's order"
        ),
    };
    reporter.warning(&format!(
        "{disorder}: listing {prefix:?} page by page with the store's continuation tokens instead ({sent_so_far})"
    ));
    sent.remember();
    let before = sent.len() as u64;
    let rest = walk::pages(&source, prefix, delimiter, filter, reporter, tx, &mut sent).await?;
    Ok(before + rest)
}

/// Empty pages that say more follow, in a row, before the store is taken for one that
/// never ends.
const MAX_EMPTY_PAGES: usize = 1000;

/// How a listing in ranges ended.
enum Ranges {
    /// Every key listed; this many sent.
    Done(u64),
    /// A page broke the order S3 lists in: the keys sent so far are in [`Sent`].
    Disorder(Disorder),
}

/// What a request of the listing brought back.
enum Fetched {
    Page(Range, Result<Page>),
    Seeds(Result<Delimited>),
}

/// The listing in key ranges, each page checked ([`guard`]), the keys sent recorded in
/// `sent`. With a `delimiter`, one extra request fetches the prefix's "sub-folders", which
/// make ideal split points.
///
/// S3 pages a listing 1,000 keys at a time, each page after the previous one. To list one
/// prefix faster, the key space is cut into ranges listed concurrently with `StartAfter`: a
/// range's pages stop at its upper bound, so the ranges together return exactly what one
/// sequential listing returns, no key missed, none twice.
///
/// ```text
/// queue of ranges ──► up to `concurrency` page requests (JoinSet) ──► coordinator:
///                                                                     emit keys <= upto into the channel,
///                                                                     requeue the rest of the range, split
///                                                                     when requests are idle
/// ```
/// Split points come from the keys already seen: a ladder of strings above the page's last
/// key, one character position at a time, so both nearby and far-away parts of the key
/// space get their own range ([`split_points`], [`pages_ahead`]). Ranges that turn out empty
/// cost one request. Each range carries what its keys so far say about folders, so that
/// every key is sent with a verdict on the folders of its path.
#[allow(clippy::too_many_arguments)]
async fn in_ranges(
    source: Arc<Pages>,
    prefix: &str,
    delimiter: Option<&str>,
    concurrency: usize,
    filter: &KeyFilter,
    reporter: &dyn Reporter,
    tx: mpsc::Sender<Listed>,
    sent: &mut Sent,
) -> Result<Ranges> {
    let concurrency = concurrency.max(1);
    let folders = Folders::new(prefix, delimiter.unwrap_or("/"));
    // The sub-folders, once known (split points), and the wanted objects beside them.
    let mut seeds: BTreeSet<String> = BTreeSet::new();
    let mut first_level = FirstLevel::default();
    // A range shard lists its own keys only.
    let whole = filter.key_range().cloned().unwrap_or_default();
    if whole.is_empty() {
        return Ok(Ranges::Done(0)); // a range shard with no keys (two equal splits)
    }
    let ancestry = match &whole.after {
        None => Ancestry::from_start(),
        Some(after) => Ancestry::after(after, &folders, &first_level),
    };
    let mut queue = VecDeque::from([Range {
        keys: whole.clone(),
        scope: None,
        token: None,
        fresh: true,
        ancestry,
    }]);
    let mut requests = JoinSet::new();
    let mut budget = RequestBudget {
        opened: 1,
        ..RequestBudget::default()
    };
    // The sub-folders are asked for once the first page shows there is more than one page:
    // a prefix of one page takes one request.
    let mut seeds_asked = delimiter.is_none() || concurrency == 1;
    // The first page's first and last keys: when both lie in one sub-folder, that folder
    // holds a page or more, and the sub-folders are guessed to be as large: each is listed
    // on its own, all at once (one request per page of a folder, none read past it).
    let mut first_page: Option<(String, String)> = None;
    // What neighbouring ranges saw of the keys where they meet (see `guard::Seams`).
    let mut seams = Seams::default();
    // A range's next page goes on from the store's continuation token while the store
    // takes its tokens (see `Range::token`).
    let mut tokens = true;
    let mut empty_pages = 0;
    let mut big_folders = false;
    // The token of the next page of sub-folders, until it is asked for.
    let mut next_seeds: Option<String> = None;
    let mut found = 0;
    // Sends one wanted object; false when the receiver is gone.
    macro_rules! send {
        ($object:expr, $ancestry:expr) => {{
            let object = $object;
            reporter.object_found(&object);
            found += 1;
            sent.insert(&object.key);
            let parent = $ancestry.observe(&folders, &object.key);
            tx.send(Listed { object, parent }).await.is_ok()
        }};
    }
    loop {
        // Sub-folders of a page or more, and more of them than one page names: the next
        // page of them (one request per page of sub-folders), so that every one is listed on
        // its own, once the budget allows a request more or the sub-folders known so far
        // brought back a full page for every second one (they are as large as guessed).
        if let Some(token) =
            next_seeds.take_if(|_| budget.can_open(1) || 2 * budget.full >= seeds.len())
        {
            budget.opened += 1;
            let (source, delimiter) = (source.clone(), delimiter.unwrap_or("/").to_owned());
            requests.spawn(async move {
                Fetched::Seeds(source.first_level(&delimiter, Some(&token)).await)
            });
        }
        while requests.len() < concurrency {
            let Some(range) = queue.pop_front() else {
                break;
            };
            let source = source.clone();
            requests.spawn(async move {
                let scope = range.scope.as_deref();
                let page = match &range.token {
                    Some(token) => source.next_page(token, scope).await,
                    None => source.page(range.keys.after.as_deref(), scope).await,
                };
                Fetched::Page(range, page)
            });
        }
        let Some(joined) = requests.join_next().await else {
            return Ok(Ranges::Done(found));
        };
        let mut pieces = match joined {
            Ok(Fetched::Page(mut range, page)) => {
                let page = match page {
                    // A store that refuses its own continuation tokens: `StartAfter` from
                    // now on. (One that goes back with them breaks the order check below:
                    // it may as well be a store out of order.)
                    Err(error) if range.token.is_some() && guard::refused(&error) => {
                        tokens = false;
                        range.token = None;
                        queue.push_front(range);
                        continue;
                    }
                    Err(error) if range.keys.after.is_some() && range.token.is_none() => {
                        match guard::refused_start_after(&error) {
                            Some(disorder) => return Ok(Ranges::Disorder(disorder)),
                            None => return Err(error),
                        }
                    }
                    page => page?,
                };
                // An empty page that says more follow (a store over many deleted keys answers
                // so): on from its token, a bounded number of times in a row.
                if page.objects.is_empty() && page.truncated {
                    if let Some(token) = page.next_token.as_ref().filter(|t| {
                        tokens && empty_pages < MAX_EMPTY_PAGES && range.token.as_ref() != Some(*t)
                    }) {
                        empty_pages += 1;
                        range.token = Some(token.clone());
                        queue.push_front(range);
                        continue;
                    }
                }
                empty_pages = 0;
                if let Err(disorder) =
                    guard::check_page(range.keys.after.as_deref(), &page.objects, page.truncated)
                {
                    return Ok(Ranges::Disorder(disorder));
                }
                // A range's first page: the first key after the range's start.
                if let (true, Some(after)) = (range.fresh, &range.keys.after) {
                    let first = page.objects.first().map(|o| o.key.as_str());
                    if let Err(disorder) = seams.began(after, first, range.scope.is_some()) {
                        return Ok(Ranges::Disorder(disorder));
                    }
                }
                range.fresh = false;
                if page.truncated {
                    budget.page_len = budget.page_len.max(page.objects.len());
                }
                let first = page.objects.first().map(|o| o.key.clone());
                // The characters of the page's keys, for split points: only when a request
                // would otherwise sit idle (the cut below needs them only then).
                let idle = concurrency.saturating_sub(requests.len() + queue.len() + 1);
                let alphabet = match idle {
                    0 => Vec::new(),
                    _ => alphabet(page.objects.iter().map(|o| o.key.as_str())),
                };
                let returned = page.objects.len();
                // The keys up to the range's end, and the first key past it.
                let upto = range.keys.upto.as_deref();
                let mut objects = page.objects;
                let inside = objects
                    .iter()
                    .position(|o| upto.is_some_and(|upto| o.key.as_str() > upto))
                    .unwrap_or(objects.len());
                let last = inside.checked_sub(1).map(|i| objects[i].key.clone());
                let past = (inside < objects.len()).then(|| objects.swap_remove(inside).key);
                let unwanted = page.unwanted;
                for (i, object) in objects.into_iter().take(inside).enumerate() {
                    // A key the page's reader already found unwanted is not tested again.
                    let said_no = unwanted.get(i).is_some_and(|&no| no);
                    if !said_no && filter.wants_object(&object) && !send!(object, range.ancestry) {
                        return Ok(Ranges::Done(found));
                    }
                }
                let past_end = past.is_some();
                if !past_end && returned >= budget.page_len.max(1) {
                    budget.full += 1;
                }
                // The range's end: the first key after it, or no key after it in the prefix.
                if let Some(upto) = &range.keys.upto {
                    let ended = match &past {
                        Some(key) => Some(Some(key.as_str())),
                        None if !page.truncated && range.scope.is_none() => Some(None),
                        None => None,
                    };
                    if let Some(Err(disorder)) = ended.map(|past| seams.ended(upto, past)) {
                        return Ok(Ranges::Disorder(disorder));
                    }
                }
                let (Some(first), Some(last)) = (first, last) else {
                    continue;
                };
                if past_end || !page.truncated {
                    continue;
                }
                // A page of keys without the delimiter after the prefix is of a flat prefix:
                // its sub-folder listing would only list the same page again.
                let flat = delimiter.is_some_and(|d| {
                    !first[prefix.len().min(first.len())..].contains(d)
                        && !last[prefix.len().min(last.len())..].contains(d)
                });
                first_page.get_or_insert_with(|| (first.clone(), last.clone()));
                if !seeds_asked && flat {
                    seeds_asked = true;
                }
                if !seeds_asked && budget.can_open(1) {
                    seeds_asked = true;
                    budget.opened += 1;
                    let (source, delimiter) = (source.clone(), delimiter.unwrap_or("/").to_owned());
                    requests.spawn(async move {
                        Fetched::Seeds(source.first_level(&delimiter, None).await)
                    });
                }
                // The rest of the range, cut into as many pieces as requests would otherwise
                // sit idle and the request budget allows: at known sub-folders, else at
                // split points guessed from the page.
                let rest = Range {
                    keys: KeyRange {
                        after: Some(last.clone()),
                        upto: range.keys.upto.clone(),
                    },
                    token: page.next_token.filter(|_| tokens),
                    ..range
                };
                let idle = concurrency.saturating_sub(requests.len() + queue.len() + 1);
                let cuts = idle.min(budget.available());
                let fresh = |point: &str| Ancestry::after(point, &folders, &first_level);
                let inside = evenly(&seeds, &rest, if big_folders { usize::MAX } else { cuts });
                let pieces = if inside.is_empty() {
                    let base = rest.scope.as_deref().unwrap_or(prefix);
                    let upto = rest.keys.upto.as_deref();
                    let points =
                        pages_ahead(base, &first, &last, upto, &alphabet, cuts, budget.full)
                            .unwrap_or_else(|| {
                                split_points(base, &first, &last, upto, &alphabet, cuts)
                            });
                    cut(rest, &points.into_iter().collect(), fresh)
                } else {
                    cut(rest, &inside, fresh)
                };
                budget.opened += pieces.len().saturating_sub(1);
                pieces
            }
            Ok(Fetched::Seeds(delimited)) => {
                let delimited = delimited?;
                if let Err(disorder) =
                    guard::check_delimited(&delimited.objects, &delimited.prefixes)
                {
                    return Ok(Ranges::Disorder(disorder));
                }
                let last = delimited
                    .prefixes
                    .iter()
                    .chain(delimited.objects.iter().map(|o| &o.key))
                    .max();
                if delimited.truncated && last.is_none() {
                    // An empty page that says more follow shows nothing of the first level:
                    // the ranges go on without it.
                    continue;
                }
                let covered = delimited.truncated.then(|| last.cloned()).flatten();
                first_level.extend(delimited.objects, covered.clone(), filter);
                seeds.extend(delimited.prefixes);
                big_folders = first_page.as_ref().is_some_and(|(first, last)| {
                    seeds.iter().any(|folder| {
                        first.starts_with(folder.as_str()) && last.starts_with(folder.as_str())
                    })
                });
                // Sub-folders of a page or more, and more of them than one page names: the
                // next page of them (one request per page of sub-folders, each of which
                // holds a page of keys or more), so that every one is listed on its own.
                // Only while the page ended inside the keys to list (a range shard's).
                let inside = covered.as_deref().is_some_and(|covered| {
                    whole.after.as_deref().is_none_or(|after| covered >= after)
                        && whole.upto.as_deref().is_none_or(|upto| covered < upto)
                });
                next_seeds = delimited
                    .next_token
                    .filter(|_| inside && big_folders && tokens);
                // Ranges still waiting are cut at the sub-folders they span, as the budget
                // allows.
                let fresh = |point: &str| Ancestry::after(point, &folders, &first_level);
                let waiting = std::mem::take(&mut queue);
                let mut pieces = Vec::new();
                for range in waiting {
                    let idle = concurrency.saturating_sub(requests.len() + pieces.len() + 1);
                    let cuts = match big_folders {
                        true => usize::MAX,
                        false => idle.min(budget.available()),
                    };
                    let inside = evenly(&seeds, &range, cuts);
                    let cut = cut(range, &inside, fresh);
                    budget.opened += cut.len().saturating_sub(1);
                    pieces.extend(cut);
                }
                pieces
            }
            Err(join) if join.is_panic() => std::panic::resume_unwind(join.into_panic()),
            Err(_) => return Err(Error::Cancelled),
        };
        // Ranges from one sub-folder to the next list just the sub-folder; the objects
        // between the two come from the sub-folder listing, sent now.
        for piece in &mut pieces {
            let beside = scope(piece, &seeds, &first_level, filter);
            let mut ancestry = piece.ancestry.clone();
            for object in beside {
                if !send!(object, ancestry) {
                    return Ok(Ranges::Done(found));
                }
            }
        }
        queue.extend(pieces);
    }
}

#[cfg(test)]
pub(crate) mod tests;
