//! The listing order of stores that don't sort: a fixed order by a hash of each item (key
//! or common prefix), the same at every request and on every machine, unrelated to the
//! keys' byte order.
//!
//! A page is "the `max_keys` smallest items after the position", picked in one pass over
//! the matching items with a bounded heap (no sort of the bucket, no state between
//! requests): `O(n log max_keys)` per page for `n` matching items. A position is the last
//! item of the previous page, so a client following continuation tokens gets every item
//! exactly once. Fine for tests; a million-key bucket listed this way costs a full index
//! walk per page.

use std::cmp::Ordering;
use std::collections::BinaryHeap;

/// The item's place in the order (FNV-1a, then a SplitMix64 finalizer so that keys
/// differing only in their last bytes land far apart).
pub(crate) fn rank(item: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in item.as_bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    let mut z = h.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

struct Entry<T> {
    rank: u64,
    item: String,
    value: T,
}

impl<T> Entry<T> {
    fn cmp_key(&self, rank: u64, item: &str) -> Ordering {
        (self.rank, self.item.as_bytes()).cmp(&(rank, item.as_bytes()))
    }
}

impl<T> PartialEq for Entry<T> {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl<T> Eq for Entry<T> {}

impl<T> PartialOrd for Entry<T> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl<T> Ord for Entry<T> {
    fn cmp(&self, other: &Self) -> Ordering {
        self.cmp_key(other.rank, &other.item)
    }
}

/// Picks one page: offer every matching item (in any order), then [`Page::finish`].
pub(crate) struct Page<T> {
    /// Only items strictly after this position.
    after: Option<(u64, String)>,
    max: usize,
    /// The best `max` items so far (a max-heap: its top is the first to drop).
    heap: BinaryHeap<Entry<T>>,
    /// An item after the position did not fit on the page.
    truncated: bool,
}

impl<T> Page<T> {
    /// A page of at most `max` items following `after` (the last item of the previous
    /// page), or from the start.
    pub(crate) fn new(after: Option<&str>, max: usize) -> Self {
        Self {
            after: after.map(|a| (rank(a), a.to_owned())),
            max,
            heap: BinaryHeap::new(),
            truncated: false,
        }
    }

    /// Considers `item`; `value` makes its payload if it is kept.
    pub(crate) fn offer(&mut self, item: &str, value: impl FnOnce() -> T) {
        let r = rank(item);
        if let Some((ar, a)) = &self.after {
            if (r, item.as_bytes()) <= (*ar, a.as_bytes()) {
                return;
            }
        }
        if self.heap.len() < self.max {
            self.heap.push(Entry {
                rank: r,
                item: item.to_owned(),
                value: value(),
            });
            return;
        }
        self.truncated = true;
        let Some(mut top) = self.heap.peek_mut() else {
            // max == 0: a page of nothing, never truncated (as S3 answers max-keys=0).
            self.truncated = false;
            return;
        };
        if top.cmp_key(r, item) == Ordering::Greater {
            *top = Entry {
                rank: r,
                item: item.to_owned(),
                value: value(),
            };
        }
    }

    /// The page's items in order, and whether more follow.
    pub(crate) fn finish(self) -> (Vec<(String, T)>, bool) {
        let items = self
            .heap
            .into_sorted_vec()
            .into_iter()
            .map(|e| (e.item, e.value))
            .collect();
        (items, self.truncated)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pages(items: &[String], max: usize) -> Vec<Vec<String>> {
        let mut out = Vec::new();
        let mut after: Option<String> = None;
        loop {
            let mut page = Page::new(after.as_deref(), max);
            for i in items {
                page.offer(i, || ());
            }
            let (got, truncated) = page.finish();
            let got: Vec<String> = got.into_iter().map(|(k, ())| k).collect();
            after = got.last().cloned();
            out.push(got);
            if !truncated {
                return out;
            }
        }
    }

    #[test]
    fn every_item_once_in_a_fixed_unsorted_order() {
        let items: Vec<String> = (0..250).map(|i| format!("key-{i:04}")).collect();
        let all = pages(&items, 1000).concat();
        let mut sorted = all.clone();
        sorted.sort();
        assert_eq!(sorted, items);
        assert_ne!(all, items, "the order must not be lexicographic");
        for max in [1, 7, 100, 249, 250] {
            let paged = pages(&items, max);
            assert!(paged.iter().all(|p| p.len() <= max));
            assert_eq!(paged.concat(), all, "max {max}");
        }
        // The offer order does not matter.
        let mut reversed = items.clone();
        reversed.reverse();
        assert_eq!(pages(&reversed, 13).concat(), all);
    }

    #[test]
    fn max_keys_zero_and_nothing_to_list_are_one_untruncated_page() {
        let items = vec!["a".to_owned()];
        let mut page = Page::<()>::new(None, 0);
        page.offer("a", || ());
        assert_eq!(page.finish().0.len(), 0);
        assert_eq!(pages(&[], 5), vec![Vec::<String>::new()]);
        assert_eq!(pages(&items, 1), vec![vec!["a".to_owned()]]);
    }
}
