//! The ranges of the parallel listing: a [`KeyRange`] with what its listing carries (a
//! scoping sub-folder, the store's cursor, what its keys tell about folders), how to cut one
//! at points (where to cut is [`crate::keyspace::split`]'s arithmetic), and how many ranges
//! the listing may open for the LIST requests it has had answered (at most 1.5 P + 2
//! requests for P pages). The listing loop in [`super`] decides when to call them.

use std::collections::BTreeSet;

use crate::keyspace::KeyRange;
use crate::object::ObjectInfo;
use crate::select::filter::KeyFilter;
use crate::select::folders::{Ancestry, FirstLevel};

/// A range of keys being listed, and what the keys listed before it in the same run of
/// pages tell about folders.
#[derive(Debug, Clone)]
pub(super) struct Range {
    pub keys: KeyRange,
    /// A sub-folder (`data/a/`) whose keys are all this range lists, with the sub-folder as
    /// the request's prefix: the server then says when the range is done (a page that is
    /// not truncated), instead of a last request that reads past `upto`. The range's other
    /// keys (first-level objects between two sub-folders) came with the sub-folder listing.
    pub scope: Option<String>,
    /// The store's own cursor to the keys after `after` (the `NextContinuationToken` of the
    /// page that ended at `after`), used instead of `StartAfter` where it is at hand: a store
    /// that lists out of order and reads `StartAfter` as "the keys above it" would skip, not
    /// show, a key it lists later.
    pub token: Option<String>,
    /// No page of this range has come back yet (an empty one that only says more follow
    /// does not count): its first key is the first after `after`.
    pub fresh: bool,
    pub ancestry: Ancestry,
}

/// Makes `range` list only its sub-folder when it runs from one sub-folder (of `seeds`) to
/// the next (see [`Range::scope`]); returns the first-level objects between the two, which
/// the range then no longer lists.
///
/// The range's last key could be the next sub-folder's own name (`data/b/`, a directory
/// marker), which the delimited listing folds into the sub-folder: only a filter that skips
/// such keys (as every run's does: they end with the delimiter) lets the range be scoped.
pub(super) fn scope(
    range: &mut Range,
    seeds: &BTreeSet<String>,
    first: &FirstLevel,
    filter: &KeyFilter,
) -> Vec<ObjectInfo> {
    use std::ops::Bound::{Excluded, Unbounded};
    let (None, Some(after), Some(upto)) = (&range.scope, &range.keys.after, &range.keys.upto)
    else {
        return Vec::new();
    };
    let next = seeds
        .range::<str, _>((Excluded(after.as_str()), Unbounded))
        .next();
    if !seeds.contains(after) || next != Some(upto) || !first.covers(upto) || filter.wants(upto) {
        return Vec::new();
    }
    range.scope = Some(after.clone());
    range.token = None; // a cursor of the wider listing
    first.between(after, upto).cloned().collect()
}

/// How many ranges the listing may open: a range costs at most one request more than its
/// keys fill (its last page, which ends early or reads past the range), so with at most
/// half as many ranges as full pages (plus two: the first range and the sub-folder request),
/// a prefix of P pages takes at most 1.5 P + 2 requests, and a prefix of one page, one. The
/// listing widens as fast as full pages come back, never on a guess.
#[derive(Debug, Default)]
pub(super) struct RequestBudget {
    /// Ranges opened (the first included) and the sub-folder request.
    pub opened: usize,
    /// Requests that returned a full page, all of it inside their range.
    pub full: usize,
    /// Keys in a full page (1,000 on S3): the most a truncated page held.
    pub page_len: usize,
}

impl RequestBudget {
    fn allowed(&self) -> usize {
        self.full / 2 + 2
    }

    /// New ranges that may be opened now.
    pub(super) fn available(&self) -> usize {
        self.allowed().saturating_sub(self.opened)
    }

    pub(super) fn can_open(&self, n: usize) -> bool {
        self.available() >= n
    }
}

/// Up to `n` of the `points` strictly inside `range`, evenly spread over them.
pub(super) fn evenly(points: &BTreeSet<String>, range: &Range, n: usize) -> BTreeSet<String> {
    if n == 0 {
        return BTreeSet::new();
    }
    let inside: Vec<&String> = range.keys.inside(points).collect();
    if inside.len() <= n {
        return inside.into_iter().cloned().collect();
    }
    // The i-th of n+1 equal steps, for i in 1..=n: the pieces get similar numbers of points.
    (1..=n)
        .map(|i| inside[i * inside.len() / (n + 1)].clone())
        .collect()
}

/// `range` cut at every point of `points` inside it. The first piece goes on from where the
/// range's keys left off; the others start afresh after their point (`fresh`).
pub(super) fn cut(
    range: Range,
    points: &BTreeSet<String>,
    fresh: impl Fn(&str) -> Ancestry,
) -> Vec<Range> {
    if range.keys.is_empty() {
        return Vec::new(); // nothing left in it
    }
    let mut pieces = Vec::new();
    let mut after = range.keys.after.clone();
    let mut ancestry = range.ancestry;
    // The first piece goes on where the range was: its cursor still holds; the others are
    // new.
    let mut token = range.token;
    let mut new = range.fresh;
    for point in range.keys.inside(points) {
        let next = fresh(point);
        let upto = Some(point.clone());
        pieces.push(Range {
            keys: KeyRange { after, upto },
            scope: range.scope.clone(),
            token: token.take(),
            fresh: std::mem::replace(&mut new, true),
            ancestry: std::mem::replace(&mut ancestry, next),
        });
        after = Some(point.clone());
    }
    pieces.push(Range {
        keys: KeyRange {
            after,
            upto: range.keys.upto,
        },
        scope: range.scope,
        token,
        fresh: new,
        ancestry,
    });
    pieces
}
