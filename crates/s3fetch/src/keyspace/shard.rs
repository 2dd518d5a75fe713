//! `--shard K/N`: this process takes the K-th of N disjoint parts of the selected keys, so
//! that N machines (an indexed job of Kubernetes, an array of Slurm or AWS Batch, N tasks of
//! Ray or Dask) share one job without talking to each other.
//!
//! A key belongs to the shard a fixed hash of it says ([`shard_of`]): every shard lists the
//! whole prefix and keeps its own keys (or, by [`ShardBy::Range`], only its range of a plan).
//! `--shard auto` takes K, and N where the orchestrator provides it, from the environment
//! ([`Shard::from_env`]).

use crate::error::{Error, Result};

/// How keys are dealt out to shards.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ShardBy {
    /// By a stable hash of the key (see [`shard_of`]); every shard lists the whole prefix.
    #[default]
    Hash,
    /// By key ranges from a plan (see [`crate::Plan`]); each shard lists only its range.
    Range,
}

impl ShardBy {
    /// `hash` or `range`.
    pub fn parse(text: &str) -> Result<ShardBy> {
        match text.trim().to_ascii_lowercase().as_str() {
            "hash" => Ok(ShardBy::Hash),
            "range" => Ok(ShardBy::Range),
            _ => Err(Error::option(
                "shard_by",
                format!("{text:?} is neither hash nor range"),
            )),
        }
    }

    /// The value's name (`hash`, `range`), as [`ShardBy::parse`] takes it.
    pub fn as_str(self) -> &'static str {
        match self {
            ShardBy::Hash => "hash",
            ShardBy::Range => "range",
        }
    }

    /// Every value's name, as [`ShardBy::parse`] takes them.
    pub const NAMES: [&'static str; 2] = ["hash", "range"];
}

impl std::fmt::Display for ShardBy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The K-th of N parts of the keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    /// K: which shard this is, counting from 0; less than `count`.
    pub index: u32,
    /// N: how many shards share the keys, at least 1.
    pub count: u32,
}

impl Shard {
    /// Shard `index` of `count`: 0 ≤ `index` < `count`.
    pub fn new(index: u32, count: u32) -> Result<Shard> {
        if count == 0 {
            return Err(Error::option(
                "shard",
                "the count N of K/N must be at least 1",
            ));
        }
        if index >= count {
            return Err(Error::option(
                "shard",
                format!("{index}/{count}: K must be less than N (shards count from 0)"),
            ));
        }
        Ok(Shard { index, count })
    }

    /// `K/N`, as the CLI takes it.
    pub fn parse(text: &str) -> Result<Shard> {
        let bad = || Error::option("shard", format!("{text:?} is not K/N (e.g. 0/4) or auto"));
        let (k, n) = text.trim().split_once('/').ok_or_else(bad)?;
        Shard::new(k.parse().map_err(|_| bad())?, n.parse().map_err(|_| bad())?)
    }

    /// Whether `key` is this shard's.
    pub fn contains(&self, key: &str) -> bool {
        shard_of(key, self.count) == self.index
    }

