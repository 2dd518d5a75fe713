//! `s3fetch plan`: the split points of N range shards, computed once and shared as a file.
//!
//! Range shards (`--shard K/N --plan plan.json`) each list only their own part of the key
//! space, so N machines send about as many LIST requests in total as one. A plan holds the
//! N−1 split points: shard K takes the keys `splits[K-1] < key <= splits[K]`, so keys added
//! after the plan still fall in exactly one shard. A plan comes from a sampling listing (a
//! few pages, see [`sample`]) or, exactly and with no LIST request, from an S3 Inventory.

mod folders;
mod sample;

use std::path::Path;
use std::sync::Arc;

use aws_sdk_s3::Client;
use serde_json::{json, Value};

use crate::error::{Error, Result};
use crate::keyspace::{KeyRange, Shard};
use crate::s3::client::ClientOptions;
use crate::s3::limit::Budget;
use crate::s3::retry::{RetryPolicy, RetryStats};
use crate::s3::{Bucket, RequestPayer, Settings, S3};
use crate::select::listing::Pages;
use crate::uri::S3Uri;
use sample::Sampled;

/// The most shards a plan splits into.
pub const MAX_SHARDS: u32 = 100_000;

/// The split points of N range shards of one `s3://bucket/prefix`.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    /// What the plan splits: a shard run must list the same bucket and prefix.
    pub uri: S3Uri,
    /// N−1 keys in order: shard K takes `splits[K-1] < key <= splits[K]`.
    pub splits: Vec<String>,
    /// The objects each shard is expected to take (exact when `exact`).
    pub estimated_objects: Vec<u64>,
    /// True when every key was seen (one-page prefix, or an inventory).
    pub exact: bool,
    /// `listing` or `inventory`.
    pub source: String,
    /// LIST requests the plan took.
    pub list_requests: u64,
}

impl Plan {
    /// N.
    pub fn shards(&self) -> u32 {
        self.splits.len() as u32 + 1
    }

    /// The keys of shard `index`.
    pub fn range(&self, index: u32) -> KeyRange {
        let i = index as usize;
        KeyRange {
            after: i.checked_sub(1).and_then(|p| self.splits.get(p)).cloned(),
            upto: self.splits.get(i).cloned(),
        }
    }

    /// The range of `shard` in a run of `uri`: the plan must be for that URI and N.
    pub fn range_for(&self, uri: &S3Uri, shard: Shard) -> Result<KeyRange> {
        if self.uri != *uri {
            return Err(Error::option(
                "plan",
                format!("was made for {}, not {uri}", self.uri),
            ));
        }
        if self.splits.windows(2).any(|w| w[0] > w[1]) {
            return Err(Error::option("plan", "has splits out of order"));
        }
        if shard.index >= shard.count {
            return Err(Error::option(
                "shard",
                format!("{shard}: K must be less than N (shards count from 0)"),
            ));
        }
        if shard.count != self.shards() {
            return Err(Error::option(
                "plan",
                format!(
                    "has {} shards, but the shard is {shard}: give --shard K/{}",
                    self.shards(),
                    self.shards()
                ),
            ));
        }
        Ok(self.range(shard.index))
    }

    /// The plan file:
    /// ```json
    /// {"s3fetch_plan": 1, "uri": "s3://bucket/prefix", "shards": 4,
    ///  "splits": ["prefix/key-024999", "prefix/key-049999", "prefix/key-074999"],
    ///  "estimated_objects": [25000, 25000, 25000, 25000], "exact": false,
    ///  "source": "listing", "list_requests": 16}
    /// ```
    pub fn to_json(&self) -> String {
        let value = json!({
            "s3fetch_plan": 1,
            "uri": self.uri.to_string(),
            "shards": self.shards(),
            "splits": self.splits,
            "estimated_objects": self.estimated_objects,
            "exact": self.exact,
            "source": self.source,
            "list_requests": self.list_requests,
        });
        serde_json::to_string_pretty(&value).expect("JSON values serialize")
    }

