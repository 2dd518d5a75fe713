//! ListObjectsV2 over HTTP: pagination, delimiters, start-after, special keys.

mod common;

use aws_sdk_s3::types::EncodingType;
use common::{client, list_all, model_list};
use s3fetch_testkit::TestServer;

fn special_keys() -> Vec<String> {
    let mut keys: Vec<String> = [
        "plain.txt",
        "with space.txt",
        "unicodé/ファイル.txt",
        "emoji/😀.bin",
        "sym/+%=&#;'\"()[].txt",
        "xml/<lt>&amp;\"quote\"'apos'.txt",
        "misc/q?mark*star~tilde,comma@at:colon^caret|pipe{curly}\\backslash!bang$dollar",
        "dots/../x",
        "..",
        ".",
        "/leading",
        "//double-leading",
        "a//b",
        "a/b/",
        "trailing/",
        "percent%2Fencoded",
        "plus+plus",
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect();
    keys.push(format!("deep/{}/{}", "x".repeat(250), "y".repeat(250)));
    keys.push(format!("max/{}", "z".repeat(1024 - 4)));
    keys
}

#[tokio::test]
async fn default_page_size_is_1000() {
    let server = TestServer::start().await;
    server.create_bucket("many");
    let keys: Vec<String> = (0..2500).map(|i| format!("k/{i:05}")).collect();
    server
        .store()
        .put_objects(
            "many",
            keys.iter().map(|k| (k.clone(), k.as_bytes().to_vec())),
        )
        .unwrap();
    let c = client(&server);
    let first = c.list_objects_v2().bucket("many").send().await.unwrap();
    assert_eq!(first.contents().len(), 1000);
    assert_eq!(first.max_keys(), Some(1000));
    assert_eq!(first.is_truncated(), Some(true));
    let all = list_all(&c, "many", None, None, None, None).await;
    assert_eq!(all.pages, 3);
    assert_eq!(all.keys, keys);
    // max-keys above 1000 is clamped.
    let big = c
        .list_objects_v2()
        .bucket("many")
        .max_keys(5000)
        .send()
        .await
        .unwrap();
    assert_eq!(big.contents().len(), 1000);
    // Sizes and ETags are reported.
    let o = &first.contents()[0];
    assert_eq!(o.size(), Some(7));
    assert_eq!(o.e_tag().unwrap(), format!("\"{:x}\"", md5_of(b"k/00000")));
}

fn md5_of(data: &[u8]) -> u128 {
    use md5::Digest;
    u128::from_be_bytes(md5::Md5::digest(data).into())
}

#[tokio::test]
async fn pagination_matches_model_with_prefixes_and_delimiters() {
    let server = TestServer::start().await;
    server.create_bucket("tree");
    let mut keys = Vec::new();
    for a in 0..7 {
        for b in 0..5 {
            for c in 0..3 {
                keys.push(format!("d{a}/s{b}/f{c}.txt"));
            }
            keys.push(format!("d{a}/file{b}"));
        }
        keys.push(format!("top{a}"));
        keys.push(format!("d{a}-sibling"));
    }
    keys.push("d1/".to_owned());
    keys.push("d1//x".to_owned());
    keys.extend(special_keys());
    for k in &keys {
        server.put_object("tree", k, k.clone().into_bytes());
    }
    let c = client(&server);
    let cases: &[(Option<&str>, Option<&str>, Option<&str>)] = &[
        (None, None, None),
        (None, Some("/"), None),
        (Some("d1/"), Some("/"), None),
        (Some("d1"), Some("/"), None),
        (Some("d"), Some("s"), None),
        (None, Some("/"), Some("d3/s2/f1.txt")),
        (Some("d2/"), None, Some("d2/s1/f0.txt")),
        (None, Some("//"), None),
        (None, Some("é"), None),
        (Some("nope/"), Some("/"), None),
        (None, None, Some("zzzz")),
    ];
    for &(prefix, delimiter, start_after) in cases {
        let (want_keys, want_cps) = model_list(&keys, prefix.unwrap_or(""), delimiter, start_after);
        for max_keys in [1, 2, 3, 7, 1000] {
            let got = list_all(&c, "tree", prefix, delimiter, Some(max_keys), start_after).await;
            let ctx = format!("prefix={prefix:?} delimiter={delimiter:?} start_after={start_after:?} max_keys={max_keys}");
            assert_eq!(got.keys, want_keys, "{ctx}");
            assert_eq!(got.common_prefixes, want_cps, "{ctx}");
            let entries = want_keys.len() + want_cps.len();
            let want_pages = entries.div_ceil(usize::try_from(max_keys).unwrap()).max(1);
            assert_eq!(got.pages, want_pages, "{ctx}");
        }
    }
    // At least 3 pages with common prefixes straddling page boundaries.
    let got = list_all(&c, "tree", None, Some("/"), Some(2), None).await;
    assert!(got.pages >= 3);
}

#[tokio::test]
async fn special_keys_round_trip() {
    let server = TestServer::start().await;
    server.create_bucket("special");
    let keys = special_keys();
    for (i, k) in keys.iter().enumerate() {
        server.put_object("special", k, format!("body-{i}").into_bytes());
    }
    let c = client(&server);
    let got = list_all(&c, "special", None, None, Some(2), None).await;
    let (want, _) = model_list(&keys, "", None, None);
    assert_eq!(got.keys, want);
    for (i, k) in keys.iter().enumerate() {
        let out = c
            .get_object()
            .bucket("special")
            .key(k)
            .send()
            .await
            .unwrap_or_else(|e| panic!("GET {k:?}: {e:?}"));
        let body = out.body.collect().await.unwrap().into_bytes();
        assert_eq!(body, format!("body-{i}").as_bytes(), "key {k:?}");
        let start = c
            .list_objects_v2()
            .bucket("special")
            .start_after(k)
            .max_keys(1)
            .send()
            .await
            .unwrap();
        let next = want.iter().find(|w| w.as_bytes() > k.as_bytes());
        assert_eq!(
            start.contents().first().and_then(|o| o.key()),
            next.map(String::as_str),
            "after {k:?}"
        );
    }
    // Objects PUT over HTTP with special keys round-trip too.
    c.create_bucket()
        .bucket("special-put")
        .send()
        .await
        .unwrap();
    for k in &keys {
        c.put_object()
            .bucket("special-put")
            .key(k)
            .body(k.clone().into_bytes().into())
            .send()
            .await
            .unwrap_or_else(|e| panic!("PUT {k:?}: {e:?}"));
        assert_eq!(
            server.store().get_object("special-put", k).unwrap(),
            k.as_bytes()
        );
    }
    let got = list_all(&c, "special-put", None, None, None, None).await;
    assert_eq!(got.keys, want);
    // A key over 1024 bytes is rejected.
    let err = c
        .put_object()
        .bucket("special-put")
        .key("k".repeat(1025))
        .body(Vec::new().into())
        .send()
        .await
        .unwrap_err();
    assert_eq!(common::code(&err), "KeyTooLongError");
}

#[tokio::test]
async fn encoding_type_url_is_honoured() {
    let server = TestServer::start().await;
    server.create_bucket("enc");
    server.put_object("enc", "a b/c+d", b"x");
    server.put_object("enc", "é/f", b"x");
    let c = client(&server);
    let out = c
        .list_objects_v2()
        .bucket("enc")
        .encoding_type(EncodingType::Url)
        .send()
        .await
        .unwrap();
    let keys: Vec<&str> = out.contents().iter().filter_map(|o| o.key()).collect();
    assert_eq!(keys, ["a%20b/c%2Bd", "%C3%A9/f"]);
    let out = c
        .list_objects_v2()
        .bucket("enc")
        .delimiter("/")
        .encoding_type(EncodingType::Url)
        .send()
        .await
        .unwrap();
    let cps: Vec<&str> = out
        .common_prefixes()
        .iter()
        .filter_map(|p| p.prefix())
        .collect();
    assert_eq!(cps, ["a%20b/", "%C3%A9/"]);
}

#[tokio::test]
async fn bad_continuation_token_and_missing_bucket() {
    let server = TestServer::start().await;
    server.create_bucket("bkt1");
    let c = client(&server);
    let err = c
        .list_objects_v2()
        .bucket("bkt1")
        .continuation_token("not-a-token")
        .send()
        .await
        .unwrap_err();
    assert_eq!(common::code(&err), "InvalidArgument");
    let err = c
        .list_objects_v2()
        .bucket("missing")
        .send()
        .await
        .unwrap_err();
    assert_eq!(common::code(&err), "NoSuchBucket");
    assert_eq!(common::status(&err), 404);
    let empty = c.list_objects_v2().bucket("bkt1").send().await.unwrap();
    assert_eq!(empty.key_count(), Some(0));
    assert_eq!(empty.is_truncated(), Some(false));
    // ListObjects (v1) works too.
    server.put_object("bkt1", "x/1", b"1");
    server.put_object("bkt1", "x/2", b"2");
    let v1 = c
        .list_objects()
        .bucket("bkt1")
        .max_keys(1)
        .send()
        .await
        .unwrap();
    assert_eq!(v1.contents().len(), 1);
    assert_eq!(v1.is_truncated(), Some(true));
    let v1b = c
        .list_objects()
        .bucket("bkt1")
        .marker("x/1")
        .send()
        .await
        .unwrap();
    assert_eq!(v1b.contents()[0].key(), Some("x/2"));
}
