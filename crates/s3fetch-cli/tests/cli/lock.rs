//! `--lock`: several identical commands into one directory (the ranks of a node) fetch each
//! object once; the others wait, say for whom, and report the files as up to date. A holder
//! that dies releases the lock.

use std::collections::BTreeSet;
use std::fs::File;
use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Child, Stdio};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use crate::common::{until, Signal, TestEnv};
use crate::{expected_keys, with_data};

const RANKS: usize = 8;
const LOCK_FILE: &str = ".s3fetch.lock";

/// One `s3fetch --lock --output json` started, its stderr read as it comes.
struct Rank {
    child: Child,
    stderr: Arc<Mutex<String>>,
    reader: JoinHandle<()>,
    stdout: JoinHandle<String>,
}

impl Rank {
    fn start(env: &TestEnv, args: &[&str]) -> Rank {
        let mut cmd = env.command();
        cmd.args(args)
            .args(["--lock", "--output", "json", "--download-dir"])
            .arg(env.dir())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("starting s3fetch");
        let stderr = Arc::new(Mutex::new(String::new()));
        let reader = std::thread::spawn({
            let (pipe, stderr) = (child.stderr.take().unwrap(), stderr.clone());
            move || {
                for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                    stderr.lock().unwrap().push_str(&format!("{line}\n"));
                }
            }
        });
        let stdout = std::thread::spawn({
            let mut pipe = child.stdout.take().unwrap();
            move || {
                let mut out = String::new();
                pipe.read_to_string(&mut out).unwrap();
                out
            }
        });
        Rank {
            child,
            stderr,
            reader,
            stdout,
        }
    }

    fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    /// Waits for the end: the exit code, stdout and stderr.
    async fn finish(self) -> (Option<i32>, String, String) {
        let Rank {
            mut child,
            stderr,
            reader,
            stdout,
        } = self;
        let status = tokio::time::timeout(
            Duration::from_secs(60),
            tokio::task::spawn_blocking(move || child.wait()),
        )
        .await
        .expect("the run ends within a minute")
        .unwrap()
        .unwrap();
        reader.join().unwrap();
        let stdout = stdout.join().unwrap();
        let stderr = stderr.lock().unwrap().clone();
        (status.code(), stdout, stderr)
    }
}

/// Every run exits 0 and reports every key (downloaded or up to date); the objects were
/// fetched once in all; the directory holds the files and nothing else.
async fn assert_fetched_once(env: &TestEnv, ranks: Vec<Rank>) -> Vec<String> {
    let mut stderrs = Vec::new();
    for rank in ranks {
        let (code, stdout, stderr) = rank.finish().await;
        assert_eq!(code, Some(0), "stderr:\n{stderr}");
        let reported: BTreeSet<String> = stdout
            .lines()
            .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
            .filter(|l| l["event"] == "downloaded" || l["event"] == "skipped")
            .map(|l| l["key"].as_str().unwrap().to_owned())
            .collect();
        assert_eq!(reported, expected_keys(), "stderr:\n{stderr}");
        assert!(
            stderr.matches("note: waiting for").count() <= 1,
            "said once: {stderr}"
        );
        stderrs.push(stderr);
    }
    assert_eq!(
        env.server().request_counts().get,
        expected_keys().len() as u64,
        "each object fetched once"
    );
    env.assert_no_temp_files();
    let files: BTreeSet<String> = expected_keys()
        .iter()
        .map(|k| k.strip_prefix("data/").unwrap().to_owned())
        .collect();
    assert_eq!(env.files(), files, "the files, and no lock file left");
    stderrs
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn eight_runs_started_at_once_fetch_each_object_once() {
    let env = with_data().await;
    let ranks: Vec<Rank> = (0..RANKS)
        .map(|_| Rank::start(&env, &["s3://bkt/data/"]))
        .collect();
    assert_fetched_once(&env, ranks).await;
}

/// While another holds the lock, every run waits and says whom for (the pid and host the
/// lock file names); released, they fetch each object once between them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runs_wait_for_the_holder_they_name_then_fetch_each_object_once() {
    let env = with_data().await;
    let held = File::options()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(env.dir().join(LOCK_FILE))
        .unwrap();
    held.lock().unwrap();
    (&held)
        .write_all(br#"{"pid": 4242, "host": "rank-zero"}"#)
        .unwrap();
    let ranks: Vec<Rank> = (0..RANKS)
        .map(|_| Rank::start(&env, &["s3://bkt/data/"]))
        .collect();
    until(Duration::from_secs(30), "every run says it waits", || {
        ranks
            .iter()
            .all(|r| r.stderr().contains("note: waiting for"))
    })
    .await;
    assert_eq!(env.server().request_counts().get, 0, "nothing fetched yet");
    drop(held);
    for stderr in assert_fetched_once(&env, ranks).await {
        assert_eq!(
            stderr
                .matches(
                    "note: waiting for s3fetch pid 4242 on rank-zero to finish downloading into "
                )
                .count(),
            1,
            "{stderr}"
        );
    }
}

/// A holder killed with SIGKILL (stuck on its listing's second page, held back by the
/// server) leaves no lock: the next run goes ahead and completes the download.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_holder_that_dies_releases_the_lock() {
    let env = TestEnv::start().await;
    let server = env.server();
    server.create_bucket("bkt");
    for i in 0..1001 {
        server.put_object("bkt", &format!("data/{i:05}"), format!("{i}"));
    }
    let gate = server.gate_list_pages();
    let holder = env.spawn(&["s3://bkt/data/", "--lock", "--list-concurrency", "1"]);
    let lock = env.dir().join(LOCK_FILE);
    until(
        Duration::from_secs(30),
        "the holder waits for its second page",
        || gate.waiting() > 0,
    )
    .await;
    let named = std::fs::read_to_string(&lock).unwrap();
    assert!(named.contains("\"pid\""), "{named}");
    holder.signal(Signal::KILL);
    holder.wait(Duration::from_secs(30)).await;
    assert!(lock.exists(), "a killed holder cannot remove its lock file");
    gate.open();
    let next = tokio::time::timeout(
        Duration::from_secs(60),
        env.fetch(&["s3://bkt/data/", "--lock", "-q"]),
    )
    .await
    .expect("the next run does not wait for a dead holder");
    let out = next.assert_success().stderr();
    assert!(!out.contains("waiting for"), "{out}");
    assert_eq!(env.files().len(), 1001);
    env.assert_no_temp_files();
    assert!(!lock.exists());
}
