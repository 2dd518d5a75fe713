//! Deterministic sample-data generator writing straight into a [`Store`] (no HTTP).
//!
//! With default options it builds the quickstart bucket `sample` (~3000 small objects
//! under nested prefixes plus 4 × 4 MiB objects); with `objects` set it builds a
//! synthetic bucket of N objects. Generation recreates the bucket, so running it twice
//! gives the same result.

use std::io::{self, Read};

use anyhow::{bail, Context as _};
use rand::rngs::StdRng;
use rand::{Rng, RngCore, SeedableRng};

use crate::store::Store;

/// Objects larger than this are streamed into the store instead of built in memory.
const STREAM_THRESHOLD: u64 = 8 * 1024 * 1024;

/// What to generate. `Default` = the quickstart sample.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GenerateOptions {
    /// Bucket to (re)create.
    pub bucket: String,
    /// Number of objects; `None` (with every other field at its default) = the quickstart sample.
    pub objects: Option<u64>,
    /// Size of every object in bytes; `None` = random sizes in 1..=64 KiB.
    pub size: Option<u64>,
    /// Prefix of every key.
    pub prefix: String,
    /// Spread objects round-robin over this many `folder-NNNN/` subfolders (0 = none).
    pub folders: u64,
    /// Every K-th object gets `suffix` instead of `.bin` (0 = never).
    pub suffix_every: u64,
    /// Suffix for every `suffix_every`-th object.
    pub suffix: String,
    /// Seed of the random sizes and contents.
    pub seed: u64,
    /// Spread objects over `folders` in consecutive blocks (object `i` in folder
    /// `i * folders / objects`, so key order = object order) instead of round-robin.
    pub contiguous_folders: bool,
}

impl Default for GenerateOptions {
    fn default() -> Self {
        Self {
            bucket: "sample".to_owned(),
            objects: None,
            size: None,
            prefix: String::new(),
            folders: 0,
            suffix_every: 0,
            suffix: ".json".to_owned(),
            seed: 42,
            contiguous_folders: false,
        }
    }
}

impl GenerateOptions {
    fn is_sample(&self) -> bool {
        self.objects.is_none()
            && self.size.is_none()
            && self.prefix.is_empty()
            && self.folders == 0
            && self.suffix_every == 0
    }
}

/// What [`generate`] wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GenerateReport {
    /// Bucket name.
    pub bucket: String,
    /// Number of objects.
    pub objects: u64,
    /// Total bytes.
    pub bytes: u64,
}

/// Recreates `opts.bucket` in `store` and fills it.
///
/// # Errors
/// Invalid options (bucket name, key too long), I/O.
pub fn generate(store: &Store, opts: &GenerateOptions) -> anyhow::Result<GenerateReport> {
    if !s3s::path::check_bucket_name(&opts.bucket) {
        bail!(
            "invalid bucket name {:?}: use 3-63 lowercase letters, digits, '-' or '.'",
            opts.bucket
        );
    }
    if opts.suffix_every > 0 && opts.suffix.is_empty() {
        bail!("--suffix must not be empty when --suffix-every is set");
    }
    if store.bucket_exists(&opts.bucket) {
        store
            .delete_bucket(&opts.bucket)
            .with_context(|| format!("removing existing bucket {}", opts.bucket))?;
    }
    store.create_bucket(&opts.bucket)?;
    let (objects, bytes) = if opts.is_sample() {
        sample(store, &opts.bucket, opts.seed)?
    } else {
        synthetic(store, opts)?
    };
    Ok(GenerateReport {
        bucket: opts.bucket.clone(),
        objects,
        bytes,
    })
}

fn random_bytes(rng: &mut StdRng, len: u64) -> Vec<u8> {
    let mut v = vec![0u8; usize::try_from(len).unwrap_or(0)];
    rng.fill_bytes(&mut v);
    v
}

/// An endless-then-limited reader of pseudo-random bytes.
struct RandomReader {
    rng: StdRng,
    left: u64,
}

impl Read for RandomReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = usize::try_from(self.left.min(buf.len() as u64)).unwrap_or(buf.len());
        self.rng.fill_bytes(&mut buf[..n]);
        self.left -= n as u64;
        Ok(n)
    }
}

fn synthetic(store: &Store, o: &GenerateOptions) -> anyhow::Result<(u64, u64)> {
    let n = o.objects.unwrap_or(1000);
    let key_of = |i: u64| {
        let folder = if o.folders > 0 {
            let f = if o.contiguous_folders {
                // u128: no overflow for any u64 count.
                u64::try_from(u128::from(i) * u128::from(o.folders) / u128::from(n.max(1)))
                    .unwrap_or(0)
            } else {
                i % o.folders
            };
            format!("folder-{f:04}/")
        } else {
            String::new()
        };
        let ext = if o.suffix_every > 0 && (i + 1).is_multiple_of(o.suffix_every) {
            o.suffix.as_str()
        } else {
            ".bin"
        };
        format!("{}{folder}obj-{i:08}{ext}", o.prefix)
    };
    let longest = key_of(n.saturating_sub(1));
    if longest.len() > crate::store::MAX_KEY_LEN {
        bail!(
            "keys would be {} bytes long; the limit is 1024 (shorten --prefix)",
            longest.len()
        );
    }
    let mut rng = StdRng::seed_from_u64(o.seed);
    let mut bytes = 0u64;
    if o.size.is_some_and(|s| s > STREAM_THRESHOLD) {
        let size = o.size.unwrap_or(0);
        for i in 0..n {
            let reader = RandomReader {
                rng: StdRng::seed_from_u64(o.seed ^ i.wrapping_mul(0x9E37_79B9_7F4A_7C15)),
                left: size,
            };
            store.put_object_from_reader(&o.bucket, &key_of(i), reader)?;
            bytes += size;
        }
        return Ok((n, bytes));
    }
    let iter = (0..n).map(|i| {
        let size = o.size.unwrap_or_else(|| rng.random_range(1..=64 * 1024));
        bytes += size;
        (key_of(i), random_bytes(&mut rng, size))
    });
    store.put_objects(&o.bucket, iter)?;
    Ok((n, bytes))
}

