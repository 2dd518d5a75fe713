//! Which listed keys are wanted: directory markers are skipped, then the regex (if any) is
//! searched in the full key. Pure functions, no I/O.
//!
//! Patterns are compiled once, when the run's options are validated. The original s3fetch
//! used Python's `re`, so its users' patterns may hold look-around or backreferences: such a
//! pattern is compiled with `fancy-regex` (backtracking), every other one with the
//! linear-time engine of the `regex` crate, parsed once (the same syntax tree gives the
//! literal that narrows the listing, see [`KeyFilter::narrow_prefix`]).

use regex_automata::meta;
use regex_syntax::hir::{Hir, HirKind, Look};

use crate::error::{Error, Result};

/// Decides, key by key, what to download.
#[derive(Debug, Clone)]
pub struct KeyFilter {
    matcher: Option<Matcher>,
    /// The literal every match starts with, when the pattern is anchored on one.
    anchored: Option<String>,
    delimiter: String,
}

#[derive(Debug, Clone)]
enum Matcher {
    /// Linear time: most patterns.
    Linear(meta::Regex),
    /// Backtracking, for look-around and backreferences.
    Fancy(Box<fancy_regex::Regex>),
}

impl KeyFilter {
    /// A filter with an optional regex (searched, not anchored) and the delimiter that marks
    /// "directory" keys.
    pub fn new(regex: Option<&str>, delimiter: &str) -> Result<Self> {
        if delimiter.is_empty() {
            return Err(Error::InvalidOption {
                option: "delimiter",
                reason: "must not be empty".into(),
            });
        }
        let (matcher, anchored) = match regex {
            None => (None, None),
            Some(pattern) => {
                let (matcher, anchored) = compile(pattern)?;
                (Some(matcher), anchored)
            }
        };
        Ok(KeyFilter {
            matcher,
            anchored,
            delimiter: delimiter.to_owned(),
        })
    }

    /// The prefix to list for `prefix`: when the regex is anchored at the start and begins
    /// with a literal (`^data/2024-`), only keys under that longer literal can match.
    /// `None` when no key under `prefix` can match at all.
    pub fn narrow_prefix(&self, prefix: &str) -> Option<String> {
        match &self.anchored {
            None => Some(prefix.to_owned()),
            Some(literal) if literal.starts_with(prefix) => Some(literal.clone()),
            Some(literal) if prefix.starts_with(literal.as_str()) => Some(prefix.to_owned()),
            Some(_) => None,
        }
    }

    /// True if `key` should be downloaded.
    pub fn wants(&self, key: &str) -> bool {
        if key.ends_with(&self.delimiter) {
            return false;
        }
        match &self.matcher {
            None => true,
            Some(Matcher::Linear(re)) => re.is_match(key),
            Some(Matcher::Fancy(re)) => match re.is_match(key) {
                Ok(found) => found,
                Err(error) => {
                    // Only the backtracking limit ends here; a key too costly to match is
                    // not taken, and said so.
                    tracing::warn!(key, %error, "the regex could not be matched against this key: skipped");
                    false
                }
            },
        }
    }

    /// True when the pattern needed the backtracking engine (look-around, backreferences).
    pub fn is_backtracking(&self) -> bool {
        matches!(self.matcher, Some(Matcher::Fancy(_)))
    }
}

/// Compiles `pattern`: linear time when the `regex` syntax accepts it, else with
/// `fancy-regex`. A pattern neither accepts is reported with the `regex` crate's message
/// (it points at the error), unless only `fancy-regex` understood what was meant.
fn compile(pattern: &str) -> Result<(Matcher, Option<String>)> {
    let invalid = |source: Box<dyn std::error::Error + Send + Sync>| Error::InvalidRegex {
        pattern: pattern.to_owned(),
        source,
    };
    let hir = match regex_syntax::Parser::new().parse(pattern) {
        Ok(hir) => hir,
        Err(linear) => {
            return match fancy_regex::Regex::new(pattern) {
                Ok(fancy) => Ok((Matcher::Fancy(Box::new(fancy)), None)),
                Err(fancy) if needs_backtracking(&linear) => Err(invalid(Box::new(fancy))),
                Err(_) => Err(invalid(Box::new(linear))),
            };
        }
    };
    let anchored = anchored_literal(&hir);
    let regex = meta::Builder::new()
        .build_from_hir(&hir)
        .map_err(|e| invalid(Box::new(e)))?;
    Ok((Matcher::Linear(regex), anchored))
}

