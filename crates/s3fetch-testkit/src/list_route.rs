//! The ListObjectsV2 fast path: an [`S3Route`] that answers `GET /{bucket}?list-type=2`
//! with XML written straight into one buffer.
//!
//! `s3s`'s generic path builds an `Object` DTO per key and runs it through `quick_xml`
//! (escaping, `time` formatting of every `LastModified`, hex of every ETag): about 1 ms of
//! CPU per 1,000-key page. Here every object costs a few `push_str`s of text cached in its
//! [`crate::ObjectMeta`], rendered under the index read lock without copying
//! keys.
//!
//! Semantics are those of `TestS3::list_objects_v2` in [`crate::s3`] (same helpers):
//!
//! * `s3s` has already verified the SigV4 signature (or found the request anonymous) when a
//!   route is matched; the route's `check_access` replaces `TestAccess`
//!   (which `s3s` doesn't call for custom routes) with the same [`authorize`]: request
//!   counting as `ListObjectsV2`, wrong-region refusals, denied buckets, anonymous access
//!   to public buckets only. Buckets with other quirks are left to `s3s`'s handler.
//! * Then the continuation token is decoded, the list latency / [`ListGate`](crate::ListGate)
//!   prelude runs, `max-keys` is checked and the bucket listed (`NoSuchBucket`).
//! * Only plain requests match: path-style `/{bucket}` or `/{bucket}/`, `list-type=2`
//!   once, and no query parameters besides ListObjectsV2's own (each at most once, values
//!   parseable) and presigned-URL `X-Amz-*` ones. Anything else falls through to `s3s`,
//!   which routes and rejects it exactly as before. (Path-style only: the server sets no
//!   `S3Host`; with virtual-hosted-style addressing `/{key}?list-type=2` would need the
//!   Host header checked here too.)
//!
//! XML differences from `s3s` that don't change what a parser reads: `<Contents>` children
//! come in real S3's order (Key, LastModified, ETag, Size, StorageClass), the ETag's quotes
//! are written `&quot;` like S3 does, and characters XML 1.0 can't carry literally
//! (control characters, U+FFFE, U+FFFF) as `&#xN;` references instead of raw bytes (no
//! XML parser accepts either form; clients must use `encoding-type=url` for such keys).

use std::collections::HashMap;
use std::sync::Arc;

use bytes::Bytes;
use hyper::http::{Extensions, HeaderValue};
use hyper::{HeaderMap, Method, Uri};
use s3s::route::S3Route;
use s3s::{s3_error, Body, S3Request, S3Response, S3Result};

use crate::access::authorize;
use crate::protocol::{
    decode_token, encode_token, list_prelude, max_keys_of, store_err, url_encode_into,
};
use crate::quirks::regions::RequestView;
use crate::state::{Archive, Shared};
use crate::store::{ListEntry, ListQuery, ObjectMeta, Store, StoreResult, MAX_KEY_LEN};

const OP: &str = "ListObjectsV2";

/// The route; installed by the server unless `ServerOptions::fast_list` is off.
pub(crate) struct ListV2Route {
    pub(crate) shared: Arc<Shared>,
}

/// A matched request's parameters (stashed in the request extensions by `is_match`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct ListV2Params {
    pub(crate) bucket: String,
    pub(crate) prefix: Option<String>,
    pub(crate) delimiter: Option<String>,
    pub(crate) continuation_token: Option<String>,
    pub(crate) start_after: Option<String>,
    pub(crate) max_keys: Option<i32>,
    pub(crate) encoding_type: Option<String>,
    /// `x-amz-optional-object-attributes: RestoreStatus`: archived objects' restore status.
    pub(crate) restore_status: bool,
}

/// `/{bucket}` or `/{bucket}/` with a valid bucket name (nothing to percent-decode).
fn bucket_of_path(path: &str) -> Option<&str> {
    let rest = path.strip_prefix('/')?;
    let name = rest.strip_suffix('/').unwrap_or(rest);
    (!name.contains(['/', '%']) && s3s::path::check_bucket_name(name)).then_some(name)
}

fn hex_val(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// Decodes one `application/x-www-form-urlencoded` component the way `s3s` does
/// (`form_urlencoded`): `+` is a space, `%XX` a byte (malformed escapes stay literal),
/// invalid UTF-8 is replaced.
fn form_decode(s: &str) -> String {
    let b = s.as_bytes();
    if !b.iter().any(|&c| c == b'+' || c == b'%') {
        return s.to_owned();
    }
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' => {
                if let (Some(h), Some(l)) = (
                    b.get(i + 1).copied().and_then(hex_val),
                    b.get(i + 2).copied().and_then(hex_val),
                ) {
                    out.push(h << 4 | l);
                    i += 3;
                    continue;
                }
                out.push(b'%');
            }
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8(out).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
}

