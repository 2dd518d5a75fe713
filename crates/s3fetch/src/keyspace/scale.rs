//! Keys read as numbers ([`Scale`]), so that a stretch of the key space has a width and the
//! keys of an unlisted stretch can be estimated from the density of listed ones beside it;
//! the plan's sampler ([`crate::plan`]) cuts a prefix at the estimated quantiles.

use super::split::common_prefix;
use super::KeyRange;

/// Exactly `keys` (sorted) lie in `range`: a stretch of the key space that a page made known.
#[derive(Debug, Clone)]
pub(crate) struct Known {
    pub range: KeyRange,
    pub keys: Vec<String>,
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
pub(crate) struct Scale {
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
    pub(crate) fn new(known: &[Known], resolution: u128) -> Scale {
        let smallest = known.iter().flat_map(|k| k.keys.first()).next();
        let largest = known
            .iter()
            .rev()
            .flat_map(|k| {
                k.range
                    .upto
                    .iter()
                    .chain(k.keys.last())
                    .chain(k.range.after.iter())
            })
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

    pub(crate) fn top(&self) -> u128 {
        self.positions
            .iter()
            .fold(1u128, |span, p| span * p.radix())
            - 1
    }

    pub(crate) fn value(&self, key: &str) -> u128 {
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
    pub(crate) fn key(&self, mut value: u128) -> String {
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
    pub(crate) fn short_key(&self, value: u128, low: &str, high: &str) -> String {
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
    pub(crate) fn between(&self, low: &str, high: &str) -> Option<String> {
        let (a, b) = (self.value(low), self.value(high));
        if b <= a + 1 {
            return None;
        }
        let middle = self.key(a + (b - a) / 2);
        (low < middle.as_str() && middle.as_str() < high).then_some(middle)
    }

    /// Keys per unit of value in a known stretch; `None` when it does not say.
    pub(crate) fn density(&self, stretch: &Known) -> Option<f64> {
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
    use std::collections::BTreeSet;

    #[test]
    fn scale_keeps_order() {
        let keys: BTreeSet<String> = ["a/0", "a/05", "a/1", "a/1~", "a/9", "a/é", "b"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let known = vec![Known {
            range: KeyRange::default(),
            keys: keys.iter().cloned().collect(),
        }];
        let scale = Scale::new(&known, 1);
        let values: Vec<u128> = keys.iter().map(|k| scale.value(k)).collect();
        assert!(values.windows(2).all(|w| w[0] <= w[1]), "{values:?}");
    }
}
