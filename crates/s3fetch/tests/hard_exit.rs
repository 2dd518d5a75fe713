//! `remove_temporary_files`, the clean-up before a hard exit, in a process of its own (it
//! removes every temporary file of the process).

use std::time::Duration;

use s3fetch::{DownloadOptions, Downloader, ObjectInfo, Reporter, S3Uri};
use s3fetch_testkit::fixtures::temporary_files;
use s3fetch_testkit::{ServerOptions, TestServer};

/// Signals once the first download has started.
struct Started(tokio::sync::Notify);

impl Reporter for Started {
    fn bytes_written(&self, _key: &str, _bytes: u64) {
        self.0.notify_one();
    }
    fn download_started(&self, _object: &ObjectInfo) {}
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn temporary_files_of_a_running_download_can_be_removed_at_once() {
    // A slow server: the large object's parts stay in flight while we look.
    let server = TestServer::start_with(ServerOptions {
        get_latency: Duration::from_millis(300),
        ..ServerOptions::default()
    })
    .await
    .unwrap();
    server.create_bucket("bkt");
    server.put_object("bkt", "big", vec![1u8; 8 * 1024 * 1024]);
    let dir = tempfile::tempdir().unwrap();
    let mut client_options = s3fetch::ClientOptions::default();
    client_options.endpoint_url = Some(server.endpoint());
    std::env::set_var("AWS_ACCESS_KEY_ID", server.access_key());
    std::env::set_var("AWS_SECRET_ACCESS_KEY", server.secret_key());
    let started = std::sync::Arc::new(Started(tokio::sync::Notify::new()));
    let run = tokio::spawn(
        Downloader::new(
            DownloadOptions::new(S3Uri::parse("s3://bkt/big").unwrap())
                .download_dir(dir.path())
                .client_options(client_options)
                .multipart_threshold(1024 * 1024)
                .part_size(1024 * 1024)
                // A plain temporary file, not a partial kept for resuming (which a hard
                // exit leaves, see tests/engine.rs).
                .resume(false),
        )
        .reporter(started.clone())
        .run(),
    );
    tokio::time::timeout(Duration::from_secs(30), started.0.notified())
        .await
        .unwrap();
    let temps = || temporary_files(dir.path()).len();
    assert_eq!(temps(), 1, "a temporary file while the download runs");
    assert_eq!(s3fetch::remove_temporary_files(), 1);
    assert_eq!(temps(), 0);
    run.abort();
}
