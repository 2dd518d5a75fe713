//! Helpers the test crates share, kept here once instead of copied into each: what a
//! download directory holds ([`files`], [`tree`]), the no-temporary-files check
//! ([`assert_no_temp_files`]), the environment that points a child process (or the AWS SDK
//! in it) at a [`TestServer`] ([`aws_env`]), and running a command off the async runtime
//! ([`output`], [`text`]).
//!
//! ```no_run
//! # async fn demo() {
//! use std::process::Command;
//! use s3fetch_testkit::fixtures::{assert_no_temp_files, aws_env, files, output, text};
//! use s3fetch_testkit::TestServer;
//!
//! let server = TestServer::start().await;
//! let dir = tempfile::tempdir().unwrap();
//! let mut cmd = Command::new("s3fetch");
//! cmd.env_clear().envs(aws_env(&server));
//! cmd.arg("s3://bucket/").arg("--download-dir").arg(dir.path());
//! let out = output(cmd).await;
//! assert!(out.status.success(), "{}", text(&out.stderr));
//! assert!(files(dir.path()).contains("a/b.txt"));
//! assert_no_temp_files(dir.path());
//! # }
//! ```
//!
//! They panic on I/O errors: they are for tests.

use std::collections::{BTreeMap, BTreeSet};
use std::ffi::OsString;
use std::path::Path;
use std::process::{Command, Output};

use crate::server::TestServer;

/// Every file under `dir` (anything but a directory, symlinks not followed), as paths
/// relative to `dir` with `/` between components.
///
/// # Panics
/// On an I/O error or a name that is not UTF-8.
#[must_use]
pub fn files(dir: &Path) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    walk(dir, dir, &mut |rel, _| {
        out.insert(rel);
    });
    out
}

/// Every file under `dir` (as [`files`] finds them) with its contents.
///
/// # Panics
/// On an I/O error or a name that is not UTF-8.
#[must_use]
pub fn tree(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut out = BTreeMap::new();
    walk(dir, dir, &mut |rel, path| {
        let body = std::fs::read(path).unwrap_or_else(|e| panic!("reading {path:?}: {e}"));
        out.insert(rel, body);
    });
    out
}

fn walk(root: &Path, dir: &Path, visit: &mut dyn FnMut(String, &Path)) {
    let entries = std::fs::read_dir(dir).unwrap_or_else(|e| panic!("listing {dir:?}: {e}"));
    for entry in entries {
        let entry = entry.unwrap_or_else(|e| panic!("listing {dir:?}: {e}"));
        let path = entry.path();
        let kind = entry
            .file_type()
            .unwrap_or_else(|e| panic!("{path:?}: {e}"));
        if kind.is_dir() {
            walk(root, &path, visit);
        } else {
            let rel = path.strip_prefix(root).expect("a path under the root");
            let rel = rel
                .to_str()
                .unwrap_or_else(|| panic!("{rel:?} is not UTF-8"));
            visit(rel.to_owned(), &path);
        }
    }
}

/// Whether the last component of `path` is an s3fetch temporary file. s3fetch writes every
/// download to `.s3fetch-<pid>-<n>.tmp` in the target directory and renames it into place;
/// any name with the `.s3fetch-` prefix counts, so the check cannot go blind if the rest of
/// the name changes — except the index of ETags that `--compare etag` keeps where extended
/// attributes are missing, `.s3fetch-etags.jsonl`, which is meant to stay.
#[must_use]
pub fn is_temporary_file(path: &str) -> bool {
    let name = path.rsplit('/').next().unwrap_or(path);
    name.starts_with(".s3fetch-") && name != ".s3fetch-etags.jsonl"
}

/// Whether the last component of `path` is a resumable partial file of s3fetch or its journal
/// (`.s3fetch-part-<hash>`, `.s3fetch-part-<hash>.json`): what an interrupted run keeps of a
/// large download for the next run to continue. These count as temporary files too.
#[must_use]
pub fn is_partial_file(path: &str) -> bool {
    let name = path.rsplit('/').next().unwrap_or(path);
    name.starts_with(".s3fetch-part-")
}

