//! Exit codes and what the CLI says about a run that could not start or failed.
//!
//! The library returns typed errors; here they become the message a shell user reads (flag
//! names instead of option names, the command that fixes it) and the documented exit code.

use s3fetch::{error_chain, DirProblem, Error};

/// Exit codes, as documented in `--help` and the README.
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

/// What to try next, for errors that have a usual cause.
pub fn hint(error: &Error) -> Option<String> {
    use s3fetch::ServiceErrorKind;
    let service = error.service_error();
    if service.is_some_and(|e| e.is_wrong_region()) {
        // The run follows a region the answer names: one left is a store that named none,
        // or an endpoint that refuses the bucket even in its own region.
        return Some(match service.and_then(|e| e.bucket_region()) {
            Some(region) => format!("the bucket is in {region}, but the endpoint refused it there too: check --endpoint-url"),
            None => "the bucket is in another region and the store did not say which: pass --region".into(),
        });
    }
    let code = error.code();
    Some(match code {
        Some("NoSuchBucket") => "check the bucket name (and --endpoint-url / --region)",
        Some("AccessDenied" | "AllAccessDisabled") => {
            "the credentials in use may not list this bucket (s3:ListBucket); try --profile, --no-sign-request for a public bucket, or --request-payer requester for a requester-pays bucket"
        }
        Some("InvalidAccessKeyId" | "SignatureDoesNotMatch") => {
            "check AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY or the --profile in use"
        }
        Some("ExpiredToken" | "InvalidToken" | "TokenRefreshRequired") => {
            "the session has expired: sign in again (e.g. `aws sso login --profile NAME`)"
        }
        _ => {
            let kind = error.service_error().map(|e| e.kind());
            let text = error_chain(error).to_lowercase();
            match kind {
                Some(ServiceErrorKind::Credentials) if text.contains("sso") => {
                    "your SSO session may have expired: run `aws sso login --profile NAME`"
                }
                Some(ServiceErrorKind::Credentials | ServiceErrorKind::NoCredentials) => {
                    "no usable AWS credentials: check --profile / AWS_PROFILE or AWS_ACCESS_KEY_ID, or use --no-sign-request for a public bucket"
                }
                Some(ServiceErrorKind::Tls) => {
                    "the server's certificate is not trusted here: pass its CA with --ca-bundle FILE (or AWS_CA_BUNDLE)"
                }
                Some(ServiceErrorKind::Connection) if matches!(error, Error::List { .. }) => {
                    "check the network and the endpoint (--endpoint-url, AWS_ENDPOINT_URL)"
                }
                _ => return None,
            }
        }
    }
    .to_owned())
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
