//! The key space, cut into parts: a range of keys `(after, upto]` ([`KeyRange`]), the K-th of N
//! hash shards ([`Shard`]). Pure values of keys, below every stage that lists or reports
//! them.

mod range;
mod shard;

pub use range::KeyRange;
pub use shard::{shard_of, Shard, ShardBy};
