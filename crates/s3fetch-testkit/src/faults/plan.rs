//! What a fault plan says: the [`FaultKind`]s, a [`FaultRule`]'s probability and filters,
//! the seeded [`FaultPlan`], its spec parser (`serve --faults SPEC`) and its `Display`
//! (which the parser reads back). Plain data: nothing here looks at a request.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

/// Bytes `stall_body` sends before stalling unless told otherwise.
pub const DEFAULT_STALL_AFTER: u64 = 1024;

/// What a fault does. See the [module documentation](crate::faults) for each kind's effect.
#[derive(Debug, Clone, PartialEq)]
pub enum FaultKind {
    /// `503 SlowDown` on GetObject / HeadObject.
    SlowDown,
    /// `500 InternalError` on GetObject / HeadObject.
    InternalError,
    /// Close the connection without any response (GetObject / HeadObject).
    ResetBeforeHead,
    /// Send the head and exactly `bytes` body bytes (clamped to length − 1), then abort.
    CutBodyAfter {
        /// Body bytes sent before the abort.
        bytes: u64,
    },
    /// Send the head and `after_bytes` body bytes (clamped to length − 1), then nothing
    /// for `duration`, then the rest of the body or (with `abort`) an abort.
    StallBody {
        /// Body bytes sent before the stall.
        after_bytes: u64,
        /// How long nothing is sent.
        duration: Duration,
        /// Abort the connection after the stall instead of sending the rest.
        abort: bool,
    },
    /// Flip the first byte of every body chunk (length and headers unchanged).
    Corrupt,
    /// `404 NoSuchKey` for an existing key (GetObject / HeadObject).
    NotFound,
    /// Ranged GetObject not starting at 0: `412 PreconditionFailed` with `If-Match`,
    /// otherwise a different `ETag` header.
    EtagChange,
    /// `403 AccessDenied` (GetObject / HeadObject).
    Forbidden,
    /// `503 SlowDown` on ListObjectsV2 / ListObjects.
    ListSlowDown,
}

impl FaultKind {
    /// The kind's name in specs and [`TestServer::fault_counts`](crate::TestServer::fault_counts).
    #[must_use]
    pub fn name(&self) -> &'static str {
        match self {
            FaultKind::SlowDown => "slow_down",
            FaultKind::InternalError => "internal_error",
            FaultKind::ResetBeforeHead => "reset_before_head",
            FaultKind::CutBodyAfter { .. } => "cut_body_after",
            FaultKind::StallBody { .. } => "stall_body",
            FaultKind::Corrupt => "corrupt",
            FaultKind::NotFound => "not_found",
            FaultKind::EtagChange => "etag_change",
            FaultKind::Forbidden => "forbidden",
            FaultKind::ListSlowDown => "list_slow_down",
        }
    }
}

/// One fault with its probability and filters. Build with [`FaultRule::new`] and the
/// builder methods, or parse a spec ([`FaultPlan::parse`]).
#[derive(Debug, Clone, PartialEq)]
pub struct FaultRule {
    /// What happens.
    pub kind: FaultKind,
    /// Chance (0.0–1.0) that a matching attempt is hit.
    pub probability: f64,
    /// Only attempts `1..=max_per_request` of the same (operation, key, range) can be hit;
    /// 0 = every attempt.
    pub max_per_request: u32,
    /// Decide once per (operation, key, range) instead of per attempt.
    pub sticky: bool,
    /// Only requests on this bucket.
    pub bucket: Option<String>,
    /// Only keys starting with this.
    pub key_prefix: Option<String>,
    /// Only these keys (empty = any key).
    pub keys: Vec<String>,
    /// Only GetObject / HeadObject requests with a `Range` header (list requests never).
    pub ranged: bool,
}

impl FaultRule {
    /// A rule hitting every matching attempt with `probability`, without filters.
    #[must_use]
    pub fn new(kind: FaultKind, probability: f64) -> Self {
        Self {
            kind,
            probability,
            max_per_request: 0,
            sticky: false,
            bucket: None,
            key_prefix: None,
            keys: Vec::new(),
            ranged: false,
        }
    }

    /// Sets [`FaultRule::max_per_request`].
    #[must_use]
    pub fn max_per_request(mut self, n: u32) -> Self {
        self.max_per_request = n;
        self
    }

    /// Sets [`FaultRule::sticky`].
    #[must_use]
    pub fn sticky(mut self) -> Self {
        self.sticky = true;
        self
    }

    /// Sets [`FaultRule::bucket`].
    #[must_use]
    pub fn bucket(mut self, bucket: impl Into<String>) -> Self {
        self.bucket = Some(bucket.into());
        self
    }

