//! Where to cut a range of keys: pure arithmetic on key strings, shared by the parallel
//! listing (which cuts the rest of a range while it lists, from the page just listed) and
//! the plan (which needs split points of a prefix with no keys yet, and folder edges).
//! Keys are compared as S3 compares them, by their UTF-8 bytes.

use super::KeyRange;

/// Up to `cuts` points after `last` (and before `upto`) that leave at least two pages of keys
/// in every piece, by the density of the page just listed (`first..=last`): the keys' counter
/// (the run of [`alphabet`] characters where they vary) read as a number in that alphabet's
/// base, a page spanning `last - first` of it. Before a known end, the pieces are equal;
/// towards an unknown one, the next `2 * listed` pages (at least four) are cut into equal
/// pieces and the last goes on: a prefix is guessed to hold as much again as was listed so
/// far, so the pieces live long and few lie past the last key. `None` when the keys have no
/// such counter (then [`split_points`]).
pub(crate) fn pages_ahead(
    prefix: &str,
    first: &str,
    last: &str,
    upto: Option<&str>,
    alphabet: &[u8],
    cuts: usize,
    listed: usize,
) -> Option<Vec<String>> {
    let (first_bytes, last_bytes) = (first.as_bytes(), last.as_bytes());
    let common = common_len(first_bytes, last_bytes);
    let digit = |c: u8| alphabet.iter().position(|&a| a == c);
    digit(*last_bytes.get(common)?)?;
    let base = alphabet.len() as u128;
    if base < 2 || !last.is_char_boundary(common) {
        return None;
    }
    // The counter: the run of alphabet characters around the first position that varies.
    let mut start = common;
    while start > prefix.len() && digit(last_bytes[start - 1]).is_some() {
        start -= 1;
    }
    let widest = (120.0 / (base as f64).log2()) as usize;
    let mut end = common;
    while end < last_bytes.len() && end - start < widest && digit(last_bytes[end]).is_some() {
        end += 1;
    }
    // Each position's digit: its alphabet index, or for another character the number of
    // alphabet characters below it (so the value keeps the keys' order); 0 past the end.
    let value = |key: &[u8]| {
        (start..end).fold(0u128, |value, i| {
            let d = key.get(i).map_or(0, |&c| {
                digit(c).unwrap_or_else(|| {
                    alphabet
                        .iter()
                        .filter(|&&a| a < c)
                        .count()
                        .min(alphabet.len() - 1)
                })
            });
            value * base + d as u128
        })
    };
    let limit = base.checked_pow((end - start) as u32)?;
    let (from, page) = (
        value(last_bytes),
        value(last_bytes).checked_sub(value(first_bytes))?.max(1),
    );
    let to = match upto {
        Some(upto) if upto.as_bytes().get(..start) == last_bytes.get(..start) => {
            value(upto.as_bytes())
        }
        _ => limit,
    };
    let guess = page.saturating_mul(2 * listed.max(2) as u128);
    let (room, pieces) = match to < limit {
        // Equal pieces of at least two pages before a known end.
        true => (to.saturating_sub(from), cuts as u128 + 1),
        // Past the guess, the last piece goes on unbounded.
        false => (guess.min(limit.saturating_sub(from)), cuts as u128),
    };
    let pieces = pieces.min(room / page / 2);
    let targets: Vec<u128> = (1..=pieces)
        .map(|i| from + room * i / pieces.max(1))
        .filter(|&target| target < to.min(limit))
        .collect();
    let encode = |mut target: u128| {
        let mut digits = vec![0u8; end - start];
        for slot in digits.iter_mut().rev() {
            *slot = alphabet[(target % base) as usize];
            target /= base;
        }
        let mut cut = last[..start].to_owned();
        cut.extend(digits.into_iter().map(char::from));
        cut
    };
    let cuts = targets
        .into_iter()
        .map(encode)
        .filter(|cut| cut.as_str() > last && upto.is_none_or(|upto| cut.as_str() < upto))
        .collect();
    Some(cuts)
}

/// Up to `budget` strings `s` with `last < s < upto`, ascending, to cut the rest of a range
/// into pieces. `first..=last` is the page just listed: keys there agree up to some position
/// and vary after it, so the next keys differ from `last` at that position or before it.
/// For each position from there back to the end of the prefix, the candidates are `last`'s
/// characters up to it followed by a larger character of the page's [`alphabet`] (the ASCII
/// characters its keys count with), or failing that of the same class (digits, lower-case,
/// upper-case, other printable ASCII). Deeper positions come first and each gets at most
/// [`CUTS_PER_POSITION`], evenly spaced: a geometric ladder of ranges, each position's about
/// one class-size larger than the one before, so near and far key space both get a range.
pub(crate) fn split_points(
    prefix: &str,
    first: &str,
    last: &str,
    upto: Option<&str>,
    alphabet: &[u8],
    budget: usize,
) -> Vec<String> {
    let last_bytes = last.as_bytes();
    let common = common_len(first.as_bytes(), last_bytes);
    let start = prefix.len().min(last_bytes.len());
    let deepest = common.min(last_bytes.len().saturating_sub(1));
    let mut cuts = Vec::new();
    for pos in (start..=deepest).rev() {
        if cuts.len() >= budget {
            break;
        }
        let c = last_bytes[pos];
        let above: Vec<u8> = if alphabet.contains(&c) {
            alphabet.iter().copied().filter(|&a| a > c).collect()
        } else if let Some((_, max)) = char_class(c) {
            (c + 1..=max).collect()
        } else {
            continue;
        };
        if above.is_empty() {
            continue;
        }
        let take = CUTS_PER_POSITION.min(above.len()).min(budget - cuts.len());
        for i in 0..take {
            // Evenly spaced, always including the next character up.
            let mut cut = String::with_capacity(pos + 1);
            cut.push_str(&last[..pos]);
            cut.push(char::from(above[i * above.len() / take]));
            if upto.is_none_or(|upto| cut.as_str() < upto) && cut.as_str() > last {
                cuts.push(cut);
            }
        }
    }
    cuts.sort();
    cuts.dedup();
    cuts
}

