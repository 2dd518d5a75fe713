//! Verifying what was downloaded.
//!
//! S3 keeps a full-object CRC and returns it on whole-object GETs and HEADs when asked
//! ([`AskForChecksums`]); objects without one whose ETag is a plain MD5 are checked against
//! the MD5 ([`Expected`]). Whole-object downloads hash their body as it streams ([`Hasher`]);
//! ranged downloads hash each part and combine the parts' CRCs in order, which costs nothing
//! extra ([`verify_parts`]).

use aws_sdk_s3::config::interceptors::BeforeTransmitInterceptorContextMut;
use aws_sdk_s3::config::{ConfigBag, Intercept, RuntimeComponents};
use base64::Engine as _;
use crc_fast::{CrcAlgorithm, Digest};
use md5::Digest as _;

/// A checksum the server vouches for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Expected {
    Crc(CrcKind, u64),
    /// For objects without a full-object CRC whose ETag is a plain MD5 (single-part upload,
    /// not SSE-KMS/SSE-C). Checked as the body streams when fetched in one GET, by reading
    /// the file back when fetched in ranged parts (MD5s of parts do not combine).
    Md5([u8; 16]),
}

/// The kinds of full-object CRC S3 keeps: CRC64NVME for every new object since 2025; CRC32C
/// or CRC32 when the uploader chose them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CrcKind {
    Crc64Nvme,
    Crc32c,
    Crc32,
}

impl CrcKind {
    fn algorithm(self) -> CrcAlgorithm {
        match self {
            CrcKind::Crc64Nvme => CrcAlgorithm::Crc64Nvme,
            CrcKind::Crc32c => CrcAlgorithm::Crc32Iscsi,
            CrcKind::Crc32 => CrcAlgorithm::Crc32IsoHdlc,
        }
    }

    fn name(self) -> &'static str {
        match self {
            CrcKind::Crc64Nvme => "CRC64NVME",
            CrcKind::Crc32c => "CRC32C",
            CrcKind::Crc32 => "CRC32",
        }
    }
}

impl Expected {
    /// The checksum to verify against, from a response's headers: a full-object CRC
    /// (fastest first), else a plain-MD5 ETag when `md5_allowed`.
    pub(crate) fn from_response(
        crc64nvme: Option<&str>,
        crc32c: Option<&str>,
        crc32: Option<&str>,
        checksum_type: Option<&str>,
        etag: Option<&str>,
        encrypted_with_key: bool,
        md5_allowed: bool,
    ) -> Option<Expected> {
        // Composite checksums (of the parts of a multipart upload) end in `-N`: not a
        // checksum of the object's bytes. Without a type, a multipart object's CRC may be one
        // with its `-N` left off (moto's HEAD answers so), and is not trusted.
        let full = match checksum_type {
            Some(t) => t.eq_ignore_ascii_case("FULL_OBJECT"),
            None => !etag.is_some_and(is_multipart_etag),
        };
        if full {
            for (kind, value) in [
                (CrcKind::Crc64Nvme, crc64nvme),
                (CrcKind::Crc32c, crc32c),
                (CrcKind::Crc32, crc32),
            ] {
                if let Some(crc) = value.and_then(decode_crc) {
                    return Some(Expected::Crc(kind, crc));
                }
            }
        }
        if md5_allowed && !encrypted_with_key {
            let hex = etag?.trim_matches('"');
            if hex.len() == 32 && hex.bytes().all(|b| b.is_ascii_hexdigit()) {
                let mut md5 = [0u8; 16];
                for (i, byte) in md5.iter_mut().enumerate() {
                    *byte = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).ok()?;
                }
                return Some(Expected::Md5(md5));
            }
        }
        None
    }

    pub(crate) fn hasher(self) -> Hasher {
        match self {
            Expected::Crc(kind, _) => Hasher::Crc(kind, Box::new(Digest::new(kind.algorithm()))),
            Expected::Md5(_) => Hasher::Md5(Box::default()),
        }
    }

    fn describe(self) -> String {
        match self {
            Expected::Crc(kind, crc) => format!("{} {crc:016x}", kind.name()),
            Expected::Md5(md5) => format!("MD5 {}", hex(&md5)),
        }
    }
}

