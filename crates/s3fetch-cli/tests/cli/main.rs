//! The real `s3fetch` binary against the test kit's S3 server over HTTP, one module per
//! concern, all in one test binary (each binary links the CLI and the server once). The
//! harness is [`common`]; snapshots of `--help`, the summary and the JSON lines are in
//! `tests/snapshots/` (to accept a change: `INSTA_UPDATE=always cargo test -p s3fetch-cli
//! --test cli`, then review the diff).

mod common;

mod bandwidth;
mod cat;
mod connection;
mod errors;
mod faults;
mod generated;
mod help;
mod interrupt;
mod lock;
mod memory;
mod output;
mod selection;
mod shards;
mod stores;
mod sync;
mod tuning;

use std::collections::BTreeSet;

use common::TestEnv;

/// A [`TestEnv`] whose bucket `bkt` holds `data/00000.txt`..`data/00029.txt` ("object N"),
/// `data/sub/deep.json` and a directory marker `data/dir/`.
async fn with_data() -> TestEnv {
    let env = TestEnv::start().await;
    let server = env.server();
    server.create_bucket("bkt");
    for i in 0..30 {
        server.put_object("bkt", &format!("data/{i:05}.txt"), format!("object {i}"));
    }
    server.put_object("bkt", "data/sub/deep.json", b"{}");
    server.put_object("bkt", "data/dir/", Vec::new());
    env
}

/// The keys a download of `s3://bkt/data/` from [`with_data`] takes.
fn expected_keys() -> BTreeSet<String> {
    let mut keys: BTreeSet<String> = (0..30).map(|i| format!("data/{i:05}.txt")).collect();
    keys.insert("data/sub/deep.json".into());
    keys
}
