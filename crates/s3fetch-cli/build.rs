//! The version line of `s3fetch --version`: the crate's version and the commit it was built
//! from, as `0.1.0 (commit 9b4987912, 2026-12-07)`, in the `S3FETCH_VERSION` variable of the
//! compile.
//!
//! The commit comes from `git` when the sources are a checkout; from `S3FETCH_COMMIT` when
//! they are not (an sdist or a tarball: a packager may set it); else there is none and the
//! line is the bare version. The build never fails over it. Cargo reruns this only when
//! HEAD, the branch it points to or `S3FETCH_COMMIT` changes, not on every build.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=S3FETCH_COMMIT");
    let version = std::env::var("CARGO_PKG_VERSION").unwrap_or_default();
    let manifest_dir = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").unwrap_or_default());

    let line = match from_git(&manifest_dir) {
        Some((commit, date)) => format!("{version} (commit {commit}, {date})"),
        None => match std::env::var("S3FETCH_COMMIT") {
            Ok(commit) if !commit.trim().is_empty() => {
                format!("{version} (commit {})", commit.trim())
            }
            _ => version,
        },
    };
    println!("cargo:rustc-env=S3FETCH_VERSION={line}");
}

/// The short hash and commit date of HEAD, and the files to watch for a new HEAD; `None`
/// when there is no `git` or no repository.
fn from_git(dir: &Path) -> Option<(String, String)> {
    let head = git(dir, &["log", "-1", "--abbrev=9", "--format=%h %cs"])?;
    let (commit, date) = head.split_once(' ')?;
    watch_head(dir);
    Some((commit.to_owned(), date.to_owned()))
}

/// `cargo:rerun-if-changed` for HEAD and the ref it points to. In a worktree, HEAD lives in
/// the worktree's own git directory and the branches in the common one, so both are asked
/// of git rather than assumed to be `.git/`. Only files that exist are named: Cargo reruns
/// a script every time for a missing one.
fn watch_head(dir: &Path) {
    let watch = |path: PathBuf| {
        if path.is_file() {
            println!("cargo:rerun-if-changed={}", path.display());
        }
    };
    let Some(git_dir) = git(dir, &["rev-parse", "--absolute-git-dir"]) else {
        return;
    };
    watch(Path::new(&git_dir).join("HEAD"));
    // A detached HEAD names no ref: the HEAD file alone changes.
    let Some(reference) = git(dir, &["symbolic-ref", "-q", "HEAD"]) else {
        return;
    };
    let Some(common) = git(dir, &["rev-parse", "--git-common-dir"]) else {
        return;
    };
    // Relative to `dir` when git prints it relative (older git has no --path-format).
    let common = dir.join(common);
    watch(common.join(&reference));
    // A ref packed by `git gc` moves within this file.
    watch(common.join("packed-refs"));
}

/// Git's trimmed stdout for `args` run in `dir`, or `None` if it could not run or failed.
fn git(dir: &Path, args: &[&str]) -> Option<String> {
    let output = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .ok()?;
    if !output.status.success() {
        return None;
    }
    let text = String::from_utf8(output.stdout).ok()?;
    let text = text.trim();
    (!text.is_empty()).then(|| text.to_owned())
}