/// Whether `etag` is a multipart upload's (`"…-N"`), which is no MD5 of the object.
fn is_multipart_etag(etag: &str) -> bool {
    let etag = etag.trim_matches('"');
    etag.rsplit_once('-')
        .is_some_and(|(_, parts)| !parts.is_empty() && parts.bytes().all(|b| b.is_ascii_digit()))
}

/// A running checksum of bytes in order.
pub(crate) enum Hasher {
    Crc(CrcKind, Box<Digest>),
    Md5(Box<md5::Md5>),
}

impl Hasher {
    pub(crate) fn update(&mut self, bytes: &[u8]) {
        match self {
            Hasher::Crc(_, digest) => digest.update(bytes),
            Hasher::Md5(md5) => md5.update(bytes),
        }
    }

    /// The CRC so far (0 for MD5), to combine parts.
    pub(crate) fn crc(&self) -> u64 {
        match self {
            Hasher::Crc(_, digest) => digest.finalize(),
            Hasher::Md5(_) => 0,
        }
    }

    /// Compares the bytes seen with `expected`; the error describes both.
    pub(crate) fn verify(self, expected: Expected) -> Result<(), String> {
        let actual = match self {
            Hasher::Crc(kind, digest) => Expected::Crc(kind, digest.finalize()),
            Hasher::Md5(md5) => Expected::Md5(md5.finalize().into()),
        };
        check(actual, expected)
    }
}

/// Checks the CRCs of consecutive parts, `(crc, len)` in order, against `expected`.
pub(crate) fn verify_parts(parts: &[(u64, u64)], expected: Expected) -> Result<(), String> {
    let Expected::Crc(kind, _) = expected else {
        return Ok(()); // an MD5 is checked by reading the file back
    };
    let Some(&(first, _)) = parts.first() else {
        return check(
            Expected::Crc(kind, Digest::new(kind.algorithm()).finalize()),
            expected,
        );
    };
    // Parts are of one length but the last: one operator serves them all, where there are
    // enough of them to pay for building it (about three combines' work).
    let rest = &parts[1..];
    let part_len = rest.first().map_or(0, |&(_, len)| len);
    let shared = rest.iter().filter(|&&(_, len)| len == part_len).count();
    let append = (shared >= 4).then(|| Append::new(kind.algorithm(), part_len));
    let crc = rest.iter().fold(first, |crc, &(next, len)| match &append {
        Some(append) if append.len == len => append.combine(crc, next),
        _ => crc_fast::checksum_combine(kind.algorithm(), crc, next, len),
    });
    check(Expected::Crc(kind, crc), expected)
}

/// Appending `len` bytes to a CRC, as a 64 × 64 bit matrix over GF(2) and a constant: the CRC
/// of `a ‖ b` is `matrix · crc(a) ⊕ constant ⊕ crc(b)` when `b` is `len` bytes long.
///
/// `crc_fast::checksum_combine` computes the same, but builds its operator afresh on every
/// call by ~50 squarings of such matrices: combining the 256 parts of 2 GiB cost as much CPU
/// as computing their CRCs (4 % of a `large` run's samples each). Here the operator is built
/// once per part length: `combine(x, 0, len)` is affine in `x`, so its matrix is read off
/// from its values at 0 and at the unit vectors of one byte, and raised to the power `len`.
struct Append {
    len: u64,
    matrix: [u64; 64],
    constant: u64,
}

impl Append {
    fn new(algorithm: CrcAlgorithm, len: u64) -> Self {
        let combine = |x: u64, len: u64| crc_fast::checksum_combine(algorithm, x, 0, len);
        let one_byte_base = combine(0, 1);
        let one_byte: [u64; 64] = std::array::from_fn(|i| combine(1 << i, 1) ^ one_byte_base);
        Append {
            len,
            matrix: power(&one_byte, len),
            constant: combine(0, len),
        }
    }

    fn combine(&self, crc: u64, next: u64) -> u64 {
        times(&self.matrix, crc) ^ self.constant ^ next
    }
}

