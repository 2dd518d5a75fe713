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

    /// True if `key` should be downloaded.
    pub fn wants(&self, key: &str) -> bool {
        !key.ends_with(&self.delimiter) && self.regex.as_ref().is_none_or(|re| re.is_match(key))
    }
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
    fn invalid_regex_names_the_pattern() {
        let err = KeyFilter::new(Some("a(b"), "/").unwrap_err().to_string();
        assert!(err.contains("\"a(b\""), "{err}");
        assert!(err.contains("unclosed group"), "{err}");
        let err = KeyFilter::new(Some(r"(a)\1"), "/").unwrap_err().to_string();
        assert!(err.contains("backreferences"), "{err}");
    }
}