    /// Reads a plan written by [`Plan::to_json`]; errors name what is wrong with it.
    pub fn from_json(text: &str) -> Result<Plan> {
        let bad = |reason: &str| Error::option("plan", reason.to_owned());
        let value: Value = serde_json::from_str(text)
            .map_err(|e| Error::option("plan", format!("is not JSON: {e}")))?;
        if value.get("s3fetch_plan").and_then(Value::as_u64) != Some(1) {
            return Err(bad(
                "is not an s3fetch plan (version 1): make one with `s3fetch plan`",
            ));
        }
        let uri = value
            .get("uri")
            .and_then(Value::as_str)
            .ok_or_else(|| bad("has no \"uri\""))?;
        let uri = S3Uri::parse(uri)?;
        let splits: Vec<String> = value
            .get("splits")
            .and_then(Value::as_array)
            .and_then(|a| a.iter().map(|s| s.as_str().map(str::to_owned)).collect())
            .ok_or_else(|| bad("\"splits\" is not a list of keys"))?;
        if splits.windows(2).any(|w| w[0] > w[1]) {
            return Err(bad("\"splits\" are not in order"));
        }
        let shards = value.get("shards").and_then(Value::as_u64);
        if shards != Some(splits.len() as u64 + 1) {
            return Err(bad("\"shards\" is not one more than the number of splits"));
        }
        let estimated_objects = value
            .get("estimated_objects")
            .and_then(Value::as_array)
            .map(|a| a.iter().filter_map(Value::as_u64).collect())
            .unwrap_or_default();
        Ok(Plan {
            uri,
            splits,
            estimated_objects,
            exact: value.get("exact").and_then(Value::as_bool).unwrap_or(false),
            source: value
                .get("source")
                .and_then(Value::as_str)
                .unwrap_or("listing")
                .to_owned(),
            list_requests: value
                .get("list_requests")
                .and_then(Value::as_u64)
                .unwrap_or(0),
        })
    }

    /// Reads a plan file.
    pub fn read(path: &Path) -> Result<Plan> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| Error::option("plan", format!("{}: {e}", path.display())))?;
        Plan::from_json(&text)
    }
}

/// What `s3fetch plan` needs: the URI to split, into how many shards, and from what.
#[derive(Debug, Clone)]
pub struct PlanOptions {
    /// The bucket and prefix to split.
    pub uri: S3Uri,
    /// N, at least 1.
    pub shards: u32,
    /// Split exactly by the keys of this S3 Inventory report, with no LIST request.
    pub inventory: Option<S3Uri>,
    /// Most LIST requests the sampling may send (default: 8 + 2N).
    pub max_requests: Option<u64>,
    /// Retries, backoff and timeouts of the plan's requests. Default: [`RetryPolicy::default`].
    pub retry: RetryPolicy,
    /// Agree to pay for the requests (requester-pays buckets).
    pub request_payer: Option<RequestPayer>,
    /// How to build the S3 client, unless `client` is given. Default:
    /// [`ClientOptions::default`].
    pub client_options: ClientOptions,
    /// A ready client; overrides `client_options`.
    pub client: Option<Client>,
}

impl PlanOptions {
    /// Options to split `uri` into `shards` range shards by sampling its listing, with every
    /// other default.
    pub fn new(uri: S3Uri, shards: u32) -> Self {
        PlanOptions {
            uri,
            shards,
            inventory: None,
            max_requests: None,
            retry: RetryPolicy::default(),
            request_payer: None,
            client_options: ClientOptions::default(),
            client: None,
        }
    }

    /// Agree to pay for the requests to a requester-pays bucket.
    pub fn request_payer(mut self, payer: RequestPayer) -> Self {
        self.request_payer = Some(payer);
        self
    }

    /// Split exactly by the keys of this S3 Inventory report (its manifest:
    /// `s3://bucket/path/manifest.json`), with no LIST request.
    pub fn inventory(mut self, manifest: S3Uri) -> Self {
        self.inventory = Some(manifest);
        self
    }

