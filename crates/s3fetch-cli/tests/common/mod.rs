//! What the CLI's test files share: the real binary, pointed at a test server through the
//! environment as a user's shell would point it, and nothing else of the user's.

use std::process::Command;

use s3fetch_testkit::fixtures::aws_env;
use s3fetch_testkit::TestServer;

/// The `s3fetch` binary with only `PATH`, a `HOME` and `server`'s AWS settings in its
/// environment.
pub fn s3fetch(server: &TestServer) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_s3fetch"));
    cmd.env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", std::env::temp_dir())
        .envs(aws_env(server));
    cmd
}