/// The parameters of a request this route handles, `None` for anything else.
pub(crate) fn parse_request(method: &Method, uri: &Uri) -> Option<ListV2Params> {
    if method != Method::GET {
        return None;
    }
    let bucket = bucket_of_path(uri.path())?;
    let mut p = ListV2Params {
        bucket: bucket.to_owned(),
        ..ListV2Params::default()
    };
    let mut list_type = None;
    let mut fetch_owner = None;
    for pair in uri.query()?.split('&').filter(|s| !s.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        let (k, v) = (form_decode(k), form_decode(v));
        let slot = match k.as_str() {
            "list-type" => &mut list_type,
            "prefix" => &mut p.prefix,
            "delimiter" => &mut p.delimiter,
            "continuation-token" => &mut p.continuation_token,
            "start-after" => &mut p.start_after,
            "encoding-type" => &mut p.encoding_type,
            "fetch-owner" => &mut fetch_owner,
            "max-keys" => {
                if p.max_keys.is_some() {
                    return None;
                }
                p.max_keys = Some(v.parse().ok()?);
                continue;
            }
            _ if k.len() > 6 && k[..6].eq_ignore_ascii_case("x-amz-") => continue,
            _ => return None,
        };
        if slot.replace(v).is_some() {
            return None;
        }
    }
    if list_type.as_deref() != Some("2") {
        return None;
    }
    if let Some(f) = fetch_owner {
        f.parse::<bool>().ok()?;
    }
    Some(p)
}

#[async_trait::async_trait]
impl S3Route for ListV2Route {
    fn is_match(
        &self,
        method: &Method,
        uri: &Uri,
        headers: &HeaderMap,
        extensions: &mut Extensions,
    ) -> bool {
        match parse_request(method, uri) {
            // Buckets that list unlike S3 go to `s3s`'s handler, which knows how.
            Some(p) if self.shared.quirks.needs_generic_list(&p.bucket) => false,
            Some(mut p) => {
                p.restore_status = headers
                    .get("x-amz-optional-object-attributes")
                    .and_then(|v| v.to_str().ok())
                    .is_some_and(|v| v.split(',').any(|a| a.trim() == "RestoreStatus"));
                extensions.insert(p);
                true
            }
            None => false,
        }
    }

    async fn check_access(&self, req: &mut S3Request<Body>) -> S3Result<()> {
        let bucket = req.extensions.get::<ListV2Params>().map(|p| &*p.bucket);
        let verified = req.credentials.is_some();
        let view = RequestView::new(&req.uri, &req.headers, &req.extensions, verified);
        authorize(&self.shared, OP, bucket, None, &view)
    }

    async fn call(&self, mut req: S3Request<Body>) -> S3Result<S3Response<Body>> {
        let p = req
            .extensions
            .remove::<ListV2Params>()
            .ok_or_else(|| s3_error!(InternalError, "list parameters missing"))?;
        let token_key = p
            .continuation_token
            .as_deref()
            .map(decode_token)
            .transpose()?;
        let start_after = p.start_after.as_deref().filter(|s| !s.is_empty());
        list_prelude(&self.shared, token_key.is_some() || start_after.is_some()).await;
        let max_keys = max_keys_of(p.max_keys)?;
        let query = ListQuery {
            prefix: p.prefix.as_deref().unwrap_or(""),
            delimiter: p.delimiter.as_deref(),
            start_after: token_key.as_deref().or(start_after),
            max_keys,
        };
        let controls = self
            .shared
            .controls
            .read()
            .map_err(|_| s3_error!(InternalError))?;
        let archived = controls.archived.get(&p.bucket);
        let xml = render_list_v2(&self.shared.store, &p, &query, archived).map_err(store_err)?;
        drop(controls);
        let mut resp = S3Response::new(Body::from(xml));
        resp.headers.insert(
            hyper::header::CONTENT_TYPE,
            HeaderValue::from_static("application/xml"),
        );
        Ok(resp)
    }
}