/// Whether the `regex` syntax refused the pattern for a feature only backtracking has.
fn needs_backtracking(error: &regex_syntax::Error) -> bool {
    use regex_syntax::ast::ErrorKind;
    matches!(
        error,
        regex_syntax::Error::Parse(e) if matches!(
            e.kind(),
            ErrorKind::UnsupportedLookAround | ErrorKind::UnsupportedBackreference
        )
    )
}

/// The literal text every match starts with, if the pattern is anchored at the start of the
/// text (`^` without multi-line mode) and a case-sensitive literal follows.
fn anchored_literal(hir: &Hir) -> Option<String> {
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
        assert!(!f.is_backtracking());
    }

    #[test]
    fn directory_markers_are_skipped() {
        let f = KeyFilter::new(None, "/").unwrap();
        assert!(!f.wants("dir/"));
        assert!(f.wants("dir/file"));
        let f = KeyFilter::new(None, "|").unwrap();
        assert!(!f.wants("dir|"));
        assert!(f.wants("dir/"));
        let f = KeyFilter::new(Some("(?<!x)y"), "/").unwrap();
        assert!(!f.wants("dir/y/"), "also with a backtracking pattern");
    }

    #[test]
    fn look_around_and_backreferences_work_as_in_python() {
        // Look-ahead, look-behind, backreferences (numbered and named, Python style).
        let f = KeyFilter::new(Some(r"^data/(?!tmp/).*\.csv$"), "/").unwrap();
        assert!(f.is_backtracking());
        assert!(f.wants("data/2024/a.csv"));
        assert!(!f.wants("data/tmp/a.csv"));
        let f = KeyFilter::new(Some(r"(?<=/)part-\d+$"), "/").unwrap();
        assert!(f.wants("x/part-0001"));
        assert!(!f.wants("part-0001"));
        let f = KeyFilter::new(Some(r"/(\w+)/\1\.txt$"), "/").unwrap();
        assert!(f.wants("a/cat/cat.txt"));
        assert!(!f.wants("a/cat/dog.txt"));
        let f = KeyFilter::new(Some(r"(?P<d>\d)-(?P=d)"), "/").unwrap();
        assert!(f.wants("k/7-7"));
        assert!(!f.wants("k/7-8"));
        // Backtracking patterns do not narrow the listing.
        let f = KeyFilter::new(Some(r"^data/(?!tmp/)"), "/").unwrap();
        assert_eq!(f.narrow_prefix(""), Some("".into()));
    }

    #[test]
    fn python_re_syntax_users_write() {
        let wants = |re: &str, key: &str| KeyFilter::new(Some(re), "/").unwrap().wants(key);
        assert!(wants(r"(?P<year>\d{4})/(?P=year)-", "x/2024/2024-01.csv"));
        assert!(wants(r"(?i)\.JSON$", "a/b.json"));
        assert!(wants(r"\bcat\b", "pets/cat/1"));
        assert!(!wants(r"\bcat\b", "pets/cats/1"));
        assert!(
            wants(r"\d+", "n/\u{0663}"),
            "Unicode digits, as in Python 3"
        );
        // `\Z` is Python's end of text (Rust's `\z`).
        assert!(wants(r"\.csv\Z", "a.csv"));
        assert!(!wants(r"\.csv\Z", "a.csv.gz"));
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
        let err = KeyFilter::new(Some("a(b"), "/").unwrap_err();
        let text = crate::error_chain(&err);
        assert!(text.contains("\"a(b\""), "{text}");
        assert!(text.contains("unclosed group"), "{text}");
        // Broken look-around: the backtracking engine's reason.
        let err = KeyFilter::new(Some("(?<=a"), "/").unwrap_err();
        assert!(matches!(err, Error::InvalidRegex { .. }), "{err}");
        let err = KeyFilter::new(Some("x"), "").unwrap_err();
        assert!(
            matches!(
                err,
                Error::InvalidOption {
                    option: "delimiter",
                    ..
                }
            ),
            "{err}"
        );
    }
}
