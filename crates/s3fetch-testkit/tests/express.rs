//! S3 Express One Zone directory buckets (`ServerOptions::directory_buckets`) through the
//! AWS SDK as it reaches them: CreateSession, then requests signed with the session's keys
//! for `s3express` (real SigV4 over HTTP), ListObjectsV2's directory-bucket rules, the
//! store's listing order and opaque ETags.

mod common;

use aws_credential_types::Credentials;
use aws_sdk_s3::config::{BehaviorVersion, Region};
use aws_sdk_s3::types::{ChecksumMode, OptionalObjectAttributes};
use aws_sdk_s3::Client;
use common::{code, list_all, model_list, status};
use md5::{Digest, Md5};
use s3fetch_testkit::{ServerOptions, TestServer};

const DIR: &str = "data--usw2-az1--x-s3";
const OTHER: &str = "other--usw2-az1--x-s3";

/// An SDK client as an application would build one for S3 Express on a custom endpoint:
/// region, endpoint, keys; no path-style setting (an IP endpoint is path-style anyway; with
/// `force_path_style(true)` the SDK goes through CreateSession all the same).
fn express_client(server: &TestServer, secret: &str) -> Client {
    let creds = Credentials::new(server.access_key(), secret, None, None, "testkit");
    Client::from_conf(
        aws_sdk_s3::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new("us-west-2"))
            .endpoint_url(server.endpoint())
            .credentials_provider(creds)
            .build(),
    )
}

/// `c` signing with `creds` and without sessions (`sigv4`, service `s3express`).
fn sessionless(c: &Client, creds: Credentials) -> Client {
    Client::from_conf(
        c.config()
            .to_builder()
            .credentials_provider(creds)
            .disable_s3_express_session_auth(true)
            .build(),
    )
}

fn keys() -> Vec<String> {
    let mut keys: Vec<String> = (0..60)
        .map(|i| format!("logs/day-{:02}/part-{i:03}.json", i % 12))
        .collect();
    keys.extend((0..25).map(|i| format!("top-{i:02}.bin")));
    keys
}

async fn server(options: ServerOptions) -> TestServer {
    let server = TestServer::start_with(ServerOptions {
        directory_buckets: vec![DIR.into(), OTHER.into()],
        ..options
    })
    .await
    .unwrap();
    server
        .store()
        .put_objects(DIR, keys().into_iter().map(|k| (k.clone(), k.into_bytes())))
        .unwrap();
    server.put_object(OTHER, "x", b"x");
    server
}

fn sorted(v: &[String]) -> Vec<String> {
    let mut v = v.to_vec();
    v.sort();
    v
}

#[tokio::test]
async fn sdk_lists_and_gets_through_create_session() {
    for fast_list in [true, false] {
        let server = server(ServerOptions {
            fast_list,
            ..Default::default()
        })
        .await;
        let c = express_client(&server, server.secret_key());
        let whole = list_all(&c, DIR, None, None, None, None).await;
        assert_eq!(sorted(&whole.keys), sorted(&keys()));
        assert_ne!(whole.keys, sorted(&whole.keys), "S3 Express doesn't sort");
        let paged = list_all(&c, DIR, None, None, Some(7), None).await;
        assert_eq!(
            paged.keys, whole.keys,
            "tokens are positions: every key once"
        );
        assert_eq!(paged.pages, 13);

        let got = c
            .get_object()
            .bucket(DIR)
            .key("top-03.bin")
            .send()
            .await
            .unwrap();
        assert_eq!(
            &got.body.collect().await.unwrap().into_bytes()[..],
            b"top-03.bin"
        );
        let ranged = c
            .get_object()
            .bucket(DIR)
            .key("top-03.bin")
            .range("bytes=4-5")
            .send()
            .await
            .unwrap();
        assert_eq!(ranged.content_range(), Some("bytes 4-5/10"));
        assert_eq!(
            &ranged.body.collect().await.unwrap().into_bytes()[..],
            b"03"
        );
        let head = c
            .head_object()
            .bucket(DIR)
            .key("top-03.bin")
            .send()
            .await
            .unwrap();
        assert_eq!(head.content_length(), Some(10));

        // One session, cached by the SDK, signed every request after it.
        let counts = server.request_counts();
        assert_eq!(counts.of("CreateSession"), 1, "{counts:?}");
        assert_eq!((counts.list, counts.get, counts.head), (1 + 13, 2, 1));

        // Keys the signature's canonical URI must encode; a second bucket, a second session.
        let odd = "odd/with space+plus&amp=é%.txt";
        server.put_object(OTHER, odd, b"odd");
        let got = c.get_object().bucket(OTHER).key(odd).send().await.unwrap();
        assert_eq!(&got.body.collect().await.unwrap().into_bytes()[..], b"odd");
        assert_eq!(server.request_counts().of("CreateSession"), 2);
    }
}