    /// Computes the plan.
    pub async fn run(self) -> Result<Plan> {
        if self.shards == 0 || self.shards > MAX_SHARDS {
            return Err(Error::option(
                "shards",
                format!("must be from 1 to {MAX_SHARDS}"),
            ));
        }
        if self.uri.is_directory_bucket() {
            return Err(Error::option(
                "shards",
                format!("cannot be planned as key ranges for the directory bucket {}: it lists keys in no order and takes no StartAfter; use hash shards (--shard K/N without a plan)", self.uri.bucket),
            ));
        }
        if self.client.is_none() {
            self.client_options.validate()?;
        }
        let client = match self.client {
            Some(client) => client,
            None => self.client_options.build().await,
        };
        let budget = Arc::new(Budget::new(1, 4));
        let stats = Arc::new(RetryStats::default());
        let bucket = |uri: &S3Uri| {
            Bucket::new(
                Arc::new(S3::sdk(
                    client.clone(),
                    uri.bucket.clone(),
                    Settings {
                        requester_pays: self.request_payer == Some(RequestPayer::Requester),
                        ..Settings::default()
                    },
                )),
                uri.bucket.clone(),
                uri.prefix.clone(),
                budget.clone(),
                self.retry,
                stats.clone(),
            )
        };
        let uri = self.uri.clone();
        let sampled = match &self.inventory {
            Some(manifest) => {
                let objects = crate::select::inventory::objects(
                    &bucket(manifest),
                    manifest,
                    &uri.bucket,
                    &uri.prefix,
                    |_| true,
                )
                .await?;
                let mut keys: Vec<String> = objects.into_iter().map(|o| o.key).collect();
                keys.sort_unstable();
                keys.dedup();
                sample::exact(&uri.prefix, keys, self.shards)
            }
            None => {
                let pages = Pages {
                    bucket: Arc::new(bucket(&uri)),
                    prefix: uri.prefix.clone(),
                    wanted: None,
                };
                let cap = self
                    .max_requests
                    .unwrap_or(8 + 2 * u64::from(self.shards))
                    .max(1);
                sample_prefix(&pages, &uri.prefix, self.shards, cap).await?
            }
        };
        Ok(Plan {
            uri,
            splits: sampled.splits,
            estimated_objects: sampled.estimated,
            exact: sampled.exact,
            source: match self.inventory {
                Some(_) => "inventory".into(),
                None => "listing".into(),
            },
            list_requests: sampled.requests,
        })
    }

    /// [`PlanOptions::run`] on a new Tokio runtime, for callers without one.
    pub fn run_blocking(self) -> Result<Plan> {
        tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .map_err(Error::Runtime)?
            .block_on(self.run())
    }
}

