//! The harness of the CLI tests, after fd's `testenv`. A [`TestEnv`] owns a test kit server,
//! a download directory and an empty home directory, and builds the real `s3fetch` binary
//! with nothing of the user's environment: `PATH`, `HOME` (the empty one) and the server's
//! AWS settings, as a user's shell would point it at the server. A [`Run`] is what a finished
//! command left; its assertions name the command and print its stderr when they fail. A
//! [`Running`] command is one to signal. [`assert_snapshot`] compares output with its file in
//! `tests/snapshots/`.

use std::collections::{BTreeMap, BTreeSet};
use std::ffi::OsStr;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

pub use rustix::process::Signal;
use rustix::process::{kill_process, Pid};
use s3fetch_testkit::fixtures::{self, aws_env, text};
use s3fetch_testkit::{ServerOptions, TestServer};
use tempfile::TempDir;

/// The `s3fetch` binary cargo built for these tests.
pub const S3FETCH: &str = env!("CARGO_BIN_EXE_s3fetch");

/// The binary with nothing of the user's environment: only `PATH`, and `HOME` set to `home`.
/// No AWS setting: see [`TestEnv::command`] for one that talks to a server.
pub fn s3fetch(home: &Path) -> Command {
    let mut cmd = Command::new(S3FETCH);
    cmd.env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", home);
    cmd
}

/// `program` with `cmd`'s environment and nothing else, to run `cmd` through a wrapper (a
/// shell that sets a limit, `unshare`, `setpriv`): append the wrapper's arguments, then
/// `cmd`'s program and arguments.
pub fn wrapper(program: impl AsRef<OsStr>, cmd: &Command) -> Command {
    let mut wrapped = Command::new(program);
    wrapped
        .env_clear()
        .envs(cmd.get_envs().filter_map(|(k, v)| Some((k, v?))));
    wrapped
}

