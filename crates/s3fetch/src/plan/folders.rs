//! Split points of a prefix with sub-folders (`train/`, `val/`; `folder-0042/`): folder by
//! folder, since names of folders are not numbers of one scale (nothing lies between
//! `train/` and `val/`). One delimited request lists the folders; a page of each (or of an
//! even spread) says how many keys it holds, and a folder of more than a page is sampled on
//! its own ([`super::sample::flat`]). Unprobed folders count as the probed ones' mean; a
//! split falls at a folder's edge or at a sampled folder's own split points.

use crate::error::Result;
use crate::select::listing::{Delimited, Pages};

use super::sample::{flat, Sampled};
use crate::keyspace::split::{below, folder_range};
use crate::keyspace::KeyRange;

/// Pieces a big folder is sampled into: where inside it a split may fall.
const INSIDE: u32 = 8;

/// One piece of the key space, in order, with what is known of its keys.
#[derive(Debug)]
struct Part {
    /// An object's own key, or a folder's keys ([`folder_range`]); both ends bounded.
    range: KeyRange,
    count: f64,
    /// All its keys, when a complete page listed them.
    keys: Option<Vec<String>>,
    /// For a sampled folder: its split points, each with the part of its keys at or below.
    inside: Vec<(f64, String)>,
}

/// Samples the folders of `delimited` (the prefix's complete first level) with at most
/// `max_requests` pages, and splits them into `shards` ranges.
pub(super) async fn sample(
    source: &Pages,
    delimited: Delimited,
    shards: u32,
    max_requests: u64,
) -> Result<Sampled> {
    let mut parts: Vec<Part> = delimited
        .objects
        .into_iter()
        .map(|o| Part {
            range: KeyRange {
                after: Some(below(&o.key)),
                upto: Some(o.key.clone()),
            },
            count: 1.0,
            keys: Some(vec![o.key]),
            inside: Vec::new(),
        })
        .collect();
    let folders = delimited.prefixes;
    // The folders probed: all of them, or an even spread.
    let probed: Vec<usize> = match folders.len() as u64 <= max_requests / 2 {
        true => (0..folders.len()).collect(),
        false => {
            let n = (max_requests / 2).max(1) as usize;
            let mut picks: Vec<usize> = (0..n).map(|i| i * folders.len() / n).collect();
            picks.dedup();
            picks
        }
    };
    let mut requests = 0;
    let mut firsts = Vec::new();
    for chunk in probed.chunks(4) {
        let pages =
            futures::future::join_all(chunk.iter().map(|&i| source.page(None, Some(&folders[i]))))
                .await;
        for (&i, page) in chunk.iter().zip(pages) {
            requests += 1;
            firsts.push((i, page?));
        }
    }
    // Folders of more than a page, each sampled on its own with what requests are left.
    let big = firsts.iter().filter(|(_, page)| page.truncated).count() as u64;
    let each = match big {
        0 => 0,
        n => (max_requests.saturating_sub(requests) / n).max(1),
    };
    let mut known: Vec<Option<Part>> = (0..folders.len()).map(|_| None).collect();
    for (i, page) in firsts {
        let folder = &folders[i];
        let part = if page.truncated {
            let sampled = flat(source, Some(folder), page, folder, INSIDE, each).await?;
            requests += sampled.requests - 1;
            let count: f64 = sampled.estimated.iter().map(|&n| n as f64).sum();
            let mut upto = 0.0;
            let inside = sampled
                .splits
                .into_iter()
                .zip(&sampled.estimated)
                .map(|(split, &n)| {
                    upto += n as f64;
                    (upto, split)
                })
                .collect();
            Part {
                range: folder_range(folder),
                count,
                keys: None,
                inside,
            }
        } else {
            let keys: Vec<String> = page.objects.into_iter().map(|o| o.key).collect();
            Part {
                range: folder_range(folder),
                count: keys.len() as f64,
                keys: Some(keys),
                inside: Vec::new(),
            }
        };
        known[i] = Some(part);
    }
    let seen: Vec<f64> = known.iter().flatten().map(|p| p.count).collect();
    let mean = seen.iter().sum::<f64>() / seen.len().max(1) as f64;
    let exact = known
        .iter()
        .all(|p| p.as_ref().is_some_and(|p| p.keys.is_some()));
    for (folder, part) in folders.iter().zip(known) {
        parts.push(part.unwrap_or_else(|| Part {
            range: folder_range(folder),
            count: mean,
            keys: None,
            inside: Vec::new(),
        }));
    }
    // In key order: by each part's upper edge (an object `p/ab` sorts after the keys of the
    // folder `p/a/`, though its name minus a character does not).
    parts.sort_by(|a, b| a.range.upto.cmp(&b.range.upto));
    Ok(split(&parts, shards, requests, exact))
}

/// The N-quantiles of the parts: an actual key in a listed folder, a folder's own split
/// point in a sampled one, else the nearer edge of the folder.
fn split(parts: &[Part], shards: u32, requests: u64, exact: bool) -> Sampled {
    let total: f64 = parts.iter().map(|p| p.count).sum();
    // Each split, and the estimated number of keys up to it.
    let mut cuts: Vec<(String, f64)> = Vec::new();
    let (mut i, mut before) = (0, 0.0);
    for j in 1..shards {
        let target = total * f64::from(j) / f64::from(shards);
        while i + 1 < parts.len() && before + parts[i].count < target {
            before += parts[i].count;
            i += 1;
        }
        let part = &parts[i];
        let (low, high) = (&part.range.after, &part.range.upto);
        let (low, high) = (
            low.clone().unwrap_or_default(),
            high.clone().unwrap_or_default(),
        );
        let want = target - before;
        let (point, upto) = match &part.keys {
            Some(keys) if !keys.is_empty() => {
                let take = (want.round() as usize).min(keys.len());
                match take {
                    0 => (low, before),
                    n => (keys[n - 1].clone(), before + n as f64),
                }
            }
            _ => {
                // The edges and the folder's own split points: the nearest to the target.
                let mut points = vec![(0.0, low)];
                points.extend(part.inside.iter().cloned());
                points.push((part.count, high));
                let (n, point) = points
                    .into_iter()
                    .min_by(|a, b| (a.0 - want).abs().total_cmp(&(b.0 - want).abs()))
                    .expect("two edges");
                (point, before + n)
            }
        };
        cuts.push((point, upto));
    }
    Sampled::from_cuts(cuts, total, exact, requests)
}
