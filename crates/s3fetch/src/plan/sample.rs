//! Split points for N range shards from a handful of listing pages, not a whole listing.
//!
//! A prefix whose first page holds sub-folders is split folder by folder instead (see
//! [`super::folders`], and [`super::sample_prefix`], which chooses); this is the way for
//! flat prefixes, and inside a big folder.
//!
//! A page asked with `StartAfter = p` holds exactly the keys of `(p, its last key]`: each
//! probe makes one stretch of the key space *known*. Between known stretches lie gaps whose
//! number of keys is estimated from the density of the stretches beside them, the keys read
//! as numbers (see [`Scale`]). The sampling
//! 1. lists the first page (a prefix of one page is then known exactly: one request);
//! 2. bounds the end: probes just past the block of keys sharing the first and last keys'
//!    common prefix (`c` + DEL), shrinking `c` until a probe comes back empty or complete;
//! 3. probes the middle of the gap estimated to hold the most keys, a few gaps at once,
//!    until no gap could hold more than a small part of a shard (or half a page), or the
//!    probes reach N plus a quarter of the pages the listing takes, or the cap.
//!
//! The splits are then the N-quantiles of the estimated distribution: an actual key where a
//! quantile falls in a known stretch, an interpolated string in a gap. A poor estimate only
//! unbalances the shards: the ranges cover the key space whatever the splits are.

use std::cmp::Ordering;

use crate::error::Result;
use crate::select::listing::{Page, Pages};

/// Exactly `keys` lie in `(after, upto]` (`None`: from the start, to the end).
#[derive(Debug, Clone)]
struct Known {
    after: Option<String>,
    upto: Option<String>,
    keys: Vec<String>,
}

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

/// [`super::sample_prefix`] by the keys read as numbers, within `scope` (a sub-folder) if given, from its
/// first page (counted as a request).
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
        let Some(largest) = last.upto.clone() else {
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
            return Known {
                after,
                upto: Some(next.clone()),
                keys,
            };
        }
    }
    let upto = match complete {
        true => None,
        false => keys.last().cloned(),
    };
    Known { after, upto, keys }
}

/// Puts `new` into its place among the known stretches and joins those that touch.
fn insert(known: &mut Vec<Known>, new: Known) {
    let at = known.partition_point(|k| k.after < new.after);
    known.insert(at, new);
    let mut joined: Vec<Known> = Vec::with_capacity(known.len());
    for stretch in known.drain(..) {
        match joined.last_mut() {
            Some(last) if last.upto.is_some() && last.upto == stretch.after => {
                last.keys.extend(stretch.keys);
                last.upto = stretch.upto;
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
            let (from, to) = (left.upto.clone()?, right.after.clone()?);
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
        if let Some(gap) = gaps.iter().find(|g| Some(&g.from) == stretch.upto.as_ref()) {
            if known.get(i + 1).and_then(|k| k.after.as_ref()) == Some(&gap.to) {
                pieces.push(Piece::Gap(gap));
            }
        }
    }
    let count = |piece: &Piece| match piece {
        Piece::Keys(keys) => keys.len() as f64,
        Piece::Gap(gap) => gap.estimate,
    };
    let total: f64 = pieces.iter().map(count).sum();
    let exact =
        gaps.iter().all(|g| g.estimate == 0.0) && known.last().is_some_and(|k| k.upto.is_none());
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
        after: None,
        upto: None,
        keys,
    }];
    split(&known, shards, 0)
}

/// Splits for a prefix with no keys yet: its next character, spread over digits and letters.
pub(crate) fn even_splits(prefix: &str, shards: u32) -> Vec<String> {
    const CHARS: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    (1..shards as usize)
        .map(|j| {
            let c = CHARS[(j * CHARS.len() / shards as usize).min(CHARS.len() - 1)];
            format!("{prefix}{}", char::from(c))
        })
        .collect()
}

/// The longest common prefix of `a` and `b`, ending on a character boundary.
fn common_prefix<'a>(a: &'a str, b: &str) -> &'a str {
    let mut end = a.bytes().zip(b.bytes()).take_while(|(x, y)| x == y).count();
    while !a.is_char_boundary(end) {
        end -= 1;
    }
    &a[..end]
}