    /// Sets [`FaultRule::key_prefix`].
    #[must_use]
    pub fn key_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.key_prefix = Some(prefix.into());
        self
    }

    /// Adds a key to [`FaultRule::keys`].
    #[must_use]
    pub fn key(mut self, key: impl Into<String>) -> Self {
        self.keys.push(key.into());
        self
    }

    /// Sets [`FaultRule::ranged`]: only requests with a `Range` header.
    #[must_use]
    pub fn ranged(mut self) -> Self {
        self.ranged = true;
        self
    }
}

/// A seeded set of [`FaultRule`]s (empty by default: no faults).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FaultPlan {
    /// Seed of every decision.
    pub seed: u64,
    /// Rules, tried in order.
    pub rules: Vec<FaultRule>,
}

/// An invalid fault spec.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid fault spec item {item:?}: {reason}")]
pub struct FaultSpecError {
    /// The offending item.
    pub item: String,
    /// What is wrong with it.
    pub reason: String,
}

impl FaultPlan {
    /// An empty plan with this seed.
    #[must_use]
    pub fn new(seed: u64) -> Self {
        Self {
            seed,
            rules: Vec::new(),
        }
    }

    /// Appends a rule.
    #[must_use]
    pub fn with(mut self, rule: FaultRule) -> Self {
        self.rules.push(rule);
        self
    }

    /// Whether the plan has no rules.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// Parses a spec (syntax in the [module documentation](crate::faults)).
    ///
    /// # Errors
    /// Unknown kinds or options, bad numbers, missing parameters.
    pub fn parse(spec: &str) -> Result<Self, FaultSpecError> {
        let mut plan = FaultPlan::default();
        for item in spec.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            let err = |reason: &str| FaultSpecError {
                item: item.to_owned(),
                reason: reason.to_owned(),
            };
            let (name, value) = item
                .split_once('=')
                .ok_or_else(|| err("expected NAME=VALUE"))?;
            if name == "seed" {
                plan.seed = value.parse().map_err(|_| err("seed must be a u64"))?;
                continue;
            }
            let mut opts = value.split('@');
            let mut params = opts.next().unwrap_or_default().split(':');
            let probability: f64 = params
                .next()
                .unwrap_or_default()
                .parse()
                .map_err(|_| err("probability must be a number"))?;
            if !(0.0..=1.0).contains(&probability) {
                return Err(err("probability must be within 0..=1"));
            }
            let params: Vec<&str> = params.collect();
            let kind = match name {
                "slow_down" => FaultKind::SlowDown,
                "internal_error" => FaultKind::InternalError,
                "reset_before_head" => FaultKind::ResetBeforeHead,
                "corrupt" => FaultKind::Corrupt,
                "not_found" => FaultKind::NotFound,
                "etag_change" => FaultKind::EtagChange,
                "forbidden" => FaultKind::Forbidden,
                "list_slow_down" => FaultKind::ListSlowDown,
                "cut_body_after" => {
                    let [bytes] = params[..] else {
                        return Err(err("expected cut_body_after=P:BYTES"));
                    };
                    FaultKind::CutBodyAfter {
                        bytes: parse_bytes(bytes).ok_or_else(|| err("bad byte count"))?,
                    }
                }
                "stall_body" => {
                    let Some((duration, rest)) = params.split_first() else {
                        return Err(err("expected stall_body=P:DURATION[:BYTES][:abort]"));
                    };
                    let duration = parse_duration(duration).ok_or_else(|| err("bad duration"))?;
                    let mut after_bytes = DEFAULT_STALL_AFTER;
                    let mut abort = false;
                    for p in rest {
                        match *p {
                            "abort" => abort = true,
                            "continue" => abort = false,
                            p => {
                                after_bytes = parse_bytes(p)
                                    .ok_or_else(|| err("expected BYTES, abort or continue"))?;
                            }
                        }
                    }
                    FaultKind::StallBody {
                        after_bytes,
                        duration,
                        abort,
                    }
                }
                _ => return Err(err("unknown fault kind")),
            };
            if !matches!(
                kind,
                FaultKind::CutBodyAfter { .. } | FaultKind::StallBody { .. }
            ) && !params.is_empty()
            {
                return Err(err("this fault kind takes no ':' parameters"));
            }
            let mut rule = FaultRule::new(kind, probability);
            for opt in opts {
                match opt.split_once('=') {
                    None if opt == "sticky" => rule.sticky = true,
                    None if opt == "ranged" => rule.ranged = true,
                    Some(("max", n)) => {
                        rule.max_per_request = n.parse().map_err(|_| err("bad max"))?;
                    }
                    Some(("bucket", b)) => rule.bucket = Some(b.to_owned()),
                    Some(("prefix", p)) => rule.key_prefix = Some(p.to_owned()),
                    Some(("key", k)) => rule.keys.push(k.to_owned()),
                    _ => {
                        return Err(err(
                            "unknown option (max=N, sticky, ranged, bucket=, prefix=, key=)",
                        ))
                    }
                }
            }
            plan.rules.push(rule);
        }
        Ok(plan)
    }
}