#[tokio::test]
async fn etags_are_opaque_and_the_same_everywhere() {
    let server = server(ServerOptions::default()).await;
    let c = express_client(&server, server.secret_key());
    let key = "top-07.bin";
    let md5 = format!("\"{}\"", hex::encode(Md5::digest(key.as_bytes())));
    let listed = c
        .list_objects_v2()
        .bucket(DIR)
        .prefix("")
        .send()
        .await
        .unwrap();
    let in_list = listed
        .contents()
        .iter()
        .find(|o| o.key() == Some(key))
        .and_then(|o| o.e_tag())
        .unwrap()
        .to_owned();
    let got = c
        .get_object()
        .bucket(DIR)
        .key(key)
        .checksum_mode(ChecksumMode::Enabled)
        .send()
        .await
        .unwrap();
    let head = c.head_object().bucket(DIR).key(key).send().await.unwrap();
    assert_ne!(in_list, md5, "not the MD5 of the content");
    assert_eq!(got.e_tag(), Some(in_list.as_str()));
    assert_eq!(head.e_tag(), Some(in_list.as_str()));
    // The full-object CRC64NVME is still sent when asked (the SDK checks it).
    assert!(got.checksum_crc64_nvme().is_some());
    got.body.collect().await.unwrap();
    // Conditional requests compare against the same ETag.
    c.get_object()
        .bucket(DIR)
        .key(key)
        .if_match(&in_list)
        .send()
        .await
        .unwrap();
}

#[tokio::test]
async fn list_objects_v2_follows_the_directory_bucket_rules() {
    let server = server(ServerOptions::default()).await;
    let c = express_client(&server, server.secret_key());
    let list = || c.list_objects_v2().bucket(DIR);
    let refusals = [
        list().start_after("top-01.bin").send().await.unwrap_err(),
        list()
            .optional_object_attributes(OptionalObjectAttributes::RestoreStatus)
            .send()
            .await
            .unwrap_err(),
        list().prefix("logs/day-0").send().await.unwrap_err(),
        list().delimiter("-").send().await.unwrap_err(),
    ];
    for e in &refusals {
        assert_eq!(
            (status(e), code(e).as_str()),
            (400, "InvalidArgument"),
            "{e:?}"
        );
    }
    list().prefix("logs/").delimiter("/").send().await.unwrap();
    let v1 = c.list_objects().bucket(DIR).send().await.unwrap_err();
    assert_eq!(status(&v1), 501);
    assert_eq!(server.request_counts().list, 6);
}

#[tokio::test]
async fn common_prefixes_come_in_the_store_order_with_pending_uploads() {
    let server = server(ServerOptions {
        directory_pending_uploads: vec![
            (DIR.into(), "uploading/".into()),
            (DIR.into(), "logs/day-99/".into()),
            (DIR.into(), "logs/day-03/".into()),
        ],
        ..Default::default()
    })
    .await;
    let c = express_client(&server, server.secret_key());
    let top = list_all(&c, DIR, None, Some("/"), Some(4), None).await;
    let (model_keys, _) = model_list(&keys(), "", Some("/"), None);
    assert_eq!(sorted(&top.keys), model_keys);
    assert_eq!(sorted(&top.common_prefixes), ["logs/", "uploading/"]);
    let logs = list_all(&c, DIR, Some("logs/"), Some("/"), Some(5), None).await;
    let mut want: Vec<String> = (0..12).map(|d| format!("logs/day-{d:02}/")).collect();
    want.push("logs/day-99/".into());
    assert_eq!(sorted(&logs.common_prefixes), want, "each folder once");
    assert_ne!(logs.common_prefixes, want, "in the store's order");
    assert!(logs.keys.is_empty());
}

