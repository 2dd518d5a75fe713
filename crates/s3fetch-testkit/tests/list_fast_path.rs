//! The ListObjectsV2 fast path (`ServerOptions::fast_list`, the default) answers exactly
//! like `s3s`'s generic handler (`fast_list: false`): both servers serve the same data
//! directory and every page is compared as the SDK parses it.

mod common;

use std::path::Path;

use aws_sdk_s3::operation::list_objects_v2::ListObjectsV2Output;
use aws_sdk_s3::types::EncodingType;
use aws_sdk_s3::Client;
use common::client;
use s3fetch_testkit::{ServerOptions, TestServer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Keys XML and URLs make hard, plus delimiter edge cases.
fn tricky_keys() -> Vec<String> {
    let mut keys: Vec<String> = [
        "plain",
        "with space",
        "unicodé/ファイル.txt",
        "emoji/😀",
        "amp&lt<gt>quot\"apos'",
        "&",
        "&amp;",
        "<Key>",
        "sym/+%=#;()[]",
        "sym/+",
        "sym/%2F",
        "tab\there",
        "nl\nhere",
        "cr\rhere",
        "dir/",
        "dir/a",
        "dir/a/",
        "dir/a/b",
        "dir0",
        "dir/&/x",
        "dir//x",
        "dirdir",
        "/",
        "//",
        "a",
        "a/",
        "a&b&c",
        "\u{FFFD}",
        "\u{7F}del",
        "\u{85}nel",
        "\u{10FFFF}max",
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect();
    keys.push(format!("long/{}", "k".repeat(1024 - 5)));
    keys.push(format!("{}&", "é".repeat(511)));
    keys
}

/// Keys no XML 1.0 parser can read unless url-encoded.
fn control_keys() -> Vec<String> {
    ["ctl/\u{1}one", "ctl/two\u{1f}", "ctl/\u{1}/x", "ctl/ok"]
        .iter()
        .map(|s| (*s).to_owned())
        .collect()
}

async fn populate(dir: &Path) {
    let server = TestServer::start_with(ServerOptions {
        data_dir: Some(dir.to_owned()),
        ..Default::default()
    })
    .await
    .unwrap();
    server.create_bucket("tricky");
    for (i, k) in tricky_keys().iter().enumerate() {
        server.put_object("tricky", k, vec![b'x'; i]);
    }
    server.create_bucket("ctl");
    for k in control_keys() {
        server.put_object("ctl", &k, k.as_bytes());
    }
    server.create_bucket("empty");
    server.create_bucket("pub");
    server.put_object("pub", "k&<1>", b"one");
    server.shutdown().await;
}

async fn start(dir: &Path, fast_list: bool) -> TestServer {
    TestServer::start_with(ServerOptions {
        data_dir: Some(dir.to_owned()),
        public_buckets: vec!["pub".to_owned()],
        fast_list,
        ..Default::default()
    })
    .await
    .unwrap()
}

#[derive(Debug, Clone, Copy)]
struct Params<'a> {
    bucket: &'a str,
    prefix: Option<&'a str>,
    delimiter: Option<&'a str>,
    max_keys: Option<i32>,
    start_after: Option<&'a str>,
    url: bool,
}

async fn page(
    c: &Client,
    p: Params<'_>,
    token: Option<&str>,
) -> Result<ListObjectsV2Output, String> {
    let mut req = c
        .list_objects_v2()
        .bucket(p.bucket)
        .set_prefix(p.prefix.map(str::to_owned))
        .set_delimiter(p.delimiter.map(str::to_owned))
        .set_max_keys(p.max_keys)
        .set_start_after(p.start_after.map(str::to_owned))
        .set_continuation_token(token.map(str::to_owned));
    if p.url {
        req = req.encoding_type(EncodingType::Url);
    }
    req.send().await.map_err(|e| {
        let code = common::code(&e);
        if code.starts_with("<no code") {
            // A response the SDK could not parse: keep the kind, not the details.
            "unparseable response".to_owned()
        } else {
            code
        }
    })
}

/// Pages through both servers in lockstep; returns the number of pages.
async fn compare(fast: &Client, old: &Client, p: Params<'_>) -> usize {
    let mut token: Option<String> = None;
    for n in 1.. {
        let a = page(fast, p, token.as_deref()).await;
        let b = page(old, p, token.as_deref()).await;
        assert_eq!(a, b, "page {n} of {p:?}");
        match a {
            Ok(out) if out.is_truncated() == Some(true) => {
                token = Some(out.next_continuation_token().unwrap().to_owned());
            }
            _ => return n,
        }
    }
    unreachable!()
}

#[tokio::test]
async fn fast_path_matches_s3s_path() {
    let dir = tempfile::tempdir().unwrap();
    populate(dir.path()).await;
    let (fast_server, old_server) = (
        start(dir.path(), true).await,
        start(dir.path(), false).await,
    );
    let (fast, old) = (client(&fast_server), client(&old_server));
    let mut pages = 0;
    let mut fast_only = 0;
    for url in [false, true] {
        for max_keys in [None, Some(1), Some(2), Some(5), Some(2000)] {
            for prefix in [
                None,
                Some(""),
                Some("dir/"),
                Some("dir"),
                Some("&"),
                Some("é"),
            ] {
                for delimiter in [None, Some("/"), Some("&"), Some("dir"), Some("")] {
                    for start_after in [None, Some(""), Some("dir/"), Some("dir/a"), Some("a&b")] {
                        let p = Params {
                            bucket: "tricky",
                            prefix,
                            delimiter,
                            max_keys,
                            start_after,
                            url,
                        };
                        pages += compare(&fast, &old, p).await;
                    }
                }
            }
        }
        // Control characters: url-encoded, both paths agree. Without encoding, s3s's XML
        // (raw U+0001) is unreadable, while the fast path writes `&#x1;` as S3 does, which
        // the SDK reads.
        for delimiter in [None, Some("/"), Some("\u{1}")] {
            for max_keys in [Some(1), Some(3), None] {
                let p = Params {
                    bucket: "ctl",
                    prefix: Some("ctl/"),
                    delimiter,
                    max_keys,
                    start_after: None,
                    url,
                };
                if url {
                    pages += compare(&fast, &old, p).await;
                } else {
                    assert!(page(&fast, p, None).await.is_ok(), "{p:?}");
                    let old_page = page(&old, p, None).await;
                    assert_eq!(old_page.unwrap_err(), "unparseable response");
                }
            }
        }
        let p = Params {
            bucket: "ctl",
            prefix: None,
            delimiter: None,
            max_keys: None,
            start_after: None,
            url,
        };
        let out = page(&fast, p, None).await.unwrap();
        fast_only += 1;
        let keys: Vec<&str> = out.contents().iter().filter_map(|o| o.key()).collect();
        if url {
            assert_eq!(keys, ["ctl/%01/x", "ctl/%01one", "ctl/ok", "ctl/two%1F"]);
        } else {
            assert_eq!(
                keys,
                ["ctl/\u{1}/x", "ctl/\u{1}one", "ctl/ok", "ctl/two\u{1f}"]
            );
            let p = Params {
                prefix: Some("ctl/"),
                delimiter: Some("\u{1}"),
                ..p
            };
            let out = page(&fast, p, None).await.unwrap();
            fast_only += 1;
            let cps: Vec<&str> = out
                .common_prefixes()
                .iter()
                .filter_map(|c| c.prefix())
                .collect();
            assert_eq!(cps, ["ctl/\u{1}"]);
            assert_eq!(out.delimiter(), Some("\u{1}"));
        }
    }
    // Errors and edge cases.
    for (bucket, max_keys) in [
        ("empty", None),
        ("missing", None),
        ("tricky", Some(0)),
        ("tricky", Some(-1)),
    ] {
        let p = Params {
            bucket,
            prefix: None,
            delimiter: None,
            max_keys,
            start_after: None,
            url: false,
        };
        pages += compare(&fast, &old, p).await;
    }
    for t in ["zz", "", "6869"] {
        let p = Params {
            bucket: "tricky",
            prefix: None,
            delimiter: None,
            max_keys: Some(2),
            start_after: None,
            url: false,
        };
        assert_eq!(
            page(&fast, p, Some(t)).await,
            page(&old, p, Some(t)).await,
            "token {t:?}"
        );
    }
    assert!(pages > 1000, "{pages}");
    // Every list request counted once on each server, as ListObjectsV2.
    let (a, b) = (fast_server.request_counts(), old_server.request_counts());
    assert_eq!(a.list, b.list + fast_only);
    assert_eq!(a.by_op.keys().collect::<Vec<_>>(), ["ListObjectsV2"]);
    assert_eq!(b.by_op.keys().collect::<Vec<_>>(), ["ListObjectsV2"]);
}

/// One raw anonymous HTTP/1.1 GET; returns the response head and body as text.
async fn raw_get(server: &TestServer, path_and_query: &str) -> String {
    let mut s = tokio::net::TcpStream::connect(server.addr()).await.unwrap();
    let req = format!(
        "GET {path_and_query} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
        server.addr()
    );
    s.write_all(req.as_bytes()).await.unwrap();
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).await.unwrap();
    String::from_utf8(buf).unwrap()
}