    /// The shard an orchestrator gave this process, and where it came from, read with
    /// `var` (`std::env::var` but for tests). The first of these that is set wins:
    /// - Kubernetes Indexed Job: K = `JOB_COMPLETION_INDEX`, N = `count`;
    /// - AWS Batch array job: K = `AWS_BATCH_JOB_ARRAY_INDEX`, N = `AWS_BATCH_JOB_ARRAY_SIZE`
    ///   or `count`;
    /// - Slurm job array: K = (`SLURM_ARRAY_TASK_ID` − `SLURM_ARRAY_TASK_MIN`) /
    ///   `SLURM_ARRAY_TASK_STEP` (so `--array=1-8` and `--array=0-14:2` work),
    ///   N = `SLURM_ARRAY_TASK_COUNT` or `count`.
    ///
    /// `count` is the caller's `--shard-count` (or `S3FETCH_SHARD_COUNT`), and overrides
    /// the orchestrator's N.
    pub fn from_env(
        count: Option<u32>,
        var: impl Fn(&str) -> Option<String>,
    ) -> Result<(Shard, &'static str)> {
        let number = |name: &str| -> Result<Option<u32>> {
            match var(name) {
                None => Ok(None),
                Some(text) => text.trim().parse().map(Some).map_err(|_| {
                    Error::option("shard", format!("{name}={text:?} is not a whole number"))
                }),
            }
        };
        let count = match count {
            Some(n) => Some(n),
            None => number("S3FETCH_SHARD_COUNT")?,
        };
        let need_count = |source: &str| {
            Error::option(
                "shard",
                format!("auto found {source} but not the number of shards: give --shard-count N (or S3FETCH_SHARD_COUNT)"),
            )
        };
        if let Some(index) = number("JOB_COMPLETION_INDEX")? {
            let count = count.ok_or_else(|| need_count("JOB_COMPLETION_INDEX"))?;
            return Ok((
                Shard::new(index, count)?,
                "JOB_COMPLETION_INDEX (Kubernetes)",
            ));
        }
        if let Some(index) = number("AWS_BATCH_JOB_ARRAY_INDEX")? {
            let count = match count {
                Some(n) => n,
                None => number("AWS_BATCH_JOB_ARRAY_SIZE")?
                    .ok_or_else(|| need_count("AWS_BATCH_JOB_ARRAY_INDEX"))?,
            };
            return Ok((
                Shard::new(index, count)?,
                "AWS_BATCH_JOB_ARRAY_INDEX (AWS Batch)",
            ));
        }
        if let Some(id) = number("SLURM_ARRAY_TASK_ID")? {
            let min = number("SLURM_ARRAY_TASK_MIN")?.unwrap_or(0);
            let step = number("SLURM_ARRAY_TASK_STEP")?.unwrap_or(1).max(1);
            let offset = id.checked_sub(min).ok_or_else(|| {
                Error::option(
                    "shard",
                    format!("SLURM_ARRAY_TASK_ID={id} is below SLURM_ARRAY_TASK_MIN={min}"),
                )
            })?;
            let count = match count {
                Some(n) => n,
                None => number("SLURM_ARRAY_TASK_COUNT")?
                    .ok_or_else(|| need_count("SLURM_ARRAY_TASK_ID"))?,
            };
            return Ok((
                Shard::new(offset / step, count)?,
                "SLURM_ARRAY_TASK_ID (Slurm)",
            ));
        }
        Err(Error::option(
            "shard",
            "auto found none of JOB_COMPLETION_INDEX (Kubernetes), AWS_BATCH_JOB_ARRAY_INDEX (AWS Batch), SLURM_ARRAY_TASK_ID (Slurm): give --shard K/N",
        ))
    }
}

impl std::fmt::Display for Shard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

