//! Stores that list differently: `unordered` (a fixed non-lexicographic order),
//! `ignore_start_after` and `refuse_start_after`, with and without the ListObjectsV2 fast
//! path.

mod common;

use common::{client, code, list_all, model_list, status};
use s3fetch_testkit::{ServerOptions, TestServer};

const B: &str = "quirky";

fn keys() -> Vec<String> {
    let mut keys: Vec<String> = (0..240)
        .map(|i| format!("folder-{:02}/key-{i:04}.bin", i % 24))
        .collect();
    keys.extend((0..60).map(|i| format!("top-{i:03}.txt")));
    keys
}

async fn server(options: ServerOptions) -> TestServer {
    let server = TestServer::start_with(options).await.unwrap();
    server.create_bucket(B);
    server
        .store()
        .put_objects(B, keys().into_iter().map(|k| (k, b"x")))
        .unwrap();
    server
}

fn sorted(v: &[String]) -> Vec<String> {
    let mut v = v.to_vec();
    v.sort();
    v
}

#[tokio::test]
async fn unordered_lists_every_key_once_in_a_fixed_order_that_is_not_lexicographic() {
    for fast_list in [true, false] {
        let server = server(ServerOptions {
            fast_list,
            unordered: vec![B.into()],
            ..Default::default()
        })
        .await;
        let c = client(&server);
        let whole = list_all(&c, B, None, None, None, None).await;
        assert_eq!(sorted(&whole.keys), sorted(&keys()));
        assert_ne!(
            whole.keys,
            sorted(&whole.keys),
            "order must not be lexicographic"
        );
        for max_keys in [1, 7, 100] {
            let paged = list_all(&c, B, None, None, Some(max_keys), None).await;
            assert_eq!(
                paged.keys, whole.keys,
                "max-keys {max_keys}: same order, each once"
            );
        }

        // With a delimiter, common prefixes come in the store's order too.
        let rolled = list_all(&c, B, None, Some("/"), Some(5), None).await;
        let (model_keys, model_cps) = model_list(&keys(), "", Some("/"), None);
        assert_eq!(sorted(&rolled.keys), model_keys);
        assert_eq!(sorted(&rolled.common_prefixes), model_cps);
        assert_ne!(rolled.common_prefixes, model_cps);
        let under = list_all(&c, B, Some("folder-03/"), Some("/"), Some(3), None).await;
        let (model_keys, _) = model_list(&keys(), "folder-03/", Some("/"), None);
        assert_eq!(sorted(&under.keys), model_keys);

        // start-after keeps S3's meaning (keys lexicographically after it), in store order.
        let sa = "folder-12/key-0012.bin";
        let after = list_all(&c, B, None, None, Some(9), Some(sa)).await;
        let want: Vec<String> = whole
            .keys
            .iter()
            .filter(|k| k.as_str() > sa)
            .cloned()
            .collect();
        assert_eq!(after.keys, want);

        // ListObjects (V1): NextMarker is a position; following it yields every key once.
        let mut v1 = Vec::new();
        let mut marker: Option<String> = None;
        loop {
            let page = c
                .list_objects()
                .bucket(B)
                .max_keys(11)
                .set_marker(marker.clone())
                .send()
                .await
                .unwrap();
            v1.extend(page.contents().iter().map(|o| o.key().unwrap().to_owned()));
            if page.is_truncated() != Some(true) {
                break;
            }
            marker = Some(page.next_marker().unwrap().to_owned());
        }
        assert_eq!(v1, whole.keys);
    }
}

#[tokio::test]
async fn ignore_start_after_lists_from_the_start_of_the_prefix() {
    for fast_list in [true, false] {
        let server = server(ServerOptions {
            fast_list,
            ignore_start_after: vec![B.into()],
            ..Default::default()
        })
        .await;
        let c = client(&server);
        let page = c
            .list_objects_v2()
            .bucket(B)
            .start_after("top-050.txt")
            .max_keys(5)
            .send()
            .await
            .unwrap();
        assert_eq!(page.contents()[0].key(), Some("folder-00/key-0000.bin"));
        assert_eq!(
            page.start_after(),
            None,
            "a server ignoring it doesn't echo it"
        );
        // Continuation tokens still work, in lexicographic order.
        let all = list_all(&c, B, None, None, Some(17), Some("top-050.txt")).await;
        assert_eq!(all.keys, sorted(&keys()));
        let under = list_all(&c, B, Some("top-"), None, Some(17), Some("top-050.txt")).await;
        assert_eq!(under.keys.len(), 60);
    }
}

#[tokio::test]
async fn refuse_start_after_answers_not_implemented() {
    for fast_list in [true, false] {
        let server = server(ServerOptions {
            fast_list,
            refuse_start_after: vec![B.into()],
            ..Default::default()
        })
        .await;
        let c = client(&server);
        let e = c
            .list_objects_v2()
            .bucket(B)
            .start_after("top-050.txt")
            .send()
            .await
            .unwrap_err();
        assert_eq!((status(&e), code(&e).as_str()), (501, "NotImplemented"));
        let all = list_all(&c, B, None, None, Some(100), None).await;
        assert_eq!(all.keys, sorted(&keys()));
        assert_eq!(server.request_counts().list, 1 + 3);
    }
}

#[tokio::test]
async fn other_buckets_list_as_before() {
    let server = server(ServerOptions {
        unordered: vec!["other".into()],
        refuse_start_after: vec!["other".into()],
        ..Default::default()
    })
    .await;
    let c = client(&server);
    let all = list_all(&c, B, None, None, Some(50), Some("folder-05/")).await;
    let (want, _) = model_list(&keys(), "", None, Some("folder-05/"));
    assert_eq!(all.keys, want);
}
