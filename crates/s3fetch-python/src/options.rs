//! The Python keywords, grouped into two dicts by `api.py` (the run's options, and where S3 is
//! and who we are there), extracted onto the library's own defaults: a keyword the caller did
//! not give is absent and keeps the library's default, so no default is written twice. One
//! arm per option; an unknown name is an error, not silence.

use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use pyo3::prelude::*;
use pyo3::types::PyDict;
use s3fetch::aws_credential_types::provider::SharedCredentialsProvider;
use s3fetch::{
    ChecksumMode, ClientOptions, Compare, DownloadOptions, Error, GlobRule, PlanOptions,
    RequestPayer, S3Uri, Shard, ShardBy,
};

use crate::credentials::Botocore;

/// Applies `options` (name → value, as `api.py` normalized them) to `download`; returns the
/// `output` format asked for (`"json"`), which is the binding's, not the library's.
pub(crate) fn apply(
    download: &mut DownloadOptions,
    options: &Bound<'_, PyDict>,
) -> PyResult<Result<Option<String>, Error>> {
    let mut output = None;
    let mut includes = Vec::new();
    let mut excludes = Vec::new();
    let mut shard_count = None;
    let mut shard = None;
    for (name, value) in options.iter() {
        let name: String = name.extract()?;
        let outcome: Result<(), Error> =
            match name.as_str() {
                "regex" => {
                    download.regex = Some(value.extract()?);
                    Ok(())
                }
                "include" => {
                    includes = value.extract()?;
                    Ok(())
                }
                "exclude" => {
                    excludes = value.extract()?;
                    Ok(())
                }
                "min_size" => size("min_size", &value.extract::<String>()?)
                    .map(|n| download.min_size = Some(n)),
                "max_size" => size("max_size", &value.extract::<String>()?)
                    .map(|n| download.max_size = Some(n)),
                "newer_than" => time("newer_than", &value.extract::<String>()?)
                    .map(|t| download.newer_than = Some(t)),
                "older_than" => time("older_than", &value.extract::<String>()?)
                    .map(|t| download.older_than = Some(t)),
                "include_archived" => {
                    download.include_archived = value.extract()?;
                    Ok(())
                }
                "shard" => {
                    shard = Some(value.extract::<String>()?);
                    Ok(())
                }
                "shard_count" => {
                    shard_count = Some(value.extract::<u32>()?);
                    Ok(())
                }
                "shard_by" => ShardBy::parse(&value.extract::<String>()?)
                    .map(|by| download.shard_by = Some(by)),
                "plan" => s3fetch::Plan::from_json(&value.extract::<String>()?)
                    .map(|plan| download.plan = Some(plan)),
                "inventory" => S3Uri::parse(&value.extract::<String>()?)
                    .map(|uri| download.inventory = Some(uri)),
                "concurrent_downloads" => {
                    download.concurrent_downloads = value.extract()?;
                    Ok(())
                }
                "list_concurrency" => {
                    download.list_concurrency = value.extract()?;
                    Ok(())
                }
                "multipart_threshold" => size("multipart_threshold", &value.extract::<String>()?)
                    .map(|n| download.multipart_threshold = n),
                "part_size" => {
                    size("part_size", &value.extract::<String>()?).map(|n| download.part_size = n)
                }
                "max_bandwidth" => s3fetch::parse_rate(&value.extract::<String>()?)
                    .map(|rate| download.max_bandwidth = Some(rate))
                    .map_err(|reason| Error::InvalidOption {
                        option: "max_bandwidth",
                        reason,
                    }),
                "max_memory" => size("max_memory", &value.extract::<String>()?)
                    .map(|n| download.max_memory = Some(n)),
                "retries" => {
                    download.retry.retries = value.extract()?;
                    Ok(())
                }
                // Out of range (negative, NaN) becomes zero, which the library refuses with the
                // range.
                "idle_timeout" => {
                    download.retry.idle_timeout =
                        Duration::try_from_secs_f64(value.extract()?).unwrap_or_default();
                    Ok(())
                }
                "checksum_mode" => value
                    .extract::<String>()?
                    .parse::<ChecksumMode>()
                    .map(|mode| download.checksum_mode = mode),
                "delimiter" => {
                    download.delimiter = value.extract()?;
                    Ok(())
                }
                "dry_run" => {
                    download.dry_run = value.extract()?;
                    Ok(())
                }
                "skip_existing" => {
                    download.skip_existing = value.extract()?;
                    Ok(())
                }
                "sync" => {
                    download.sync = value.extract()?;
                    Ok(())
                }
                "compare" => value
                    .extract::<String>()?
                    .parse::<Compare>()
                    .map(|compare| download.compare = compare),
                "lock" => {
                    download.lock = value.extract()?;
                    Ok(())
                }
                "preserve_mtime" => {
                    download.preserve_mtime = value.extract()?;
                    Ok(())
                }
                "resume" => {
                    download.resume = value.extract()?;
                    Ok(())
                }
                "failed_keys" => {
                    download.failed_keys = Some(value.extract::<PathBuf>()?);
                    Ok(())
                }
                "keys_from" => {
                    download.keys_from = Some(value.extract::<PathBuf>()?);
                    Ok(())
                }
                "request_payer" => payer(&value).map(|payer| download.request_payer = payer),
                "output" => {
                    output = value.extract()?;
                    Ok(())
                }
                _ => Err(Error::InvalidOption {
                    option: "options",
                    reason: format!("{name:?} is not an option of download()"),
                }),
            };
        if let Err(error) = outcome {
            return Ok(Err(error));
        }
    }
    // The keywords cannot tell their order: includes first, then excludes (an exclude wins).
    download.globs = includes
        .into_iter()
        .map(GlobRule::Include)
        .chain(excludes.into_iter().map(GlobRule::Exclude))
        .collect();
    download.shard = match shard.as_deref().map(str::trim) {
        None => None,
        Some("auto") => match Shard::from_env(shard_count, |name| std::env::var(name).ok()) {
            Ok((shard, _source)) => Some(shard),
            Err(error) => return Ok(Err(error)),
        },
        Some(text) => match Shard::parse(text) {
            Ok(shard) => Some(shard),
            Err(error) => return Ok(Err(error)),
        },
    };
    Ok(Ok(output))
}

