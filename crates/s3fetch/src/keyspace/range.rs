//! `--shard-by range`: a shard is a range of keys, `after < key <= upto`, read from a plan
//! (see [`crate::plan`]). Unlike a hash shard, a range shard *lists* only its own range, so N
//! shards together send about as many LIST requests as one unsharded run.

use std::collections::BTreeSet;
use std::fmt;
use std::ops::Bound::{Excluded, Unbounded};

/// Keys `k` with `after < k <= upto`; `None` leaves that side open. Ranges of a plan touch
/// end to end, so together they hold every key there is or will be.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KeyRange {
    /// The key the range starts after (not in the range); `None`: from the first key.
    pub after: Option<String>,
    /// The last key of the range (in the range); `None`: to the last key.
    pub upto: Option<String>,
}

impl KeyRange {
    /// Whether `key` is in the range: `after < key <= upto`.
    pub fn contains(&self, key: &str) -> bool {
        self.after.as_deref().is_none_or(|after| key > after)
            && self.upto.as_deref().is_none_or(|upto| key <= upto)
    }

    /// The `points` strictly inside the range (its bounds excluded), in order.
    pub fn inside<'a>(&self, points: &'a BTreeSet<String>) -> impl Iterator<Item = &'a String> {
        // `BTreeSet::range` panics on bounds that cross: an empty range asks for nothing.
        let bounds = (!self.is_empty()).then(|| {
            let lower = self.after.clone().map_or(Unbounded, Excluded);
            let upper = self.upto.clone().map_or(Unbounded, Excluded);
            (lower, upper)
        });
        bounds
            .into_iter()
            .flat_map(move |bounds| points.range::<String, _>(bounds))
    }

    /// True if no key can be in it.
    pub fn is_empty(&self) -> bool {
        matches!((&self.after, &self.upto), (Some(after), Some(upto)) if after >= upto)
    }
}

impl fmt::Display for KeyRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.after {
            Some(after) => write!(f, "({after:?}, ")?,
            None => f.write_str("(start, ")?,
        }
        match &self.upto {
            Some(upto) => write!(f, "{upto:?}]"),
            None => f.write_str("end)"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn range(after: Option<&str>, upto: Option<&str>) -> KeyRange {
        KeyRange {
            after: after.map(str::to_owned),
            upto: upto.map(str::to_owned),
        }
    }

    #[test]
    fn points_inside_leave_out_the_bounds() {
        let points: BTreeSet<String> = ["a", "b", "c", "d"].map(str::to_owned).into();
        let inside = |r: KeyRange| r.inside(&points).cloned().collect::<Vec<_>>();
        assert_eq!(inside(range(Some("a"), Some("d"))), ["b", "c"]);
        assert_eq!(inside(range(None, Some("b"))), ["a"]);
        assert_eq!(inside(range(Some("c"), None)), ["d"]);
        assert_eq!(inside(range(None, None)).len(), 4);
        // Bounds that meet or cross hold nothing (and do not panic `BTreeSet::range`).
        assert!(inside(range(Some("b"), Some("b"))).is_empty());
        assert!(inside(range(Some("c"), Some("a"))).is_empty());
        assert!(
            range(Some("b"), Some("b")).is_empty() && !range(Some("b"), Some("b")).contains("b")
        );
    }
}
