//! POSIX tar (ustar) headers, with a pax extended header before an entry whose path is over
//! 100 bytes or whose size does not fit the header's 11 octal digits: what `tar -x` of GNU
//! tar, bsdtar and Python's `tarfile` read alike.

const BLOCK: usize = 512;
/// The end of an archive: two zero blocks.
pub(super) const END: [u8; 2 * BLOCK] = [0; 2 * BLOCK];
/// The largest size the header's 11 octal digits hold.
const MAX_OCTAL_SIZE: u64 = (1 << 33) - 1;

/// The header (and pax header, when needed) of a regular file `path` of `size` bytes
/// modified at `mtime` (seconds since the epoch).
pub(super) fn header(path: &str, size: u64, mtime: u64) -> Vec<u8> {
    let mut out = Vec::with_capacity(BLOCK);
    let long = path.len() > 100;
    let huge = size > MAX_OCTAL_SIZE;
    if long || huge {
        let mut records = Vec::new();
        if long {
            records.extend(record("path", path));
        }
        if huge {
            records.extend(record("size", &size.to_string()));
        }
        let name = format!("PaxHeaders/{}", truncate(path, 80));
        out.extend(ustar(&name, records.len() as u64, mtime, b'x'));
        out.extend(&records);
        out.resize(out.len() + padding(records.len() as u64), 0);
    }
    out.extend(ustar(truncate(path, 100), size, mtime, b'0'));
    out
}

/// Zero bytes after `size` bytes of data, up to the next block.
pub(super) fn padding(size: u64) -> usize {
    (BLOCK - (size % BLOCK as u64) as usize) % BLOCK
}

/// One pax record: `"<length> <key>=<value>\n"`, the length counting itself.
fn record(key: &str, value: &str) -> Vec<u8> {
    let rest = key.len() + value.len() + 3; // ' ', '=', '\n'
    let mut len = rest + 1;
    while len != rest + len.to_string().len() {
        len = rest + len.to_string().len();
    }
    format!("{len} {key}={value}\n").into_bytes()
}

fn ustar(name: &str, size: u64, mtime: u64, kind: u8) -> [u8; BLOCK] {
    let mut block = [0u8; BLOCK];
    block[..name.len()].copy_from_slice(name.as_bytes());
    octal(&mut block[100..108], 0o644);
    octal(&mut block[108..116], 0);
    octal(&mut block[116..124], 0);
    if size <= MAX_OCTAL_SIZE {
        octal(&mut block[124..136], size);
    } else {
        // GNU's base-256 form; the pax `size` record says the same.
        block[124] = 0x80;
        block[128..136].copy_from_slice(&size.to_be_bytes());
    }
    octal(&mut block[136..148], mtime.min(MAX_OCTAL_SIZE));
    block[156] = kind;
    block[257..263].copy_from_slice(b"ustar\0");
    block[263..265].copy_from_slice(b"00");
    block[148..156].fill(b' ');
    let sum: u32 = block.iter().map(|&b| u32::from(b)).sum();
    block[148..155].copy_from_slice(format!("{sum:06o}\0").as_bytes());
    block
}

/// `value` in octal, zero-padded, NUL-terminated, filling `field`.
fn octal(field: &mut [u8], value: u64) {
    let digits = field.len() - 1;
    let text = format!("{value:0digits$o}");
    field[..digits].copy_from_slice(&text.as_bytes()[text.len() - digits..]);
    field[digits] = 0;
}

/// The first `max` bytes of `s` at most, cut at a character boundary.
fn truncate(s: &str, max: usize) -> &str {
    let mut end = max.min(s.len());
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pax_records_count_their_own_length() {
        for value in ["a", &"x".repeat(90), &"y".repeat(995)] {
            let rec = record("path", value);
            let text = String::from_utf8(rec.clone()).unwrap();
            let (len, _) = text.split_once(' ').unwrap();
            assert_eq!(len.parse::<usize>().unwrap(), rec.len());
        }
    }

    #[test]
    fn headers_are_blocks_with_a_valid_checksum() {
        let short = header("a/b.txt", 5, 1_700_000_000);
        assert_eq!(short.len(), BLOCK);
        let long = header(&"d/".repeat(80), 5, 0);
        assert_eq!(long.len(), 3 * BLOCK);
        let block = &short[..BLOCK];
        let stored = u32::from_str_radix(std::str::from_utf8(&block[148..154]).unwrap(), 8);
        let mut copy = block.to_vec();
        copy[148..156].fill(b' ');
        assert_eq!(
            stored.unwrap(),
            copy.iter().map(|&b| u32::from(b)).sum::<u32>()
        );
        assert_eq!(padding(5), 507);
        assert_eq!(padding(512), 0);
    }
}
