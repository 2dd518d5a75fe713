//! `--include` / `--exclude`: glob rules over the key relative to the URI's prefix,
//! evaluated in order, the last rule that matches deciding (aws cli's rule).
//!
//! A key no rule matches is taken unless the first rule is an include: then only what some
//! include matches is wanted (`--include '*.csv'` alone means "only CSV files", where the
//! aws cli would take everything). The patterns: [`GlobRule`].

use globset::{GlobBuilder, GlobSet, GlobSetBuilder};

use crate::error::{Error, Result};

/// One `--include` or `--exclude` rule, in the order given.
///
/// Patterns are `globset` globs with `/` as a literal separator: `*` and `?` stay within one
/// path segment, `**` crosses segments (`**/*.csv`: CSV files at any depth, `*.csv`: only at
/// the top), `[abc]`, `{a,b}`, and `\` escapes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GlobRule {
    /// Keys the pattern matches are downloaded, unless a later rule excludes them.
    Include(String),
    /// Keys the pattern matches are not downloaded, unless a later rule includes them.
    Exclude(String),
}

impl GlobRule {
    fn pattern(&self) -> &str {
        match self {
            GlobRule::Include(p) | GlobRule::Exclude(p) => p,
        }
    }

    fn option(&self) -> &'static str {
        match self {
            GlobRule::Include(_) => "include",
            GlobRule::Exclude(_) => "exclude",
        }
    }
}

/// The rules, compiled once.
#[derive(Debug, Clone)]
pub(super) struct Globs {
    set: GlobSet,
    /// Per rule, in order: whether it includes.
    includes: Vec<bool>,
    /// What a key no rule matches gets.
    default: bool,
    /// The URI's prefix, taken off each key before matching.
    prefix: String,
    /// The literal every wanted key starts with (after the prefix), when there is one.
    head: Option<String>,
}

impl Globs {
    /// `None` for no rules.
    pub(super) fn new(prefix: &str, rules: &[GlobRule]) -> Result<Option<Globs>> {
        let Some(first) = rules.first() else {
            return Ok(None);
        };
        let mut set = GlobSetBuilder::new();
        for rule in rules {
            let glob = GlobBuilder::new(rule.pattern())
                .literal_separator(true)
                .backslash_escape(true)
                .build()
                .map_err(|e| {
                    Error::option(rule.option(), format!("{:?}: {}", rule.pattern(), e.kind()))
                })?;
            set.add(glob);
        }
        let set = set
            .build()
            .map_err(|e| Error::option(first.option(), e.to_string()))?;
        let default = !matches!(first, GlobRule::Include(_));
        let head = (!default)
            .then(|| {
                let heads = rules.iter().filter_map(|r| match r {
                    GlobRule::Include(p) => Some(literal_head(p)),
                    GlobRule::Exclude(_) => None,
                });
                common_prefix(heads)
            })
            .filter(|h| !h.is_empty());
        Ok(Some(Globs {
            set,
            includes: rules
                .iter()
                .map(|r| matches!(r, GlobRule::Include(_)))
                .collect(),
            default,
            prefix: prefix.to_owned(),
            head,
        }))
    }

    /// Whether the rules take `key` (a full key, under the prefix).
    pub(super) fn wants(&self, key: &str) -> bool {
        let relative = key.strip_prefix(self.prefix.as_str()).unwrap_or(key);
        match self.set.matches(relative).last() {
            Some(&rule) => self.includes[rule],
            None => self.default,
        }
    }

    /// The full-key literal every wanted key starts with, if any. When every wanted key
    /// must match an include, the literal text that all includes start with narrows the
    /// listing, as a regex's anchored literal does.
    pub(super) fn head(&self) -> Option<String> {
        self.head.as_ref().map(|h| format!("{}{h}", self.prefix))
    }
}

/// The text before a glob's first special character.
fn literal_head(pattern: &str) -> String {
    let end = pattern
        .find(['*', '?', '[', '{', '\\'])
        .unwrap_or(pattern.len());
    pattern[..end].to_owned()
}

fn common_prefix(mut texts: impl Iterator<Item = String>) -> String {
    let Some(mut common) = texts.next() else {
        return String::new();
    };
    for text in texts {
        let len = common
            .char_indices()
            .zip(text.chars())
            .take_while(|((_, a), b)| a == b)
            .last()
            .map_or(0, |((i, a), _)| i + a.len_utf8());
        common.truncate(len);
    }
    common
}

#[cfg(test)]
mod tests {
    use super::*;

    fn globs(prefix: &str, rules: &[GlobRule]) -> Globs {
        Globs::new(prefix, rules).unwrap().unwrap()
    }
    fn inc(p: &str) -> GlobRule {
        GlobRule::Include(p.into())
    }
    fn exc(p: &str) -> GlobRule {
        GlobRule::Exclude(p.into())
    }

    #[test]
    fn the_last_matching_rule_decides() {
        // aws cli's idiom: everything out, then some back in.
        let g = globs("data/", &[exc("**"), inc("*.txt")]);
        assert!(g.wants("data/a.txt"));
        assert!(!g.wants("data/a.csv"));
        assert!(!g.wants("data/sub/a.txt"), "`*` stays in one segment");
        let g = globs("data/", &[inc("**/*.jpg"), exc("tmp/**")]);
        assert!(g.wants("data/x/a.jpg") && g.wants("data/a.jpg"));
        assert!(!g.wants("data/tmp/a.jpg"));
        assert!(
            !g.wants("data/a.png"),
            "a first include leaves out the rest"
        );
        let g = globs("data/", &[exc("*.tmp")]);
        assert!(g.wants("data/a.csv") && g.wants("data/sub/b.tmp"));
        assert!(!g.wants("data/b.tmp"));
        let g = globs("", &[exc("tmp/**"), inc("tmp/keep/**")]);
        assert!(g.wants("tmp/keep/a") && g.wants("other"));
        assert!(!g.wants("tmp/a"));
    }

    #[test]
    fn patterns_classes_alternatives_and_escapes() {
        let g = globs("", &[inc("20{23,24}-??/[ab]*.csv"), inc(r"lit\*")]);
        assert!(g.wants("2024-06/a1.csv"));
        assert!(!g.wants("2022-06/a1.csv"));
        assert!(!g.wants("2024-6/a1.csv"));
        assert!(!g.wants("2024-06/c1.csv"));
        assert!(g.wants("lit*"));
        assert!(!g.wants("litx"));
    }

    #[test]
    fn includes_narrow_the_listing_to_their_common_literal() {
        assert_eq!(
            globs("p/", &[inc("logs/2024-*")]).head(),
            Some("p/logs/2024-".into())
        );
        assert_eq!(
            globs(
                "p/",
                &[inc("logs/2024-*"), inc("logs/2023-*"), exc("logs/2023-01*")]
            )
            .head(),
            Some("p/logs/202".into())
        );
        assert_eq!(globs("p/", &[inc("**/*.csv")]).head(), None);
        assert_eq!(
            globs("p/", &[exc("x"), inc("logs/*")]).head(),
            None,
            "the rest is wanted"
        );
        assert_eq!(
            globs("", &[inc("é1*"), inc("é2*")]).head(),
            Some("é".into())
        );
    }

    #[test]
    fn a_bad_pattern_names_its_option() {
        let err = Globs::new("", &[inc("ok"), exc("a[")]).unwrap_err();
        assert!(
            matches!(
                err,
                Error::InvalidOption {
                    option: "exclude",
                    ..
                }
            ),
            "{err}"
        );
        assert!(err.to_string().contains("a["), "{err}");
        assert!(Globs::new("", &[]).unwrap().is_none());
    }
}
