//! ListObjectsV2 and ListObjects for buckets that list unlike S3 (a [`ListMode`]): served
//! here by `s3s`'s handlers (the fast path declines these buckets, see
//! `Quirks::needs_generic_list`).
//!
//! * `hash_order` (`--unordered`, directory buckets): keys and common prefixes in the fixed
//!   order of `hash_order.rs`, `max-keys` per page; a continuation token (V2) or `NextMarker`
//!   (V1, always sent when truncated) is the position of the page's last item, so a client
//!   following them gets every item once. `start-after` keeps S3's meaning: only keys
//!   lexicographically after it, in the store's order. A V1 `marker` is a position too.
//! * `start-after` ignored (listing from the start of the prefix, not echoed back) or
//!   refused with `501 NotImplemented`, V2 only.
//! * Directory buckets (S3 Express One Zone, per the ListObjectsV2 API reference):
//!   `start-after`, `x-amz-optional-object-attributes`, a prefix not ending in `/` and a
//!   delimiter other than `/` are `400 InvalidArgument`; folders of in-progress multipart
//!   uploads show as common prefixes; ETags are S3 Express's opaque ones
//!   ([`crate::express::etag`]); ListObjects (V1) is `501 NotImplemented` (AWS: "not
//!   supported for directory buckets").

use std::collections::HashSet;

use hyper::HeaderMap;
use s3s::dto::{
    ETag, ListObjectsInput, ListObjectsOutput, ListObjectsV2Input, ListObjectsV2Output,
    RequestCharged,
};
use s3s::{s3_error, S3Request, S3Response, S3Result};

use super::hash_order::Page;
use super::{ListMode, StartAfter};
use crate::protocol::{
    decode_token, encode_token, etag_of, list_prelude, max_keys_of, render_page, store_err,
    url_encode, wants_url,
};
use crate::state::Shared;
use crate::store::{ListEntry, ListPage, ListQuery, ObjectMeta, StoreResult};

/// `x-amz-request-charged: requester` on what a requester-pays bucket answers.
pub(crate) fn request_charged(shared: &Shared, bucket: &str) -> Option<RequestCharged> {
    shared
        .quirks
        .requester_pays(bucket)
        .then(|| RequestCharged::from_static(RequestCharged::REQUESTER))
}

/// The ETag a bucket shows for an object.
fn etag_for(directory: bool) -> impl Fn(&ObjectMeta) -> ETag {
    move |m| {
        if directory {
            ETag::Strong(crate::express::etag(m))
        } else {
            etag_of(m)
        }
    }
}

/// The ListObjectsV2 parameters S3 Express refuses on a directory bucket.
fn check_directory_request(input: &ListObjectsV2Input, headers: &HeaderMap) -> S3Result<()> {
    if input.start_after.as_deref().is_some_and(|s| !s.is_empty()) {
        return Err(s3_error!(
            InvalidArgument,
            "start-after is not supported for directory buckets"
        ));
    }
    if headers.contains_key("x-amz-optional-object-attributes") {
        return Err(s3_error!(
            InvalidArgument,
            "x-amz-optional-object-attributes is not supported for directory buckets"
        ));
    }
    if input
        .prefix
        .as_deref()
        .is_some_and(|p| !p.is_empty() && !p.ends_with('/'))
    {
        return Err(s3_error!(
            InvalidArgument,
            "Prefixes of directory buckets must end in the delimiter '/'"
        ));
    }
    if input
        .delimiter
        .as_deref()
        .is_some_and(|d| !d.is_empty() && d != "/")
    {
        return Err(s3_error!(
            InvalidArgument,
            "Only '/' is supported as a delimiter for directory buckets"
        ));
    }
    Ok(())
}

/// What one page asks for.
struct PageRequest<'a> {
    bucket: &'a str,
    prefix: &'a str,
    delimiter: Option<&'a str>,
    /// S3's `start-after`: only keys lexicographically after it.
    start_after: Option<&'a str>,
    /// Where the previous page ended (a continuation token or marker).
    position: Option<&'a str>,
    max_keys: usize,
}

/// One page in `mode`'s order.
fn list_page(shared: &Shared, mode: ListMode, r: &PageRequest<'_>) -> StoreResult<ListPage> {
    if !mode.hash_order {
        let query = ListQuery {
            prefix: r.prefix,
            delimiter: r.delimiter,
            start_after: r.position.or(r.start_after),
            max_keys: r.max_keys,
        };
        return shared.store.list(r.bucket, &query);
    }
    let mut page = Page::<Option<ObjectMeta>>::new(r.position, r.max_keys);
    let everything = ListQuery {
        prefix: r.prefix,
        delimiter: r.delimiter,
        start_after: r.start_after,
        max_keys: usize::MAX,
    };
    let pending = if mode.directory {
        shared.quirks.pending_uploads(r.bucket)
    } else {
        &[]
    };
    let mut seen = HashSet::new();
    shared
        .store
        .list_visit(r.bucket, &everything, |entry| match entry {
            ListEntry::Object(key, meta) => page.offer(key, || Some(meta.clone())),
            ListEntry::CommonPrefix(cp) => {
                if !pending.is_empty() {
                    seen.insert(cp.to_owned());
                }
                page.offer(cp, || None);
            }
        })?;
    // S3 Express lists the folder of an in-progress multipart upload like one holding
    // objects: as a common prefix.
    if let Some(d) = r.delimiter {
        for folder in pending {
            let Some(rest) = folder.strip_prefix(r.prefix) else {
                continue;
            };
            if let Some(i) = rest.find(d) {
                let cp = &folder[..r.prefix.len() + i + d.len()];
                if seen.insert(cp.to_owned()) {
                    page.offer(cp, || None);
                }
            }
        }
    }
    let (items, truncated) = page.finish();
    let last_item = truncated
        .then(|| items.last().map(|(item, _)| item.clone()))
        .flatten();
    let mut out = ListPage {
        is_truncated: truncated,
        last_item,
        ..ListPage::default()
    };
    for (item, meta) in items {
        match meta {
            Some(m) => out.objects.push((item, m)),
            None => out.common_prefixes.push(item),
        }
    }
    Ok(out)
}

