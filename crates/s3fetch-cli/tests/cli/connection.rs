//! Reaching the store: `--endpoint-url` and an endpoint for S3 alone, unsigned requests,
//! missing or expired credentials, HTTPS with a private CA.

use std::time::{Duration, Instant};

use s3fetch_testkit::ServerOptions;

use crate::common::{run, TestEnv};
use crate::with_data;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn endpoint_flag_and_unsigned_requests() {
    let env = with_data().await;
    let server = env.server();
    server.create_bucket("pub");
    server.put_object("pub", "open/file", b"public");
    server.set_public("pub", true);
    // No credentials anywhere: --no-sign-request must not look for any.
    let mut cmd = env.bare_command();
    cmd.env("AWS_EC2_METADATA_DISABLED", "true")
        .args([
            "s3://pub/open/",
            "--no-sign-request",
            "--endpoint-url",
            &server.endpoint(),
        ])
        .arg("--download-dir")
        .arg(env.dir());
    run(cmd).await.assert_success();
    assert_eq!(env.read("file"), b"public");
    // Unsigned requests to a private bucket are refused.
    let mut cmd = env.bare_command();
    cmd.args([
        "s3://bkt/",
        "--no-sign-request",
        "--endpoint-url",
        &server.endpoint(),
    ])
    .arg("--download-dir")
    .arg(env.dir());
    run(cmd)
        .await
        .assert_exit(1)
        .assert_stderr_contains("AccessDenied");
}

/// An endpoint given for S3 alone (`AWS_ENDPOINT_URL_S3`, or a profile's `services` section)
/// is where every request goes, GETs sent without the SDK included.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_endpoint_given_for_s3_alone_is_used_for_every_request() {
    let env = with_data().await;
    let work = tempfile::tempdir().unwrap();
    let config = work.path().join("config");
    std::fs::write(
        &config,
        format!(
            "[default]\nservices = local\n[services local]\ns3 =\n  endpoint_url = {}\n",
            env.server().endpoint()
        ),
    )
    .unwrap();
    for by_profile in [false, true] {
        let dir = tempfile::tempdir().unwrap();
        let mut cmd = env.command();
        cmd.env_remove("AWS_ENDPOINT_URL");
        if by_profile {
            cmd.env("AWS_CONFIG_FILE", &config);
        } else {
            cmd.env("AWS_ENDPOINT_URL_S3", env.server().endpoint());
        }
        cmd.args(["s3://bkt/data/", "-q", "--download-dir"])
            .arg(dir.path());
        run(cmd).await.assert_success();
        assert_eq!(
            std::fs::read_to_string(dir.path().join("00000.txt")).unwrap(),
            "object 0",
            "profile {by_profile}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_or_expired_credentials_exit_1_with_a_hint() {
    let env = with_data().await;
    std::fs::create_dir(env.home().join(".aws")).unwrap();
    std::fs::write(
        env.home().join(".aws/config"),
        "[profile sso-user]\nsso_start_url = https://sso.invalid/start\nsso_region = us-east-1\n\
         sso_account_id = 123456789012\nsso_role_name = Reader\nregion = us-east-1\n",
    )
    .unwrap();
    // No credentials in the environment; the home directory's AWS config has only a profile.
    let bare = || {
        let mut cmd = env.bare_command();
        cmd.env("AWS_EC2_METADATA_DISABLED", "true")
            .args([
                "s3://bkt/",
                "--endpoint-url",
                &env.server().endpoint(),
                "--download-dir",
            ])
            .arg(env.dir());
        cmd
    };
    run(bare())
        .await
        .assert_exit(1)
        .assert_stderr_contains("no credentials found")
        .assert_stderr_contains("hint: no usable AWS credentials");

    // An SSO profile whose token cache is empty (never signed in, or expired and cleared).
    let mut cmd = bare();
    cmd.args(["--profile", "sso-user"]);
    tokio::time::timeout(Duration::from_secs(60), run(cmd))
        .await
        .expect("no hang")
        .assert_exit(1)
        .assert_stderr_contains("sso/cache")
        .assert_stderr_contains("aws sso login");
    assert_eq!(
        env.server().request_counts().list,
        0,
        "nothing unsigned was sent"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_with_a_private_ca_and_an_untrusted_certificate() {
    let env = TestEnv::start_with(ServerOptions {
        tls: true,
        ..Default::default()
    })
    .await;
    let server = env.server();
    server.create_bucket("bkt");
    server.put_object("bkt", "tls/a.txt", b"over https");
    let ca = server.ca_file().expect("a TLS server has a CA").to_owned();
    assert!(server.endpoint().starts_with("https://"));
    // Trusted through AWS_CA_BUNDLE (set by aws_env for a TLS server), or --ca-bundle.
    for flag in [false, true] {
        let dir = tempfile::tempdir().unwrap();
        let mut cmd = env.command();
        if flag {
            cmd.env_remove("AWS_CA_BUNDLE").arg("--ca-bundle").arg(&ca);
        }
        cmd.args(["s3://bkt/tls/", "--download-dir"])
            .arg(dir.path());
        run(cmd).await.assert_success();
        assert_eq!(
            std::fs::read(dir.path().join("a.txt")).unwrap(),
            b"over https"
        );
    }
    // Not trusted: one clear error with the fix, at once (not retried), exit 1.
    let mut cmd = env.command();
    cmd.env_remove("AWS_CA_BUNDLE")
        .args(["s3://bkt/tls/", "--download-dir"])
        .arg(env.dir());
    let started = Instant::now();
    run(cmd)
        .await
        .assert_exit(1)
        .assert_stderr_contains("invalid peer certificate")
        .assert_stderr_contains("hint:")
        .assert_stderr_contains("--ca-bundle");
    assert!(started.elapsed() < Duration::from_secs(5), "not retried");
    assert!(env.files().is_empty());
    // A bundle that is not one is a usage error before any request.
    let not_pem = env.dir().join("not.pem");
    std::fs::write(&not_pem, "hello").unwrap();
    let mut cmd = env.command();
    cmd.arg("--ca-bundle")
        .arg(&not_pem)
        .args(["s3://bkt/tls/", "--download-dir"])
        .arg(env.dir());
    run(cmd)
        .await
        .assert_exit(2)
        .assert_stderr_contains("--ca-bundle")
        .assert_stderr_contains("no PEM certificate");
}
