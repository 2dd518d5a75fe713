//! Times for `--newer-than` / `--older-than`: an RFC 3339 date-time
//! (`2024-06-01T12:00:00Z`, any offset), a date (`2024-06-01`, midnight UTC), or an age
//! before now (`7d`, `12h`, `90m`, `1w2d`; units `s`, `m`, `h`, `d`, `w`).

use std::time::{Duration, SystemTime};

/// Parses `text` into the time it names; an age is taken back from `now`. The reason is
/// returned for the caller to attach to its option's name.
pub fn parse_time(text: &str, now: SystemTime) -> Result<SystemTime, String> {
    let text = text.trim();
    let bad = || {
        format!(
            "{text:?} is not a time (examples: 2024-06-01, 2024-06-01T12:00:00Z, 7d, 12h, 1w2d)"
        )
    };
    if text.starts_with(|c: char| c.is_ascii_digit())
        && text.ends_with(|c: char| c.is_ascii_alphabetic() && !c.eq_ignore_ascii_case(&'z'))
    {
        let age = parse_age(text).ok_or_else(bad)?;
        return now
            .checked_sub(age)
            .ok_or_else(|| format!("{text:?} is too long ago"));
    }
    let upper = text.to_ascii_uppercase();
    let (utc, offset) = match upper.len() {
        10 => (format!("{upper}T00:00:00Z"), 0),
        _ => split_offset(&upper).ok_or_else(bad)?,
    };
    let time = crate::timestamp::parse(&utc).ok_or_else(bad)?;
    // `12:00+02:00` is 10:00 UTC.
    let shift = Duration::from_secs(offset.unsigned_abs());
    match offset >= 0 {
        true => time.checked_sub(shift),
        false => time.checked_add(shift),
    }
    .ok_or_else(bad)
}

/// A date-time with a numeric offset (`…T12:00:00+02:00`) as the same wall time in UTC
/// (`…T12:00:00Z`) and the offset in seconds; one ending in `Z` as it is. (The parser below
/// takes only `Z`.)
fn split_offset(text: &str) -> Option<(String, i64)> {
    if text.ends_with('Z') {
        return Some((text.to_owned(), 0));
    }
    let time_at = text.find('T')?;
    let sign_at = time_at + text[time_at..].rfind(['+', '-'])?;
    let (hours, minutes) = text[sign_at + 1..].split_once(':')?;
    let (hours, minutes): (i64, i64) = (hours.parse().ok()?, minutes.parse().ok()?);
    if hours > 23 || minutes > 59 {
        return None;
    }
    let sign = if text.as_bytes()[sign_at] == b'-' {
        -1
    } else {
        1
    };
    Some((
        format!("{}Z", &text[..sign_at]),
        sign * (hours * 3600 + minutes * 60),
    ))
}

/// `7d`, `1w2d`, `90m`: a sum of whole numbers with units.
fn parse_age(text: &str) -> Option<Duration> {
    let mut total = 0u64;
    let mut number = String::new();
    for c in text.chars() {
        if c.is_ascii_digit() {
            number.push(c);
            continue;
        }
        let unit: u64 = match c.to_ascii_lowercase() {
            's' => 1,
            'm' => 60,
            'h' => 3600,
            'd' => 86_400,
            'w' => 7 * 86_400,
            _ => return None,
        };
        let n: u64 = number.parse().ok()?;
        total = total.checked_add(n.checked_mul(unit)?)?;
        number.clear();
    }
    number.is_empty().then_some(Duration::from_secs(total))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_date_times_and_ages() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000_000);
        let at = |secs| SystemTime::UNIX_EPOCH + Duration::from_secs(secs);
        assert_eq!(parse_time("7d", now), Ok(at(1_000_000_000 - 7 * 86_400)));
        assert_eq!(parse_time("1w2d", now), Ok(at(1_000_000_000 - 9 * 86_400)));
        assert_eq!(parse_time("90m", now), Ok(at(1_000_000_000 - 5400)));
        assert_eq!(parse_time(" 30s ", now), Ok(at(1_000_000_000 - 30)));
        assert_eq!(parse_time("2024-06-01", now), Ok(at(1_717_200_000)));
        assert_eq!(
            parse_time("2024-06-01T12:00:00Z", now),
            Ok(at(1_717_243_200))
        );
        assert_eq!(
            parse_time("2024-06-01T14:00:00+02:00", now),
            Ok(at(1_717_243_200))
        );
        assert_eq!(
            parse_time("2024-06-01T10:30:00-01:30", now),
            Ok(at(1_717_243_200))
        );
        assert_eq!(
            parse_time("2024-06-01t12:00:00.5z", now),
            Ok(at(1_717_243_200) + Duration::from_millis(500))
        );
        for bad in [
            "",
            "7",
            "7y",
            "d",
            "yesterday",
            "2024-13-01",
            "2024-06-01 12:00",
            "1d2",
        ] {
            let err = parse_time(bad, now).unwrap_err();
            assert!(err.contains("is not a time"), "{bad:?}: {err}");
        }
    }
}