/// Applies `options` to a plan's options (the keywords `plan()` takes besides the URI and N).
pub(crate) fn apply_to_plan(
    plan: &mut PlanOptions,
    options: &Bound<'_, PyDict>,
) -> PyResult<Result<(), Error>> {
    for (name, value) in options.iter() {
        let name: String = name.extract()?;
        let outcome = match name.as_str() {
            "inventory" => {
                S3Uri::parse(&value.extract::<String>()?).map(|uri| plan.inventory = Some(uri))
            }
            "max_requests" => {
                plan.max_requests = Some(value.extract()?);
                Ok(())
            }
            "retries" => {
                plan.retry.retries = value.extract()?;
                Ok(())
            }
            "request_payer" => payer(&value).map(|payer| plan.request_payer = payer),
            _ => Err(Error::InvalidOption {
                option: "options",
                reason: format!("{name:?} is not an option of plan()"),
            }),
        };
        if let Err(error) = outcome {
            return Ok(Err(error));
        }
    }
    Ok(Ok(()))
}

/// Where S3 is and who we are there, from the `connection` dict: the same keywords for
/// `download` and `plan`, a boto3 client's already read into them by `api.py`.
pub(crate) fn client_options(connection: &Bound<'_, PyDict>) -> PyResult<ClientOptions> {
    let mut client = ClientOptions::default();
    for (name, value) in connection.iter() {
        let name: String = name.extract()?;
        match name.as_str() {
            "region" => client.region = value.extract()?,
            "endpoint_url" => client.endpoint_url = value.extract()?,
            "profile" => client.profile = value.extract()?,
            "no_sign_request" => client.no_sign_request = value.extract()?,
            "force_path_style" => client.force_path_style = value.extract()?,
            "ca_bundle" => client.ca_bundle = value.extract()?,
            "credentials" => {
                let credentials: Option<Py<PyAny>> = value.extract()?;
                client.credentials =
                    credentials.map(|c| SharedCredentialsProvider::new(Botocore::new(c)));
            }
            "ignore_environment" => client.ignore_environment = value.extract()?,
            other => {
                return Err(pyo3::exceptions::PyTypeError::new_err(format!(
                    "{other:?} is not a connection setting"
                )))
            }
        }
    }
    Ok(client)
}

fn size(option: &'static str, text: &str) -> Result<u64, Error> {
    s3fetch::parse_size(text).map_err(|reason| Error::InvalidOption { option, reason })
}

fn time(option: &'static str, text: &str) -> Result<SystemTime, Error> {
    s3fetch::parse_time(text, SystemTime::now())
        .map_err(|reason| Error::InvalidOption { option, reason })
}

/// `request_payer="requester"`, checked by the library.
fn payer(value: &Bound<'_, PyAny>) -> Result<Option<RequestPayer>, Error> {
    let text: Option<String> = value.extract().map_err(|_| Error::InvalidOption {
        option: "request_payer",
        reason: "must be \"requester\"".into(),
    })?;
    text.map(|text| text.parse::<RequestPayer>()).transpose()
}
