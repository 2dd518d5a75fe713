//! `s3fetch completions SHELL` and the hidden `s3fetch man [--dir DIR]`: shell completion
//! scripts (clap_complete) and roff man pages (clap_mangen), generated from the very clap
//! definitions that parse the command line, so they cannot describe other flags than the
//! binary takes. The release packaging runs them from the built binary; copies are checked
//! in under docs/generated/ and a test fails when they drift.
//!
//! The command parses `plan` and `cat` with parsers of their own (see `run`); here the three
//! are joined into one tree, the shape completion and man generators expect.

use std::ffi::OsString;
use std::io::Write;
use std::path::PathBuf;

use clap::{CommandFactory, Parser};
use clap_complete::Shell;

use crate::exit;

const COMPLETIONS_EXAMPLES: &str = "\
Examples:
  # bash (bash-completion 2 loads it on first use)
  s3fetch completions bash > ~/.local/share/bash-completion/completions/s3fetch

  # zsh: into a directory on $fpath, before compinit runs
  s3fetch completions zsh > ~/.zfunc/_s3fetch

  # fish
  s3fetch completions fish > ~/.config/fish/completions/s3fetch.fish";

/// Print the shell completion script of s3fetch and its commands to stdout.
///
/// The script completes the flags of a download and of `s3fetch plan`, `s3fetch cat` and
/// `s3fetch completions`, and the values of flags that take one of a few.
#[derive(Debug, Parser)]
#[command(name = "s3fetch completions", after_help = COMPLETIONS_EXAMPLES, max_term_width = 100)]
struct CompletionsArgs {
    /// The shell to complete in
    #[arg(value_name = "SHELL", value_enum)]
    shell: Shell,
}

/// Print the s3fetch(1) man page (roff) to stdout, or write every page into a directory.
#[derive(Debug, Parser)]
#[command(name = "s3fetch man", max_term_width = 100)]
struct ManArgs {
    /// Write s3fetch.1 and a page for each command (s3fetch-plan.1, s3fetch-cat.1,
    /// s3fetch-completions.1) into DIR, creating it if needed
    #[arg(long, value_name = "DIR")]
    dir: Option<PathBuf>,
}

/// The whole command as one clap tree: a download, or one of the commands. The version is
/// the crate's alone (no commit), so the generated pages change only with a release.
fn command() -> clap::Command {
    crate::args::Args::command()
        .version(env!("CARGO_PKG_VERSION"))
        .bin_name("s3fetch")
        .subcommand_negates_reqs(true)
        .args_conflicts_with_subcommands(true)
        .disable_help_subcommand(true)
        .subcommand(crate::plan::command())
        .subcommand(crate::cat::command())
        .subcommand(CompletionsArgs::command().name("completions"))
        .subcommand(ManArgs::command().name("man").hide(true))
}

/// Runs `s3fetch completions` with `args` (from `completions` on); returns the exit code.
pub fn completions(mut args: Vec<OsString>) -> u8 {
    if let Some(name) = args.first_mut() {
        *name = "s3fetch completions".into();
    }
    let args = match CompletionsArgs::try_parse_from(args) {
        Ok(args) => args,
        Err(error) => return usage(&error),
    };
    let mut script = Vec::new();
    clap_complete::generate(args.shell, &mut command(), "s3fetch", &mut script);
    print(&script)
}

/// Runs `s3fetch man` with `args` (from `man` on); returns the exit code.
pub fn man(mut args: Vec<OsString>) -> u8 {
    if let Some(name) = args.first_mut() {
        *name = "s3fetch man".into();
    }
    let args = match ManArgs::try_parse_from(args) {
        Ok(args) => args,
        Err(error) => return usage(&error),
    };
    match args.dir {
        Some(dir) => {
            let written = std::fs::create_dir_all(&dir)
                .and_then(|()| clap_mangen::generate_to(command(), &dir));
            match written {
                Ok(()) => exit::SUCCESS,
                Err(error) => {
                    eprintln!(
                        "error: cannot write the man pages into {}: {error}",
                        dir.display()
                    );
                    exit::FAILED
                }
            }
        }
        None => {
            let mut page = Vec::new();
            // Writing into a Vec cannot fail.
            let _ = clap_mangen::Man::new(command()).render(&mut page);
            print(&page)
        }
    }
}

/// Help (exit 0) or a usage error (exit 2), as clap prints them.
fn usage(error: &clap::Error) -> u8 {
    let _ = error.print();
    u8::try_from(error.exit_code()).unwrap_or(exit::USAGE)
}

/// Writes `text` to stdout; a reader that closed the pipe early is no failure.
fn print(text: &[u8]) -> u8 {
    let mut stdout = std::io::stdout().lock();
    match stdout.write_all(text).and_then(|()| stdout.flush()) {
        Ok(()) => exit::SUCCESS,
        Err(error) if error.kind() == std::io::ErrorKind::BrokenPipe => exit::SUCCESS,
        Err(error) => {
            eprintln!("error: cannot write to stdout: {error}");
            exit::FAILED
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// clap's own checks of the joined tree (they run in debug builds only).
    #[test]
    fn joined_command_is_valid() {
        command().debug_assert();
    }
}
