//! The generated files checked in under docs/generated/ (completion scripts, man pages)
//! against what the binary generates now, so that they cannot drift from the flags. When
//! they differ, the test names the files and the command that rewrites them:
//! `S3FETCH_REGENERATE=1 cargo test -p s3fetch-cli --test cli generated`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::common::{run_blocking, s3fetch, Run};

/// The variable that makes the test rewrite docs/generated/ instead of comparing.
const REGENERATE: &str = "S3FETCH_REGENERATE";

/// Files of docs/generated/ that are not generated.
const NOT_GENERATED: &[&str] = &["README.md"];

/// The file name of each completion script, and its shell.
const SCRIPTS: &[(&str, &str)] = &[
    ("s3fetch.bash", "bash"),
    ("_s3fetch", "zsh"),
    ("s3fetch.fish", "fish"),
];

fn generated_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/generated")
}

/// The binary with `args` and an empty home, no server.
fn offline(home: &Path, args: &[&str]) -> Run {
    let mut cmd = s3fetch(home);
    cmd.args(args);
    let out = run_blocking(cmd);
    out.assert_success();
    out
}

/// What docs/generated/ should hold: file name -> contents, from the binary.
fn generate() -> BTreeMap<String, Vec<u8>> {
    let home = tempfile::tempdir().unwrap();
    let mut files = BTreeMap::new();
    for &(name, shell) in SCRIPTS {
        let out = offline(home.path(), &["completions", shell]);
        files.insert(name.to_owned(), out.stdout_bytes().to_vec());
    }
    let pages = tempfile::tempdir().unwrap();
    offline(
        home.path(),
        &["man", "--dir", pages.path().to_str().unwrap()],
    );
    for entry in std::fs::read_dir(pages.path()).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        files.insert(name, std::fs::read(&path).unwrap());
    }
    files
}

/// The generated files now in docs/generated/.
fn checked_in(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return BTreeMap::new();
    };
    entries
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.is_file())
        .map(|path| {
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            (name, path)
        })
        .filter(|(name, _)| !NOT_GENERATED.contains(&name.as_str()))
        .map(|(name, path)| (name, std::fs::read(&path).unwrap()))
        .collect()
}

#[test]
fn generated_files_are_up_to_date() {
    let dir = generated_dir();
    let want = generate();
    assert!(
        want.contains_key("s3fetch.1"),
        "no s3fetch.1 among {:?}",
        want.keys()
    );
    let have = checked_in(&dir);

    if std::env::var_os(REGENERATE).is_some_and(|v| v == "1") {
        std::fs::create_dir_all(&dir).unwrap();
        for name in have.keys().filter(|name| !want.contains_key(*name)) {
            std::fs::remove_file(dir.join(name)).unwrap();
        }
        for (name, text) in &want {
            std::fs::write(dir.join(name), text).unwrap();
        }
        return;
    }

    let mut problems = Vec::new();
    for (name, text) in &want {
        match have.get(name) {
            None => problems.push(format!("{name} is missing")),
            Some(old) if old != text => problems.push(format!("{name} differs")),
            Some(_) => {}
        }
    }
    for name in have.keys().filter(|name| !want.contains_key(*name)) {
        problems.push(format!("{name} is no longer generated"));
    }
    assert!(
        problems.is_empty(),
        "docs/generated/ does not match what the s3fetch binary generates now:\n  {}\n\
         Regenerate the files with `{REGENERATE}=1 cargo test -p s3fetch-cli --test cli \
         generated`, review the diff and commit it.",
        problems.join("\n  ")
    );
}

#[test]
fn man_prints_the_main_page() {
    let home = tempfile::tempdir().unwrap();
    let out = offline(home.path(), &["man"]);
    let page = out.stdout();
    assert!(page.contains(".TH s3fetch 1"), "{page}");
    for needle in ["\\-\\-download\\-dir", "completions", "Exit codes:"] {
        assert!(
            page.contains(needle),
            "{needle:?} is not in the page:\n{page}"
        );
    }
    // The man page carries the version alone: a commit would change it at every commit.
    assert!(!page.contains("commit"), "{page}");
}

#[test]
fn completions_cover_the_commands_and_their_flags() {
    let home = tempfile::tempdir().unwrap();
    for &(_, shell) in SCRIPTS {
        let out = offline(home.path(), &["completions", shell]);
        for needle in [
            "plan",
            "cat",
            "completions",
            "shards",
            "format",
            "endpoint-url",
        ] {
            out.assert_stdout_contains(needle);
        }
    }
}

#[test]
fn completions_for_an_unknown_shell_is_a_usage_error() {
    let home = tempfile::tempdir().unwrap();
    let mut cmd = s3fetch(home.path());
    cmd.args(["completions", "tcsh"]);
    run_blocking(cmd)
        .assert_exit(2)
        .assert_stderr_contains("invalid value 'tcsh'");
}