/// Every digit where one was seen, and the letters between the least and the greatest seen
/// (hex names use a..f, not a..z).
fn widen(chars: &mut [bool; 128]) {
    let digits = b'0' as usize..=b'9' as usize;
    if chars[digits.clone()].iter().any(|&s| s) {
        chars[digits].fill(true);
    }
    for (low, high) in [(b'a', b'z'), (b'A', b'Z')] {
        let class = low as usize..=high as usize;
        let first = chars[class.clone()].iter().position(|&s| s);
        let last = chars[class].iter().rposition(|&s| s);
        if let (Some(first), Some(last)) = (first, last) {
            chars[low as usize + first..=low as usize + last].fill(true);
        }
    }
}

/// Keys read as numbers, so that a stretch of the key space has a width: after the prefix
/// `base` that all sampled keys share, the character at each position is a digit whose
/// values are that position's [`Slots`]. Order is kept: a key before another never reads as
/// a larger number.
#[derive(Debug)]
struct Scale {
    base: String,
    positions: Vec<Slots>,
}

/// What one position's digit can be: the key ended here (if a sampled key did), or one
/// of the characters seen here, widened (see [`widen`]); on the first level of names (the
/// positions before the first that holds one character in every sampled key, as the `/` of
/// `folder-0042/obj-0042000.bin`), the characters seen anywhere on that level. A position
/// of one character has one value and no weight.
#[derive(Debug)]
struct Slots {
    end: bool,
    chars: Vec<u8>,
}

impl Slots {
    fn radix(&self) -> u128 {
        (usize::from(self.end) + self.chars.len()) as u128
    }
}

impl Scale {
    /// The scale of the `known` stretches, telling at least `resolution` places apart
    /// where the first level of names can.
    fn new(known: &[Known], resolution: u128) -> Scale {
        let smallest = known.iter().flat_map(|k| k.keys.first()).next();
        let largest = known
            .iter()
            .rev()
            .flat_map(|k| k.upto.iter().chain(k.keys.last()).chain(k.after.iter()))
            .max();
        let base = match (smallest, largest) {
            (Some(a), Some(b)) => common_prefix(a, b).to_owned(),
            _ => String::new(),
        };
        // Per position: the ASCII characters seen, and whether a key ended there.
        let mut seen: Vec<([bool; 128], bool)> = Vec::new();
        for key in known.iter().flat_map(|k| &k.keys) {
            let rest = key.as_bytes().get(base.len()..).unwrap_or_default();
            for i in 0..=rest.len() {
                if i == seen.len() {
                    seen.push(([false; 128], false));
                }
                match rest.get(i) {
                    None => seen[i].1 = true,
                    Some(&c) if (b' '..=b'~').contains(&c) => seen[i].0[c as usize] = true,
                    Some(_) => {} // non-ASCII: above every character
                }
            }
        }
        for (chars, _) in &mut seen {
            widen(chars);
        }
        // The first level of names shares one alphabet: its first positions hold few of
        // the characters in sorted samples (hex names all start `0` in the first page).
        let level = seen
            .iter()
            .position(|(chars, _)| chars.iter().filter(|&&s| s).count() == 1)
            .unwrap_or(seen.len());
        let mut shared = [false; 128];
        for (chars, _) in &seen[..level] {
            for (all, &one) in shared.iter_mut().zip(chars.iter()) {
                *all |= one;
            }
        }
        // As many positions as the number's 120 bits hold.
        let mut positions = Vec::new();
        let mut span: u128 = 1;
        for (i, (chars, end)) in seen.into_iter().enumerate() {
            let chars = if i < level { shared } else { chars };
            let chars: Vec<u8> = (0u8..128).filter(|&c| chars[c as usize]).collect();
            if chars.is_empty() {
                break; // nothing but ends and non-ASCII here
            }
            // Widths are read on the first level of names only, where it tells enough
            // places apart: under `folder-0042/` the keys fill a sliver of the numbers
            // (`obj-0042000..0042999` of `obj-*`), and widths taken across levels would
            // weigh far too much.
            if i == level && span >= resolution {
                break;
            }
            let slots = Slots { end, chars };
            match span.checked_mul(slots.radix()) {
                Some(wider) if wider < 1 << 120 => span = wider,
                _ => break,
            }
            positions.push(slots);
        }
        Scale { base, positions }
    }

