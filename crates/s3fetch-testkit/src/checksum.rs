//! Full-object CRC64NVME checksums, as current AWS S3 keeps for every object.
//!
//! The [`Store`](crate::Store) computes a CRC64NVME ([`crc64nvme`], `crc-fast`) of every
//! object it stores and keeps it in the index ([`ObjectMeta::crc64nvme`]; objects from
//! index logs written before checksums existed have none).
//!
//! GetObject and HeadObject **without a Range** whose request carries
//! `x-amz-checksum-mode: ENABLED` answer, like S3,
//!
//! ```text
//! x-amz-checksum-crc64nvme: <base64 of the 8 big-endian CRC bytes>
//! x-amz-checksum-type: FULL_OBJECT
//! ```
//!
//! `aws-sdk-s3` sends that request header on every GetObject by default
//! (`ResponseChecksumValidation::WhenSupported`) and then validates the body against the
//! header. Ranged requests get no checksum headers (as on S3), unless the server ignores
//! ranges ([`ServerOptions::range_returns_full_object`](crate::ServerOptions)), in which
//! case it answers `200` with the whole object and its checksum.

use s3s::dto::{ChecksumMode, ChecksumType, Range};

use crate::server::Shared;
use crate::store::ObjectMeta;

/// CRC64NVME of `data` (the checksum S3 calls `CRC64NVME`).
#[must_use]
pub fn crc64nvme(data: &[u8]) -> u64 {
    crc_fast::checksum(crc_fast::CrcAlgorithm::Crc64Nvme, data)
}

/// Incremental [`crc64nvme`].
pub(crate) struct Crc64Digest(crc_fast::Digest);

impl Crc64Digest {
    pub(crate) fn new() -> Self {
        Self(crc_fast::Digest::new(crc_fast::CrcAlgorithm::Crc64Nvme))
    }

    pub(crate) fn update(&mut self, data: &[u8]) {
        self.0.update(data);
    }

    pub(crate) fn finalize(&self) -> u64 {
        self.0.finalize()
    }
}

/// The `x-amz-checksum-crc64nvme` header value of a checksum: standard base64 (with
/// padding) of its 8 big-endian bytes.
#[must_use]
pub fn crc64nvme_header(crc: u64) -> String {
    base64(&crc.to_be_bytes())
}

/// Standard base64 with padding.
fn base64(data: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = u32::from(b[0]) << 16 | u32::from(b[1]) << 8 | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[(n >> (18 - 6 * i) & 0x3f) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// The Range a GetObject / HeadObject honours: none when the server is configured to
/// ignore ranges ([`ServerOptions::range_returns_full_object`](crate::ServerOptions)).
pub(crate) fn effective_range<'a>(shared: &Shared, range: Option<&'a Range>) -> Option<&'a Range> {
    range.filter(|_| !shared.options.range_returns_full_object)
}

/// The checksum response fields (`x-amz-checksum-crc64nvme`, `x-amz-checksum-type`) of a
/// GetObject / HeadObject: present only when the client asked for them, the response is
/// the whole object, the object has a checksum and the server is configured to send them
/// ([`ServerOptions::checksums`](crate::ServerOptions)).
pub(crate) fn response_fields(
    shared: &Shared,
    meta: &ObjectMeta,
    mode: Option<&ChecksumMode>,
    whole_object: bool,
) -> (Option<String>, Option<ChecksumType>) {
    let enabled = mode.is_some_and(|m| m.as_str().eq_ignore_ascii_case(ChecksumMode::ENABLED));
    match meta.crc64nvme() {
        Some(crc) if enabled && whole_object && shared.options.checksums => (
            Some(crc64nvme_header(crc)),
            Some(ChecksumType::from_static(ChecksumType::FULL_OBJECT)),
        ),
        _ => (None, None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_rfc4648() {
        for (input, want) in [
            (&b""[..], ""),
            (b"f", "Zg=="),
            (b"fo", "Zm8="),
            (b"foo", "Zm9v"),
            (b"foob", "Zm9vYg=="),
            (b"fooba", "Zm9vYmE="),
            (b"foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(base64(input), want);
        }
    }

    #[test]
    fn crc64nvme_check_value() {
        // The CRC-64/NVME check value (CRC of "123456789").
        assert_eq!(crc64nvme(b"123456789"), 0xae8b_1486_0a79_9888);
        let mut d = Crc64Digest::new();
        d.update(b"1234");
        d.update(b"56789");
        assert_eq!(d.finalize(), 0xae8b_1486_0a79_9888);
        assert_eq!(crc64nvme_header(0), "AAAAAAAAAAA=");
    }

    #[test]
    fn store_keeps_checksums_and_loads_old_logs() {
        let dir = tempfile::tempdir().unwrap();
        let s = crate::Store::open(dir.path()).unwrap();
        s.create_bucket("bkt").unwrap();
        s.put_object("bkt", "small", b"hello").unwrap();
        s.put_objects("bkt", [("many", b"world")]).unwrap();
        let big = vec![9u8; 3 * 1024 * 1024];
        s.put_object_from_reader("bkt", "big", &big[..]).unwrap();
        s.put_object("bkt", "empty", b"").unwrap();
        drop(s);
        let s = crate::Store::open(dir.path()).unwrap();
        let crc = |k: &str| s.head_object("bkt", k).unwrap().crc64nvme();
        assert_eq!(crc("small"), Some(crc64nvme(b"hello")));
        assert_eq!(crc("many"), Some(crc64nvme(b"world")));
        assert_eq!(crc("big"), Some(crc64nvme(&big)));
        assert_eq!(crc("empty"), Some(0));

        // A bucket written before checksums existed: one 'P' record, no CRC.
        let old = dir.path().join("old");
        std::fs::create_dir(&old).unwrap();
        std::fs::write(old.join("seg-00000000.dat"), b"legacy").unwrap();
        let mut rec = vec![b'P'];
        rec.extend_from_slice(&3u16.to_le_bytes());
        rec.extend_from_slice(b"key");
        rec.extend_from_slice(&6u64.to_le_bytes()); // size
        rec.extend_from_slice(&1_000_000_000u64.to_le_bytes()); // mtime ns
        rec.extend_from_slice(&[0u8; 16]); // md5
        rec.push(0); // segment
        rec.extend_from_slice(&0u64.to_le_bytes()); // id
        rec.extend_from_slice(&0u64.to_le_bytes()); // offset
        std::fs::write(old.join("index.log"), &rec).unwrap();
        drop(s);
        let s = crate::Store::open(dir.path()).unwrap();
        let meta = s.head_object("old", "key").unwrap();
        assert_eq!(meta.crc64nvme(), None);
        assert_eq!(&s.get_object("old", "key").unwrap()[..], b"legacy");
        // New puts into the old bucket append CRC records after the old one.
        s.put_object("old", "new", b"fresh").unwrap();
        drop(s);
        let s = crate::Store::open(dir.path()).unwrap();
        assert_eq!(s.head_object("old", "key").unwrap().crc64nvme(), None);
        let new = s.head_object("old", "new").unwrap().crc64nvme();
        assert_eq!(new, Some(crc64nvme(b"fresh")));
    }
}
