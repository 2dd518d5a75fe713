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
    let out = offline(&["--version"]);
    assert!(out.stdout().starts_with("s3fetch "), "{}", out.stdout());
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
