//! Parsing `s3://bucket/prefix` URIs.

use crate::error::{Error, Result};

/// A parsed `s3://bucket[/prefix]`. The prefix may be empty, a folder (`data/`), a partial
/// name (`data/2024-`) or an exact key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct S3Uri {
    /// The bucket name.
    pub bucket: String,
    /// Everything after the bucket name and its `/`, verbatim; empty for the whole bucket.
    pub prefix: String,
}

impl S3Uri {
    /// Parses an `s3://` URI. The bucket name is checked loosely (S3-compatible stores allow
    /// names AWS does not); the prefix is taken verbatim.
    pub fn parse(uri: &str) -> Result<Self> {
        let invalid = |reason| Error::InvalidUri {
            uri: uri.to_owned(),
            reason,
        };
        let rest = uri
            .strip_prefix("s3://")
            .ok_or_else(|| invalid("it must start with s3://"))?;
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        if bucket.is_empty() {
            return Err(invalid("the bucket name is missing"));
        }
        if bucket.len() > 255
            || !bucket
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_'))
        {
            return Err(invalid(
                "the bucket name may only hold letters, digits, '-', '.' and '_'",
            ));
        }
        if prefix.len() > 1024 {
            return Err(invalid(
                "the prefix is longer than S3's 1024-byte key limit",
            ));
        }
        Ok(S3Uri {
            bucket: bucket.to_owned(),
            prefix: prefix.to_owned(),
        })
    }
}

impl S3Uri {
    /// Whether the bucket is an S3 Express One Zone directory bucket
    /// (`name--usw2-az1--x-s3`): keys in no order, no `StartAfter`, ETags that are not MD5s.
    pub fn is_directory_bucket(&self) -> bool {
        is_directory_bucket(&self.bucket)
    }
}

/// Whether `bucket` is named as S3 Express One Zone names directory buckets (`--x-s3` at
/// the end, as the AWS SDK tells them), or access points to them (`--xa-s3`).
pub(crate) fn is_directory_bucket(bucket: &str) -> bool {
    bucket.ends_with("--x-s3") || bucket.ends_with("--xa-s3")
}

/// The region of a directory bucket, from the zone in its name (`name--usw2-az1--x-s3`:
/// us-west-2): S3 Express answers only at its zone's endpoint, in that region, and a
/// request sent elsewhere gets no redirect to follow. `None` for a name it cannot read.
pub(crate) fn directory_bucket_region(bucket: &str) -> Option<String> {
    let name = bucket
        .strip_suffix("--x-s3")
        .or_else(|| bucket.strip_suffix("--xa-s3"))?;
    let zone = name.rsplit("--").next()?;
    let code = zone.split('-').next()?;
    let digits = code.trim_start_matches(|c: char| c.is_ascii_lowercase());
    let letters = &code[..code.len() - digits.len()];
    if letters.len() < 3 || digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let (area, direction) = letters.split_at(2);
    let direction = match direction {
        "e" => "east",
        "w" => "west",
        "n" => "north",
        "s" => "south",
        "c" => "central",
        "ne" => "northeast",
        "nw" => "northwest",
        "se" => "southeast",
        "sw" => "southwest",
        _ => return None,
    };
    Some(format!("{area}-{direction}-{digits}"))
}

impl std::fmt::Display for S3Uri {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "s3://{}/{}", self.bucket, self.prefix)
    }
}

impl std::str::FromStr for S3Uri {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        S3Uri::parse(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_directory_buckets_region_is_read_from_its_zone() {
        let region = |b| directory_bucket_region(b);
        assert_eq!(region("data--usw2-az1--x-s3").as_deref(), Some("us-west-2"));
        assert_eq!(region("a--use1-az4--x-s3").as_deref(), Some("us-east-1"));
        assert_eq!(
            region("a--apne1-az4--x-s3").as_deref(),
            Some("ap-northeast-1")
        );
        assert_eq!(region("a--euc1-az2--x-s3").as_deref(), Some("eu-central-1"));
        assert_eq!(
            region("a--usw2-lax1-az1--x-s3").as_deref(),
            Some("us-west-2")
        );
        assert_eq!(region("ap--aps1-az1--xa-s3").as_deref(), Some("ap-south-1"));
        assert_eq!(region("plain-bucket"), None);
        assert_eq!(region("a--zz-az1--x-s3"), None);
    }

    #[test]
    fn parses_bucket_and_prefix_forms() {
        let p = |s| S3Uri::parse(s).unwrap();
        assert_eq!(
            p("s3://b"),
            S3Uri {
                bucket: "b".into(),
                prefix: "".into()
            }
        );
        assert_eq!(
            p("s3://b/"),
            S3Uri {
                bucket: "b".into(),
                prefix: "".into()
            }
        );
        assert_eq!(
            p("s3://b/pre"),
            S3Uri {
                bucket: "b".into(),
                prefix: "pre".into()
            }
        );
        assert_eq!(
            p("s3://my.bucket-1/a b/c/"),
            S3Uri {
                bucket: "my.bucket-1".into(),
                prefix: "a b/c/".into()
            }
        );
        assert_eq!(p("s3://b//x").prefix, "/x");
    }

    #[test]
    fn rejects_bad_uris_with_reason() {
        for (uri, needle) in [
            ("b/prefix", "s3://"),
            ("S3://b", "s3://"),
            ("https://b/x", "s3://"),
            ("s3://", "missing"),
            ("s3:///x", "missing"),
            ("s3://b?x/y", "letters"),
        ] {
            let err = S3Uri::parse(uri).unwrap_err().to_string();
            assert!(err.contains(needle), "{uri}: {err}");
        }
    }
}
