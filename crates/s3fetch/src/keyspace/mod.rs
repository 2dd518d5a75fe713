//! The key space, cut into parts: a range of keys `(after, upto]` ([`KeyRange`]), the K-th of N
//! hash shards ([`Shard`]), where to cut a range ([`split`]) and keys read as numbers to
//! estimate how many lie in a range ([`scale`]). Pure values and arithmetic of keys, below
//! every stage that lists, plans or reports them: the parallel listing and the plan cut the
//! key space with the same tools.

mod range;
pub(crate) mod scale;
mod shard;
pub(crate) mod split;

pub use range::KeyRange;
pub use shard::{shard_of, Shard, ShardBy};