#[tokio::test]
async fn session_keys_need_their_token_and_their_bucket() {
    let server = server(ServerOptions::default()).await;
    let c = express_client(&server, server.secret_key());
    let session = c.create_session().bucket(DIR).send().await.unwrap();
    let sc = session.credentials().unwrap();
    let session_creds = |token: &str| {
        Credentials::new(
            sc.access_key_id(),
            sc.secret_access_key(),
            Some(token.to_owned()),
            None,
            "session",
        )
    };
    // Signed with the session's keys, but its token sent as `x-amz-security-token` only.
    let s = sessionless(&c, session_creds(sc.session_token()));
    let e = s
        .get_object()
        .bucket(DIR)
        .key("top-01.bin")
        .send()
        .await
        .unwrap_err();
    assert_eq!((status(&e), code(&e).as_str()), (403, "AccessDenied"));
    // With the `x-amz-s3session-token` header (signed): right token works, wrong doesn't.
    for (token, want) in [
        (sc.session_token().to_owned(), 200),
        ("forged".to_owned(), 403),
    ] {
        let res = s
            .get_object()
            .bucket(DIR)
            .key("top-01.bin")
            .customize()
            .mutate_request(move |r| {
                r.headers_mut()
                    .insert("x-amz-s3session-token", token.clone());
            })
            .send()
            .await;
        assert_eq!(res.as_ref().map_or_else(status, |_| 200), want);
    }
    // A session is good for its own bucket only.
    let other = c.create_session().bucket(OTHER).send().await.unwrap();
    let oc = other.credentials().unwrap();
    let token = oc.session_token().to_owned();
    let e = sessionless(
        &c,
        Credentials::new(oc.access_key_id(), oc.secret_access_key(), None, None, "o"),
    )
    .get_object()
    .bucket(DIR)
    .key("top-01.bin")
    .customize()
    .mutate_request(move |r| {
        r.headers_mut()
            .insert("x-amz-s3session-token", token.clone());
    })
    .send()
    .await
    .unwrap_err();
    assert_eq!((status(&e), code(&e).as_str()), (403, "AccessDenied"));
    assert_eq!(server.request_counts().of("CreateSession"), 2);
}

#[tokio::test]
async fn base_keys_sign_s3express_directly_and_bad_signatures_are_refused() {
    let server = server(ServerOptions::default()).await;
    let c = express_client(&server, server.secret_key());
    let base = Credentials::new(server.access_key(), server.secret_key(), None, None, "base");
    let direct = sessionless(&c, base);
    let listed = direct.list_objects_v2().bucket(DIR).send().await.unwrap();
    assert_eq!(listed.key_count(), Some(85));
    assert_eq!(server.request_counts().of("CreateSession"), 0);

    let wrong = Credentials::new(server.access_key(), "wrong", None, None, "base");
    let e = sessionless(&c, wrong)
        .get_object()
        .bucket(DIR)
        .key("top-01.bin")
        .send()
        .await
        .unwrap_err();
    assert_eq!(
        (status(&e), code(&e).as_str()),
        (403, "SignatureDoesNotMatch")
    );
    let nobody = Credentials::new("nobody", "x", None, None, "base");
    let e = sessionless(&c, nobody)
        .head_object()
        .bucket(DIR)
        .key("top-01.bin")
        .send()
        .await
        .unwrap_err();
    assert_eq!(status(&e), 403);
    // A failed signature reaches no operation.
    assert_eq!(
        server.request_counts().get + server.request_counts().head,
        0
    );
    // With the wrong keys, the SDK's CreateSession fails and so does the call.
    let e = express_client(&server, "wrong")
        .list_objects_v2()
        .bucket(DIR)
        .send()
        .await
        .unwrap_err();
    assert!(format!("{e:?}").contains("SignatureDoesNotMatch"), "{e:?}");
}

#[tokio::test]
async fn a_directory_bucket_name_is_checked_at_start() {
    let err = TestServer::start_with(ServerOptions {
        directory_buckets: vec!["not-a-directory-bucket".into()],
        ..Default::default()
    })
    .await
    .unwrap_err();
    assert!(
        format!("{err:#}").contains("BASE--ZONE-ID--x-s3"),
        "{err:#}"
    );
}
