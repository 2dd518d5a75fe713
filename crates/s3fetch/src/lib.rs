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
//! ```no_run
//! use std::sync::Arc;
//! use s3fetch::{DownloadOptions, DownloadResult, Downloader, Reporter, S3Uri};
//!
//! struct PrintKeys;
//! impl Reporter for PrintKeys {
//!     fn download_finished(&self, result: &DownloadResult) {
//!         if result.success {
//!             println!("{}", result.key);
//!         }
//!     }
//! }
//!
//! # async fn run() -> s3fetch::Result<()> {
//! let options = DownloadOptions::new(S3Uri::parse("s3://my-bucket/logs/2024/")?)
//!     .download_dir("/tmp/logs")
//!     .regex(r"\.json$")
//!     .concurrency(100);
//! let summary = Downloader::new(options).reporter(Arc::new(PrintKeys)).run().await?;
//! println!("{} objects, {} bytes, {} failed", summary.objects_downloaded,
//!          summary.bytes_downloaded, summary.failures.len());
//! # Ok(())
//! # }
//! ```
//!
//! Without an async runtime, use [`Downloader::run_blocking`].
//!
//! The crate's tests run this API against a real S3 server over HTTP (the
//! `s3fetch-testkit` crate); `tests/engine.rs` is a runnable tour of it.

mod client;
mod download;
mod error;
mod filter;
mod listing;
pub mod paths;
mod progress;
mod transfer;
mod uri;
mod write;

pub use client::ClientOptions;
pub use download::{download, DownloadOptions, Downloader, DEFAULT_CONCURRENCY};
pub use error::{Error, Result, ServiceError};
pub use filter::KeyFilter;
pub use progress::{DownloadResult, Failure, NoReporter, ObjectInfo, Reporter, Summary};
pub use uri::S3Uri;

/// Re-exported so callers can build their own client and cancellation token.
pub use aws_sdk_s3;
pub use tokio_util::sync::CancellationToken;
