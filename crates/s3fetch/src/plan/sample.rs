//! Split points for N range shards from a handful of listing pages, not a whole listing:
//! the way for flat prefixes, and inside a big folder (a prefix whose first page holds
//! sub-folders is split folder by folder, see [`super::folders`]). Each probe page makes one
//! stretch of the key space known; the keys of the gaps between are estimated with the keys
//! read as numbers ([`Scale`]), and the splits are the N-quantiles of the estimate.

use std::cmp::Ordering;

use crate::error::Result;
use crate::keyspace::scale::{Known, Scale};
use crate::keyspace::split::{common_prefix, even_splits};
use crate::keyspace::KeyRange;
use crate::select::listing::{Page, Pages};

/// What the sampling found: `shards - 1` splits, the keys each shard is expected to get.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Sampled {
    pub splits: Vec<String>,
    pub estimated: Vec<u64>,
    /// True when every key was seen (the splits are exact quantiles).
    pub exact: bool,
    pub requests: u64,
}

impl Sampled {
    /// From each split in order and the estimated number of keys up to it, of `total`.
    /// Splits never go down (an empty shard is allowed, a range turned inside out not).
    pub(super) fn from_cuts(
        cuts: Vec<(String, f64)>,
        total: f64,
        exact: bool,
        requests: u64,
    ) -> Self {
        let mut estimated = Vec::with_capacity(cuts.len() + 1);
        let mut previous = 0.0;
        for upto in cuts.iter().map(|c| c.1).chain([total]) {
            estimated.push((upto - previous).max(0.0).round() as u64);
            previous = upto;
        }
        let mut splits: Vec<String> = Vec::with_capacity(cuts.len());
        for (point, _) in cuts {
            let point = match splits.last() {
                Some(last) if *last > point => last.clone(),
                _ => point,
            };
            splits.push(point);
        }
        Sampled {
            splits,
            estimated,
            exact,
            requests,
        }
    }
}

/// Probes at most this many pages in one round (independent gaps).
const PROBES_AT_ONCE: usize = 4;

/// [`super::sample_prefix`] by the keys read as numbers, within `scope` (a sub-folder) if
/// given, from its first page (counted as a request).
///
/// A page asked with `StartAfter = p` holds exactly the keys of `(p, its last key]`: each
/// probe makes one stretch of the key space *known*. Between known stretches lie gaps whose
/// number of keys is estimated from the density of the stretches beside them. The sampling
/// 1. lists the first page (a prefix of one page is then known exactly: one request);
/// 2. bounds the end: probes just past the block of keys sharing the first and last keys'
///    common prefix (`c` + DEL), shrinking `c` until a probe comes back empty or complete;
/// 3. probes the middle of the gap estimated to hold the most keys, a few gaps at once,
///    until no gap could hold more than a small part of a shard (or half a page), or the
///    probes reach N plus a quarter of the pages the listing takes, or the cap.
///
/// The splits are then the N-quantiles of the estimated distribution: an actual key where a
/// quantile falls in a known stretch, an interpolated string in a gap. A poor estimate only
/// unbalances the shards: the ranges cover the key space whatever the splits are.
pub(super) async fn flat(
    source: &Pages,
    scope: Option<&str>,
    first: Page,
    prefix: &str,
    shards: u32,
    max_requests: u64,
) -> Result<Sampled> {
    let mut requests = 1;
    if first.objects.is_empty() {
        return Ok(Sampled {
            splits: even_splits(prefix, shards),
            estimated: vec![0; shards as usize],
            exact: true,
            requests,
        });
    }
    // Keys in a full page (1,000 on S3).
    let page_len = first.objects.len() as f64;
    let mut known = vec![stretch(None, first, None)];

    // 2. The end of the key space.
    while requests < max_requests {
        let last = known.last().expect("one page");
        let Some(largest) = last.range.upto.clone() else {
            break; // the last page was complete: the end is known
        };
        let common = common_prefix(&known[0].keys[0], &largest);
        let point = format!("{common}\u{7f}");
        if point <= largest {
            break; // keys past DEL: the end stays open
        }
        let page = source.page(Some(&point), scope).await?;
        requests += 1;
        known.push(stretch(Some(point), page, None));
    }

    // 3. The gaps most likely to hold many keys.
    let mut stuck: Vec<(String, String)> = Vec::new();
    while requests < max_requests {
        let scale = Scale::new(&known, 4 * u128::from(shards));
        let gaps = gaps(&known, &scale);
        let total: f64 = known.iter().map(|k| k.keys.len() as f64).sum::<f64>()
            + gaps.iter().map(|g| g.estimate).sum::<f64>();
        // A gap of less than a page is not worth a request, nor a plan costing more than
        // a quarter of the listing it saves.
        let enough = (total / (8.0 * f64::from(shards))).max(page_len / 2.0);
        if requests as f64 >= f64::from(shards) + total / page_len / 4.0 {
            break;
        }
        let mut order: Vec<&Gap> = gaps
            .iter()
            .filter(|g| g.estimate > enough.max(1.0))
            .filter(|g| !stuck.contains(&(g.from.clone(), g.to.clone())))
            .collect();
        order.sort_by(|a, b| {
            b.estimate
                .partial_cmp(&a.estimate)
                .unwrap_or(Ordering::Equal)
        });
        let round = (max_requests - requests).min(PROBES_AT_ONCE as u64) as usize;
        let mut probes = Vec::new();
        for gap in order.into_iter().take(round) {
            match scale.between(&gap.from, &gap.to) {
                Some(point) => probes.push((point, gap.to.clone())),
                None => stuck.push((gap.from.clone(), gap.to.clone())),
            }
        }
        if probes.is_empty() {
            if gaps
                .iter()
                .any(|g| g.estimate > enough.max(1.0) && !stuck_at(&stuck, g))
            {
                continue; // only unsplittable gaps were picked: try the next ones
            }
            break;
        }
        let pages = futures::future::join_all(
            probes
                .iter()
                .map(|(point, _)| source.page(Some(point.as_str()), scope)),
        )
        .await;
        for ((point, to), page) in probes.into_iter().zip(pages) {
            requests += 1;
            insert(&mut known, stretch(Some(point), page?, Some(&to)));
        }
    }

    Ok(split(&known, shards, requests))
}

