//! The bucket-quirk flags of `s3fetch-testkit serve` switch on the same behaviours as the
//! `ServerOptions` fields (tested in depth in `regions.rs`, `requester_pays.rs`,
//! `list_quirks.rs`, `express.rs`), and bad values stop it with a clear message.

mod common;

use std::process::{Command, Stdio};

use aws_credential_types::Credentials;
use aws_sdk_s3::config::{BehaviorVersion, Region};
use aws_sdk_s3::Client;
use common::{client_with, code, status};
use s3fetch_testkit::{DEFAULT_ACCESS_KEY, DEFAULT_SECRET_KEY};

const BIN: &str = env!("CARGO_BIN_EXE_s3fetch-testkit");
const DIR: &str = "data--usw2-az1--x-s3";

struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test]
async fn serve_flags_switch_on_the_bucket_quirks() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = s3fetch_testkit::Store::open(dir.path()).unwrap();
        for b in ["west", "payer", "unordered", "ignoring", "refusing"] {
            store.create_bucket(b).unwrap();
            store
                .put_objects(b, (0..30).map(|i| (format!("k{i:02}"), b"x")))
                .unwrap();
        }
    }
    let mut child = Command::new(BIN)
        .args(["serve", "--port", "0", "--data"])
        .arg(dir.path())
        .args(["--bucket-region", "west=eu-central-1"])
        .args(["--requester-pays", "payer"])
        .args(["--unordered", "unordered"])
        .args(["--ignore-start-after", "ignoring"])
        .args(["--refuse-start-after", "refusing"])
        .args(["--directory-bucket", DIR])
        .args(["--pending-upload", &format!("{DIR}/in-progress/")])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let _guard = KillOnDrop(child);
    let endpoint = common::endpoint_line(stdout).await;
    let c = client_with(&endpoint, DEFAULT_ACCESS_KEY, DEFAULT_SECRET_KEY);

    let e = c.list_objects_v2().bucket("west").send().await.unwrap_err();
    assert_eq!((status(&e), code(&e).as_str()), (301, "PermanentRedirect"));
    let e = c
        .get_object()
        .bucket("payer")
        .key("k01")
        .send()
        .await
        .unwrap_err();
    assert_eq!((status(&e), code(&e).as_str()), (403, "AccessDenied"));
    let all = common::list_all(&c, "unordered", None, None, Some(4), None).await;
    assert_eq!(all.keys.len(), 30);
    assert!(all.keys.windows(2).any(|w| w[0] > w[1]), "not sorted");
    let page = c
        .list_objects_v2()
        .bucket("ignoring")
        .start_after("k10")
        .send()
        .await
        .unwrap();
    assert_eq!(page.key_count(), Some(30));
    let e = c
        .list_objects_v2()
        .bucket("refusing")
        .start_after("k10")
        .send()
        .await
        .unwrap_err();
    assert_eq!(status(&e), 501);

    // The directory bucket was created; an S3 Express client lists it through a session.
    let creds = Credentials::new(DEFAULT_ACCESS_KEY, DEFAULT_SECRET_KEY, None, None, "t");
    let express = Client::from_conf(
        aws_sdk_s3::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new("us-west-2"))
            .endpoint_url(&endpoint)
            .credentials_provider(creds)
            .build(),
    );
    let listed = express
        .list_objects_v2()
        .bucket(DIR)
        .delimiter("/")
        .send()
        .await
        .unwrap();
    let cps: Vec<&str> = listed
        .common_prefixes()
        .iter()
        .filter_map(|p| p.prefix())
        .collect();
    assert_eq!(cps, ["in-progress/"]);
}

#[test]
fn bad_quirk_flags_fail_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let serve = |extra: &[&str]| {
        Command::new(BIN)
            .args(["serve", "--port", "0", "--data"])
            .arg(dir.path())
            .args(extra)
            .output()
            .unwrap()
    };
    for (flags, message) in [
        (
            &["--directory-bucket", "plain-name"][..],
            "BASE--ZONE-ID--x-s3",
        ),
        (&["--bucket-region", "west"][..], "BUCKET=REGION"),
        (&["--bucket-region", "west=EU West"][..], "region name"),
        (&["--unordered", "Bad_Name"][..], "not a valid bucket name"),
        (
            &["--pending-upload", "data--usw2-az1--x-s3/no-slash"][..],
            "must end in '/'",
        ),
    ] {
        let out = serve(flags);
        assert_eq!(out.status.code(), Some(2), "{flags:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(message), "{flags:?}: {stderr}");
    }
    // A pending upload in a bucket that isn't a --directory-bucket: refused at start.
    let out = serve(&["--pending-upload", "data--usw2-az1--x-s3/up/"]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("must be a directory bucket"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}
