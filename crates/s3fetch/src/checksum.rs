//! Verifying what was downloaded.
//!
//! S3 keeps a full-object CRC (CRC64NVME for every new object since 2025; CRC32C or CRC32 when
//! the uploader chose them) and returns it on whole-object GETs and HEADs when asked
//! (`x-amz-checksum-mode: ENABLED`, added by [`AskForChecksums`]). Whole-object downloads
//! hash their body as it streams; ranged downloads hash each part and combine the parts' CRCs
//! in order, which costs nothing extra. Objects without a full-object CRC whose ETag is a
//! plain MD5 (single-part upload, not SSE-KMS/SSE-C) are checked against the MD5: as the body
//! streams when fetched in one GET, by reading the file back when fetched in ranged parts
//! (MD5s of parts do not combine). The SDK's own response validation is turned off for our requests: it would
//! see a ranged GET as a whole object on servers that ignore Range, and a mismatch it finds
//! cannot be told apart from a broken connection (which we resume rather than restart).

use aws_sdk_s3::config::interceptors::BeforeTransmitInterceptorContextMut;
use aws_sdk_s3::config::{ConfigBag, Intercept, RuntimeComponents};
use base64::Engine as _;
use crc_fast::{CrcAlgorithm, Digest};
use md5::Digest as _;

/// A checksum the server vouches for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Expected {
    Crc(CrcKind, u64),
    Md5([u8; 16]),
}

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
    pub fn from_response(
        crc64nvme: Option<&str>,
        crc32c: Option<&str>,
        crc32: Option<&str>,
        checksum_type: Option<&str>,
        etag: Option<&str>,
        encrypted_with_key: bool,
        md5_allowed: bool,
    ) -> Option<Expected> {
        // Composite checksums (of the parts of a multipart upload) end in `-N`: not a
        // checksum of the object's bytes.
        let full = checksum_type.is_none_or(|t| t.eq_ignore_ascii_case("FULL_OBJECT"));
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

    pub fn hasher(self) -> Hasher {
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

/// A running checksum of bytes in order.
pub(crate) enum Hasher {
    Crc(CrcKind, Box<Digest>),
    Md5(Box<md5::Md5>),
}

impl Hasher {
    pub fn update(&mut self, bytes: &[u8]) {
        match self {
            Hasher::Crc(_, digest) => digest.update(bytes),
            Hasher::Md5(md5) => md5.update(bytes),
        }
    }

    /// The CRC so far (0 for MD5), to combine parts.
    pub fn crc(&self) -> u64 {
        match self {
            Hasher::Crc(_, digest) => digest.finalize(),
            Hasher::Md5(_) => 0,
        }
    }

    /// Compares the bytes seen with `expected`; the error describes both.
    pub fn verify(self, expected: Expected) -> Result<(), String> {
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
    let crc = parts[1..].iter().fold(first, |crc, &(next, len)| {
        crc_fast::checksum_combine(kind.algorithm(), crc, next, len)
    });
    check(Expected::Crc(kind, crc), expected)
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
        let crc32c = crc_fast::checksum(CrcAlgorithm::Crc32Iscsi, b"abc");
        let header = b64(&(crc32c as u32).to_be_bytes());
        assert_eq!(decode_crc(&header), Some(crc32c));
    }
}