/// Waits until `done()` holds, looking every 10 ms; fails, naming `what` it waited for, after
/// `limit`. Tests wait for a condition, never for a fixed time.
pub async fn until(limit: Duration, what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !done() {
        assert!(
            Instant::now() < deadline,
            "waited {limit:?} in vain: {what}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Runs `cmd` to completion off the async runtime (the server lives on it).
pub async fn run(cmd: Command) -> Run {
    let command = describe(&cmd);
    Run {
        command,
        output: fixtures::output(cmd).await,
    }
}

/// Runs `cmd` to completion on this thread: for a test without a server or runtime.
pub fn run_blocking(mut cmd: Command) -> Run {
    let command = describe(&cmd);
    let output = cmd
        .output()
        .unwrap_or_else(|e| panic!("running `{command}`: {e}"));
    Run { command, output }
}

/// The command line, for messages.
fn describe(cmd: &Command) -> String {
    std::iter::once(cmd.get_program())
        .chain(cmd.get_args())
        .map(|arg| arg.to_string_lossy().replace(S3FETCH, "s3fetch"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// A test kit server, a download directory and an empty home directory for the binary; all
/// three go with it.
pub struct TestEnv {
    server: TestServer,
    dir: TempDir,
    home: TempDir,
}

impl TestEnv {
    /// A new server (default options, no bucket).
    pub async fn start() -> TestEnv {
        TestEnv::on(TestServer::start().await)
    }

    /// A new server with `options`.
    pub async fn start_with(options: ServerOptions) -> TestEnv {
        let server = TestServer::start_with(options)
            .await
            .expect("the test server starts");
        TestEnv::on(server)
    }

    /// An environment around `server`.
    pub fn on(server: TestServer) -> TestEnv {
        let tempdir = || tempfile::tempdir().expect("a temporary directory");
        TestEnv {
            server,
            dir: tempdir(),
            home: tempdir(),
        }
    }

    pub fn server(&self) -> &TestServer {
        &self.server
    }

    /// The download directory (empty at the start).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The binary's `HOME` (empty).
    pub fn home(&self) -> &Path {
        self.home.path()
    }

    /// The binary with `PATH` and `HOME` alone, not pointed at the server ([`s3fetch`]).
    pub fn bare_command(&self) -> Command {
        s3fetch(self.home())
    }

    /// The binary pointed at the server through the environment
    /// ([`s3fetch_testkit::fixtures::aws_env`]), without arguments.
    pub fn command(&self) -> Command {
        let mut cmd = self.bare_command();
        cmd.envs(aws_env(&self.server));
        cmd
    }

    /// Runs the binary with `args` (no download directory given).
    pub async fn run(&self, args: &[&str]) -> Run {
        let mut cmd = self.command();
        cmd.args(args);
        run(cmd).await
    }

    /// Runs the binary with `args` and `--download-dir` [`TestEnv::dir`].
    pub async fn fetch(&self, args: &[&str]) -> Run {
        self.fetch_into(self.dir(), args).await
    }

    /// Runs the binary with `args` and `--download-dir dir`.
    pub async fn fetch_into(&self, dir: &Path, args: &[&str]) -> Run {
        let mut cmd = self.command();
        cmd.args(args).arg("--download-dir").arg(dir);
        run(cmd).await
    }

    /// Starts the binary with `args` and `--download-dir` [`TestEnv::dir`], stdout to
    /// nowhere, stderr kept.
    pub fn spawn(&self, args: &[&str]) -> Running {
        let mut cmd = self.command();
        cmd.args(args)
            .arg("--download-dir")
            .arg(self.dir())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let command = describe(&cmd);
        let child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("starting `{command}`: {e}"));
        Running { command, child }
    }

    /// The files under the download directory ([`fixtures::files`]).
    pub fn files(&self) -> BTreeSet<String> {
        fixtures::files(self.dir())
    }

    /// The files under the download directory with their contents ([`fixtures::tree`]).
    pub fn tree(&self) -> BTreeMap<String, Vec<u8>> {
        fixtures::tree(self.dir())
    }

    /// The contents of `path` in the download directory.
    #[track_caller]
    pub fn read(&self, path: &str) -> Vec<u8> {
        std::fs::read(self.dir().join(path)).unwrap_or_else(|e| panic!("reading {path}: {e}"))
    }

    /// Fails if an s3fetch temporary file is left in the download directory.
    #[track_caller]
    pub fn assert_no_temp_files(&self) {
        fixtures::assert_no_temp_files(self.dir());
    }
}

/// A finished command: its exit code and what it printed.
pub struct Run {
    /// The command line, for messages.
    command: String,
    output: Output,
}

impl Run {
    pub fn code(&self) -> Option<i32> {
        self.output.status.code()
    }

    pub fn stdout(&self) -> String {
        text(&self.output.stdout)
    }

    /// Stdout as it came, bytes.
    pub fn stdout_bytes(&self) -> &[u8] {
        &self.output.stdout
    }

    pub fn stderr(&self) -> String {
        text(&self.output.stderr)
    }

    /// The lines of stdout, as a set.
    pub fn stdout_lines(&self) -> BTreeSet<String> {
        self.stdout().lines().map(str::to_owned).collect()
    }

    /// Stdout as JSON lines (`--output json`); fails naming a line that is not JSON.
    #[track_caller]
    pub fn json_lines(&self) -> Vec<serde_json::Value> {
        self.stdout()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l:?}: {e}")))
            .collect()
    }

    /// Fails, printing the command and its stderr, unless it exited with `code`.
    #[track_caller]
    pub fn assert_exit(&self, code: i32) -> &Run {
        assert_eq!(
            self.code(),
            Some(code),
            "`{}` ended with {}, not exit code {code}; its stderr:\n{}",
            self.command,
            self.output.status,
            self.stderr()
        );
        self
    }

    /// [`Run::assert_exit`] with 0.
    #[track_caller]
    pub fn assert_success(&self) -> &Run {
        self.assert_exit(0)
    }

    /// Fails, printing the command and its stderr, unless `needle` is on stderr.
    #[track_caller]
    pub fn assert_stderr_contains(&self, needle: &str) -> &Run {
        let stderr = self.stderr();
        assert!(
            stderr.contains(needle),
            "{needle:?} is not on the stderr of `{}`:\n{stderr}",
            self.command
        );
        self
    }

    /// Fails, printing the command's stdout and stderr, unless `needle` is on stdout.
    #[track_caller]
    pub fn assert_stdout_contains(&self, needle: &str) -> &Run {
        let stdout = self.stdout();
        assert!(
            stdout.contains(needle),
            "{needle:?} is not on the stdout of `{}`:\n{stdout}\nstderr:\n{}",
            self.command,
            self.stderr()
        );
        self
    }
}

/// A command still running ([`TestEnv::spawn`]).
pub struct Running {
    command: String,
    child: Child,
}

impl Running {
    /// Sends `signal` to the command.
    #[track_caller]
    pub fn signal(&self, signal: Signal) {
        kill_process(Pid::from_child(&self.child), signal)
            .unwrap_or_else(|e| panic!("signalling `{}`: {e}", self.command));
    }

    /// Waits for the command to end, at most `limit` (then it is killed and the test fails).
    pub async fn wait(self, limit: Duration) -> Run {
        let Running { command, child } = self;
        let pid = Pid::from_child(&child);
        let waited = tokio::time::timeout(
            limit,
            tokio::task::spawn_blocking(move || child.wait_with_output()),
        )
        .await;
        let Ok(output) = waited else {
            let _ = kill_process(pid, Signal::KILL);
            panic!("`{command}` was still running after {limit:?}");
        };
        let output = output
            .expect("the waiting thread")
            .unwrap_or_else(|e| panic!("waiting for `{command}`: {e}"));
        Run { command, output }
    }
}

/// Shown with every snapshot that differs, and written into each snapshot file.
const UPDATE: &str = "If the change is intended, accept it with `INSTA_UPDATE=always cargo test -p \
     s3fetch-cli --test cli` (or `cargo insta review`) and commit crates/s3fetch-cli/tests/snapshots/.";

/// Compares `text` with the snapshot `tests/snapshots/{name}.snap` (insta), after replacing
/// each match of a `masks` regex with its replacement, for what differs from run to run
/// (times, rates, temporary paths, ports). Fails with a diff and how to accept the change.
pub fn assert_snapshot(name: &str, text: &str, masks: &[(&str, &str)]) {
    let mut settings = insta::Settings::clone_current();
    settings.set_snapshot_path(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/snapshots"));
    settings.set_prepend_module_to_snapshot(false);
    settings.set_omit_expression(true);
    settings.set_description(UPDATE);
    for &(pattern, replacement) in masks {
        settings.add_filter(pattern, replacement);
    }
    settings.bind(|| insta::assert_snapshot!(name, text));
}
