//! Fast, safe bulk downloads from Amazon S3 and S3-compatible stores.
//!
//! s3fetch downloads the objects under an `s3://bucket/prefix` whose keys match a regex, and
//! starts downloading while the listing is still running: fetching a few hundred files out of
//! a prefix with millions of keys takes seconds, not the time to list the whole prefix first.
//! Every file is written to a temporary file and renamed into place when complete; keys that
//! would escape the download directory are refused; one failed object never stops the rest.
//!
//! # Example
//!
//! ```
//! use std::sync::Arc;
//! use s3fetch::{DownloadOptions, DownloadResult, Downloader, Reporter, S3Uri};
//!
//! /// The original s3fetch's `on_complete` callback, as a reporter.
//! struct PrintKeys;
//! impl Reporter for PrintKeys {
//!     fn download_finished(&self, result: &DownloadResult) {
//!         if result.is_success() {
//!             println!("{}", result.key);
//!         }
//!     }
//! }
//!
//! # #[tokio::main(flavor = "multi_thread", worker_threads = 2)]
//! # async fn main() -> s3fetch::Result<()> {
//! # // A local S3 server stands in for AWS here; credentials and endpoint come from the
//! # // environment, as they would for a real user.
//! # let server = s3fetch_testkit::TestServer::start().await;
//! # server.create_bucket("my-bucket");
//! # server.put_object("my-bucket", "logs/2024/a.json", "{}");
//! # server.put_object("my-bucket", "logs/2024/b.txt", "b");
//! # std::env::set_var("AWS_ACCESS_KEY_ID", server.access_key());
//! # std::env::set_var("AWS_SECRET_ACCESS_KEY", server.secret_key());
//! # std::env::set_var("AWS_ENDPOINT_URL", server.endpoint());
//! # let tmp = tempfile::tempdir().unwrap();
//! # let download_dir = tmp.path();
//! let options = DownloadOptions::new(S3Uri::parse("s3://my-bucket/logs/")?)
//!     .download_dir(download_dir)
//!     .regex(r"\.json$")
//!     .concurrent_downloads(100);
//! let summary = Downloader::new(options).reporter(Arc::new(PrintKeys)).run().await?;
//! println!("{} objects, {} bytes, {} failed", summary.objects_downloaded,
//!          summary.bytes_downloaded, summary.failures.len());
//! assert_eq!(summary.objects_downloaded, 1);
//! assert!(download_dir.join("2024/a.json").is_file());
//! # Ok(())
//! # }
//! ```
//!
//! Without an async runtime, use [`Downloader::run_blocking`].
//!
//! The crate's tests run this API against a real S3 server over HTTP (the
//! `s3fetch-testkit` crate); `tests/engine.rs` is a runnable tour of it.

// The stages and the ground they stand on: docs/architecture.md draws which imports which.
#![warn(missing_docs, unreachable_pub)]

mod checksum;
mod error;
mod fetch;
mod hash;
mod keyspace;
mod object;
mod options;
pub mod paths;
mod plan;
mod progress;
mod report;
mod resume;
mod run;
mod s3;
mod select;
mod stream;
mod timestamp;
mod tuning;
mod uri;
mod write;

pub use write::remove_temporary_files;

pub use error::{error_chain, Category, DirProblem, Error, Result, ServiceError, ServiceErrorKind};
pub use keyspace::{shard_of, KeyRange, Shard, ShardBy};
pub use object::ObjectInfo;
pub use options::{
    parse_rate, parse_size, ByteSize, ChecksumMode, Compare, DownloadOptions, DEFAULT_CONCURRENCY,
    DEFAULT_DELIMITER, DEFAULT_LIST_CONCURRENCY, DEFAULT_MULTIPART_THRESHOLD, DEFAULT_PART_SIZE,
    MIN_MAX_MEMORY,
};
pub use plan::{Plan, PlanOptions, MAX_SHARDS};
pub use progress::{DownloadResult, Failure, NoReporter, Outcome, Reporter, SkipReason, Summary};
pub use report::JsonLines;
pub use run::{download, Downloader};
pub use s3::client::ClientOptions;
pub use s3::retry::{RetryPolicy, DEFAULT_IDLE_TIMEOUT, DEFAULT_RETRIES};
pub use s3::RequestPayer;
pub use select::filter::{parse_time, GlobRule, KeyFilter};
pub use stream::{cat, CatFormat, CatSummary, ObjectStream, StreamedObject};
pub use uri::S3Uri;

/// Re-exported so callers can build their own client, credentials and cancellation token.
pub use aws_credential_types;
pub use aws_sdk_s3;
pub use tokio_util::sync::CancellationToken;
