//! The filter's rules, each alone and together.

use std::time::{Duration, SystemTime};

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

fn object(key: &str, size: u64, age_secs: Option<u64>) -> ObjectInfo {
    ObjectInfo {
        key: key.into(),
        size,
        etag: None,
        last_modified: age_secs.map(|s| SystemTime::now() - Duration::from_secs(s)),
        archived: false,
    }
}

#[test]
fn regex_and_globs_must_both_pass_and_both_narrow() {
    let rules = [GlobRule::Include("logs/2024-*".into())];
    let f = KeyFilter::new(Some(r"\.json$"), "/")
        .unwrap()
        .globs("p/", &rules)
        .unwrap();
    assert!(f.wants("p/logs/2024-01.json"));
    assert!(!f.wants("p/logs/2024-01.csv"), "the regex fails");
    assert!(!f.wants("p/logs/2023-01.json"), "the glob fails");
    assert_eq!(f.narrow_prefix("p/"), Some("p/logs/2024-".into()));
    let f = KeyFilter::new(Some("^p/logs/"), "/")
        .unwrap()
        .globs("p/", &rules)
        .unwrap();
    assert_eq!(
        f.narrow_prefix("p/"),
        Some("p/logs/2024-".into()),
        "the longer literal"
    );
    let f = KeyFilter::new(Some("^p/data/"), "/")
        .unwrap()
        .globs("p/", &rules)
        .unwrap();
    assert_eq!(f.narrow_prefix("p/"), None, "no key can pass both");
}

#[test]
fn sizes_and_times_come_from_the_listing() {
    let hour = 3600;
    let f = KeyFilter::new(None, "/")
        .unwrap()
        .sizes(Some(10), Some(100))
        .unwrap()
        .times(
            Some(SystemTime::now() - Duration::from_secs(24 * hour)),
            Some(SystemTime::now() - Duration::from_secs(hour)),
        )
        .unwrap();
    assert!(f.has_object_limits());
    assert!(f.wants_object(&object("a", 10, Some(2 * hour))));
    assert!(
        f.wants_object(&object("a", 100, Some(2 * hour))),
        "bounds included"
    );
    assert!(!f.wants_object(&object("a", 9, Some(2 * hour))));
    assert!(!f.wants_object(&object("a", 101, Some(2 * hour))));
    assert!(!f.wants_object(&object("a", 50, Some(10))), "too new");
    assert!(
        !f.wants_object(&object("a", 50, Some(48 * hour))),
        "too old"
    );
    assert!(!f.wants_object(&object("a", 50, None)), "time unknown");
    assert!(
        !f.wants_object(&object("a/", 50, Some(2 * hour))),
        "a directory marker"
    );
    let plain = KeyFilter::new(None, "/").unwrap();
    assert!(!plain.has_object_limits());
    assert!(plain.wants_object(&object("a", 0, None)));
}

#[test]
fn limits_that_nothing_could_pass_are_refused() {
    let f = || KeyFilter::new(None, "/").unwrap();
    let err = f().sizes(Some(10), Some(9)).unwrap_err();
    assert!(
        matches!(
            err,
            Error::InvalidOption {
                option: "min_size",
                ..
            }
        ),
        "{err}"
    );
    let now = SystemTime::now();
    let err = f().times(Some(now), Some(now)).unwrap_err();
    assert!(
        matches!(
            err,
            Error::InvalidOption {
                option: "newer_than",
                ..
            }
        ),
        "{err}"
    );
}