/// Samples the listing of `prefix` through `source` with at most `max_requests` pages, and
/// splits it into `shards` ranges: by its sub-folders where it has them (see
/// [`folders`]), else by the keys read as numbers (see [`sample`]).
async fn sample_prefix(
    source: &Pages,
    prefix: &str,
    shards: u32,
    max_requests: u64,
) -> Result<Sampled> {
    let first = source.page(None, None).await?;
    if first.objects.is_empty() || !first.truncated {
        let keys = first.objects.into_iter().map(|o| o.key).collect();
        let mut sampled = sample::exact(prefix, keys, shards);
        sampled.requests = 1;
        return Ok(sampled);
    }
    let nested = first.objects.iter().any(|o| {
        o.key
            .get(prefix.len()..)
            .is_some_and(|rest| rest.contains('/'))
    });
    if nested && max_requests >= 4 {
        let delimited = source.first_level("/", None).await?;
        if !delimited.truncated && delimited.prefixes.len() >= 2 {
            let mut sampled = folders::sample(source, delimited, shards, max_requests - 2).await?;
            sampled.requests += 2;
            return Ok(sampled);
        }
        return sample::flat(source, None, first, prefix, shards, max_requests - 1)
            .await
            .map(|s| Sampled {
                requests: s.requests + 1,
                ..s
            });
    }
    sample::flat(source, None, first, prefix, shards, max_requests).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(splits: &[&str]) -> Plan {
        Plan {
            uri: S3Uri::parse("s3://b/p/").unwrap(),
            splits: splits.iter().map(|s| s.to_string()).collect(),
            estimated_objects: vec![1; splits.len() + 1],
            exact: false,
            source: "listing".into(),
            list_requests: 3,
        }
    }

    #[test]
    fn ranges_cover_every_key_once() {
        let plan = plan(&["p/c", "p/m", "p/m", "p/x"]);
        for key in [
            "",
            "p/",
            "p/a",
            "p/c",
            "p/c0",
            "p/m",
            "p/n",
            "p/x",
            "p/y",
            "q",
            "\u{10ffff}",
        ] {
            let owners: Vec<u32> = (0..plan.shards())
                .filter(|&k| plan.range(k).contains(key))
                .collect();
            assert_eq!(owners.len(), 1, "{key:?} in {owners:?}");
        }
        assert!(plan.range(2).is_empty());
    }

    proptest::proptest! {
        /// Whatever the splits (sorted, repeats allowed) and N in 1..=16, every key is in
        /// exactly one shard's range: the range shards partition any key set.
        #[test]
        fn range_shards_partition_any_keys(
            mut splits in proptest::collection::vec("p/[a-c0-9é~]{0,4}", 0..16),
            keys in proptest::collection::btree_set("[a-q]?/?[a-c0-9é~]{0,5}", 0..200),
        ) {
            splits.sort();
            let plan = plan(&splits.iter().map(String::as_str).collect::<Vec<_>>());
            proptest::prop_assert!((1..=16).contains(&plan.shards()));
            for key in &keys {
                let owners = (0..plan.shards()).filter(|&k| plan.range(k).contains(key)).count();
                proptest::prop_assert_eq!(owners, 1, "{:?}", key);
            }
        }
    }

    #[test]
    fn json_round_trip_and_errors() {
        let original = plan(&["p/a\"b", "p/é"]);
        assert_eq!(Plan::from_json(&original.to_json()).unwrap(), original);
        for (text, says) in [
            ("nope", "is not JSON"),
            ("{}", "is not an s3fetch plan"),
            (
                r#"{"s3fetch_plan":1,"uri":"s3://b/p","shards":2}"#,
                "splits",
            ),
            (
                r#"{"s3fetch_plan":1,"uri":"s3://b/p","shards":3,"splits":["b","a"]}"#,
                "not in order",
            ),
            (
                r#"{"s3fetch_plan":1,"uri":"s3://b/p","shards":5,"splits":["a"]}"#,
                "one more",
            ),
            (
                r#"{"s3fetch_plan":1,"uri":"b/p","shards":1,"splits":[]}"#,
                "s3://",
            ),
        ] {
            let error = Plan::from_json(text).unwrap_err().to_string();
            assert!(error.contains(says), "{text}: {error}");
        }
    }

    #[test]
    fn a_run_must_match_the_plan() {
        let plan = plan(&["p/m"]);
        let uri = S3Uri::parse("s3://b/p/").unwrap();
        assert_eq!(
            plan.range_for(&uri, Shard::new(1, 2).unwrap()).unwrap(),
            KeyRange {
                after: Some("p/m".into()),
                upto: None
            }
        );
        let other = S3Uri::parse("s3://b/q/").unwrap();
        let error = plan
            .range_for(&other, Shard::new(0, 2).unwrap())
            .unwrap_err();
        assert!(
            error.to_string().contains("was made for s3://b/p/"),
            "{error}"
        );
        let error = plan.range_for(&uri, Shard::new(0, 3).unwrap()).unwrap_err();
        assert!(error.to_string().contains("K/2"), "{error}");
        // Fields set by hand are checked too: no index past the end, no splits out of order.
        let past = Shard { index: 2, count: 2 };
        assert!(plan.range_for(&uri, past).is_err());
        let mut unsorted = plan.clone();
        unsorted.splits = vec!["p/z".into(), "p/a".into()];
        let error = unsorted
            .range_for(&uri, Shard::new(0, 3).unwrap())
            .unwrap_err();
        assert!(error.to_string().contains("out of order"), "{error}");
    }
}
