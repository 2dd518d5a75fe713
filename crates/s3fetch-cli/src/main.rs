//! The `s3fetch` command. Everything but the exit lives in the library crate's [`run`], which
//! the Python wheel's `s3fetch` command calls too.

fn main() -> std::process::ExitCode {
    std::process::ExitCode::from(s3fetch_cli::run(std::env::args_os()))
}
