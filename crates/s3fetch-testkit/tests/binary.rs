//! The `s3fetch-testkit` binary: `generate` then `serve`, and argument errors.

mod common;

use std::process::{Command, Stdio};

const BIN: &str = env!("CARGO_BIN_EXE_s3fetch-testkit");

struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test]
async fn generate_then_serve() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().to_str().unwrap();
    for _ in 0..2 {
        let out = Command::new(BIN)
            .args([
                "generate",
                "--data",
                data,
                "--bucket",
                "bin-test",
                "--objects",
                "25",
                "--size",
                "10",
            ])
            .args(["--folders", "3", "--suffix-every", "5", "--suffix", ".json"])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(String::from_utf8_lossy(&out.stdout).contains("objects=25"));
    }

    let mut child = Command::new(BIN)
        .args([
            "serve",
            "--port",
            "0",
            "--data",
            data,
            "--public-bucket",
            "bin-test",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let _guard = KillOnDrop(child);
    let endpoint = common::endpoint_line(stdout).await;
    assert!(endpoint.starts_with("http://127.0.0.1:"), "{endpoint}");

    let c = common::client_with(
        &endpoint,
        s3fetch_testkit::DEFAULT_ACCESS_KEY,
        s3fetch_testkit::DEFAULT_SECRET_KEY,
    );
    let listing = common::list_all(&c, "bin-test", None, None, Some(10), None).await;
    assert_eq!(listing.keys.len(), 25);
    assert_eq!(
        listing.keys.iter().filter(|k| k.ends_with(".json")).count(),
        5
    );
    let got = c
        .get_object()
        .bucket("bin-test")
        .key(&listing.keys[0])
        .send()
        .await
        .unwrap();
    assert_eq!(got.content_length(), Some(10));
}

#[test]
fn bad_arguments_fail_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().to_str().unwrap();
    let out = Command::new(BIN)
        .args(["generate", "--data", data, "--bucket", "Bad_Name"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("invalid bucket name"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");

    let out = Command::new(BIN)
        .args(["serve", "--port", "0"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--data"));

    let out = Command::new(BIN)
        .args(["generate", "--data", data, "--objects", "lots"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn list_prints_the_store_contents() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().to_str().unwrap();
    let out = Command::new(BIN)
        .args([
            "generate",
            "--data",
            data,
            "--bucket",
            "listed",
            "--objects",
            "12",
        ])
        .args([
            "--size",
            "7",
            "--folders",
            "3",
            "--folder-layout",
            "contiguous",
        ])
        .output()
        .unwrap();
    assert!(out.status.success());
    let out = Command::new(BIN)
        .args(["list", "--data", data, "--bucket", "listed"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 12);
    assert!(
        lines[0].starts_with("folder-0000/obj-00000000.bin\t7\t"),
        "{}",
        lines[0]
    );
    assert!(
        lines[11].starts_with("folder-0002/obj-00000011.bin\t7\t"),
        "{}",
        lines[11]
    );
    let md5 = lines[0].rsplit('\t').next().unwrap();
    assert_eq!(md5.len(), 32);

    let out = Command::new(BIN)
        .args(["list", "--data", data, "--bucket", "missing"])
        .output()
        .unwrap();
    assert!(!out.status.success());
}

/// Sends `signal` (a `kill` name: `USR1`, `TERM`) to the process `pid`.
fn kill(signal: &str, pid: u32) {
    let ok = Command::new("kill")
        .args([&format!("-{signal}"), &pid.to_string()])
        .status()
        .unwrap();
    assert!(ok.success());
}

/// Waits (up to 10 s) for `path` to exist, then returns its contents.
fn wait_for_file(path: &std::path::Path) -> String {
    let t0 = std::time::Instant::now();
    loop {
        if let Ok(text) = std::fs::read_to_string(path) {
            return text;
        }
        assert!(
            t0.elapsed() < std::time::Duration::from_secs(10),
            "{} never appeared",
            path.display()
        );
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
}

#[tokio::test]
async fn sigusr1_writes_the_counts_so_far() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let stats = dir.path().join("stats.json");
    {
        let store = s3fetch_testkit::Store::open(&data).unwrap();
        store.create_bucket("counted").unwrap();
        store.put_object("counted", "a", b"1").unwrap();
        store.put_object("counted", "b", b"2").unwrap();
    }
    let mut child = Command::new(BIN)
        .args(["serve", "--port", "0", "--data"])
        .arg(&data)
        .arg("--stats-file")
        .arg(&stats)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let pid = child.id();
    let stdout = child.stdout.take().unwrap();
    let mut guard = KillOnDrop(child);
    let endpoint = common::endpoint_line(stdout).await;
    // Right after the ready line: the handler is in place (the default action would kill).
    kill("USR1", pid);
    let first = wait_for_file(&stats);
    assert!(first.starts_with("{\"fault_counts\":{}"), "{first}");
    assert!(!first.contains("GetObject"), "{first}");

    let c = common::client_with(
        &endpoint,
        s3fetch_testkit::DEFAULT_ACCESS_KEY,
        s3fetch_testkit::DEFAULT_SECRET_KEY,
    );
    let listing = common::list_all(&c, "counted", None, None, None, None).await;
    assert_eq!(listing.keys, ["a", "b"]);
    for key in ["a", "b"] {
        let r = c.get_object().bucket("counted").key(key).send().await;
        r.unwrap();
    }
    std::fs::remove_file(&stats).unwrap();
    kill("USR1", pid);
    let now = wait_for_file(&stats);
    assert!(now.contains("\"GetObject\":2"), "{now}");
    assert!(now.contains("\"ListObjectsV2\":1"), "{now}");
    assert!(!dir.path().join("stats.json.tmp").exists());
    // Still serving.
    assert!(guard.0.try_wait().unwrap().is_none());
    c.head_object()
        .bucket("counted")
        .key("a")
        .send()
        .await
        .unwrap();

    kill("TERM", pid);
    let status = guard.0.wait().unwrap();
    assert!(status.success());
    let last = std::fs::read_to_string(&stats).unwrap();
    assert!(last.contains("\"HeadObject\":1"), "{last}");
}