/// The s3fetch temporary files under `dir` (see [`is_temporary_file`]), as [`files`] names
/// them.
///
/// # Panics
/// On an I/O error or a name that is not UTF-8.
#[must_use]
pub fn temporary_files(dir: &Path) -> Vec<String> {
    files(dir)
        .into_iter()
        .filter(|f| is_temporary_file(f))
        .collect()
}

/// Fails the test if an s3fetch temporary file is left anywhere under `dir`.
///
/// # Panics
/// If there is one (naming them all), or on an I/O error.
#[track_caller]
pub fn assert_no_temp_files(dir: &Path) {
    let temps = temporary_files(dir);
    assert!(temps.is_empty(), "temporary files left: {temps:?}");
}

/// The environment that makes a process talk to `server` the way a user's would: its
/// credentials (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`), endpoint (`AWS_ENDPOINT_URL`)
/// and region (`AWS_REGION`); no instance metadata lookups (`AWS_EC2_METADATA_DISABLED`);
/// config and credentials files pointing at an empty file (`AWS_CONFIG_FILE`,
/// `AWS_SHARED_CREDENTIALS_FILE` = `/dev/null`), so nothing of the machine's `~/.aws`
/// leaks in; and, for a TLS server, its CA certificate (`AWS_CA_BUNDLE`, see
/// [`TestServer::ca_file`]).
///
/// Set them with [`Command::envs`] (after `env_clear()` for a hermetic child); later
/// `env()` calls override single variables.
#[must_use]
pub fn aws_env(server: &TestServer) -> Vec<(&'static str, OsString)> {
    let mut env: Vec<(&'static str, OsString)> = vec![
        ("AWS_ACCESS_KEY_ID", server.access_key().into()),
        ("AWS_SECRET_ACCESS_KEY", server.secret_key().into()),
        ("AWS_ENDPOINT_URL", server.endpoint().into()),
        ("AWS_REGION", server.region().into()),
        ("AWS_EC2_METADATA_DISABLED", "true".into()),
        ("AWS_CONFIG_FILE", "/dev/null".into()),
        ("AWS_SHARED_CREDENTIALS_FILE", "/dev/null".into()),
    ];
    if let Some(ca) = server.ca_file() {
        env.push(("AWS_CA_BUNDLE", ca.into()));
    }
    env
}

/// Runs `cmd` to completion on a blocking thread and returns what it printed, so the
/// server, which lives on the test's async runtime, keeps answering meanwhile.
///
/// # Panics
/// If the command cannot be started.
pub async fn output(mut cmd: Command) -> Output {
    tokio::task::spawn_blocking(move || cmd.output().expect("running the command"))
        .await
        .expect("the command's thread")
}

/// Process output as text (invalid UTF-8 replaced).
#[must_use]
pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_tree_and_temporary_files() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("a/b")).unwrap();
        std::fs::create_dir(dir.path().join("empty")).unwrap();
        std::fs::write(dir.path().join("top"), b"1").unwrap();
        std::fs::write(dir.path().join("a/b/deep"), b"22").unwrap();
        std::fs::write(dir.path().join("a/.s3fetch-123-4.tmp"), b"").unwrap();
        assert_eq!(
            files(dir.path()),
            ["a/.s3fetch-123-4.tmp", "a/b/deep", "top"]
                .map(str::to_owned)
                .into()
        );
        assert_eq!(tree(dir.path())["a/b/deep"], b"22");
        assert_eq!(temporary_files(dir.path()), ["a/.s3fetch-123-4.tmp"]);
        assert!(!is_temporary_file("x.s3fetch-1-2.tmp"));
        assert!(!is_temporary_file("dir.s3fetch-/x"));
        std::fs::remove_file(dir.path().join("a/.s3fetch-123-4.tmp")).unwrap();
        assert_no_temp_files(dir.path());
    }
}