/// ListObjectsV2 of a bucket with a [`ListMode`].
pub(crate) async fn list_objects_v2(
    shared: &Shared,
    mode: ListMode,
    req: S3Request<ListObjectsV2Input>,
) -> S3Result<S3Response<ListObjectsV2Output>> {
    let input = req.input;
    if mode.directory {
        check_directory_request(&input, &req.headers)?;
    }
    let asked_start_after = input.start_after.as_deref().filter(|s| !s.is_empty());
    let start_after = match mode.start_after {
        StartAfter::Honour => asked_start_after,
        StartAfter::Ignore => None,
        StartAfter::Refuse if asked_start_after.is_some() => {
            return Err(s3_error!(
                NotImplemented,
                "A parameter you provided implies functionality that is not implemented: start-after"
            ));
        }
        StartAfter::Refuse => None,
    };
    let position = input
        .continuation_token
        .as_deref()
        .map(decode_token)
        .transpose()?;
    list_prelude(shared, position.is_some() || asked_start_after.is_some()).await;
    let max_keys = max_keys_of(input.max_keys)?;
    let prefix = input.prefix.as_deref().unwrap_or("");
    let page = list_page(
        shared,
        mode,
        &PageRequest {
            bucket: &input.bucket,
            prefix,
            delimiter: input.delimiter.as_deref().filter(|d| !d.is_empty()),
            start_after,
            position: position.as_deref(),
            max_keys,
        },
    )
    .map_err(store_err)?;
    let url = wants_url(input.encoding_type.as_ref());
    let enc = |s: &str| if url { url_encode(s) } else { s.to_owned() };
    let listed = render_page(&page, url, etag_for(mode.directory));
    let output = ListObjectsV2Output {
        name: Some(input.bucket.clone()),
        prefix: Some(enc(prefix)),
        max_keys: Some(i32::try_from(max_keys).unwrap_or(1000)),
        key_count: Some(i32::try_from(page.len()).unwrap_or(i32::MAX)),
        continuation_token: input.continuation_token.clone(),
        is_truncated: Some(page.is_truncated),
        next_continuation_token: page.last_item.as_deref().map(encode_token),
        contents: (!listed.contents.is_empty()).then_some(listed.contents),
        common_prefixes: (!listed.common_prefixes.is_empty()).then_some(listed.common_prefixes),
        delimiter: input.delimiter.as_deref().map(enc),
        encoding_type: input.encoding_type.clone(),
        // A server that ignores start-after doesn't know it to echo it.
        start_after: start_after.map(enc),
        request_charged: request_charged(shared, &input.bucket),
    };
    Ok(S3Response::new(output))
}

/// ListObjects (V1) of a bucket with a [`ListMode`]. `start-after` quirks are V2's;
/// `marker` keeps S3's meaning unless the order is the store's own, where it is a position.
pub(crate) async fn list_objects(
    shared: &Shared,
    mode: ListMode,
    req: S3Request<ListObjectsInput>,
) -> S3Result<S3Response<ListObjectsOutput>> {
    if mode.directory {
        return Err(s3_error!(
            NotImplemented,
            "ListObjects is not supported for directory buckets; use ListObjectsV2"
        ));
    }
    let input = req.input;
    let marker = input.marker.as_deref().filter(|s| !s.is_empty());
    list_prelude(shared, marker.is_some()).await;
    let max_keys = max_keys_of(input.max_keys)?;
    let prefix = input.prefix.as_deref().unwrap_or("");
    let page = list_page(
        shared,
        mode,
        &PageRequest {
            bucket: &input.bucket,
            prefix,
            delimiter: input.delimiter.as_deref().filter(|d| !d.is_empty()),
            start_after: if mode.hash_order { None } else { marker },
            position: if mode.hash_order { marker } else { None },
            max_keys,
        },
    )
    .map_err(store_err)?;
    let url = wants_url(input.encoding_type.as_ref());
    let enc = |s: &str| if url { url_encode(s) } else { s.to_owned() };
    let listed = render_page(&page, url, etag_for(false));
    let output = ListObjectsOutput {
        name: Some(input.bucket.clone()),
        prefix: Some(enc(prefix)),
        marker: Some(marker.map(enc).unwrap_or_default()),
        max_keys: Some(i32::try_from(max_keys).unwrap_or(1000)),
        is_truncated: Some(page.is_truncated),
        contents: (!listed.contents.is_empty()).then_some(listed.contents),
        common_prefixes: (!listed.common_prefixes.is_empty()).then_some(listed.common_prefixes),
        delimiter: input.delimiter.as_deref().map(enc),
        next_marker: page.last_item.as_deref().map(enc),
        encoding_type: input.encoding_type.clone(),
        request_charged: request_charged(shared, &input.bucket),
    };
    Ok(S3Response::new(output))
}