/// Appends `s` as XML text: `& < > " '` as named entities, characters XML 1.0 can't
/// carry (C0 controls, U+FFFE, U+FFFF) as `&#xN;`.
pub(crate) fn push_xml_text(out: &mut Vec<u8>, s: &str) {
    let b = s.as_bytes();
    // Branch-free scan (vectorizes); most keys need no escaping at all.
    let special = b.iter().fold(false, |acc, &c| {
        acc | (c < 0x20)
            | (c == b'&')
            | (c == b'<')
            | (c == b'>')
            | (c == b'"')
            | (c == b'\'')
            | (c == 0xEF)
    });
    if !special {
        out.extend_from_slice(b);
        return;
    }
    let mut start = 0;
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        let (rep, len): (&str, usize) = match c {
            b'&' => ("&amp;", 1),
            b'<' => ("&lt;", 1),
            b'>' => ("&gt;", 1),
            b'"' => ("&quot;", 1),
            b'\'' => ("&apos;", 1),
            0..=0x1f => ("", 1),
            0xEF if b.get(i + 1) == Some(&0xBF) && matches!(b.get(i + 2), Some(0xBE | 0xBF)) => {
                ("", 3)
            }
            _ => {
                i += 1;
                continue;
            }
        };
        out.extend_from_slice(&b[start..i]);
        if rep.is_empty() {
            let ch = s[i..].chars().next().map_or(0, u32::from);
            push_char_ref(out, ch);
        } else {
            out.extend_from_slice(rep.as_bytes());
        }
        i += len;
        start = i;
    }
    out.extend_from_slice(&b[start..]);
}

fn push_char_ref(out: &mut Vec<u8>, ch: u32) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    out.extend_from_slice(b"&#x");
    let digits = (32 - ch.leading_zeros()).div_ceil(4).max(1);
    for shift in (0..digits).rev() {
        out.push(HEX[(ch >> (shift * 4)) as usize & 0xf]);
    }
    out.push(b';');
}

/// Appends `s` url-encoded (`encoding-type=url`) or XML-escaped.
fn push_value(out: &mut Vec<u8>, s: &str, url: bool) {
    if url {
        // Url-encoded text is `[A-Za-z0-9%/._~-]` only: nothing to XML-escape.
        url_encode_into(out, s);
    } else {
        push_xml_text(out, s);
    }
}

fn push_u64(out: &mut Vec<u8>, mut n: u64) {
    let mut buf = [0u8; 20];
    let mut i = buf.len();
    loop {
        i -= 1;
        // `n % 10` < 10, so the cast is lossless.
        #[allow(clippy::cast_possible_truncation)]
        let digit = (n % 10) as u8;
        buf[i] = b'0' + digit;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&buf[i..]);
}

fn push_element(out: &mut Vec<u8>, name: &str, value: &str, url: bool) {
    out.push(b'<');
    out.extend_from_slice(name.as_bytes());
    out.push(b'>');
    push_value(out, value, url);
    out.extend_from_slice(b"</");
    out.extend_from_slice(name.as_bytes());
    out.push(b'>');
}

fn push_object(
    out: &mut Vec<u8>,
    key: &str,
    meta: &ObjectMeta,
    url: bool,
    (archive, restore_status): (Option<&Archive>, bool),
) {
    out.extend_from_slice(b"<Contents><Key>");
    push_value(out, key, url);
    out.extend_from_slice(b"</Key><LastModified>");
    out.extend_from_slice(meta.last_modified_iso_bytes());
    out.extend_from_slice(b"</LastModified><ETag>&quot;");
    out.extend_from_slice(meta.etag_hex_bytes());
    out.extend_from_slice(b"&quot;</ETag><Size>");
    push_u64(out, meta.size);
    out.extend_from_slice(b"</Size><StorageClass>");
    let Some(archive) = archive else {
        out.extend_from_slice(b"STANDARD</StorageClass></Contents>");
        return;
    };
    out.extend_from_slice(archive.class.as_bytes());
    out.extend_from_slice(b"</StorageClass>");
    if restore_status {
        out.extend_from_slice(b"<RestoreStatus><IsRestoreInProgress>false</IsRestoreInProgress>");
        if archive.restored {
            out.extend_from_slice(
                b"<RestoreExpiryDate>2099-01-01T00:00:00.000Z</RestoreExpiryDate>",
            );
        }
        out.extend_from_slice(b"</RestoreStatus>");
    }
    out.extend_from_slice(b"</Contents>");
}

