//! `--help` and `--version`.

use crate::common::{run_blocking, s3fetch, Run};

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
