//! Runs over a directory that already holds files: `--sync` and `--skip-existing`,
//! `--compare etag` where extended attributes are missing, the objects' times kept.

use std::path::Path;
use std::time::{Duration, SystemTime};

use crate::common::run;
use crate::with_data;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sync_run_over_complete_files_sends_no_get_and_counts_them_skipped() {
    let env = with_data().await;
    env.fetch(&["s3://bkt/data/", "-q"]).await.assert_success();

    for flag in ["--sync", "--skip-existing"] {
        env.server().reset_request_counts();
        let out = env.fetch(&["s3://bkt/data/", flag]).await;
        out.assert_success();
        assert_eq!(env.server().request_counts().get, 0, "{flag}: no GET");
        assert_eq!(
            out.stdout(),
            "",
            "{flag}: simple mode prints no skipped key"
        );
    }
    std::fs::write(env.dir().join("00001.txt"), "changed, longer").unwrap();
    env.fetch(&["s3://bkt/data/", "--sync", "--progress", "detailed"])
        .await
        .assert_stdout_contains("data/00001.txt\n")
        .assert_stdout_contains("data/00002.txt (skipped: up to date)")
        .assert_stdout_contains("Objects downloaded: 1\n  Objects skipped: 30\n");
    assert_eq!(env.read("00001.txt"), b"object 1");
}

/// Where the file system has no extended attributes (the test seam `S3FETCH_TEST_NO_XATTR`
/// stands in for one), `--compare etag` keeps its records in `.s3fetch-etags.jsonl` in the
/// download directory, and they still tell a rewrite that size and time miss.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compare_etag_falls_back_to_an_index_file_without_extended_attributes() {
    let env = with_data().await;
    let server = env.server();
    let when = SystemTime::now() - Duration::from_secs(3600);
    server.put_object_at("bkt", "data/00001.txt", "object 1", when);
    let sync = || {
        let mut cmd = env.command();
        cmd.env("S3FETCH_TEST_NO_XATTR", "1")
            .args(["s3://bkt/data/", "-q", "--sync", "--compare", "etag"])
            .arg("--download-dir")
            .arg(env.dir());
        run(cmd)
    };
    sync().await.assert_success();
    let index = std::fs::read_to_string(env.dir().join(".s3fetch-etags.jsonl")).unwrap();
    let records: Vec<serde_json::Value> = index
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(records.len(), 31, "one line per file: {index}");
    assert!(records
        .iter()
        .any(|r| r["path"] == "00001.txt" && r["etag"].as_str().unwrap().starts_with('"')));

    server.reset_request_counts();
    sync().await.assert_success();
    assert_eq!(server.request_counts().get, 0, "the index is read back");

    // Rewritten with the same size and LastModified: only the recorded ETag tells.
    server.put_object_at("bkt", "data/00001.txt", "OBJECT 1", when);
    server.reset_request_counts();
    sync().await.assert_success();
    assert_eq!(server.request_counts().get, 1);
    assert_eq!(env.read("00001.txt"), b"OBJECT 1");

    // A file put in place by other means (a new inode, its time kept) carries no record.
    let (original, copy) = (env.dir().join("00002.txt"), env.dir().join("copy"));
    std::fs::copy(&original, &copy).unwrap();
    let time = std::fs::metadata(&original).unwrap().modified().unwrap();
    std::fs::File::options()
        .write(true)
        .open(&copy)
        .unwrap()
        .set_modified(time)
        .unwrap();
    std::fs::rename(&copy, &original).unwrap();
    server.reset_request_counts();
    sync().await.assert_success();
    assert_eq!(server.request_counts().get, 1, "the copy is fetched again");
    env.assert_no_temp_files();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn files_keep_the_objects_time_unless_no_preserve_mtime() {
    let env = with_data().await;
    let hour_ago = SystemTime::now() - Duration::from_secs(3600);
    env.server()
        .put_object_at("bkt", "data/old.txt", "old", hour_ago);
    let mtime = |dir: &Path| {
        std::fs::metadata(dir.join("old.txt"))
            .unwrap()
            .modified()
            .unwrap()
    };
    env.fetch(&["s3://bkt/data/old", "-q"])
        .await
        .assert_success();
    let off = mtime(env.dir())
        .duration_since(hour_ago)
        .unwrap_or_else(|e| e.duration());
    assert!(off < Duration::from_millis(1), "{off:?}");
    let now = tempfile::tempdir().unwrap();
    env.fetch_into(
        now.path(),
        &["s3://bkt/data/old", "-q", "--no-preserve-mtime"],
    )
    .await
    .assert_success();
    assert!(mtime(now.path()) > hour_ago + Duration::from_secs(3000));
}
