//! HTTPS: a TLS server answers clients that trust its CA and only those; ALPN offers
//! HTTP/2 only when asked; latency and the bandwidth cap hold over TLS; `serve --tls`.
//! (Faults over TLS: the `*_over_tls` tests in `faults.rs`.)

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use s3fetch_testkit::{ServerOptions, TestServer};
use tokio::net::TcpStream;

async fn tls_server(options: ServerOptions) -> TestServer {
    let server = TestServer::start_with(ServerOptions {
        tls: true,
        ..options
    })
    .await
    .unwrap();
    server.create_bucket("bkt");
    server.put_object("bkt", "hello.txt", b"hello over tls");
    server
}

#[tokio::test]
async fn a_client_that_trusts_the_ca_gets_objects() {
    let server = tls_server(ServerOptions::default()).await;
    let endpoint = server.endpoint();
    let port = server.addr().port();
    assert_eq!(endpoint, format!("https://127.0.0.1:{port}"));
    let pem = server.ca_pem().unwrap();
    assert!(pem.starts_with("-----BEGIN CERTIFICATE-----"), "{pem}");
    let file = server.ca_file().unwrap();
    assert_eq!(file, server.data_dir().join("ca.pem"));
    assert_eq!(std::fs::read_to_string(file).unwrap(), pem);

    let c = common::client(&server);
    let got = c
        .get_object()
        .bucket("bkt")
        .key("hello.txt")
        .send()
        .await
        .unwrap();
    let body = got.body.collect().await.unwrap().into_bytes();
    assert_eq!(&body[..], b"hello over tls");
    let list = c.list_objects_v2().bucket("bkt").send().await.unwrap();
    assert_eq!(list.key_count(), Some(1));
    assert_eq!(server.request_counts().get, 1);

    // The certificate is valid for `localhost` too.
    let by_name = common::client_with(
        &format!("https://localhost:{port}"),
        server.access_key(),
        server.secret_key(),
    );
    let by_name = common::trusting(&by_name, pem);
    by_name.head_bucket().bucket("bkt").send().await.unwrap();
}

#[tokio::test]
async fn a_client_that_does_not_trust_the_ca_fails_with_a_certificate_error() {
    let server = tls_server(ServerOptions::default()).await;
    // The SDK's default client trusts the system's roots only.
    let c = common::client_with(&server.endpoint(), server.access_key(), server.secret_key());
    let err = c
        .get_object()
        .bucket("bkt")
        .key("hello.txt")
        .send()
        .await
        .unwrap_err();
    let msg = format!("{:?}", anyhow::Error::new(err));
    assert!(msg.contains("invalid peer certificate"), "{msg}");
    assert!(msg.contains("UnknownIssuer"), "{msg}");
    // Nor does another server's CA help.
    let other = tls_server(ServerOptions::default()).await;
    let c = common::trusting(&c, other.ca_pem().unwrap());
    let err = c.head_bucket().bucket("bkt").send().await.unwrap_err();
    let msg = format!("{:?}", anyhow::Error::new(err));
    assert!(msg.contains("invalid peer certificate"), "{msg}");
    // No request got past the handshake.
    assert_eq!(server.request_counts().http_requests, 0);
}

/// The ALPN protocol the server picks when a client offers `h2` and `http/1.1`.
async fn negotiated_alpn(server: &TestServer) -> Option<Vec<u8>> {
    let mut roots = rustls::RootCertStore::empty();
    let ca = CertificateDer::from_pem_slice(server.ca_pem().unwrap().as_bytes()).unwrap();
    roots.add(ca).unwrap();
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    let tcp = TcpStream::connect(server.addr()).await.unwrap();
    let name = ServerName::try_from("127.0.0.1").unwrap();
    let tls = tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(name, tcp)
        .await
        .unwrap();
    tls.get_ref().1.alpn_protocol().map(<[u8]>::to_vec)
}

