//! The lean GET against the test kit's S3 server (real SigV4 checks, real HTTP and TLS),
//! answer for answer beside the SDK's GET of the same object.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use aws_credential_types::provider::{future, ProvideCredentials, SharedCredentialsProvider};
use aws_credential_types::Credentials;
use futures::StreamExt;
use s3fetch_testkit::{ServerOptions, TestServer};

use super::*;
use crate::checksum::Expected;
use crate::s3::client::ClientOptions;
use crate::s3::{ByteRange, GetResponse, Settings, Store, S3};

const KEYS: &[&str] = &[
    "plain.txt",
    "dir/sub dir/with space+plus.bin",
    "ünïcode/ключ/日本.txt",
    "odd/%41?q=1&x#frag;=,@$!*'()[]",
    "double//slash/./dot/../up",
    "~tilde-_.dots...",
];

fn options(server: &TestServer, credentials: SharedCredentialsProvider) -> ClientOptions {
    ClientOptions {
        endpoint_url: Some(server.endpoint()),
        region: Some(server.region().to_owned()),
        credentials: Some(credentials),
        ca_bundle: server.ca_file().map(Into::into),
        ignore_environment: true,
        ..ClientOptions::default()
    }
}

fn keys(server: &TestServer) -> SharedCredentialsProvider {
    SharedCredentialsProvider::new(Credentials::new(
        server.access_key(),
        server.secret_key(),
        None,
        None,
        "test",
    ))
}

const VERIFY: Settings = Settings {
    verify: true,
    requester_pays: false,
    directory: false,
};

/// The lean GETs and the SDK's for `bucket`, as a run would build them.
async fn stores(options: &ClientOptions, bucket: &str) -> (Lean, S3) {
    let connection = options.connect(crate::tuning::Tuning::default()).await;
    let direct = connection
        .direct
        .as_ref()
        .expect("s3fetch built the client");
    let lean = Lean::new(direct, &connection.client, bucket, VERIFY)
        .await
        .expect("the test server's endpoint is plain SigV4");
    (
        lean,
        S3::sdk(connection.client.clone(), bucket.into(), VERIFY),
    )
}

async fn read(response: Result<GetResponse, ServiceError>) -> (ObjectHead, Vec<u8>) {
    let mut response = response.expect("GET answered");
    let mut bytes = Vec::new();
    while let Some(chunk) = response.body.next().await {
        bytes.extend_from_slice(&chunk.expect("body reads"));
    }
    (response.head, bytes)
}

fn server_with_objects(server: &TestServer) -> Vec<Vec<u8>> {
    server.create_bucket("bkt");
    KEYS.iter()
        .enumerate()
        .map(|(i, key)| {
            let body: Vec<u8> = (0..10_000 + i * 777).map(|n| (n * 31 + i) as u8).collect();
            server.put_object("bkt", key, &body);
            body
        })
        .collect()
}

async fn answers_as_the_sdk_does(server: TestServer) {
    let bodies = server_with_objects(&server);
    let (lean, sdk) = stores(&options(&server, keys(&server)), "bkt").await;
    for (key, body) in KEYS.iter().zip(&bodies) {
        let (head, bytes) = read(lean.get(key, None, None).await).await;
        let (sdk_head, sdk_bytes) = read(sdk.get(key, None, None).await).await;
        assert_eq!(&bytes, body, "{key}");
        assert_eq!(bytes, sdk_bytes, "{key}");
        assert_eq!(head.etag, sdk_head.etag, "{key}");
        assert!(head.etag.is_some(), "{key}");
        assert_eq!(head.length, Some(body.len() as u64), "{key}");
        assert_eq!(head.length, sdk_head.length, "{key}");
        assert!(matches!(head.checksum, Some(Expected::Crc(..))), "{key}");
        assert_eq!(head.checksum, sdk_head.checksum, "{key}");
        assert!(head.last_modified.is_some(), "{key}");
        assert_eq!(head.last_modified, sdk_head.last_modified, "{key}");

        // A range: its bytes, its length, no whole-object checksum; only if the ETag holds.
        let range = ByteRange {
            start: 100,
            end: Some(5_000),
        };
        let (head, bytes) = read(lean.get(key, Some(range), head.etag.as_deref()).await).await;
        assert_eq!(bytes, body[100..5_000], "{key}");
        assert_eq!(head.length, Some(4_900), "{key}");
        assert_eq!(head.checksum, None, "{key}");
    }
}

#[tokio::test]
async fn a_get_answers_as_the_sdk_does() {
    answers_as_the_sdk_does(TestServer::start().await).await;
}

#[tokio::test]
async fn a_get_answers_as_the_sdk_does_over_https() {
    let server = TestServer::start_with(ServerOptions {
        tls: true,
        ..ServerOptions::default()
    })
    .await
    .unwrap();
    assert!(server.endpoint().starts_with("https://"));
    answers_as_the_sdk_does(server).await;
}

