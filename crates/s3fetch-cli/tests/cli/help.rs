//! `--help` and `--version`; snapshots of the help texts, so that a flag or its text cannot
//! change unseen.

use crate::common::{assert_snapshot, run_blocking, s3fetch, Run};

/// The binary with `args`, no server needed.
fn offline(args: &[&str]) -> Run {
    let home = tempfile::tempdir().unwrap();
    let mut cmd = s3fetch(home.path());
    cmd.args(args);
    run_blocking(cmd)
}

#[test]
fn help_lists_examples_and_exit_codes() {
    let out = offline(&["--help"]);
    out.assert_success();
    for needle in [
        "Examples:",
        "Exit codes:",
        "130",
        "--endpoint-url",
        "--no-sign-request",
        "--dry-run",
    ] {
        out.assert_stdout_contains(needle);
    }
}

/// `--version`: the crate's version and, in a git checkout, the commit it was built from
/// (see build.rs).
#[test]
fn version_names_the_version_and_commit() {
    let out = offline(&["--version"]);
    out.assert_success();
    let pattern = format!(
        r"^s3fetch {}(?: \(commit ([^\s,()]+)(?:, \d{{4}}-\d{{2}}-\d{{2}})?\))?\n$",
        regex::escape(env!("CARGO_PKG_VERSION"))
    );
    let version = out.stdout();
    let captures = regex::Regex::new(&pattern)
        .unwrap()
        .captures(&version)
        .unwrap_or_else(|| panic!("{version:?} does not match {pattern}"));
    // Built from a checkout (as tests are, but for a tarball): the commit is HEAD's.
    let head = std::process::Command::new("git")
        .args(["-C", env!("CARGO_MANIFEST_DIR"), "rev-parse", "HEAD"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned());
    if let Some(head) = head {
        let commit = captures.get(1).map_or("", |c| c.as_str());
        assert!(
            !commit.is_empty() && head.starts_with(commit),
            "{version:?} does not name HEAD {head}"
        );
    }
}

// Stdout is a pipe and the environment has no COLUMNS: clap wraps at its default width.

#[test]
fn help_is_as_in_its_snapshot() {
    let out = offline(&["--help"]);
    out.assert_success();
    assert_snapshot("help", &out.stdout(), &[]);
}

#[test]
fn plan_help_is_as_in_its_snapshot() {
    let out = offline(&["plan", "--help"]);
    out.assert_success();
    assert_snapshot("plan_help", &out.stdout(), &[]);
}

#[test]
fn cat_help_is_as_in_its_snapshot() {
    let out = offline(&["cat", "--help"]);
    out.assert_success();
    for needle in ["Which objects:", "must check", "| tar -x", "--format"] {
        out.assert_stdout_contains(needle);
    }
    assert_snapshot("cat_help", &out.stdout(), &[]);
}

#[test]
fn completions_help_is_as_in_its_snapshot() {
    let out = offline(&["completions", "--help"]);
    out.assert_success();
    assert_snapshot("completions_help", &out.stdout(), &[]);
}