#[tokio::test]
async fn alpn_offers_http2_only_when_asked() {
    let h1 = tls_server(ServerOptions::default()).await;
    assert_eq!(
        negotiated_alpn(&h1).await.as_deref(),
        Some(&b"http/1.1"[..])
    );
    let h2 = tls_server(ServerOptions {
        http2: true,
        ..ServerOptions::default()
    })
    .await;
    assert_eq!(negotiated_alpn(&h2).await.as_deref(), Some(&b"h2"[..]));
    // The SDK offers h2 too, so this GET goes over HTTP/2.
    let got = common::client(&h2)
        .get_object()
        .bucket("bkt")
        .key("hello.txt")
        .send()
        .await
        .unwrap();
    assert_eq!(got.content_length(), Some(14));
}

#[tokio::test]
async fn latency_and_the_bandwidth_cap_hold_over_tls() {
    let rate = 4 * 1024 * 1024;
    let server = tls_server(ServerOptions {
        bandwidth_bytes_per_sec: Some(rate),
        get_latency: Duration::from_millis(150),
        ..ServerOptions::default()
    })
    .await;
    let body = vec![7u8; 2 * 1024 * 1024];
    server.put_object("bkt", "big", &body);
    let c = common::client(&server);
    c.head_bucket().bucket("bkt").send().await.unwrap(); // handshake done
    let t = Instant::now();
    let head = c.head_object().bucket("bkt").key("big").send().await;
    assert!(head.is_ok());
    assert!(
        t.elapsed() >= Duration::from_millis(150),
        "{:?}",
        t.elapsed()
    );
    let t = Instant::now();
    let got = c
        .get_object()
        .bucket("bkt")
        .key("big")
        .send()
        .await
        .unwrap();
    let got = got.body.collect().await.unwrap().into_bytes();
    let secs = t.elapsed().as_secs_f64();
    assert_eq!(got.len(), body.len());
    // 2 MiB at 4 MiB/s ≈ 0.5 s (plus the latency, minus the initial burst).
    assert!(secs > 0.45, "too fast for the cap: {secs}");
    assert!(secs < 5.0, "too slow: {secs}");
}

#[tokio::test]
async fn serve_tls_prints_the_endpoint_and_the_ca_file() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    {
        let store = s3fetch_testkit::Store::open(&data).unwrap();
        store.create_bucket("bkt").unwrap();
        store.put_object("bkt", "k", b"v").unwrap();
    }
    // Default: DATA/ca.pem, announced after the endpoint.
    let data_dir = data.clone();
    let [endpoint, ca_file] = tokio::task::spawn_blocking(move || {
        let mut child = Command::new(env!("CARGO_BIN_EXE_s3fetch-testkit"))
            .args(["serve", "--port", "0", "--tls", "--data"])
            .arg(data_dir)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let mut lines = [String::new(), String::new()];
        for line in &mut lines {
            stdout.read_line(line).unwrap();
        }
        let _ = child.kill();
        let _ = child.wait();
        lines.map(|l| l.trim().to_owned())
    })
    .await
    .unwrap();
    assert!(
        endpoint.starts_with("endpoint=https://127.0.0.1:"),
        "{endpoint}"
    );
    let want = std::path::absolute(data.join("ca.pem")).unwrap();
    assert_eq!(ca_file, format!("ca_file={}", want.display()));
    let pem = std::fs::read_to_string(&want).unwrap();
    assert!(pem.starts_with("-----BEGIN CERTIFICATE-----"));

    // --ca-file PATH, and a client trusting it gets through.
    let path = dir.path().join("trust.pem");
    let mut child = Command::new(env!("CARGO_BIN_EXE_s3fetch-testkit"))
        .args(["serve", "--port", "0", "--tls", "--data"])
        .arg(dir.path().join("data"))
        .arg("--ca-file")
        .arg(&path)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let endpoint = common::endpoint_line(stdout).await;
    let c = common::client_with(
        &endpoint,
        s3fetch_testkit::DEFAULT_ACCESS_KEY,
        s3fetch_testkit::DEFAULT_SECRET_KEY,
    );
    let c = common::trusting(&c, &std::fs::read_to_string(&path).unwrap());
    let got = c.get_object().bucket("bkt").key("k").send().await;
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(got.unwrap().content_length(), Some(1));

    // --ca-file needs --tls.
    let out = Command::new(env!("CARGO_BIN_EXE_s3fetch-testkit"))
        .args(["serve", "--data"])
        .arg(dir.path().join("data"))
        .args(["--ca-file", "x.pem"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
}
