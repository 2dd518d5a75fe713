//! The one stable hash: FNV-1a, 64 bits. What it decides must come out the same in every
//! version of s3fetch and on every platform — the names of resumable partial files (a later
//! run must find them) and which shard a key belongs to (a re-run of shard K must take the
//! same keys) — so it is written out here rather than taken from a crate whose output may
//! change.

/// FNV-1a, 64 bits, of `bytes`.
pub(crate) fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, &b| {
        (hash ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_published_test_vectors() {
        assert_eq!(super::fnv1a(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(super::fnv1a(b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(super::fnv1a(b"foobar"), 0x8594_4171_f739_67e8);
    }
}
