//! The `regex` option: compiled once, linear time where the `regex` crate's syntax allows,
//! backtracking (`fancy-regex`) for look-around and backreferences, as Python's `re` has.

use regex_automata::meta;
use regex_syntax::hir::{Hir, HirKind, Look};

use crate::error::{Error, Result};

#[derive(Debug, Clone)]
pub(super) enum Matcher {
    /// Linear time: most patterns.
    Linear(meta::Regex),
    /// Backtracking, for look-around and backreferences.
    Fancy(Box<fancy_regex::Regex>),
}

impl Matcher {
    pub(super) fn is_match(&self, key: &str) -> bool {
        match self {
            Matcher::Linear(re) => re.is_match(key),
            Matcher::Fancy(re) => match re.is_match(key) {
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
}

/// Compiles `pattern`: linear time when the `regex` syntax accepts it, else with
/// `fancy-regex`. A pattern neither accepts is reported with the `regex` crate's message
/// (it points at the error), unless only `fancy-regex` understood what was meant.
pub(super) fn compile(pattern: &str) -> Result<(Matcher, Option<String>)> {
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