fn stuck_at(stuck: &[(String, String)], gap: &Gap) -> bool {
    stuck.iter().any(|(f, t)| *f == gap.from && *t == gap.to)
}

/// What a page asked after `after` makes known; `next` is where the next known stretch
/// begins: the page's keys past it are known already, and reaching it closes the gap.
fn stretch(after: Option<String>, page: Page, next: Option<&String>) -> Known {
    let complete = !page.truncated;
    let mut keys: Vec<String> = page.objects.into_iter().map(|o| o.key).collect();
    if let Some(next) = next {
        if keys.last().is_some_and(|k| k > next) || complete {
            keys.retain(|k| k <= next);
            let upto = Some(next.clone());
            return Known {
                range: KeyRange { after, upto },
                keys,
            };
        }
    }
    let upto = match complete {
        true => None,
        false => keys.last().cloned(),
    };
    Known {
        range: KeyRange { after, upto },
        keys,
    }
}

/// Puts `new` into its place among the known stretches and joins those that touch.
fn insert(known: &mut Vec<Known>, new: Known) {
    let at = known.partition_point(|k| k.range.after < new.range.after);
    known.insert(at, new);
    let mut joined: Vec<Known> = Vec::with_capacity(known.len());
    for stretch in known.drain(..) {
        match joined.last_mut() {
            Some(last) if last.range.upto.is_some() && last.range.upto == stretch.range.after => {
                last.keys.extend(stretch.keys);
                last.range.upto = stretch.range.upto;
            }
            _ => joined.push(stretch),
        }
    }
    *known = joined;
}

/// The unknown stretch `(from, to]` between two known ones, and the keys it may hold.
#[derive(Debug)]
struct Gap {
    from: String,
    to: String,
    estimate: f64,
}

fn gaps(known: &[Known], scale: &Scale) -> Vec<Gap> {
    known
        .windows(2)
        .filter_map(|pair| {
            let (left, right) = (&pair[0], &pair[1]);
            let (from, to) = (left.range.upto.clone()?, right.range.after.clone()?);
            let densities: Vec<f64> = [scale.density(left), scale.density(right)]
                .into_iter()
                .flatten()
                .collect();
            let density = match densities.len() {
                0 => 0.0,
                n => densities.iter().sum::<f64>() / n as f64,
            };
            let width = scale.value(&to).saturating_sub(scale.value(&from)) as f64;
            Some(Gap {
                from,
                to,
                estimate: width * density,
            })
        })
        .collect()
}

