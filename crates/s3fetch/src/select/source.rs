//! Where a run's objects come from — a listing of the prefix, an S3 Inventory report or a
//! list of keys — and the one task that sends the wanted ones, each with what is known of the
//! folders on its path, into the downloads' bounded channel.

use std::collections::HashSet;
use std::sync::Arc;

use tokio::sync::mpsc;

use super::filter::KeyFilter;
use super::folders::Parent;
use super::listing::{self, Listed, Order, Pages};
use crate::error::Result;
use crate::object::ObjectInfo;
use crate::progress::Reporter;
use crate::s3::Bucket;
use crate::uri::S3Uri;

/// The objects of a run.
pub(crate) enum Source {
    /// Exactly these keys (`keys_from`): each one's size comes from a HEAD when its turn comes.
    Keys(Vec<String>),
    /// The objects of the S3 Inventory report whose manifest is `manifest`, in `bucket`.
    Inventory { bucket: Bucket, manifest: S3Uri },
    /// Everything under the URI's prefix (narrowed by the filter), listed in `order` with up
    /// to `concurrency` requests in flight.
    Listing {
        bucket: Arc<Bucket>,
        order: Order,
        concurrency: usize,
    },
}

impl Source {
    /// Sends the objects of `uri` that `filter` wants to `tx`; returns how many were sent.
    /// Stops early (with `Ok`) when the receiver is gone.
    pub(crate) async fn send(
        self,
        uri: &S3Uri,
        delimiter: &str,
        filter: &KeyFilter,
        reporter: &dyn Reporter,
        tx: mpsc::Sender<Listed>,
    ) -> Result<u64> {
        match self {
            Source::Keys(keys) => {
                let objects = keys
                    .into_iter()
                    .filter(|k| filter.wants(k))
                    .map(|key| ObjectInfo {
                        key,
                        size: 0,
                        etag: None,
                        last_modified: None,
                        archived: false,
                    })
                    .collect();
                // Reported found after their HEAD, when their sizes are known.
                Ok(send_objects(objects, delimiter, None, tx).await)
            }
            Source::Inventory { bucket, manifest } => {
                let objects =
                    super::inventory::objects(&bucket, &manifest, &uri.bucket, &uri.prefix, |o| {
                        filter.wants_object(o)
                    })
                    .await?;
                Ok(send_objects(objects, delimiter, Some(reporter), tx).await)
            }
            Source::Listing {
                bucket,
                order,
                concurrency,
            } => {
                // A regex anchored on a literal (`^data/2024-`) lists only under that literal.
                let Some(prefix) = filter.narrow_prefix(&uri.prefix) else {
                    return Ok(0);
                };
                let wanted = filter.clone();
                let pages = Arc::new(Pages {
                    bucket,
                    prefix: prefix.clone(),
                    wanted: Some(Arc::new(move |key: &str| wanted.wants(key))),
                });
                listing::list_into(
                    pages,
                    &prefix,
                    delimiter,
                    order,
                    concurrency,
                    filter,
                    reporter,
                    tx,
                )
                .await
            }
        }
    }
}

/// Sends wanted objects that did not come from a listing — a `keys_from` list (sizes
/// unknown until each key's HEAD) or an inventory — to the downloads, as a listing would;
/// returns how many were sent. A key that names a folder on another key's path takes it as
/// its file, as with a listing (see [`super::folders`]). `found` reports each as found
/// (a `keys_from` key is reported after its HEAD instead).
async fn send_objects(
    objects: Vec<ObjectInfo>,
    delimiter: &str,
    found: Option<&dyn Reporter>,
    tx: mpsc::Sender<Listed>,
) -> u64 {
    let names: HashSet<&str> = objects.iter().map(|o| o.key.as_str()).collect();
    let mut sent = 0;
    let mut seen = HashSet::new();
    for object in &objects {
        let key = &object.key;
        if !seen.insert(key.as_str()) {
            continue; // listed twice: downloaded once
        }
        let parent = key
            .match_indices(delimiter)
            .map(|(at, _)| &key[..at])
            .find(|folder| names.contains(folder))
            .map_or(Parent::Clear, |folder| Parent::File(folder.to_owned()));
        if let Some(reporter) = found {
            reporter.object_found(object);
        }
        let object = object.clone();
        if tx.send(Listed { object, parent }).await.is_err() {
            break;
        }
        sent += 1;
    }
    sent
}
