//! Which listed keys are wanted: directory markers are skipped, then the regex (if any) is
//! searched in the full key. Pure functions, no I/O.

use regex::Regex;

use crate::error::{Error, Result};

/// Decides, key by key, what to download.
#[derive(Debug, Clone)]
pub struct KeyFilter {
    regex: Option<Regex>,
    delimiter: String,
}

impl KeyFilter {
    /// A filter with an optional regex (Rust `regex` syntax, searched, not anchored) and the
    /// delimiter that marks "directory" keys.
    pub fn new(regex: Option<&str>, delimiter: &str) -> Result<Self> {
        let regex = regex
            .map(|pattern| {
                Regex::new(pattern).map_err(|source| Error::InvalidRegex {
                    pattern: pattern.to_owned(),
                    source: Box::new(source),
                })
            })
            .transpose()?;
        if delimiter.is_empty() {
            return Err(Error::InvalidOption(
                "the delimiter must not be empty".into(),
            ));
        }
        Ok(KeyFilter {
            regex,
            delimiter: delimiter.to_owned(),
        })
    }

    /// The prefix to list for `prefix`: when the regex is anchored at the start and begins
    /// with a literal (`^data/2024-`), only keys under that longer literal can match.
    /// `None` when no key under `prefix` can match at all.
    pub fn narrow_prefix(&self, prefix: &str) -> Option<String> {
        let literal = self
            .regex
            .as_ref()
            .and_then(|re| anchored_literal(re.as_str()));
        match literal {
            None => Some(prefix.to_owned()),
            Some(literal) if literal.starts_with(prefix) => Some(literal),
            Some(literal) if prefix.starts_with(&literal) => Some(prefix.to_owned()),
            Some(_) => None,
        }
    }

    /// True if `key` should be downloaded.
    pub fn wants(&self, key: &str) -> bool {
        !key.ends_with(&self.delimiter) && self.regex.as_ref().is_none_or(|re| re.is_match(key))
    }
}

/// The literal text every match starts with, if the pattern is anchored at the start of the
/// text (`^` without multi-line mode) and a case-sensitive literal follows.
fn anchored_literal(pattern: &str) -> Option<String> {
    use regex_syntax::hir::{HirKind, Look};
    let hir = regex_syntax::Parser::new().parse(pattern).ok()?;
    let HirKind::Concat(parts) = hir.kind() else {
        return None;
    };
    let mut parts = parts.iter();
    if !matches!(parts.next()?.kind(), HirKind::Look(Look::Start)) {
        return None;
    }
    let mut literal = Vec::new();
    for part in parts {
        match part.kind() {
            HirKind::Literal(bytes) => literal.extend_from_slice(&bytes.0),
            _ => break,
        }
    }
    // A literal cut inside a multi-byte character is still a valid prefix in bytes, but
    // prefixes are strings: keep the longest valid one.
    let valid = match std::str::from_utf8(&literal) {
        Ok(s) => s,
        Err(e) => std::str::from_utf8(&literal[..e.valid_up_to()]).ok()?,
    };
    (!valid.is_empty()).then(|| valid.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn regex_is_searched_in_the_full_key() {
        let f = KeyFilter::new(Some(r"2024/.*\.json$"), "/").unwrap();
        assert!(f.wants("logs/2024/a.json"));
        assert!(!f.wants("logs/2023/a.json"));
        let f = KeyFilter::new(Some("^logs/"), "/").unwrap();
        assert!(f.wants("logs/x"));
        assert!(!f.wants("data/logs/x"));
    }

    #[test]
    fn directory_markers_are_skipped() {
        let f = KeyFilter::new(None, "/").unwrap();
        assert!(!f.wants("dir/"));
        assert!(f.wants("dir/file"));
        let f = KeyFilter::new(None, "|").unwrap();
        assert!(!f.wants("dir|"));
        assert!(f.wants("dir/"));
    }

    #[test]
    fn anchored_literals_narrow_the_listing() {
        let narrow =
            |re: &str, prefix: &str| KeyFilter::new(Some(re), "/").unwrap().narrow_prefix(prefix);
        assert_eq!(narrow(r"^data/2024-", "data/"), Some("data/2024-".into()));
        assert_eq!(
            narrow(r"^data/2024-\d+\.json$", ""),
            Some("data/2024-".into())
        );
        assert_eq!(narrow(r"^da", "data/x"), Some("data/x".into()));
        assert_eq!(narrow(r"^logs/", "data/"), None);
        assert_eq!(narrow(r"data/2024", "data/"), Some("data/".into()));
        assert_eq!(narrow(r"(?i)^data/", "d"), Some("d".into()));
        assert_eq!(narrow(r"(?m)^data/", ""), Some("".into()));
        assert_eq!(narrow(r"^(a|b)/", ""), Some("".into()));
        assert_eq!(narrow(r"^a\.b*", ""), Some("a.".into()));
        assert_eq!(
            KeyFilter::new(None, "/").unwrap().narrow_prefix("p/"),
            Some("p/".into())
        );
    }

    #[test]
    fn invalid_regex_names_the_pattern() {
        let err = KeyFilter::new(Some("a(b"), "/").unwrap_err().to_string();
        assert!(err.contains("\"a(b\""), "{err}");
        assert!(err.contains("unclosed group"), "{err}");
        let err = KeyFilter::new(Some(r"(a)\1"), "/").unwrap_err().to_string();
        assert!(err.contains("backreferences"), "{err}");
    }
}