impl FromStr for FaultPlan {
    type Err = FaultSpecError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

fn parse_bytes(s: &str) -> Option<u64> {
    let lower = s.to_ascii_lowercase();
    let (num, mult) = match lower.as_bytes().last()? {
        b'k' => (&lower[..lower.len() - 1], 1u64 << 10),
        b'm' => (&lower[..lower.len() - 1], 1 << 20),
        b'g' => (&lower[..lower.len() - 1], 1 << 30),
        _ => (&lower[..], 1),
    };
    num.parse::<u64>().ok()?.checked_mul(mult)
}

fn parse_duration(s: &str) -> Option<Duration> {
    let (num, scale) = if let Some(n) = s.strip_suffix("ms") {
        (n, 0.001)
    } else if let Some(n) = s.strip_suffix('s') {
        (n, 1.0)
    } else {
        (s, 1.0)
    };
    let v: f64 = num.parse().ok()?;
    Duration::try_from_secs_f64(v * scale).ok()
}

impl fmt::Display for FaultPlan {
    /// The plan as a spec [`FaultPlan::parse`] reads back.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "seed={}", self.seed)?;
        for r in &self.rules {
            write!(f, ",{}={}", r.kind.name(), r.probability)?;
            match &r.kind {
                FaultKind::CutBodyAfter { bytes } => write!(f, ":{bytes}")?,
                FaultKind::StallBody {
                    after_bytes,
                    duration,
                    abort,
                } => {
                    let action = if *abort { "abort" } else { "continue" };
                    write!(f, ":{}ms:{after_bytes}:{action}", duration.as_millis())?;
                }
                _ => {}
            }
            if r.max_per_request != 0 {
                write!(f, "@max={}", r.max_per_request)?;
            }
            if r.sticky {
                write!(f, "@sticky")?;
            }
            if r.ranged {
                write!(f, "@ranged")?;
            }
            if let Some(b) = &r.bucket {
                write!(f, "@bucket={b}")?;
            }
            if let Some(p) = &r.key_prefix {
                write!(f, "@prefix={p}")?;
            }
            for k in &r.keys {
                write!(f, "@key={k}")?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spec_round_trip() {
        let spec = "slow_down=0.01,cut_body_after=0.01:64k,stall_body=0.01:5s,corrupt=0.01,\
                    not_found=0.005@max=1@sticky@prefix=a/@key=x,seed=7,\
                    stall_body=1:250ms:10:abort@bucket=b,internal_error=0.1@ranged";
        let plan = FaultPlan::parse(spec).unwrap();
        assert_eq!(plan.seed, 7);
        assert_eq!(plan.rules.len(), 7);
        assert!(plan.rules[6].ranged && !plan.rules[4].ranged);
        assert_eq!(plan.rules[1].kind, FaultKind::CutBodyAfter { bytes: 65536 });
        assert_eq!(
            plan.rules[2].kind,
            FaultKind::StallBody {
                after_bytes: DEFAULT_STALL_AFTER,
                duration: Duration::from_secs(5),
                abort: false
            }
        );
        let nf = &plan.rules[4];
        assert_eq!(
            (nf.max_per_request, nf.sticky, nf.key_prefix.as_deref()),
            (1, true, Some("a/"))
        );
        assert_eq!(nf.keys, ["x"]);
        assert_eq!(
            plan.rules[5].kind,
            FaultKind::StallBody {
                after_bytes: 10,
                duration: Duration::from_millis(250),
                abort: true
            }
        );
        assert_eq!(FaultPlan::parse(&plan.to_string()).unwrap(), plan);
        for bad in [
            "nope=0.1",
            "slow_down=2",
            "slow_down=x",
            "cut_body_after=0.1",
            "stall_body=0.1",
            "slow_down=0.1:5",
            "slow_down=0.1@what",
            "seed=-1",
        ] {
            assert!(FaultPlan::parse(bad).is_err(), "{bad}");
        }
        assert!(FaultPlan::parse("").unwrap().is_empty());
    }
}
