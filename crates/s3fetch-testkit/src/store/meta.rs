//! What the index keeps per object: [`ObjectMeta`] (size, MD5, CRC64NVME, time, where the
//! bytes are) and the text S3 listings show for it, formatted once when the object is stored
//! or loaded so a list page renders without formatting anything per object.
//!
//! The `LastModified` text comes from a hand-written formatter (Howard Hinnant's
//! `civil_from_days`), checked against `s3s`'s `time`-based one over the whole `u64`
//! nanosecond range below: S3 always shows three fraction digits (`…:56.000Z`), which
//! `aws_smithy_types::DateTime`'s ISO-8601 text trims, and a 1M-object index is loaded
//! (so formatted) at every start.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Where an object's bytes live.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(super) enum Location {
    Segment { id: u64, offset: u64 },
    File { id: u64 },
}

/// Metadata of one stored object.
///
/// Besides the fields it caches the text S3 listings show for it (ETag hex and
/// `LastModified`), computed once when the object is stored or loaded, so a list page
/// renders without formatting anything per object (56 bytes, no heap).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectMeta {
    /// Content length in bytes.
    pub size: u64,
    /// MD5 of the content.
    pub md5: [u8; 16],
    /// Time of the put.
    pub last_modified: SystemTime,
    /// Bitwise NOT of the CRC64NVME (see [`ObjectMeta::crc64nvme`]); the niche keeps the
    /// struct at 128 bytes.
    crc_not: Option<std::num::NonZeroU64>,
    pub(super) loc: Location,
    /// `md5` as lowercase hex.
    etag_text: [u8; 32],
    /// `last_modified` as `YYYY-MM-DDTHH:MM:SS.mmmZ`.
    last_modified_text: [u8; 24],
}

/// Lowercase hex of 16 bytes.
fn hex32(md5: &[u8; 16]) -> [u8; 32] {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = [0u8; 32];
    for (i, b) in md5.iter().enumerate() {
        out[2 * i] = DIGITS[usize::from(b >> 4)];
        out[2 * i + 1] = DIGITS[usize::from(b & 0xf)];
    }
    out
}

/// Civil date `(year, month, day)` of a day count since 1970-01-01 (proleptic Gregorian;
/// Howard Hinnant's `civil_from_days`).
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + u64::from(m <= 2);
    (y, m, d)
}

/// `t` as S3 lists it: ISO 8601 in UTC with milliseconds (truncated), e.g.
/// `2024-03-01T12:34:56.789Z`. Times before 1970 show as the epoch; years past 9999
/// (unreachable: the index stores `u64` nanoseconds) as 9999.
fn iso8601_millis(t: SystemTime) -> [u8; 24] {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = d.as_secs();
    let (y, mo, da) = civil_from_days(secs / 86_400);
    let sod = secs % 86_400;
    let fields = [
        (y.min(9999), 4usize),
        (mo, 2),
        (da, 2),
        (sod / 3600, 2),
        (sod / 60 % 60, 2),
        (sod % 60, 2),
        (u64::from(d.subsec_millis()), 3),
    ];
    let mut out = *b"0000-00-00T00:00:00.000Z";
    let mut pos = 0;
    for (value, width) in fields {
        let mut v = value;
        for i in (0..width).rev() {
            // `v % 10` < 10, so the cast is lossless.
            #[allow(clippy::cast_possible_truncation)]
            let digit = (v % 10) as u8;
            out[pos + i] = b'0' + digit;
            v /= 10;
        }
        pos += width + 1;
    }
    out
}

impl ObjectMeta {
    pub(super) fn new(size: u64, md5: [u8; 16], last_modified: SystemTime, loc: Location) -> Self {
        Self {
            size,
            md5,
            last_modified,
            crc_not: None,
            loc,
            etag_text: hex32(&md5),
            last_modified_text: iso8601_millis(last_modified),
        }
    }

    pub(super) fn with_crc(mut self, crc: u64) -> Self {
        self.crc_not = std::num::NonZeroU64::new(!crc);
        self
    }

    /// CRC64NVME of the content (see [`crate::checksum`]); `None` for objects loaded from
    /// an index log written before checksums were kept (and, by construction, for the
    /// one-in-2^64 objects whose CRC is `u64::MAX`).
    #[must_use]
    pub fn crc64nvme(&self) -> Option<u64> {
        self.crc_not.map(|c| !c.get())
    }

    /// The MD5 as lowercase hex, without quotes.
    #[must_use]
    pub fn etag_hex(&self) -> String {
        self.etag_hex_str().to_owned()
    }

    /// The MD5 as lowercase hex, without quotes (cached, no allocation).
    #[must_use]
    pub fn etag_hex_str(&self) -> &str {
        std::str::from_utf8(&self.etag_text).unwrap_or_default()
    }

    /// `LastModified` as S3 lists it: ISO 8601 in UTC with milliseconds, e.g.
    /// `2024-03-01T12:34:56.789Z` (cached, no allocation).
    #[must_use]
    pub fn last_modified_iso(&self) -> &str {
        std::str::from_utf8(&self.last_modified_text).unwrap_or_default()
    }

    /// [`ObjectMeta::etag_hex_str`] as (ASCII) bytes.
    pub(crate) fn etag_hex_bytes(&self) -> &[u8] {
        &self.etag_text
    }

    /// [`ObjectMeta::last_modified_iso`] as (ASCII) bytes.
    pub(crate) fn last_modified_iso_bytes(&self) -> &[u8] {
        &self.last_modified_text
    }

    /// The S3 ETag: quoted lowercase MD5 hex, e.g. `"d41d8cd98f00b204e9800998ecf8427e"`.
    #[must_use]
    pub fn etag(&self) -> String {
        format!("\"{}\"", self.etag_hex())
    }
}

pub(super) fn to_nanos(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}

pub(super) fn from_nanos(n: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_nanos(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cached_listing_text_matches_s3s() {
        let fmt = |t: SystemTime| {
            let mut buf = Vec::new();
            s3s::dto::Timestamp::from(t)
                .format(s3s::dto::TimestampFormat::DateTime, &mut buf)
                .unwrap();
            String::from_utf8(buf).unwrap()
        };
        let mut nanos = 0u64;
        let mut samples = vec![0, 999_999, 1_000_000, 951_782_400_123_456_789, u64::MAX];
        for _ in 0..20_000 {
            // xorshift: spread over the whole u64 nanosecond range (1970..2554)
            nanos ^= nanos << 13 | 0x9E37_79B9;
            nanos ^= nanos >> 7;
            nanos ^= nanos << 17;
            samples.push(nanos);
        }
        for n in samples {
            let t = from_nanos(n);
            let meta = ObjectMeta::new(1, [0xab; 16], t, Location::File { id: 0 });
            assert_eq!(meta.last_modified_iso(), fmt(t), "{n}");
        }
        let t = UNIX_EPOCH + Duration::from_millis(1_709_296_496_789);
        let meta = ObjectMeta::new(
            1,
            *b"\x00\x01\xfe\xff0123456789ab",
            t,
            Location::File { id: 0 },
        );
        assert_eq!(meta.last_modified_iso(), "2024-03-01T12:34:56.789Z");
        assert_eq!(meta.etag_hex_str(), hex::encode(meta.md5));
        assert_eq!(meta.etag_hex(), "0001feff303132333435363738396162");
        // The cached text must keep the index small (1M objects ≈ 300 MB with keys).
        assert!(std::mem::size_of::<ObjectMeta>() <= 128);
    }
}
