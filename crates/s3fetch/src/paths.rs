//! Key -> local path: the URI prefix is rolled up, the rest becomes directories and a file
//! name under the download directory. Pure and property-tested: the result is always a
//! relative path of plain names (no `..`, `.`, empty segment, NUL or over-long name), or a
//! refusal.

use std::path::PathBuf;

/// The longest file name most file systems accept, in bytes.
pub const MAX_NAME_BYTES: usize = 255;

/// Maps `key` (listed under `prefix`) to a path relative to the download directory.
///
/// The prefix is removed in whole delimiter-separated segments: everything up to and
/// including the prefix's last delimiter goes. So prefix `my/test/pre` turns key
/// `my/test/prefix/file` into `prefix/file`, prefix `my/test/objects/` turns
/// `my/test/objects/one/two/file` into `one/two/file`, and an exact key becomes its
/// base name. Empty and `.` segments (`a//b`, `/etc/x`, `a/./b`) are dropped, so a key that
/// looks absolute stays inside the download directory; `..` is refused.
///
/// `/` always separates local directories, also when the delimiter is something else.
pub fn relative_path(prefix: &str, key: &str, delimiter: &str) -> Result<PathBuf, String> {
    let rest = match prefix.rfind(delimiter) {
        Some(i) if key.starts_with(&prefix[..i + delimiter.len()]) => &key[i + delimiter.len()..],
        _ => key,
    };
    let mut path = PathBuf::new();
    for segment in rest.split(delimiter).flat_map(|s| s.split('/')) {
        match segment {
            "" | "." => continue,
            ".." => return Err("it has a '..' segment that would leave the download directory".into()),
            s if s.contains('\0') => return Err("it contains a NUL byte".into()),
            s if s.len() > MAX_NAME_BYTES => {
                return Err(format!(
                    "the name segment {:?}... is {} bytes, over the {MAX_NAME_BYTES}-byte file-name limit",
                    truncate(s, 40),
                    s.len()
                ))
            }
            s => path.push(s),
        }
    }
    if path.as_os_str().is_empty() {
        return Err("it maps to no file name".into());
    }
    Ok(path)
}

fn truncate(s: &str, max: usize) -> &str {
    let mut end = max.min(s.len());
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::path::{Component, Path};

    fn rel(prefix: &str, key: &str) -> String {
        relative_path(prefix, key, "/")
            .unwrap()
            .to_str()
            .unwrap()
            .to_owned()
    }

    #[test]
    fn rollup_matches_the_original() {
        assert_eq!(rel("my/test/pre", "my/test/prefix/file"), "prefix/file");
        assert_eq!(
            rel("my/test/objects/", "my/test/objects/one/two/file"),
            "one/two/file"
        );
        assert_eq!(
            rel("my/test/objects/file.txt", "my/test/objects/file.txt"),
            "file.txt"
        );
        assert_eq!(rel("", "a/b/c"), "a/b/c");
        assert_eq!(rel("top", "top/x"), "top/x");
        assert_eq!(rel("top/", "top/x"), "x");
    }

    #[test]
    fn odd_keys_stay_inside() {
        assert_eq!(rel("", "/etc/passwd"), "etc/passwd");
        assert_eq!(rel("", "a//b"), "a/b");
        assert_eq!(rel("", "./a/./b"), "a/b");
        assert_eq!(rel("", "a\\..\\b"), "a\\..\\b");
        assert!(relative_path("", "../x", "/").is_err());
        assert!(relative_path("", "a/../../x", "/").is_err());
        assert!(relative_path("d/", "d/..", "/").is_err());
        assert!(relative_path("", "/", "/").is_err());
        assert!(relative_path("", &"n".repeat(256), "/").is_err());
        assert_eq!(rel("", &"n".repeat(255)), "n".repeat(255));
    }

    #[test]
    fn other_delimiters() {
        let p = relative_path("a|b|", "a|b|c|d", "|").unwrap();
        assert_eq!(p, Path::new("c/d"));
        let p = relative_path("", "x/y|z", "|").unwrap();
        assert_eq!(p, Path::new("x/y/z"));
        assert!(relative_path("", "x|..|z", "|").is_err());
    }

    /// The property every mapping must have: a refusal, or a non-empty relative path of plain
    /// names (no `..`, `.`, empty segment, NUL, `/` or over-long name) that stays inside any
    /// download directory.
    fn assert_plain(prefix: &str, key: &str, delim: &str) -> Result<(), TestCaseError> {
        if let Ok(path) = relative_path(prefix, key, delim) {
            prop_assert!(!path.as_os_str().is_empty());
            prop_assert!(path.is_relative());
            for c in path.components() {
                match c {
                    Component::Normal(name) => {
                        let name = name.to_str().unwrap();
                        prop_assert!(!name.is_empty() && name != "." && name != "..");
                        prop_assert!(!name.contains('\0') && !name.contains('/'));
                        prop_assert!(name.len() <= MAX_NAME_BYTES);
                    }
                    other => prop_assert!(false, "component {:?} in {:?}", other, path),
                }
            }
            let root = Path::new("/download/dir");
            prop_assert!(root.join(&path).starts_with(root));
        }
        Ok(())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]
        /// Any string at all, any prefix of it, any delimiter.
        #[test]
        fn arbitrary_keys_map_inside_or_are_refused(
            key in any::<String>(),
            cut in 0usize..64,
            delim in prop_oneof![Just("/".to_owned()), Just("\\".to_owned()), Just("|".to_owned()), any::<String>().prop_filter("non-empty", |d| !d.is_empty())],
        ) {
            let mut cut = cut.min(key.len());
            while !key.is_char_boundary(cut) {
                cut -= 1;
            }
            assert_plain(&key[..cut], &key, &delim)?;
            assert_plain("", &key, &delim)?;
        }

        /// Keys built from the troublesome pieces, long ones included.
        #[test]
        fn troublesome_segments(
            parts in proptest::collection::vec(
                prop_oneof![
                    Just("..".to_owned()), Just(".".to_owned()), Just("".to_owned()),
                    Just("a".to_owned()), Just("\\..".to_owned()), Just("..\\".to_owned()),
                    Just("\0".to_owned()), Just("é".repeat(130)), "[a-z]{250,260}",
                ],
                0..8,
            ),
            lead in prop_oneof![Just(""), Just("/"), Just("//"), Just("./")],
            trail in prop_oneof![Just(""), Just("/")],
        ) {
            let key = format!("{lead}{}{trail}", parts.join("/"));
            assert_plain("", &key, "/")?;
            let refused = relative_path("", &key, "/").is_err();
            let has_dotdot = parts.iter().any(|p| p == "..");
            prop_assert!(!has_dotdot || refused, "{key:?} has a '..' segment but was accepted");
        }

        #[test]
        fn result_is_always_plain_relative(
            prefix in "[a/.\\\\|é\\x00-\\x02]{0,8}",
            key in "[a/.\\\\|é\\x00-\\x02 ]{0,24}",
            delim in prop_oneof![Just("/"), Just("|"), Just("ab"), Just(".")],
        ) {
            let key = format!("{prefix}{key}");
            assert_plain(&prefix, &key, delim)?;
        }
    }
}
