//! `s3fetch plan S3_URI --shards N`: the split points of N range shards, as JSON on stdout
//! (see the library's `Plan`). Every shard then runs with `--shard K/N --plan plan.json`.

use std::ffi::OsString;

use clap::{CommandFactory, Parser};
use s3fetch::{PlanOptions, S3Uri};

use crate::args::Connection;
use crate::exit;

const EXAMPLES: &str = "\
Examples:
  # Four shards of a prefix, from a sampling listing (a few LIST requests, not a listing)
  s3fetch plan s3://my-bucket/datasets/ --shards 4 > plan.json
  s3fetch s3://my-bucket/datasets/ --shard 0/4 --plan plan.json   # ... up to 3/4

  # Exact split points from an S3 Inventory report, with no LIST request
  s3fetch plan s3://my-bucket/datasets/ --shards 64 \\
      --inventory s3://my-inventory/my-bucket/daily/2024-06-01T01-00Z/manifest.json > plan.json

The plan's ranges cover every possible key, so keys added after it was made still fall in
exactly one shard; only the balance between shards drifts. Make a new plan when it has.";

/// Compute the split points of N range shards of S3_URI, printed as JSON.
///
/// Range shards (`--shard K/N --plan FILE`) each list only their own range of keys, so N
/// machines together send about as many LIST requests as one. The split points come from a
/// few sampled listing pages (the counts per shard are estimates) or, exactly, from an S3
/// Inventory report.
#[derive(Debug, Parser)]
#[command(name = "s3fetch plan", after_help = EXAMPLES, max_term_width = 100)]
struct PlanArgs {
    /// s3://bucket or s3://bucket/prefix: what the shards will download
    #[arg(value_name = "S3_URI", value_parser = crate::args::parse_uri)]
    uri: S3Uri,

    /// N, the number of shards
    #[arg(long, value_name = "N")]
    shards: u32,

    /// Split by the keys of this S3 Inventory report (s3://bucket/path/manifest.json): exact,
    /// and no LIST request
    #[arg(long, value_name = "MANIFEST_URI", value_parser = crate::args::parse_uri)]
    inventory: Option<S3Uri>,

    /// The most LIST requests the sampling may send [default: 8 + 2 N]
    #[arg(long, value_name = "N")]
    max_requests: Option<u64>,

    /// Retries of a request after transient failures
    #[arg(long, value_name = "N", default_value_t = s3fetch::DEFAULT_RETRIES)]
    retries: u32,

    #[command(flatten)]
    connection: Connection,
}

/// The definition of `s3fetch plan`, as a subcommand named `plan` (for completions and the
/// man pages).
pub(crate) fn command() -> clap::Command {
    PlanArgs::command().name("plan")
}

/// Runs `s3fetch plan` with `args` (from `plan` on); returns the exit code.
pub fn run(mut args: Vec<OsString>) -> u8 {
    // Help and errors say `s3fetch plan`, not `plan`.
    if let Some(name) = args.first_mut() {
        *name = "s3fetch plan".into();
    }
    let args = match PlanArgs::try_parse_from(args) {
        Ok(args) => args,
        Err(error) => {
            let _ = error.print();
            return u8::try_from(error.exit_code()).unwrap_or(exit::USAGE);
        }
    };
    let mut options = PlanOptions::new(args.uri, args.shards);
    options.inventory = args.inventory;
    options.max_requests = args.max_requests;
    options.retry.retries = args.retries;
    options.request_payer = args.connection.request_payer;
    options.client_options = args.connection.client_options();
    match options.run_blocking() {
        Ok(plan) => {
            println!("{}", plan.to_json());
            let counts = match plan.exact {
                true => "objects per shard",
                false => "objects per shard, estimated",
            };
            let total: u64 = plan.estimated_objects.iter().sum();
            eprintln!(
                "plan: {} shards of {} from {} LIST request(s); {} {counts}: {:?}",
                plan.shards(),
                plan.uri,
                plan.list_requests,
                total,
                plan.estimated_objects,
            );
            exit::SUCCESS
        }
        Err(error) => {
            eprintln!("error: {}", exit::message(&error));
            if let Some(hint) = exit::hint(&error) {
                eprintln!("hint: {hint}");
            }
            exit::code(&error)
        }
    }
}