/// How many leading bytes `a` and `b` share.
pub(crate) fn common_len(a: &[u8], b: &[u8]) -> usize {
    a.iter().zip(b).take_while(|(x, y)| x == y).count()
}

/// The longest common prefix of `a` and `b`, ending on a character boundary.
pub(crate) fn common_prefix<'a>(a: &'a str, b: &str) -> &'a str {
    let mut end = common_len(a.as_bytes(), b.as_bytes());
    while !a.is_char_boundary(end) {
        end -= 1;
    }
    &a[..end]
}

/// The printable ASCII characters of the positions where a page's keys take many values
/// (at least [`MANY_VALUES`]): the "counter" part of the keys, digits or hex or letters. A
/// position with only a couple of values (`.bin` vs `.json`) says nothing about the alphabet.
pub(crate) fn alphabet<'a>(keys: impl IntoIterator<Item = &'a str>) -> Vec<u8> {
    let mut per_position: Vec<u128> = Vec::new();
    for key in keys {
        let key = key.as_bytes();
        if per_position.len() < key.len() {
            per_position.resize(key.len(), 0);
        }
        for (pos, &c) in key.iter().enumerate() {
            if (b' '..=b'~').contains(&c) {
                per_position[pos] |= 1u128 << c;
            }
        }
    }
    let seen = per_position
        .into_iter()
        .filter(|mask| mask.count_ones() >= MANY_VALUES)
        .fold(0u128, |all, mask| all | mask);
    (0u8..128).filter(|&c| seen & (1u128 << c) != 0).collect()
}

/// See [`alphabet`].
const MANY_VALUES: u32 = 4;

/// At most this many split points at one character position.
const CUTS_PER_POSITION: usize = 10;

/// The range of ASCII characters a key character is likely drawn from.
fn char_class(c: u8) -> Option<(u8, u8)> {
    match c {
        b'0'..=b'9' => Some((b'0', b'9')),
        b'a'..=b'z' => Some((b'a', b'z')),
        b'A'..=b'Z' => Some((b'A', b'Z')),
        b' '..=b'~' => Some((b' ', b'~')),
        _ => None,
    }
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

/// A string just below `key`: `key` without its last character (every key of a folder
/// extends its name, so its name minus the delimiter is below them all: `data/` → `data`).
pub(crate) fn below(key: &str) -> String {
    let mut s = key.to_owned();
    s.pop();
    s
}

/// The keys of `folder` (its name with the delimiter), its own marker key left out:
/// `(data/, data0]`.
pub(crate) fn folder_range(folder: &str) -> KeyRange {
    KeyRange {
        after: Some(folder.to_owned()),
        upto: Some(past_folder(folder)),
    }
}

/// A string at or above every key of `folder` and below the next name: the folder's name
/// with its delimiter raised by one (`data/` → `data0`).
fn past_folder(folder: &str) -> String {
    let mut s = folder.to_owned();
    match s.pop() {
        Some(c) => s.push(char::from_u32(c as u32 + 1).unwrap_or(char::MAX)),
        None => s.push(char::MAX),
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folder_bounds_enclose_the_folder() {
        assert_eq!(below("data/"), "data");
        assert_eq!(past_folder("data/"), "data0");
        for key in ["data/", "data/a", "data/\u{10ffff}"] {
            assert!(below("data/").as_str() < key && key < past_folder("data/").as_str());
        }
        let folder = folder_range("data/");
        assert!(!folder.contains("data/") && folder.contains("data/a"));
        assert!(!folder.contains("data0/a") && !folder.contains("data"));
        assert_eq!(common_prefix("d/é1", "d/é2"), "d/é");
        assert_eq!(common_prefix("d/é", "d/è"), "d/");
        assert_eq!(even_splits("p/", 3), ["p/K", "p/f"]);
    }

    #[test]
    fn alphabet_is_the_counting_characters() {
        let keys: Vec<String> = (0..20).map(|i| format!("d/k{i:02x}.bin")).collect();
        let alphabet = alphabet(keys.iter().map(String::as_str));
        assert_eq!(alphabet, b"0123456789abcdef".to_vec());
    }

    #[test]
    fn split_points_are_ordered_and_inside_the_range() {
        let digits: Vec<u8> = (b'0'..=b'9').collect();
        let cuts = split_points("d/", "d/obj-0000", "d/obj-0999", None, &digits, 20);
        assert!(!cuts.is_empty());
        assert!(cuts.windows(2).all(|w| w[0] < w[1]));
        assert!(cuts.iter().all(|c| c.as_str() > "d/obj-0999"));
        assert!(cuts.contains(&"d/obj-1".to_owned()));
        let cuts = split_points("d/", "d/a", "d/b", Some("d/c"), &[], 20);
        assert!(
            cuts.iter()
                .all(|c| c.as_str() > "d/b" && c.as_str() < "d/c"),
            "{cuts:?}"
        );
        assert!(split_points("d/", "d/a", "d/b", None, &[], 0).is_empty());
        // Hex names: the page's alphabet carries on past '9'.
        let hex: Vec<u8> = b"0123456789abcdef".to_vec();
        let cuts = split_points("", "00", "2f", None, &hex, 40);
        assert!(cuts.iter().any(|c| c.as_str() >= "a"), "{cuts:?}");
    }
}