/// The N-quantiles of the known keys and estimated gaps.
fn split(known: &[Known], shards: u32, requests: u64) -> Sampled {
    let scale = Scale::new(known, 4 * u128::from(shards));
    let gaps = gaps(known, &scale);
    enum Piece<'a> {
        Keys(&'a [String]),
        Gap(&'a Gap),
    }
    let mut pieces = Vec::new();
    for (i, stretch) in known.iter().enumerate() {
        pieces.push(Piece::Keys(&stretch.keys));
        if let Some(gap) = gaps
            .iter()
            .find(|g| Some(&g.from) == stretch.range.upto.as_ref())
        {
            if known.get(i + 1).and_then(|k| k.range.after.as_ref()) == Some(&gap.to) {
                pieces.push(Piece::Gap(gap));
            }
        }
    }
    let count = |piece: &Piece| match piece {
        Piece::Keys(keys) => keys.len() as f64,
        Piece::Gap(gap) => gap.estimate,
    };
    let total: f64 = pieces.iter().map(count).sum();
    let exact = gaps.iter().all(|g| g.estimate == 0.0)
        && known.last().is_some_and(|k| k.range.upto.is_none());
    // Each split, and the estimated number of keys up to it.
    let mut cuts: Vec<(String, f64)> = Vec::new();
    let (mut piece, mut before) = (0, 0.0);
    for j in 1..shards {
        let target = total * f64::from(j) / f64::from(shards);
        while piece + 1 < pieces.len() && before + count(&pieces[piece]) < target {
            before += count(&pieces[piece]);
            piece += 1;
        }
        let (point, upto) = match &pieces[piece] {
            Piece::Keys(keys) if !keys.is_empty() => {
                let take = ((target - before).round() as usize).clamp(1, keys.len());
                (keys[take - 1].clone(), before + take as f64)
            }
            Piece::Gap(gap) => {
                let fraction = ((target - before) / gap.estimate).clamp(0.0, 1.0);
                let (from, to) = (scale.value(&gap.from), scale.value(&gap.to));
                let value = from + ((to - from) as f64 * fraction) as u128;
                let point = scale.short_key(value, &gap.from, &gap.to);
                (point, target)
            }
            Piece::Keys(_) => (cuts.last().map(|c| c.0.clone()).unwrap_or_default(), before),
        };
        cuts.push((point, upto));
    }
    Sampled::from_cuts(cuts, total, exact, requests)
}

/// Exact splits of all the keys there are (sorted, no duplicates), with no request.
pub(crate) fn exact(prefix: &str, keys: Vec<String>, shards: u32) -> Sampled {
    if keys.is_empty() {
        return Sampled {
            splits: even_splits(prefix, shards),
            estimated: vec![0; shards as usize],
            exact: true,
            requests: 0,
        };
    }
    let known = [Known {
        range: KeyRange::default(),
        keys,
    }];
    split(&known, shards, 0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::s3::model::Quirks;
    use crate::select::listing::tests::{pages, store};
    use std::collections::BTreeSet;

    fn run(keys: &BTreeSet<String>, prefix: &str, page: usize, shards: u32) -> (Sampled, usize) {
        let store = store(keys, page, Quirks::default());
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .start_paused(true)
            .build()
            .unwrap();
        let sampled = runtime
            .block_on(super::super::sample_prefix(
                &pages(&store, prefix),
                prefix,
                shards,
                8 + 2 * u64::from(shards),
            ))
            .unwrap();
        assert_eq!(sampled.splits.len() + 1, shards as usize);
        assert_eq!(sampled.estimated.len(), shards as usize);
        assert!(
            sampled.splits.windows(2).all(|w| w[0] <= w[1]),
            "{sampled:?}"
        );
        (sampled, store.lists())
    }

    /// Keys per shard with these splits.
    fn counts(keys: &BTreeSet<String>, prefix: &str, splits: &[String]) -> Vec<usize> {
        let mut counts = vec![0; splits.len() + 1];
        for key in keys.iter().filter(|k| k.starts_with(prefix)) {
            counts[splits.partition_point(|s| s < key)] += 1;
        }
        counts
    }

    #[test]
    fn numbered_keys_split_evenly_from_a_few_pages() {
        let keys: BTreeSet<String> = (0..100_000).map(|i| format!("p/key-{i:06}")).collect();
        let (sampled, requests) = run(&keys, "p/", 1000, 4);
        let counts = counts(&keys, "p/", &sampled.splits);
        println!("{sampled:?} {counts:?} in {requests} requests");
        assert_eq!(requests as u64, sampled.requests);
        assert!(requests <= 16, "{requests} requests");
        assert!(
            counts.iter().all(|&c| (20_000..=30_000).contains(&c)),
            "{counts:?}"
        );
        assert!(!sampled.exact);
    }

    /// The benchmark's layouts: `folder-FFFF/obj-NNNNNNNN.bin`, folders one after another.
    fn folders(folders: u64, per_folder: u64) -> BTreeSet<String> {
        (0..folders * per_folder)
            .map(|i| format!("b/folder-{:04}/obj-{i:08}.bin", i / per_folder))
            .collect()
    }

    #[test]
    fn nested_folders_split_evenly() {
        for (keys, shards, cap) in [
            (folders(100, 1000), 4, 16),
            (folders(100, 1000), 16, 40),
            (folders(1000, 200), 4, 16),
            (folders(1000, 200), 16, 40),
        ] {
            let (sampled, requests) = run(&keys, "b/", 1000, shards);
            let counts = counts(&keys, "b/", &sampled.splits);
            let even = keys.len() / shards as usize;
            println!(
                "{} keys / {shards}: {counts:?} in {requests} requests, estimated {:?}",
                keys.len(),
                sampled.estimated
            );
            assert!(requests <= cap);
            assert!(
                counts.iter().all(|&c| c * 2 >= even && c <= even * 3 / 2),
                "{} keys / {shards}: {counts:?}",
                keys.len()
            );
        }
    }

    /// More folders than the probes cover, each bigger than a page (each probed one is
    /// then counted as its first page, the others as the probed on average: even when the
    /// folders are alike, see the note in BENCHMARKS.md, Shards, for when they are not).
    #[test]
    fn many_big_folders_split_evenly() {
        let keys = folders(20, 5000);
        let (sampled, requests) = run(&keys, "b/", 1000, 4);
        let counts = counts(&keys, "b/", &sampled.splits);
        println!("20 big folders / 4: {counts:?} in {requests} requests");
        assert!(requests <= 16);
        assert!(
            counts.iter().all(|&c| c * 2 >= 25_000 && c <= 37_500),
            "{counts:?}"
        );
    }

    /// Folders of other names and sizes (`test/`, `train/`, `val/`) of random names: split
    /// folder by folder (see `folders.rs`), the big ones each sampled on its own.
    #[test]
    fn folders_of_other_names_and_sizes_split_evenly() {
        let mut state = 0x2545f4914f6cdd1du64;
        let mut keys = BTreeSet::new();
        for (folder, n) in [("train", 60_000), ("test", 5_000), ("val", 15_000)] {
            for _ in 0..n {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                keys.insert(format!("ds/{folder}/{state:016x}.jpg"));
            }
        }
        for shards in [4, 8] {
            let (sampled, requests) = run(&keys, "ds/", 1000, shards);
            let counts = counts(&keys, "ds/", &sampled.splits);
            let even = keys.len() / shards as usize;
            println!("test/train/val / {shards}: {counts:?} (even: {even}) in {requests} requests");
            assert!(requests as u64 <= 8 + 2 * u64::from(shards));
            assert!(
                counts.iter().all(|&c| c * 2 >= even && c <= even * 3 / 2),
                "{counts:?}"
            );
        }
    }

    #[test]
    fn random_hex_names_split_evenly() {
        let mut state = 0x9e3779b97f4a7c15u64;
        let keys: BTreeSet<String> = (0..50_000)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                format!("h/{state:016x}.bin")
            })
            .collect();
        let (sampled, requests) = run(&keys, "h/", 1000, 8);
        let counts = counts(&keys, "h/", &sampled.splits);
        println!("{counts:?} in {requests} requests");
        assert!(
            counts.iter().all(|&c| (4_000..=8_500).contains(&c)),
            "{counts:?}"
        );
    }

    #[test]
    fn a_prefix_of_one_page_is_split_exactly_in_one_request() {
        let keys: BTreeSet<String> = (0..10).map(|i| format!("k{i}")).collect();
        let (sampled, requests) = run(&keys, "", 1000, 3);
        assert_eq!(requests, 1);
        assert!(sampled.exact);
        assert_eq!(counts(&keys, "", &sampled.splits), vec![3, 4, 3]);
        assert_eq!(sampled.estimated, vec![3, 4, 3]);
    }

    #[test]
    fn empty_and_small_prefixes() {
        let (sampled, requests) = run(&BTreeSet::new(), "x/", 1000, 4);
        assert_eq!((requests, sampled.exact), (1, true));
        assert!(sampled.splits.iter().all(|s| s.starts_with("x/")));
        let two: BTreeSet<String> = ["a", "b"].iter().map(|s| s.to_string()).collect();
        let (sampled, _) = run(&two, "", 1000, 5);
        assert_eq!(counts(&two, "", &sampled.splits).iter().sum::<usize>(), 2);
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(64))]
        /// Whatever the keys, the splits are ordered and the sampling stays within its
        /// request cap; skewed folders still give every shard some keys when there are
        /// enough.
        #[test]
        fn splits_are_ordered_for_any_keys(
            keys in proptest::collection::btree_set("d/[a-c0-9é~/]{0,8}", 0..600),
            page in 1usize..50,
            shards in 1u32..9,
        ) {
            let (sampled, requests) = run(&keys, "d/", page, shards);
            proptest::prop_assert!(requests as u64 <= 8 + 2 * u64::from(shards));
            let total: usize = counts(&keys, "d/", &sampled.splits).iter().sum();
            proptest::prop_assert_eq!(total, keys.len());
        }
    }
}
