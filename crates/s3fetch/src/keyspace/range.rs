//! `--shard-by range`: a shard is a range of keys, `after < key <= upto`, read from a plan
//! (see [`crate::plan`]). Unlike a hash shard, a range shard *lists* only its own range, so N
//! shards together send about as many LIST requests as one unsharded run.

use std::fmt;

/// Keys `k` with `after < k <= upto`; `None` leaves that side open. Ranges of a plan touch
/// end to end, so together they hold every key there is or will be.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KeyRange {
    pub after: Option<String>,
    pub upto: Option<String>,
}

impl KeyRange {
    pub fn contains(&self, key: &str) -> bool {
        self.after.as_deref().is_none_or(|after| key > after)
            && self.upto.as_deref().is_none_or(|upto| key <= upto)
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