/// The shard of `key` among `count`.
///
/// A key belongs to shard `fnv1a64(key) % N`: FNV-1a, 64 bits, over the full key's UTF-8
/// bytes (prefix included). The hash is fixed — the same on every platform and in every
/// version of s3fetch (a test pins its values) — so a re-run of shard K takes the same keys,
/// and the union over K = 0..N is exactly the unsharded selection. Every shard lists the
/// whole prefix (in parallel, so that is fast) and keeps its own keys.
pub fn shard_of(key: &str, count: u32) -> u32 {
    let hash = crate::hash::fnv1a(key.as_bytes());
    // `hash % count` < `count`, a u32.
    (hash % u64::from(count.max(1))) as u32
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeSet, HashMap};

    use proptest::prelude::*;

    use super::*;

    #[test]
    fn the_hash_never_changes() {
        // Pinned: a change here moves keys between shards for everyone re-running a job.
        assert_eq!(
            shard_of("", 1000),
            (0xcbf2_9ce4_8422_2325_u64 % 1000) as u32
        );
        assert_eq!(
            shard_of("a", u32::MAX),
            (0xaf63_dc4c_8601_ec8c_u64 % u64::from(u32::MAX)) as u32
        );
        assert_eq!(shard_of("data/00001.txt", 4), shard_of("data/00001.txt", 4));
        let shards: Vec<u32> = ["data/a", "data/b", "data/c", "ключ/键"]
            .iter()
            .map(|k| shard_of(k, 7))
            .collect();
        // FNV-1a 64: f1342bee293dea0d, f13428ee293de4f4, f13429ee293de6a7, fa8deb592001f39b.
        assert_eq!(shards, [2, 0, 3, 6]);
        assert_eq!(shard_of("data/a", 1), 0);
    }

    proptest! {
        #[test]
        fn shards_partition_any_key_set(keys in prop::collection::btree_set(".{0,40}", 0..200), count in 1u32..=16) {
            let mut union = BTreeSet::new();
            for index in 0..count {
                let shard = Shard::new(index, count).unwrap();
                for key in keys.iter().filter(|k| shard.contains(k)) {
                    prop_assert!(union.insert(key.clone()), "{key:?} in two shards");
                }
            }
            prop_assert_eq!(union, keys);
        }
    }

    #[test]
    fn k_of_n_is_checked() {
        assert_eq!(Shard::parse("1/4").unwrap(), Shard { index: 1, count: 4 });
        assert_eq!(Shard::parse(" 0/1 ").unwrap().to_string(), "0/1");
        for bad in ["4/4", "0/0", "1", "a/b", "-1/4", "1/4/2", ""] {
            let err = Shard::parse(bad).unwrap_err();
            assert!(
                matches!(
                    err,
                    Error::InvalidOption {
                        option: "shard",
                        ..
                    }
                ),
                "{bad}: {err}"
            );
        }
    }

    fn env(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let vars: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |name| vars.get(name).cloned()
    }

    #[test]
    fn auto_reads_each_orchestrators_variables() {
        let shard = |count, vars: &[(&str, &str)]| Shard::from_env(count, env(vars));
        let (s, from) = shard(Some(8), &[("JOB_COMPLETION_INDEX", "3")]).unwrap();
        assert_eq!(
            (s.to_string(), from),
            ("3/8".into(), "JOB_COMPLETION_INDEX (Kubernetes)")
        );
        let (s, _) = shard(
            None,
            &[("JOB_COMPLETION_INDEX", "3"), ("S3FETCH_SHARD_COUNT", "5")],
        )
        .unwrap();
        assert_eq!(s.to_string(), "3/5");
        let err = shard(None, &[("JOB_COMPLETION_INDEX", "3")]).unwrap_err();
        assert!(err.to_string().contains("--shard-count"), "{err}");

        let batch = [
            ("AWS_BATCH_JOB_ARRAY_INDEX", "2"),
            ("AWS_BATCH_JOB_ARRAY_SIZE", "10"),
        ];
        let (s, from) = shard(None, &batch).unwrap();
        assert_eq!(
            (s.to_string(), from),
            ("2/10".into(), "AWS_BATCH_JOB_ARRAY_INDEX (AWS Batch)")
        );
        assert_eq!(
            shard(Some(4), &batch).unwrap().0.to_string(),
            "2/4",
            "--shard-count wins"
        );

        // `--array=1-8`: IDs 1..=8 are shards 0..8; `--array=0-14:2`: 0, 2, ... 14.
        let slurm = [
            ("SLURM_ARRAY_TASK_ID", "8"),
            ("SLURM_ARRAY_TASK_MIN", "1"),
            ("SLURM_ARRAY_TASK_COUNT", "8"),
        ];
        let (s, from) = shard(None, &slurm).unwrap();
        assert_eq!(
            (s.to_string(), from),
            ("7/8".into(), "SLURM_ARRAY_TASK_ID (Slurm)")
        );
        let stepped = [
            ("SLURM_ARRAY_TASK_ID", "14"),
            ("SLURM_ARRAY_TASK_MIN", "0"),
            ("SLURM_ARRAY_TASK_STEP", "2"),
            ("SLURM_ARRAY_TASK_COUNT", "8"),
        ];
        assert_eq!(shard(None, &stepped).unwrap().0.to_string(), "7/8");

        let err = shard(Some(4), &[]).unwrap_err();
        assert!(err.to_string().contains("JOB_COMPLETION_INDEX"), "{err}");
        let err = shard(Some(4), &[("JOB_COMPLETION_INDEX", "x")]).unwrap_err();
        assert!(err.to_string().contains("not a whole number"), "{err}");
        let err = shard(Some(4), &[("JOB_COMPLETION_INDEX", "4")]).unwrap_err();
        assert!(err.to_string().contains("K must be less than N"), "{err}");
    }
}
