//! ListObjectsV2 pages -> a stream of wanted objects.
//!
//! The listing runs as its own task and sends each object that passes the [`KeyFilter`] into a
//! bounded channel: the download stage starts on the first match while later pages are still
//! being fetched, and a full channel pauses the listing, so memory stays flat however many keys
//! the bucket holds.

use std::time::SystemTime;

use aws_sdk_s3::Client;
use tokio::sync::mpsc;

use crate::error::{Error, Result, ServiceError};
use crate::filter::KeyFilter;
use crate::progress::{ObjectInfo, Reporter};

/// Lists every key under `prefix`, sending the wanted ones to `tx`. Returns the number sent.
/// Stops early (with `Ok`) when the receiver is gone.
pub(crate) async fn list_into(
    client: &Client,
    bucket: &str,
    prefix: &str,
    filter: &KeyFilter,
    reporter: &dyn Reporter,
    tx: mpsc::Sender<ObjectInfo>,
) -> Result<u64> {
    let mut found = 0;
    let mut token: Option<String> = None;
    loop {
        let page = client
            .list_objects_v2()
            .bucket(bucket)
            .prefix(prefix)
            .set_continuation_token(token.take())
            .send()
            .await
            .map_err(|e| Error::List {
                bucket: bucket.to_owned(),
                prefix: prefix.to_owned(),
                source: ServiceError::from_sdk(e),
            })?;
        for object in page.contents() {
            let Some(key) = object.key() else { continue };
            if !filter.wants(key) {
                continue;
            }
            let info = ObjectInfo {
                key: key.to_owned(),
                size: object.size().map_or(0, |s| s.max(0) as u64),
                etag: object.e_tag().map(str::to_owned),
                last_modified: object
                    .last_modified()
                    .and_then(|t| SystemTime::try_from(*t).ok()),
            };
            reporter.object_found(&info);
            found += 1;
            if tx.send(info).await.is_err() {
                return Ok(found);
            }
        }
        match page.next_continuation_token() {
            Some(next) if page.is_truncated() == Some(true) => token = Some(next.to_owned()),
            _ => return Ok(found),
        }
    }
}