#[tokio::test]
async fn error_answers_carry_the_same_code_and_status_as_the_sdk_s() {
    let server = TestServer::start().await;
    server_with_objects(&server);
    let (lean, sdk) = stores(&options(&server, keys(&server)), "bkt").await;
    let same = |lean: ServiceError, sdk: ServiceError, code: &str, status: u16| {
        assert_eq!(lean.code(), Some(code), "{lean}");
        assert_eq!(lean.status(), Some(status), "{lean}");
        assert_eq!(lean.code(), sdk.code(), "{lean} / {sdk}");
        assert_eq!(lean.status(), sdk.status(), "{lean} / {sdk}");
        assert_eq!(lean.kind(), sdk.kind(), "{lean} / {sdk}");
        assert_eq!(lean.is_retryable(), sdk.is_retryable());
    };
    let lean_error = lean.get("absent", None, None).await.err().unwrap();
    let sdk_error = sdk.get("absent", None, None).await.err().unwrap();
    same(lean_error, sdk_error, "NoSuchKey", 404);

    let stale = Some("\"0123456789abcdef0123456789abcdef\"");
    let lean_error = lean.get("plain.txt", None, stale).await.err().unwrap();
    let sdk_error = sdk.get("plain.txt", None, stale).await.err().unwrap();
    same(lean_error, sdk_error, "PreconditionFailed", 412);

    // A wrong secret: the server checks the signature and refuses it.
    let wrong = SharedCredentialsProvider::new(Credentials::new(
        server.access_key(),
        "not-the-secret",
        None,
        None,
        "test",
    ));
    let (lean, sdk) = stores(&options(&server, wrong), "bkt").await;
    let lean_error = lean.get("plain.txt", None, None).await.err().unwrap();
    let sdk_error = sdk.get("plain.txt", None, None).await.err().unwrap();
    same(lean_error, sdk_error, "SignatureDoesNotMatch", 403);
}

#[tokio::test]
async fn a_closed_port_is_a_retryable_connection_error() {
    let server = TestServer::start().await;
    let mut options = options(&server, keys(&server));
    let unused = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = unused.local_addr().unwrap().port();
    drop(unused);
    options.endpoint_url = Some(format!("http://127.0.0.1:{port}"));
    let (lean, _) = stores(&options, "bkt").await;
    let error = lean.get("plain.txt", None, None).await.err().unwrap();
    assert_eq!(
        error.kind(),
        crate::error::ServiceErrorKind::Connection,
        "{error}"
    );
    assert!(error.is_retryable());
}

#[tokio::test]
async fn unsigned_gets_reach_a_public_bucket() {
    let server = TestServer::start().await;
    let bodies = server_with_objects(&server);
    let mut options = options(&server, keys(&server));
    options.no_sign_request = true;
    let (lean, _) = stores(&options, "bkt").await;
    assert!(lean.signer.is_none());
    let error = lean.get("plain.txt", None, None).await.err().unwrap();
    assert_eq!(error.status(), Some(403), "{error}");
    server.set_public("bkt", true);
    let (_, bytes) = read(lean.get("plain.txt", None, None).await).await;
    assert_eq!(bytes, bodies[0]);
}

/// Credentials that expire `lifetime` after they are handed out, counting the calls.
#[derive(Debug)]
struct Counting {
    access: String,
    secret: String,
    lifetime: Duration,
    calls: Arc<AtomicUsize>,
}

impl ProvideCredentials for Counting {
    fn provide_credentials<'a>(&'a self) -> future::ProvideCredentials<'a>
    where
        Self: 'a,
    {
        self.calls.fetch_add(1, Ordering::SeqCst);
        future::ProvideCredentials::ready(Ok(Credentials::new(
            &self.access,
            &self.secret,
            None,
            Some(SystemTime::now() + self.lifetime),
            "counting",
        )))
    }
}

#[tokio::test]
async fn credentials_are_fetched_once_and_again_when_they_expire() {
    let server = TestServer::start().await;
    server_with_objects(&server);
    for (lifetime, expected) in [(Duration::from_secs(3600), 1), (Duration::from_secs(5), 20)] {
        let calls = Arc::new(AtomicUsize::new(0));
        let provider = SharedCredentialsProvider::new(Counting {
            access: server.access_key().into(),
            secret: server.secret_key().into(),
            lifetime,
            calls: calls.clone(),
        });
        let (lean, _) = stores(&options(&server, provider), "bkt").await;
        let gets = (0..20).map(|_| async {
            read(lean.get("plain.txt", None, None).await).await;
        });
        futures::future::join_all(gets).await;
        // Credentials within the refresh margin of their expiry are fetched for each GET.
        assert_eq!(
            calls.load(Ordering::SeqCst),
            expected,
            "lifetime {lifetime:?}"
        );
    }
}

#[test]
fn keys_are_encoded_as_the_sdk_encodes_them() {
    assert_eq!(encode_key("a/b c+d"), "a/b%20c%2Bd");
    assert_eq!(encode_key("~._-AZaz09"), "~._-AZaz09");
    assert_eq!(encode_key("ü?#%"), "%C3%BC%3F%23%25");
}

#[test]
fn error_bodies_give_their_code_and_message() {
    let xml = "<?xml version=\"1.0\"?><Error><Code>SlowDown</Code>\
               <Message>Please reduce &amp; retry &lt;now&gt;</Message></Error>";
    assert_eq!(xml_element(xml, "Code").as_deref(), Some("SlowDown"));
    assert_eq!(
        xml_element(xml, "Message").as_deref(),
        Some("Please reduce & retry <now>")
    );
    assert_eq!(xml_element("<Error></Error>", "Code"), None);
    assert_eq!(xml_element("<Code>unterminated", "Code"), None);
}
