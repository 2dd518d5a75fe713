//! Exit codes and what the CLI says about a run that could not start or failed.
//!
//! The library returns typed errors; here they become the message a shell user reads (flag
//! names instead of option names, the command that fixes it) and the documented exit code.

use s3fetch::{error_chain, Category, DirProblem, Error, ServiceErrorKind};

/// Exit codes, as documented in `--help` and docs/output.md.
pub const SUCCESS: u8 = 0;
pub const FAILED: u8 = 1;
pub const USAGE: u8 = 2;
pub const INTERRUPTED: u8 = 130;

/// The exit code for a run that returned `error`.
pub fn code(error: &Error) -> u8 {
    if error.is_usage() {
        USAGE
    } else {
        FAILED
    }
}

/// The error as the CLI states it: options named as flags, causes chained.
pub fn message(error: &Error) -> String {
    match error {
        Error::InvalidOption { option, reason } => format!("{} {reason}", flag(option)),
        Error::DownloadDir {
            path,
            problem: DirProblem::Missing,
            ..
        } => format!(
            "--download-dir {} does not exist: create it first (mkdir -p {})",
            path.display(),
            shell_quote(&path.display().to_string())
        ),
        Error::DownloadDir {
            path,
            problem,
            source,
        } => {
            let cause = source
                .as_ref()
                .map(|e| format!(": {e}"))
                .unwrap_or_default();
            format!("--download-dir {}: {problem}{cause}", path.display())
        }
        _ => error_chain(error),
    }
}

/// `concurrent_downloads` -> `--concurrent-downloads`.
fn flag(option: &str) -> String {
    format!("--{}", option.replace('_', "-"))
}

fn shell_quote(s: &str) -> String {
    if s.bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"/._-".contains(&b))
    {
        s.to_owned()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

/// What to try next, for errors that have a usual cause (by the library's [`Category`]).
pub fn hint(error: &Error) -> Option<String> {
    let service = error.service_error()?;
    let hint = match service.category() {
        // The run follows a region the answer names: one left is a store that named none,
        // or an endpoint that refuses the bucket even in its own region.
        Category::WrongRegion => {
            return Some(match service.bucket_region() {
                Some(region) => format!("the bucket is in {region}, but the endpoint refused it there too: check --endpoint-url"),
                None => "the bucket is in another region and the store did not say which: pass --region".into(),
            })
        }
        Category::NoSuchBucket => "check the bucket name (and --endpoint-url / --region)",
        Category::Denied => {
            "the credentials in use may not list this bucket (s3:ListBucket); try --profile, --no-sign-request for a public bucket, or --request-payer requester for a requester-pays bucket"
        }
        Category::Credentials if error_chain(error).to_lowercase().contains("sso") => {
            "your SSO session may have expired: run `aws sso login --profile NAME`"
        }
        Category::Credentials if service.kind() == ServiceErrorKind::Response => {
            match service.code() {
                Some("ExpiredToken" | "InvalidToken" | "TokenRefreshRequired") => {
                    "the session has expired: sign in again (e.g. `aws sso login --profile NAME`)"
                }
                _ => "check AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY or the --profile in use",
            }
        }
        Category::Credentials | Category::NoCredentials => {
            "no usable AWS credentials: check --profile / AWS_PROFILE or AWS_ACCESS_KEY_ID, or use --no-sign-request for a public bucket"
        }
        Category::Tls => {
            "the server's certificate is not trusted here: pass its CA with --ca-bundle FILE (or AWS_CA_BUNDLE)"
        }
        Category::Connection if matches!(error, Error::List { .. }) => {
            "check the network and the endpoint (--endpoint-url, AWS_ENDPOINT_URL)"
        }
        _ => return None,
    };
    Some(hint.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_are_named_as_flags() {
        let error = Error::InvalidOption {
            option: "concurrent_downloads",
            reason: "must be at least 1".into(),
        };
        assert_eq!(message(&error), "--concurrent-downloads must be at least 1");
        assert_eq!(code(&error), USAGE);
        assert_eq!(shell_quote("/tmp/a b"), "'/tmp/a b'");
    }
}
