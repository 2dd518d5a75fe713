//! Full-object CRC64NVME checksums, as current AWS S3 keeps for every object.
//!
//! The [`Store`](crate::Store) computes a CRC64NVME ([`crc64nvme`], `crc-fast`) of every
//! object it stores and keeps it in the index
//! ([`ObjectMeta::crc64nvme`](crate::ObjectMeta::crc64nvme); objects from index logs
//! written before checksums existed have none). This module only computes and encodes and
//! depends on nothing else in the crate, so the store can use it without a loop.
//!
//! GetObject and HeadObject **without a Range** whose request carries
//! `x-amz-checksum-mode: ENABLED` answer, like S3,
//!
//! ```text
//! x-amz-checksum-crc64nvme: <base64 of the 8 big-endian CRC bytes>
//! x-amz-checksum-type: FULL_OBJECT
//! ```
//!
//! (decided beside the handlers that send it, in `s3.rs`). `aws-sdk-s3` sends that request
//! header on every GetObject by default (`ResponseChecksumValidation::WhenSupported`) and
//! then validates the body against the header. Ranged requests get no checksum headers (as
//! on S3), unless the server ignores ranges
//! ([`ServerOptions::range_returns_full_object`](crate::ServerOptions)), in which case it
//! answers `200` with the whole object and its checksum; a server started with
//! [`ServerOptions::checksums`](crate::ServerOptions) off sends none.

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
}