/// Renders the ListObjectsV2 response body (UTF-8) for `p` (the request) and `query`
/// (what it resolved to), reading the page straight from the store's index.
///
/// The head of the document (up to `<NextContinuationToken>`) depends on the walk, so the
/// entries are written first, after a gap large enough for any head, and the head then
/// goes at the end of the gap: the page is never copied.
pub(crate) fn render_list_v2(
    store: &Store,
    p: &ListV2Params,
    query: &ListQuery<'_>,
    archived: Option<&HashMap<String, Archive>>,
) -> StoreResult<Bytes> {
    let url = p.encoding_type.as_deref() == Some("url");
    // Fixed parts, ≤ 6 bytes per escaped input byte, hex of the last key.
    let gap = 512
        + 6 * (p.bucket.len()
            + query.prefix.len()
            + p.continuation_token.as_ref().map_or(0, String::len))
        + 2 * MAX_KEY_LEN;
    let mut out = Vec::with_capacity(gap + 256 + query.max_keys.min(1000) * 256);
    out.resize(gap, b' ');
    let mut prefixes = Vec::new();
    let summary = store.list_visit(&p.bucket, query, |entry| match entry {
        ListEntry::Object(key, meta) => {
            let archive = archived.and_then(|a| a.get(key));
            push_object(&mut out, key, meta, url, (archive, p.restore_status));
        }
        ListEntry::CommonPrefix(cp) => {
            prefixes.extend_from_slice(b"<CommonPrefixes><Prefix>");
            push_value(&mut prefixes, cp, url);
            prefixes.extend_from_slice(b"</Prefix></CommonPrefixes>");
        }
    })?;
    out.extend_from_slice(&prefixes);
    if let Some(d) = &p.delimiter {
        push_element(&mut out, "Delimiter", d, url);
    }
    if let Some(e) = &p.encoding_type {
        push_element(&mut out, "EncodingType", e, false);
    }
    if let Some(s) = p.start_after.as_deref().filter(|s| !s.is_empty()) {
        push_element(&mut out, "StartAfter", s, url);
    }
    out.extend_from_slice(b"</ListBucketResult>");

    let mut head = Vec::with_capacity(gap);
    head.extend_from_slice(
        b"<?xml version=\"1.0\" encoding=\"UTF-8\"?>\
         <ListBucketResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><Name>",
    );
    push_xml_text(&mut head, &p.bucket);
    head.extend_from_slice(b"</Name>");
    push_element(&mut head, "Prefix", query.prefix, url);
    head.extend_from_slice(b"<MaxKeys>");
    push_u64(&mut head, query.max_keys as u64);
    head.extend_from_slice(b"</MaxKeys><KeyCount>");
    push_u64(&mut head, summary.count as u64);
    head.extend_from_slice(b"</KeyCount>");
    if let Some(t) = &p.continuation_token {
        push_element(&mut head, "ContinuationToken", t, false);
    }
    head.extend_from_slice(if summary.is_truncated {
        b"<IsTruncated>true</IsTruncated>"
    } else {
        b"<IsTruncated>false</IsTruncated>"
    });
    if let Some(last) = &summary.last_item {
        push_element(
            &mut head,
            "NextContinuationToken",
            &encode_token(last),
            false,
        );
    }
    let Some(start) = gap.checked_sub(head.len()) else {
        // Unreachable with keys of at most MAX_KEY_LEN bytes; stay correct regardless.
        head.extend_from_slice(&out[gap..]);
        return Ok(Bytes::from(head));
    };
    out[start..gap].copy_from_slice(&head);
    Ok(Bytes::from(out).slice(start..))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn uri(s: &str) -> Uri {
        s.parse().unwrap()
    }

    #[test]
    fn matches_only_plain_list_v2() {
        let get = Method::GET;
        let p = parse_request(
            &get,
            &uri("/bkt/?list-type=2&prefix=a%2Fb+c&delimiter=%2F&max-keys=%2B7&start-after=&encoding-type=url&fetch-owner=false&X-Amz-Date=1"),
        )
        .unwrap();
        assert_eq!(
            p,
            ListV2Params {
                bucket: "bkt".into(),
                prefix: Some("a/b c".into()),
                delimiter: Some("/".into()),
                continuation_token: None,
                start_after: Some(String::new()),
                max_keys: Some(7),
                encoding_type: Some("url".into()),
                restore_status: false,
            }
        );
        assert_eq!(
            parse_request(&get, &uri("/bkt?list-type=2&prefix=%zz%e2%82%ac"))
                .unwrap()
                .prefix,
            Some("%zz€".into())
        );
        for no in [
            "/bkt",                               // ListObjects (v1)
            "/bkt?list-type=1",                   // v1
            "/bkt?list-type=2&list-type=2",       // s3s: not unique -> v1
            "/bkt?list-type=2&prefix=a&prefix=b", // s3s: duplicate query error
            "/bkt?list-type=2&max-keys=x",        // s3s: invalid max-keys error
            "/bkt?list-type=2&fetch-owner=yes",   // s3s: invalid fetch-owner error
            "/bkt?list-type=2&versions",          // ListObjectVersions
            "/bkt?list-type=2&location",          // GetBucketLocation
            "/bkt/key?list-type=2",               // GetObject
            "/?list-type=2",                      // ListBuckets
            "/b%6Bt?list-type=2",                 // needs decoding: leave it to s3s
            "/BKT?list-type=2",                   // invalid bucket name
        ] {
            assert_eq!(parse_request(&get, &uri(no)), None, "{no}");
        }
        assert_eq!(parse_request(&Method::HEAD, &uri("/bkt?list-type=2")), None);
    }

    #[test]
    fn escapes_text() {
        let mut s = Vec::new();
        push_xml_text(
            &mut s,
            "a&b<c>d\"e'f\u{1}g\th\r\n\u{1f}é\u{FFFE}\u{FFFF}\u{FFFD}€z",
        );
        assert_eq!(
            String::from_utf8(s).unwrap(),
            "a&amp;b&lt;c&gt;d&quot;e&apos;f&#x1;g&#x9;h&#xD;&#xA;&#x1F;é&#xFFFE;&#xFFFF;\u{FFFD}€z"
        );
        let mut s = Vec::new();
        push_value(&mut s, "a b&é/~", true);
        assert_eq!(s, b"a%20b%26%C3%A9/~");
        let mut s = Vec::new();
        for n in [0, 7, 10, 1234, u64::MAX] {
            push_u64(&mut s, n);
            s.push(b',');
        }
        assert_eq!(s, b"0,7,10,1234,18446744073709551615,");
    }

    /// Prints how long rendering a 1,000-key page takes (this path vs `s3s`'s serializer).
    /// `cargo test --release -p s3fetch-testkit --lib -- --ignored --nocapture render_time`
    #[test]
    #[ignore = "timing printout, run by hand"]
    fn render_time() {
        use s3s::dto::{ETag, ListObjectsV2Output, Object, ObjectStorageClass, Timestamp};
        use std::time::Instant;

        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        store.create_bucket("bkt").unwrap();
        store
            .put_objects(
                "bkt",
                (0..10_000).map(|i| (format!("data/2024/part-{i:08}.parquet"), [0u8; 100])),
            )
            .unwrap();
        let p = ListV2Params {
            bucket: "bkt".into(),
            ..ListV2Params::default()
        };
        let q = ListQuery {
            max_keys: 1000,
            start_after: Some("data/2024/part-00004000.parquet"),
            ..ListQuery::default()
        };
        let (fast_rounds, rounds) = (2000u32, 200u32);
        let mut len = 0;
        let t = Instant::now();
        for _ in 0..fast_rounds {
            len = render_list_v2(&store, &p, &q, None).unwrap().len();
        }
        let fast = t.elapsed() / fast_rounds;
        let t = Instant::now();
        for _ in 0..rounds {
            let page = store.list("bkt", &q).unwrap();
            let contents = page
                .objects
                .iter()
                .map(|(k, m)| Object {
                    key: Some(k.clone()),
                    size: Some(i64::try_from(m.size).unwrap()),
                    e_tag: Some(ETag::Strong(m.etag_hex())),
                    last_modified: Some(Timestamp::from(m.last_modified)),
                    storage_class: Some(ObjectStorageClass::from_static(
                        ObjectStorageClass::STANDARD,
                    )),
                    ..Default::default()
                })
                .collect();
            let out = ListObjectsV2Output {
                name: Some("bkt".into()),
                prefix: Some(String::new()),
                max_keys: Some(1000),
                key_count: Some(1000),
                is_truncated: Some(true),
                next_continuation_token: page.last_item.as_deref().map(encode_token),
                contents: Some(contents),
                ..Default::default()
            };
            let mut buf = Vec::with_capacity(256);
            let mut ser = s3s::xml::Serializer::new(&mut buf);
            ser.decl().unwrap();
            s3s::xml::Serialize::serialize(&out, &mut ser).unwrap();
            std::hint::black_box(buf);
        }
        let slow = t.elapsed() / rounds;
        println!(
            "1,000-key ListObjectsV2 page ({len} bytes) render: fast path {fast:?}, s3s serializer {slow:?}"
        );
    }
}