/// `matrix · vector` over GF(2): column `i` of the matrix is `matrix[i]`.
fn times(matrix: &[u64; 64], mut vector: u64) -> u64 {
    let mut sum = 0;
    while vector != 0 {
        sum ^= matrix[vector.trailing_zeros() as usize];
        vector &= vector - 1;
    }
    sum
}

/// `a · b` (apply `b`, then `a`).
fn product(a: &[u64; 64], b: &[u64; 64]) -> [u64; 64] {
    std::array::from_fn(|i| times(a, b[i]))
}

/// `matrix` to the power `n` (the identity for 0), by squaring.
fn power(matrix: &[u64; 64], mut n: u64) -> [u64; 64] {
    let mut result: [u64; 64] = std::array::from_fn(|i| 1 << i);
    let mut square = *matrix;
    while n != 0 {
        if n & 1 == 1 {
            result = product(&square, &result);
        }
        n >>= 1;
        if n != 0 {
            square = product(&square, &square);
        }
    }
    result
}

fn check(actual: Expected, expected: Expected) -> Result<(), String> {
    if actual == expected {
        Ok(())
    } else {
        Err(format!(
            "checksum mismatch: the server's {} but the bytes received give {}",
            expected.describe(),
            actual.describe()
        ))
    }
}

/// `x-amz-checksum-*` header values are the big-endian bytes, base64-encoded.
fn decode_crc(value: &str) -> Option<u64> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(value.trim())
        .ok()?;
    match bytes.len() {
        4 | 8 => Some(bytes.iter().fold(0u64, |acc, &b| acc << 8 | u64::from(b))),
        _ => None,
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Adds `x-amz-checksum-mode: ENABLED` to GET and HEAD requests, so the response carries the
/// object's checksum, without turning on the SDK's own validation.
///
/// The SDK's own response validation is turned off for our requests: it would see a ranged
/// GET as a whole object on servers that ignore Range, and a mismatch it finds cannot be told
/// apart from a broken connection (which we resume rather than restart).
#[derive(Debug, Clone, Copy)]
pub(crate) struct AskForChecksums;

impl Intercept for AskForChecksums {
    fn name(&self) -> &'static str {
        "s3fetch::AskForChecksums"
    }

    fn modify_before_signing(
        &self,
        context: &mut BeforeTransmitInterceptorContextMut<'_>,
        _components: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), aws_sdk_s3::error::BoxError> {
        let request = context.request_mut();
        if matches!(request.method(), "GET" | "HEAD") {
            request
                .headers_mut()
                .insert("x-amz-checksum-mode", "ENABLED");
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b64(bytes: &[u8]) -> String {
        base64::engine::general_purpose::STANDARD.encode(bytes)
    }

    #[test]
    fn picks_the_full_object_crc_then_md5() {
        let data = b"hello world";
        let crc = crc_fast::checksum(CrcAlgorithm::Crc64Nvme, data);
        let header = b64(&crc.to_be_bytes());
        let e = Expected::from_response(
            Some(&header),
            None,
            None,
            Some("FULL_OBJECT"),
            None,
            false,
            true,
        );
        assert_eq!(e, Some(Expected::Crc(CrcKind::Crc64Nvme, crc)));
        let mut h = e.unwrap().hasher();
        h.update(b"hello ");
        h.update(b"world");
        assert!(h.verify(e.unwrap()).is_ok());
        // Composite checksums are not of the object's bytes.
        let e = Expected::from_response(
            Some(&header),
            None,
            None,
            Some("COMPOSITE"),
            None,
            false,
            false,
        );
        assert_eq!(e, None);
        // A CRC without a type: trusted for a single-part object, not for a multipart one
        // (moto's HEAD leaves the `-N` and the type off a composite CRC).
        let crc32 = b64(&0x0c0e_808a_u32.to_be_bytes());
        let untyped =
            |etag| Expected::from_response(None, None, Some(&crc32), None, Some(etag), false, true);
        assert_eq!(
            untyped("\"abc\""),
            Some(Expected::Crc(CrcKind::Crc32, 0x0c0e_808a))
        );
        assert_eq!(untyped("\"0123456789abcdef0123456789abcdef-5\""), None);
        // Plain MD5 ETags, but not multipart or KMS ones.
        let md5 = "\"5eb63bbbe01eeed093cb22bb8f5acdc3\"";
        let e = Expected::from_response(None, None, None, None, Some(md5), false, true).unwrap();
        let mut h = e.hasher();
        h.update(data);
        assert!(h.verify(e).is_ok());
        assert_eq!(
            Expected::from_response(None, None, None, None, Some(md5), true, true),
            None
        );
        assert_eq!(
            Expected::from_response(None, None, None, None, Some("\"abc-2\""), false, true),
            None
        );
        assert_eq!(
            Expected::from_response(None, None, None, None, Some(md5), false, false),
            None
        );
    }

    proptest::proptest! {
        #[test]
        fn appending_matches_crc_fast(a: u64, b: u64, len in 0u64..(1 << 40), kind in 0..3usize) {
            let algorithm = [CrcKind::Crc64Nvme, CrcKind::Crc32c, CrcKind::Crc32][kind].algorithm();
            let (a, b) = if kind == 0 { (a, b) } else { (a & 0xffff_ffff, b & 0xffff_ffff) };
            proptest::prop_assert_eq!(
                Append::new(algorithm, len).combine(a, b),
                crc_fast::checksum_combine(algorithm, a, b, len)
            );
        }
    }

    #[test]
    fn parts_combine_into_the_whole_object_crc() {
        let data: Vec<u8> = (0..100_000u32).map(|i| (i * 7 % 251) as u8).collect();
        for kind in [CrcKind::Crc64Nvme, CrcKind::Crc32c, CrcKind::Crc32] {
            let whole = crc_fast::checksum(kind.algorithm(), &data);
            let parts: Vec<(u64, u64)> = data
                .chunks(30_000)
                .map(|c| (crc_fast::checksum(kind.algorithm(), c), c.len() as u64))
                .collect();
            assert!(verify_parts(&parts, Expected::Crc(kind, whole)).is_ok());
            let err = verify_parts(&parts[1..], Expected::Crc(kind, whole)).unwrap_err();
            assert!(err.contains("mismatch"), "{err}");
        }
        // Many parts of one length (combined by one operator) and a shorter last one; few
        // parts; lengths of 0 and of 1.
        for kind in [CrcKind::Crc64Nvme, CrcKind::Crc32c, CrcKind::Crc32] {
            let crc = |bytes: &[u8]| crc_fast::checksum(kind.algorithm(), bytes);
            let parts: Vec<(u64, u64)> = data
                .chunks(8192)
                .map(|c| (crc(c), c.len() as u64))
                .collect();
            assert_eq!(parts.len(), 13);
            assert!(verify_parts(&parts, Expected::Crc(kind, crc(&data))).is_ok());
            let mut swapped = parts.clone();
            swapped.swap(3, 4);
            assert!(verify_parts(&swapped, Expected::Crc(kind, crc(&data))).is_err());
        }
        let data = &data[..(3 * 8192 + 5)];
        for kind in [CrcKind::Crc64Nvme, CrcKind::Crc32c, CrcKind::Crc32] {
            let crc = |bytes: &[u8]| crc_fast::checksum(kind.algorithm(), bytes);
            let whole = Expected::Crc(kind, crc(data));
            let parts: Vec<(u64, u64)> = data
                .chunks(8192)
                .map(|c| (crc(c), c.len() as u64))
                .collect();
            assert!(verify_parts(&parts, whole).is_ok());
            let (a, b) = data.split_at(data.len() - 1);
            let split = [(crc(a), a.len() as u64), (crc(&[]), 0), (crc(b), 1)];
            assert!(verify_parts(&split, whole).is_ok());
        }
        let crc32c = crc_fast::checksum(CrcAlgorithm::Crc32Iscsi, b"abc");
        let header = b64(&(crc32c as u32).to_be_bytes());
        assert_eq!(decode_crc(&header), Some(crc32c));
    }
}