#[tokio::test]
async fn fast_path_serves_v2_only_and_keeps_access_rules() {
    let dir = tempfile::tempdir().unwrap();
    populate(dir.path()).await;
    let fast = start(dir.path(), true).await;
    let old = start(dir.path(), false).await;
    // Public bucket, anonymous: the fast path writes the ETag's quotes as `&quot;` (like
    // S3), s3s raw.
    let resp = raw_get(&fast, "/pub?list-type=2").await;
    assert!(resp.starts_with("HTTP/1.1 200"), "{resp}");
    assert!(resp.contains("content-type: application/xml"), "{resp}");
    assert!(resp.contains("<Key>k&amp;&lt;1&gt;</Key>"), "{resp}");
    assert!(resp.contains("<ETag>&quot;"), "{resp}");
    assert!(raw_get(&old, "/pub/?list-type=2")
        .await
        .contains("<ETag>\""));
    // ListObjects (v1) and other bucket GETs still go to s3s.
    let resp = raw_get(&fast, "/pub").await;
    assert!(
        resp.contains("<ETag>\"") && resp.contains("<Marker>"),
        "{resp}"
    );
    // Anonymous on a private bucket, denied bucket: AccessDenied, counted.
    fast.reset_request_counts();
    let resp = raw_get(&fast, "/tricky?list-type=2").await;
    assert!(
        resp.starts_with("HTTP/1.1 403") && resp.contains("AccessDenied"),
        "{resp}"
    );
    fast.deny_bucket("pub");
    let resp = raw_get(&fast, "/pub?list-type=2&prefix=k").await;
    assert!(
        resp.starts_with("HTTP/1.1 403") && resp.contains("AccessDenied"),
        "{resp}"
    );
    let err = client(&fast)
        .list_objects_v2()
        .bucket("pub")
        .send()
        .await
        .unwrap_err();
    assert_eq!(common::code(&err), "AccessDenied");
    assert_eq!(fast.request_counts().list, 3);
    assert_eq!(fast.request_counts().by_op.get("ListObjectsV2"), Some(&3));
    // Bad signature: rejected before the route, not counted as a list.
    let bad = common::client_with(&fast.endpoint(), fast.access_key(), "wrong-secret");
    let err = bad
        .list_objects_v2()
        .bucket("tricky")
        .send()
        .await
        .unwrap_err();
    assert_eq!(common::code(&err), "SignatureDoesNotMatch");
    assert_eq!(fast.request_counts().list, 3);
}