const LABELS: &[&str] = &[
    "cat", "dog", "bird", "car", "tree", "boat", "person", "bicycle",
];
const LEVELS: &[&str] = &["INFO", "INFO", "INFO", "DEBUG", "WARN", "ERROR"];

fn sample(store: &Store, bucket: &str, seed: u64) -> anyhow::Result<(u64, u64)> {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut objects: Vec<(String, Vec<u8>)> = Vec::with_capacity(3005);

    objects.push((
        "README.txt".to_owned(),
        b"Sample bucket generated by `s3fetch-testkit generate`.\n\
          datasets/images: 1000 fake JPEGs (8-64 KiB)\n\
          datasets/labels: 1000 JSON labels (1-4 KiB)\n\
          logs/2024/MM/DD: 1000 log files (1-16 KiB)\n\
          models: 4 x 4 MiB checkpoints\n"
            .to_vec(),
    ));
    for i in 1..=1000u32 {
        let size = rng.random_range(8 * 1024..=64 * 1024);
        let mut data = random_bytes(&mut rng, size);
        data[..4].copy_from_slice(&[0xFF, 0xD8, 0xFF, 0xE0]);
        objects.push((format!("datasets/images/{i:04}.jpg"), data));
    }
    for i in 1..=1000u32 {
        let target = rng.random_range(1024..=4 * 1024usize);
        let label = LABELS[rng.random_range(0..LABELS.len())];
        let (x, y, w, h): (u32, u32, u32, u32) = (
            rng.random_range(0..600),
            rng.random_range(0..400),
            rng.random_range(10..200),
            rng.random_range(10..200),
        );
        let head = format!(
            "{{\"image\":\"datasets/images/{i:04}.jpg\",\"label\":\"{label}\",\"bbox\":[{x},{y},{w},{h}],\"notes\":\""
        );
        let pad = target.saturating_sub(head.len() + 3);
        let json = format!("{head}{}\"}}\n", "x".repeat(pad));
        objects.push((format!("datasets/labels/{i:04}.json"), json.into_bytes()));
    }
    for i in 0..1000u32 {
        let month = i / 84 + 1;
        let day = (i % 84) / 3 + 1;
        let part = i % 3;
        let target = rng.random_range(1024..=16 * 1024usize);
        let mut text = String::with_capacity(target + 128);
        let mut sec = 0u32;
        while text.len() < target {
            let level = LEVELS[rng.random_range(0..LEVELS.len())];
            let id: u32 = rng.random();
            let ms: u32 = rng.random_range(1..500);
            text.push_str(&format!(
                "2024-{month:02}-{day:02}T{:02}:{:02}:{:02}Z {level} request id={id:08x} took={ms}ms\n",
                part * 8 + sec / 3600 % 8,
                sec / 60 % 60,
                sec % 60
            ));
            sec += rng.random_range(1..30);
        }
        objects.push((
            format!("logs/2024/{month:02}/{day:02}/part-{part}.log"),
            text.into_bytes(),
        ));
    }
    for i in 1..=4u32 {
        objects.push((
            format!("models/checkpoint-{i}.bin"),
            random_bytes(&mut rng, 4 * 1024 * 1024),
        ));
    }
    let n = objects.len() as u64;
    let bytes = objects.iter().map(|(_, d)| d.len() as u64).sum();
    store.put_objects(bucket, objects)?;
    Ok((n, bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sample_is_deterministic_and_idempotent() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let r1 = generate(&store, &GenerateOptions::default()).unwrap();
        let etag1 = store
            .head_object("sample", "datasets/images/0007.jpg")
            .unwrap()
            .md5;
        let r2 = generate(&store, &GenerateOptions::default()).unwrap();
        assert_eq!(r1, r2);
        assert_eq!(store.object_count("sample").unwrap() as u64, r1.objects);
        assert_eq!(
            store
                .head_object("sample", "datasets/images/0007.jpg")
                .unwrap()
                .md5,
            etag1
        );
        assert!(r1.objects >= 3000);
    }

    #[test]
    fn synthetic_layout() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let opts = GenerateOptions {
            bucket: "bench".into(),
            objects: Some(10),
            size: Some(5),
            prefix: "p/".into(),
            folders: 2,
            suffix_every: 5,
            ..Default::default()
        };
        let r = generate(&store, &opts).unwrap();
        assert_eq!((r.objects, r.bytes), (10, 50));
        assert_eq!(
            store
                .head_object("bench", "p/folder-0000/obj-00000004.json")
                .unwrap()
                .size,
            5
        );
        assert!(store
            .head_object("bench", "p/folder-0001/obj-00000001.bin")
            .is_ok());
    }

    #[test]
    fn contiguous_folders() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let opts = GenerateOptions {
            bucket: "bench".into(),
            objects: Some(10),
            size: Some(3),
            folders: 5,
            contiguous_folders: true,
            ..Default::default()
        };
        generate(&store, &opts).unwrap();
        for (i, f) in [(0, 0), (1, 0), (2, 1), (9, 4)] {
            let key = format!("folder-{f:04}/obj-{i:08}.bin");
            assert!(store.head_object("bench", &key).is_ok(), "{key}");
        }
    }
}