    fn top(&self) -> u128 {
        self.positions
            .iter()
            .fold(1u128, |span, p| span * p.radix())
            - 1
    }

    fn value(&self, key: &str) -> u128 {
        let Some(rest) = key.as_bytes().strip_prefix(self.base.as_bytes()) else {
            return if key < self.base.as_str() {
                0
            } else {
                self.top()
            };
        };
        // After a character between two slots, every later digit is its greatest (`Max`)
        // or, below the first slot, its least (`Min`).
        #[derive(PartialEq)]
        enum Fill {
            No,
            Max,
            Min,
        }
        let mut value = 0u128;
        let mut fill = Fill::No;
        for (i, slots) in self.positions.iter().enumerate() {
            let radix = slots.radix();
            let first_char = u128::from(slots.end);
            let digit = match (&fill, rest.get(i)) {
                (Fill::Max, _) => radix - 1,
                (Fill::Min, _) | (Fill::No, None) => 0,
                (Fill::No, Some(c)) => match slots.chars.binary_search(c) {
                    Ok(j) => first_char + j as u128,
                    Err(0) if slots.end => {
                        fill = Fill::Max;
                        0
                    }
                    Err(0) => {
                        fill = Fill::Min;
                        0
                    }
                    Err(j) => {
                        fill = Fill::Max;
                        first_char + j as u128 - 1
                    }
                },
            };
            value = value * radix + digit;
        }
        value
    }

    /// A key that reads as about `value`.
    fn key(&self, mut value: u128) -> String {
        let mut digits = vec![0u128; self.positions.len()];
        for (slot, slots) in digits.iter_mut().zip(&self.positions).rev() {
            *slot = value % slots.radix();
            value /= slots.radix();
        }
        let mut key = self.base.clone();
        for (i, (&d, slots)) in digits.iter().zip(&self.positions).enumerate() {
            let d = d as usize;
            let rest_zero = digits[i + 1..].iter().all(|&d| d == 0);
            let c = match (slots.end, d) {
                (true, 0) if rest_zero => break,
                (true, 0) => slots.chars[0],
                (end, d) => slots.chars[d - usize::from(end)],
            };
            key.push(char::from(c));
        }
        key
    }

    /// A key in `(low, high]` that reads as about `value` (within a thousandth of the
    /// stretch), as short as that allows: a split point people can read.
    fn short_key(&self, value: u128, low: &str, high: &str) -> String {
        let full = self.key(value).clamp(low.to_owned(), high.to_owned());
        let slack = self.value(high).saturating_sub(self.value(low)) / 1000;
        (self.base.len() + 1..full.len())
            .filter(|&end| full.is_char_boundary(end))
            .map(|end| &full[..end])
            .find(|short| {
                *short > low && *short <= high && self.value(short).abs_diff(value) <= slack
            })
            .map_or(full.clone(), str::to_owned)
    }

    /// A key strictly between `low` and `high`, about halfway, if the scale has one.
    fn between(&self, low: &str, high: &str) -> Option<String> {
        let (a, b) = (self.value(low), self.value(high));
        if b <= a + 1 {
            return None;
        }
        let middle = self.key(a + (b - a) / 2);
        (low < middle.as_str() && middle.as_str() < high).then_some(middle)
    }

    /// Keys per unit of value in a known stretch; `None` when it does not say.
    fn density(&self, stretch: &Known) -> Option<f64> {
        // From its own keys: the stretch between a probe's point and its first key is
        // known to be empty, and would dilute the density of the keys beside a gap.
        let (first, last) = (stretch.keys.first()?, stretch.keys.last()?);
        if stretch.keys.len() < 2 {
            return None;
        }
        let width = self.value(last).saturating_sub(self.value(first)).max(1);
        Some((stretch.keys.len() - 1) as f64 / width as f64)
    }
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

    #[test]
    fn scale_keeps_order() {
        let keys: BTreeSet<String> = ["a/0", "a/05", "a/1", "a/1~", "a/9", "a/é", "b"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let known = vec![Known {
            after: None,
            upto: None,
            keys: keys.iter().cloned().collect(),
        }];
        let scale = Scale::new(&known, 1);
        let values: Vec<u128> = keys.iter().map(|k| scale.value(k)).collect();
        assert!(values.windows(2).all(|w| w[0] <= w[1]), "{values:?}");
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
