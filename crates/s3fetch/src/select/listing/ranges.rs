//! The key-range arithmetic of the parallel listing: a range of keys `(after, upto]`, where
//! to cut the rest of one that is still being listed (at known sub-folders, evenly by the
//! density of the page just listed, or at a ladder of split points when the keys have no
//! counter), and how many ranges the listing may open for the LIST requests it has had
//! answered (at most 1.5 P + 2 requests for P pages). Pure functions of keys: the listing
//! loop in [`super`] decides when to call them.

use std::collections::BTreeSet;

use crate::object::ObjectInfo;
use crate::select::filter::KeyFilter;
use crate::select::folders::{Ancestry, FirstLevel};

/// Keys `k` with `after < k <= upto` (`None`: unbounded on that side), and what the keys
/// listed before it in the same run of pages tell about folders.
#[derive(Debug, Clone)]
pub(super) struct Range {
    pub after: Option<String>,
    pub upto: Option<String>,
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
    let (None, Some(after), Some(upto)) = (&range.scope, &range.after, &range.upto) else {
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
    pub fn available(&self) -> usize {
        self.allowed().saturating_sub(self.opened)
    }

    pub fn can_open(&self, n: usize) -> bool {
        self.available() >= n
    }
}

/// Up to `n` of the `points` strictly inside `range`, evenly spread over them.
pub(super) fn evenly(points: &BTreeSet<String>, range: &Range, n: usize) -> BTreeSet<String> {
    use std::ops::Bound::{Excluded, Unbounded};
    if n == 0 {
        return BTreeSet::new();
    }
    if let (Some(after), Some(upto)) = (&range.after, &range.upto) {
        if after >= upto {
            return BTreeSet::new();
        }
    }
    let lower = range.after.as_deref().map_or(Unbounded, Excluded);
    let upper = range.upto.as_deref().map_or(Unbounded, Excluded);
    let inside: Vec<&String> = points.range::<str, _>((lower, upper)).collect();
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
    use std::ops::Bound::{Excluded, Unbounded};
    if let (Some(after), Some(upto)) = (&range.after, &range.upto) {
        if after >= upto {
            return Vec::new(); // nothing left in it
        }
    }
    let lower = range.after.as_deref().map_or(Unbounded, Excluded);
    let upper = range.upto.as_deref().map_or(Unbounded, Excluded);
    let mut pieces = Vec::new();
    let mut after = range.after.clone();
    let mut ancestry = range.ancestry;
    // The first piece goes on where the range was: its cursor still holds; the others are
    // new.
    let mut token = range.token;
    let mut new = range.fresh;
    for point in points.range::<str, _>((lower, upper)) {
        let next = fresh(point);
        pieces.push(Range {
            after,
            upto: Some(point.clone()),
            scope: range.scope.clone(),
            token: token.take(),
            fresh: std::mem::replace(&mut new, true),
            ancestry: std::mem::replace(&mut ancestry, next),
        });
        after = Some(point.clone());
    }
    pieces.push(Range {
        after,
        upto: range.upto,
        scope: range.scope,
        token,
        fresh: new,
        ancestry,
    });
    pieces
}

/// Up to `cuts` points after `last` (and before `upto`) that leave at least two pages of keys
/// in every piece, by the density of the page just listed (`first..=last`): the keys' counter
/// (the run of [`alphabet`] characters where they vary) read as a number in that alphabet's
/// base, a page spanning `last - first` of it. Before a known end, the pieces are equal;
/// towards an unknown one, the next `2 * listed` pages (at least four) are cut into equal
/// pieces and the last goes on: a prefix is guessed to hold as much again as was listed so
/// far, so the pieces live long and few lie past the last key. `None` when the keys have no
/// such counter (then [`split_points`]).
pub(super) fn pages_ahead(
    prefix: &str,
    first: &str,
    last: &str,
    upto: Option<&str>,
    alphabet: &[u8],
    cuts: usize,
    listed: usize,
) -> Option<Vec<String>> {
    let (first_bytes, last_bytes) = (first.as_bytes(), last.as_bytes());
    let common = common_len(first_bytes, last_bytes);
    let digit = |c: u8| alphabet.iter().position(|&a| a == c);
    digit(*last_bytes.get(common)?)?;
    let base = alphabet.len() as u128;
    if base < 2 || !last.is_char_boundary(common) {
        return None;
    }
    // The counter: the run of alphabet characters around the first position that varies.
    let mut start = common;
    while start > prefix.len() && digit(last_bytes[start - 1]).is_some() {
        start -= 1;
    }
    let widest = (120.0 / (base as f64).log2()) as usize;
    let mut end = common;
    while end < last_bytes.len() && end - start < widest && digit(last_bytes[end]).is_some() {
        end += 1;
    }
    // Each position's digit: its alphabet index, or for another character the number of
    // alphabet characters below it (so the value keeps the keys' order); 0 past the end.
    let value = |key: &[u8]| {
        (start..end).fold(0u128, |value, i| {
            let d = key.get(i).map_or(0, |&c| {
                digit(c).unwrap_or_else(|| {
                    alphabet
                        .iter()
                        .filter(|&&a| a < c)
                        .count()
                        .min(alphabet.len() - 1)
                })
            });
            value * base + d as u128
        })
    };
    let limit = base.checked_pow((end - start) as u32)?;
    let (from, page) = (
        value(last_bytes),
        value(last_bytes).checked_sub(value(first_bytes))?.max(1),
    );
    let to = match upto {
        Some(upto) if upto.as_bytes().get(..start) == last_bytes.get(..start) => {
            value(upto.as_bytes())
        }
        _ => limit,
    };
    let guess = page.saturating_mul(2 * listed.max(2) as u128);
    let (room, pieces) = match to < limit {
        // Equal pieces of at least two pages before a known end.
        true => (to.saturating_sub(from), cuts as u128 + 1),
        // Past the guess, the last piece goes on unbounded.
        false => (guess.min(limit.saturating_sub(from)), cuts as u128),
    };
    let pieces = pieces.min(room / page / 2);
    let targets: Vec<u128> = (1..=pieces)
        .map(|i| from + room * i / pieces.max(1))
        .filter(|&target| target < to.min(limit))
        .collect();
    let encode = |mut target: u128| {
        let mut digits = vec![0u8; end - start];
        for slot in digits.iter_mut().rev() {
            *slot = alphabet[(target % base) as usize];
            target /= base;
        }
        let mut cut = last[..start].to_owned();
        cut.extend(digits.into_iter().map(char::from));
        cut
    };
    let cuts = targets
        .into_iter()
        .map(encode)
        .filter(|cut| cut.as_str() > last && upto.is_none_or(|upto| cut.as_str() < upto))
        .collect();
    Some(cuts)
}

/// Up to `budget` strings `s` with `last < s < upto`, ascending, to cut the rest of a range
/// into pieces. `first..=last` is the page just listed: keys there agree up to some position
/// and vary after it, so the next keys differ from `last` at that position or before it.
/// For each position from there back to the end of the prefix, the candidates are `last`'s
/// characters up to it followed by a larger character of the page's [`alphabet`] (the ASCII
/// characters its keys count with), or failing that of the same class (digits, lower-case,
/// upper-case, other printable ASCII). Deeper positions come first and each gets at most
/// [`CUTS_PER_POSITION`], evenly spaced: a geometric ladder of ranges, each position's about
/// one class-size larger than the one before, so near and far key space both get a range.
pub(super) fn split_points(
    prefix: &str,
    first: &str,
    last: &str,
    upto: Option<&str>,
    alphabet: &[u8],
    budget: usize,
) -> Vec<String> {
    let last_bytes = last.as_bytes();
    let common = common_len(first.as_bytes(), last_bytes);
    let start = prefix.len().min(last_bytes.len());
    let deepest = common.min(last_bytes.len().saturating_sub(1));
    let mut cuts = Vec::new();
    for pos in (start..=deepest).rev() {
        if cuts.len() >= budget {
            break;
        }
        let c = last_bytes[pos];
        let above: Vec<u8> = if alphabet.contains(&c) {
            alphabet.iter().copied().filter(|&a| a > c).collect()
        } else if let Some((_, max)) = char_class(c) {
            (c + 1..=max).collect()
        } else {
            continue;
        };
        if above.is_empty() {
            continue;
        }
        let take = CUTS_PER_POSITION.min(above.len()).min(budget - cuts.len());
        for i in 0..take {
            // Evenly spaced, always including the next character up.
            let mut cut = String::with_capacity(pos + 1);
            cut.push_str(&last[..pos]);
            cut.push(char::from(above[i * above.len() / take]));
            if upto.is_none_or(|upto| cut.as_str() < upto) && cut.as_str() > last {
                cuts.push(cut);
            }
        }
    }
    cuts.sort();
    cuts.dedup();
    cuts
}

/// How many leading bytes `a` and `b` share.
fn common_len(a: &[u8], b: &[u8]) -> usize {
    a.iter().zip(b).take_while(|(x, y)| x == y).count()
}

/// The printable ASCII characters of the positions where a page's keys take many values
/// (at least [`MANY_VALUES`]): the "counter" part of the keys, digits or hex or letters. A
/// position with only a couple of values (`.bin` vs `.json`) says nothing about the alphabet.
pub(super) fn alphabet(objects: &[ObjectInfo]) -> Vec<u8> {
    let mut per_position: Vec<u128> = Vec::new();
    for object in objects {
        let key = object.key.as_bytes();
        if per_position.len() < key.len() {
            per_position.resize(key.len(), 0);
        }
        for (pos, &c) in key.iter().enumerate() {
            if (b' '..=b'~').contains(&c) {
                per_position[pos] |= 1u128 << c;
            }
        }
    }
    let seen = per_position
        .into_iter()
        .filter(|mask| mask.count_ones() >= MANY_VALUES)
        .fold(0u128, |all, mask| all | mask);
    (0u8..128).filter(|&c| seen & (1u128 << c) != 0).collect()
}

/// See [`alphabet`].
const MANY_VALUES: u32 = 4;

/// At most this many split points at one character position.
const CUTS_PER_POSITION: usize = 10;

/// The range of ASCII characters a key character is likely drawn from.
fn char_class(c: u8) -> Option<(u8, u8)> {
    match c {
        b'0'..=b'9' => Some((b'0', b'9')),
        b'a'..=b'z' => Some((b'a', b'z')),
        b'A'..=b'Z' => Some((b'A', b'Z')),
        b' '..=b'~' => Some((b' ', b'~')),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_points_are_ordered_and_inside_the_range() {
        let digits: Vec<u8> = (b'0'..=b'9').collect();
        let cuts = split_points("d/", "d/obj-0000", "d/obj-0999", None, &digits, 20);
        assert!(!cuts.is_empty());
        assert!(cuts.windows(2).all(|w| w[0] < w[1]));
        assert!(cuts.iter().all(|c| c.as_str() > "d/obj-0999"));
        assert!(cuts.contains(&"d/obj-1".to_owned()));
        let cuts = split_points("d/", "d/a", "d/b", Some("d/c"), &[], 20);
        assert!(
            cuts.iter()
                .all(|c| c.as_str() > "d/b" && c.as_str() < "d/c"),
            "{cuts:?}"
        );
        assert!(split_points("d/", "d/a", "d/b", None, &[], 0).is_empty());
        // Hex names: the page's alphabet carries on past '9'.
        let hex: Vec<u8> = b"0123456789abcdef".to_vec();
        let cuts = split_points("", "00", "2f", None, &hex, 40);
        assert!(cuts.iter().any(|c| c.as_str() >= "a"), "{cuts:?}");
    }
}
