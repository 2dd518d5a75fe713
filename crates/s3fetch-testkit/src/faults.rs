//! Deterministic, seeded fault injection: a [`FaultPlan`] of [`FaultRule`]s applied to every
//! HTTP request in the server's `Gateway` (before `s3s`, so before the signature check).
//!
//! # Fault kinds
//!
//! | name                | applies to            | effect |
//! |---------------------|-----------------------|--------|
//! | `slow_down`         | GetObject, HeadObject | `503 SlowDown` |
//! | `internal_error`    | GetObject, HeadObject | `500 InternalError` |
//! | `forbidden`         | GetObject, HeadObject | `403 AccessDenied` |
//! | `not_found`         | GetObject, HeadObject | `404 NoSuchKey` (for a key that exists) |
//! | `reset_before_head` | GetObject, HeadObject | connection closed without any response |
//! | `cut_body_after`    | GetObject             | head + exactly N body bytes, then the connection is aborted |
//! | `stall_body`        | GetObject             | head + N body bytes, then nothing for T, then the rest (or an abort) |
//! | `corrupt`           | GetObject             | first byte of every body chunk flipped; length, ETag and checksum headers unchanged |
//! | `etag_change`       | ranged GetObject not starting at byte 0 | with `If-Match`: `412 PreconditionFailed`; without: the body with a different `ETag` header (as if the object had been replaced after the first part) |
//! | `list_slow_down`    | ListObjectsV2, ListObjects | `503 SlowDown` |
//!
//! `cut_body_after` and `stall_body` clamp N to the body length − 1, so the body is always
//! incomplete when the fault hits; they (and `corrupt`) only hit successful (200/206)
//! responses with a non-empty body. At most one fault hits a request: the first rule (in
//! plan order) whose decision says so.
//!
//! # Decisions
//!
//! Each request is identified by (operation, bucket, key, range start), the range start
//! being the `N` of `Range: bytes=N-…` (other Range forms: the whole header value; list
//! requests: bucket and the whole query string, so each page is its own request). The
//! server numbers attempts of the same identity from 1 (only for requests some rule's
//! filters match). A rule hits attempt `n` when `max_per_request == 0 || n <=
//! max_per_request` and `hash(seed, rule index, operation, bucket, key, range, n) <
//! probability`, so the same plan and seed make the same decisions on every run, and a
//! retry of the same request is decided afresh. With `sticky` the attempt number is left
//! out of the hash: a (key, range) is either hit on every attempt (up to
//! `max_per_request`) or never. Examples:
//!
//! * fail the first attempt of 1 % of GETs: `slow_down=0.01@max=1`;
//! * fail every attempt of one key: `forbidden=1@key=secret.bin`;
//! * 1 % of keys are "gone" for good: `not_found=0.01@sticky`;
//! * any attempt fails with 1 % (a retrying client eventually wins): `internal_error=0.01`.
//!
//! Requests answered by a fault without reaching `s3s` (errors, resets) still count in
//! [`RequestCounts`](crate::RequestCounts) under their operation. Injected faults are
//! counted by kind name: [`TestServer::fault_counts`](crate::TestServer::fault_counts).
//!
//! # Spec syntax (`s3fetch-testkit serve --faults SPEC`, [`FaultPlan::parse`])
//!
//! ```text
//! SPEC   := ITEM (',' ITEM)*
//! ITEM   := 'seed=' U64                                  (default 0)
//!         | KIND '=' PROBABILITY (':' PARAM)* ('@' OPTION)*
//! PARAM  := cut_body_after: BYTES (required)
//!           stall_body:     DURATION (required), then optionally BYTES sent before the
//!                           stall (default 1024) and `abort` or `continue` (default)
//! OPTION := 'max=' N       max_per_request (default 0 = every attempt)
//!         | 'sticky'        decide per (key, range), not per attempt
//!         | 'bucket=' NAME  only this bucket
//!         | 'prefix=' P     only keys starting with P
//!         | 'key=' K        only this key (repeatable)
//! BYTES  := integer, optionally with k / m / g (KiB / MiB / GiB)
//! DURATION := number with s or ms (e.g. 5s, 1.5s, 250ms)
//! ```
//!
//! e.g. `slow_down=0.01,cut_body_after=0.01:65536,stall_body=0.01:5s,corrupt=0.01,not_found=0.005,seed=7`.
//! Key filters don't apply to `list_slow_down` (the bucket filter does).

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::pin::Pin;
use std::str::FromStr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use futures::future::BoxFuture;
use futures::{Stream, StreamExt};
use hyper::http::{header, HeaderValue, Method, StatusCode};
use md5::{Digest, Md5};
use s3s::service::S3Service;
use s3s::{Body, HttpError, HttpResponse, S3Error, S3ErrorCode, StdError};

use crate::server::Shared;

/// Bytes `stall_body` sends before stalling unless told otherwise.
pub const DEFAULT_STALL_AFTER: u64 = 1024;

/// What a fault does. See the [module documentation](self) for each kind's effect.
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

    fn applies_to(&self, t: &Target) -> bool {
        match self {
            FaultKind::SlowDown
            | FaultKind::InternalError
            | FaultKind::ResetBeforeHead
            | FaultKind::NotFound
            | FaultKind::Forbidden => matches!(t.op, Op::GetObject | Op::HeadObject),
            FaultKind::CutBodyAfter { .. } | FaultKind::StallBody { .. } | FaultKind::Corrupt => {
                t.op == Op::GetObject
            }
            FaultKind::EtagChange => {
                t.op == Op::GetObject && t.range.is_some() && t.range_start != Some(0)
            }
            FaultKind::ListSlowDown => matches!(t.op, Op::ListV2 | Op::ListV1),
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

    fn matches(&self, t: &Target) -> bool {
        if !self.kind.applies_to(t) {
            return false;
        }
        if self.bucket.as_ref().is_some_and(|b| *b != t.bucket) {
            return false;
        }
        if matches!(t.op, Op::ListV1 | Op::ListV2) {
            return true;
        }
        if self
            .key_prefix
            .as_ref()
            .is_some_and(|p| !t.key.starts_with(p.as_str()))
        {
            return false;
        }
        self.keys.is_empty() || self.keys.contains(&t.key)
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

    /// Parses a spec (syntax in the [module documentation](self)).
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
                    Some(("max", n)) => {
                        rule.max_per_request = n.parse().map_err(|_| err("bad max"))?;
                    }
                    Some(("bucket", b)) => rule.bucket = Some(b.to_owned()),
                    Some(("prefix", p)) => rule.key_prefix = Some(p.to_owned()),
                    Some(("key", k)) => rule.keys.push(k.to_owned()),
                    _ => {
                        return Err(err(
                            "unknown option (max=N, sticky, bucket=, prefix=, key=)",
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

// ---------------------------------------------------------------------------------------
// Runtime state

/// The server's current plan, attempt numbers and counts.
pub(crate) struct FaultState {
    active: AtomicBool,
    plan: RwLock<Arc<FaultPlan>>,
    attempts: Mutex<HashMap<u64, u32>>,
    counts: Mutex<BTreeMap<String, u64>>,
}

impl FaultState {
    pub(crate) fn new(plan: FaultPlan) -> Self {
        Self {
            active: AtomicBool::new(!plan.is_empty()),
            plan: RwLock::new(Arc::new(plan)),
            attempts: Mutex::new(HashMap::new()),
            counts: Mutex::new(BTreeMap::new()),
        }
    }

    /// Replaces the plan and forgets attempt numbers (counts are kept).
    pub(crate) fn set(&self, plan: FaultPlan) {
        let mut cur = self.plan.write().unwrap_or_else(PoisonError::into_inner);
        self.active.store(!plan.is_empty(), Ordering::SeqCst);
        *cur = Arc::new(plan);
        self.attempts
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clear();
    }

    pub(crate) fn plan(&self) -> FaultPlan {
        (**self.plan.read().unwrap_or_else(PoisonError::into_inner)).clone()
    }

    pub(crate) fn counts(&self) -> BTreeMap<String, u64> {
        self.counts
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    pub(crate) fn reset_counts(&self) {
        self.counts
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clear();
    }

    fn count(&self, kind: &FaultKind) {
        *self
            .counts
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .entry(kind.name().to_owned())
            .or_default() += 1;
    }

    /// The fault (if any) hitting this request; numbers the attempt.
    fn decide(&self, t: &Target) -> Option<FaultKind> {
        let plan = self
            .plan
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        let rules: Vec<(usize, &FaultRule)> = plan
            .rules
            .iter()
            .enumerate()
            .filter(|(_, r)| r.matches(t))
            .collect();
        if rules.is_empty() {
            return None;
        }
        let id = {
            let mut h = Hasher::new(0);
            t.hash_into(&mut h);
            h.finish()
        };
        let attempt = {
            let mut attempts = self.attempts.lock().unwrap_or_else(PoisonError::into_inner);
            let n = attempts.entry(id).or_default();
            *n = n.saturating_add(1);
            *n
        };
        for (index, rule) in rules {
            if rule.max_per_request != 0 && attempt > rule.max_per_request {
                continue;
            }
            if decide(plan.seed, index, rule, t, attempt) {
                return Some(rule.kind.clone());
            }
        }
        None
    }
}

/// Whether `rule` (at `index` in a plan with `seed`) hits attempt `attempt` of `t`.
fn decide(seed: u64, index: usize, rule: &FaultRule, t: &Target, attempt: u32) -> bool {
    if rule.probability <= 0.0 {
        return false;
    }
    if rule.probability >= 1.0 {
        return true;
    }
    let mut h = Hasher::new(seed);
    h.u64(index as u64);
    h.bytes(rule.kind.name().as_bytes());
    t.hash_into(&mut h);
    h.u64(if rule.sticky { 0 } else { u64::from(attempt) });
    // 53 random bits as a float in [0, 1).
    #[allow(clippy::cast_precision_loss)]
    let unit = (h.finish() >> 11) as f64 / (1u64 << 53) as f64;
    unit < rule.probability
}

/// FNV-1a with a splitmix64 finish: stable across platforms and Rust versions.
struct Hasher(u64);

impl Hasher {
    fn new(seed: u64) -> Self {
        let mut h = Hasher(0xcbf2_9ce4_8422_2325);
        h.u64(seed);
        h
    }

    fn write(&mut self, data: &[u8]) {
        for &b in data {
            self.0 ^= u64::from(b);
            self.0 = self.0.wrapping_mul(0x0100_0000_01b3);
        }
    }

    fn u64(&mut self, v: u64) {
        self.write(&v.to_le_bytes());
    }

    fn bytes(&mut self, b: &[u8]) {
        self.u64(b.len() as u64);
        self.write(b);
    }

    fn finish(&self) -> u64 {
        let mut z = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
}

// ---------------------------------------------------------------------------------------
// Request classification

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    GetObject,
    HeadObject,
    ListV2,
    ListV1,
}

impl Op {
    fn name(self) -> &'static str {
        match self {
            Op::GetObject => "GetObject",
            Op::HeadObject => "HeadObject",
            Op::ListV2 => "ListObjectsV2",
            Op::ListV1 => "ListObjects",
        }
    }
}

/// What a request is about, as far as faults care.
#[derive(Debug)]
struct Target {
    op: Op,
    bucket: String,
    key: String,
    /// The Range header (objects) or the query string (lists).
    range: Option<String>,
    range_start: Option<u64>,
    if_match: bool,
}

impl Target {
    fn hash_into(&self, h: &mut Hasher) {
        h.bytes(self.op.name().as_bytes());
        h.bytes(self.bucket.as_bytes());
        h.bytes(self.key.as_bytes());
        match (self.range_start, &self.range) {
            (Some(start), _) => {
                h.u64(1);
                h.u64(start);
            }
            (None, Some(r)) => {
                h.u64(2);
                h.bytes(r.as_bytes());
            }
            (None, None) => h.u64(0),
        }
    }

    /// Classifies a path-style request; `None` for anything faults don't apply to.
    fn of<B>(req: &hyper::Request<B>) -> Option<Target> {
        let path = req.uri().path().strip_prefix('/')?;
        let (bucket, key) = match path.split_once('/') {
            Some((b, k)) if !k.is_empty() => (percent_decode(b)?, Some(percent_decode(k)?)),
            Some((b, _)) => (percent_decode(b)?, None),
            None => (percent_decode(path)?, None),
        };
        if bucket.is_empty() {
            return None;
        }
        let query = req.uri().query().unwrap_or("");
        let params: Vec<&str> = query
            .split('&')
            .filter(|p| !p.is_empty())
            .map(|p| p.split_once('=').map_or(p, |(k, _)| k))
            .collect();
        let header = |name: header::HeaderName| {
            req.headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        let op = match (req.method(), &key) {
            (&Method::GET, Some(_)) if params.iter().all(|p| object_read_param(p)) => Op::GetObject,
            (&Method::HEAD, Some(_)) if params.iter().all(|p| object_read_param(p)) => {
                Op::HeadObject
            }
            (&Method::GET, None) if params.iter().all(|p| list_param(p)) => {
                if query.split('&').any(|p| p == "list-type=2") {
                    Op::ListV2
                } else {
                    Op::ListV1
                }
            }
            _ => return None,
        };
        let (range, range_start) = if matches!(op, Op::ListV1 | Op::ListV2) {
            (Some(query.to_owned()), None)
        } else {
            let range = header(header::RANGE);
            let start = range
                .as_deref()
                .and_then(|r| r.trim().strip_prefix("bytes="))
                .and_then(|r| r.split_once('-'))
                .and_then(|(s, _)| s.trim().parse().ok());
            (range, start)
        };
        Some(Target {
            op,
            bucket,
            key: key.unwrap_or_default(),
            range,
            range_start,
            if_match: req.headers().contains_key(header::IF_MATCH),
        })
    }
}

fn is_presign_param(p: &str) -> bool {
    p.len() > 6 && p[..6].eq_ignore_ascii_case("x-amz-")
}

fn object_read_param(p: &str) -> bool {
    matches!(p, "x-id" | "versionId" | "partNumber")
        || p.starts_with("response-")
        || is_presign_param(p)
}

fn list_param(p: &str) -> bool {
    matches!(
        p,
        "x-id"
            | "list-type"
            | "prefix"
            | "delimiter"
            | "marker"
            | "max-keys"
            | "encoding-type"
            | "continuation-token"
            | "start-after"
            | "fetch-owner"
            | "optional-object-attributes"
    ) || is_presign_param(p)
}

fn percent_decode(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = std::str::from_utf8(b.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

// ---------------------------------------------------------------------------------------
// Applying faults

type ServeFuture = BoxFuture<'static, Result<HttpResponse, HttpError>>;

/// The fault-injecting front of the `Gateway`: decides whether a fault hits `req` and
/// either answers it, hands it to `s3` and alters the response, or just hands it on.
pub(crate) fn serve(
    shared: &Arc<Shared>,
    s3: &S3Service,
    req: hyper::Request<hyper::body::Incoming>,
) -> ServeFuture {
    let state = &shared.faults;
    if !state.active.load(Ordering::Relaxed) {
        return hyper::service::Service::call(s3, req);
    }
    let Some(target) = Target::of(&req) else {
        return hyper::service::Service::call(s3, req);
    };
    let Some(kind) = state.decide(&target) else {
        return hyper::service::Service::call(s3, req);
    };
    let head = target.op == Op::HeadObject;
    let answer = |code: S3ErrorCode, msg: &'static str| -> ServeFuture {
        shared.counters.record(target.op.name());
        state.count(&kind);
        let res = error_response(code, msg, head);
        Box::pin(async move { res })
    };
    match &kind {
        FaultKind::SlowDown | FaultKind::ListSlowDown => {
            answer(S3ErrorCode::SlowDown, "Please reduce your request rate.")
        }
        FaultKind::InternalError => answer(
            S3ErrorCode::InternalError,
            "We encountered an internal error. Please try again.",
        ),
        FaultKind::Forbidden => answer(S3ErrorCode::AccessDenied, "Access Denied"),
        FaultKind::NotFound => answer(S3ErrorCode::NoSuchKey, "The specified key does not exist."),
        FaultKind::EtagChange if target.if_match => answer(
            S3ErrorCode::PreconditionFailed,
            "At least one of the pre-conditions you specified did not hold",
        ),
        FaultKind::ResetBeforeHead => {
            shared.counters.record(target.op.name());
            state.count(&kind);
            Box::pin(async {
                Err(HttpError::new(
                    "injected fault: reset_before_head (connection closed without a response)"
                        .into(),
                ))
            })
        }
        FaultKind::EtagChange
        | FaultKind::CutBodyAfter { .. }
        | FaultKind::StallBody { .. }
        | FaultKind::Corrupt => {
            let fut = hyper::service::Service::call(s3, req);
            let shared = shared.clone();
            let kind = kind.clone();
            Box::pin(async move {
                let mut res = fut.await?;
                alter_response(&shared, &kind, &mut res);
                Ok(res)
            })
        }
    }
}

fn error_response(
    code: S3ErrorCode,
    msg: &'static str,
    head: bool,
) -> Result<HttpResponse, HttpError> {
    let mut res = S3Error::with_message(code, msg)
        .to_http_response()
        .map_err(|e| HttpError::new(Box::new(e)))?;
    if head {
        // Like S3: HEAD errors have no body.
        *res.body_mut() = Body::empty();
        res.headers_mut().remove(header::CONTENT_LENGTH);
    }
    Ok(res)
}

/// Applies a body / header fault to a successful GetObject response (and counts it).
fn alter_response(shared: &Shared, kind: &FaultKind, res: &mut HttpResponse) {
    if !matches!(res.status(), StatusCode::OK | StatusCode::PARTIAL_CONTENT) {
        return;
    }
    let len = res
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let mode = match kind {
        FaultKind::EtagChange => {
            let Some(old) = res.headers().get(header::ETAG) else {
                return;
            };
            let mut h = Md5::new();
            h.update(old.as_bytes());
            h.update(b"replaced by etag_change");
            let new = format!("\"{}\"", hex::encode(h.finalize()));
            if let Ok(v) = HeaderValue::from_str(&new) {
                res.headers_mut().insert(header::ETAG, v);
            }
            shared.faults.count(kind);
            return;
        }
        _ if len == Some(0) => return,
        FaultKind::Corrupt => BodyMode::Corrupt,
        FaultKind::CutBodyAfter { bytes } => {
            let n = len.map_or(*bytes, |l| (*bytes).min(l - 1));
            // Let hyper flush the head and the N bytes before the abort: sleep long enough
            // to send them even through the bandwidth cap.
            let rate = shared.options.bandwidth_bytes_per_sec.filter(|&r| r > 0);
            let send = rate.map_or(Duration::ZERO, |r| {
                Duration::from_secs_f64(n as f64 * 1.25 / r as f64)
            });
            BodyMode::Cut {
                remaining: n,
                flush_delay: Duration::from_millis(100) + send,
            }
        }
        FaultKind::StallBody {
            after_bytes,
            duration,
            abort,
        } => BodyMode::Stall {
            remaining: len.map_or(*after_bytes, |l| (*after_bytes).min(l - 1)),
            duration: *duration,
            abort: *abort,
        },
        _ => return,
    };
    shared.faults.count(kind);
    let body = std::mem::take(res.body_mut());
    let stream = faulty_body(body, mode);
    *res.body_mut() = Body::from(Box::pin(FaultStream(stream)) as s3s::stream::DynByteStream);
}

enum BodyMode {
    /// Pass `remaining` bytes, sleep `flush_delay`, then fail.
    Cut {
        remaining: u64,
        flush_delay: Duration,
    },
    /// Pass `remaining` bytes, sleep `duration`, then pass the rest or fail.
    Stall {
        remaining: u64,
        duration: Duration,
        abort: bool,
    },
    /// Flip the first byte of every chunk.
    Corrupt,
    /// Pass everything.
    Pass,
    /// Fail once, then end.
    Fail(&'static str),
    Done,
}

type ByteResult = Result<Bytes, StdError>;
type BoxStream = Pin<Box<dyn Stream<Item = ByteResult> + Send + Sync>>;

fn faulty_body(body: Body, mode: BodyMode) -> BoxStream {
    let state = (body, mode, None::<Bytes>);
    Box::pin(futures::stream::unfold(
        state,
        |(mut body, mut mode, mut held)| async move {
            loop {
                match mode {
                    BodyMode::Done => return None,
                    BodyMode::Fail(msg) => {
                        let err: StdError = Box::new(std::io::Error::other(msg));
                        return Some((Err(err), (body, BodyMode::Done, None)));
                    }
                    BodyMode::Cut {
                        remaining: 0,
                        flush_delay,
                    } => {
                        tokio::time::sleep(flush_delay).await;
                        mode = BodyMode::Fail("injected fault: cut_body_after");
                        continue;
                    }
                    BodyMode::Stall {
                        remaining: 0,
                        duration,
                        abort,
                    } => {
                        tokio::time::sleep(duration).await;
                        if abort {
                            mode = BodyMode::Fail("injected fault: stall_body (abort)");
                            continue;
                        }
                        mode = BodyMode::Pass;
                        if let Some(rest) = held.take() {
                            return Some((Ok(rest), (body, mode, None)));
                        }
                        continue;
                    }
                    _ => {}
                }
                let chunk = match body.next().await {
                    None => return None,
                    Some(Err(e)) => return Some((Err(e), (body, BodyMode::Done, None))),
                    Some(Ok(c)) if c.is_empty() => continue,
                    Some(Ok(c)) => c,
                };
                match &mut mode {
                    BodyMode::Cut { remaining, .. } | BodyMode::Stall { remaining, .. } => {
                        let n = usize::try_from(*remaining).unwrap_or(usize::MAX);
                        let mut chunk = chunk;
                        if chunk.len() > n {
                            let rest = chunk.split_off(n);
                            if matches!(mode, BodyMode::Stall { .. }) {
                                held = Some(rest);
                            }
                        }
                        if let BodyMode::Cut { remaining, .. } | BodyMode::Stall { remaining, .. } =
                            &mut mode
                        {
                            *remaining -= chunk.len() as u64;
                        }
                        return Some((Ok(chunk), (body, mode, held)));
                    }
                    BodyMode::Corrupt => {
                        let mut c = BytesMut::from(&chunk[..]);
                        c[0] ^= 0xff;
                        return Some((Ok(c.freeze()), (body, mode, held)));
                    }
                    _ => return Some((Ok(chunk), (body, mode, held))),
                }
            }
        },
    ))
}

/// A boxed stream as an `s3s` byte stream.
struct FaultStream(BoxStream);

impl Stream for FaultStream {
    type Item = ByteResult;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.0.as_mut().poll_next(cx)
    }
}

impl s3s::stream::ByteStream for FaultStream {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spec_round_trip() {
        let spec = "slow_down=0.01,cut_body_after=0.01:64k,stall_body=0.01:5s,corrupt=0.01,\
                    not_found=0.005@max=1@sticky@prefix=a/@key=x,seed=7,\
                    stall_body=1:250ms:10:abort@bucket=b";
        let plan = FaultPlan::parse(spec).unwrap();
        assert_eq!(plan.seed, 7);
        assert_eq!(plan.rules.len(), 6);
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

    #[test]
    fn decisions_are_seeded_and_per_attempt() {
        let t = |key: &str| Target {
            op: Op::GetObject,
            bucket: "b".into(),
            key: key.into(),
            range: None,
            range_start: None,
            if_match: false,
        };
        let rule = FaultRule::new(FaultKind::SlowDown, 0.3);
        let hits = |seed: u64, attempt: u32| -> Vec<bool> {
            (0..200)
                .map(|i| decide(seed, 0, &rule, &t(&format!("k{i}")), attempt))
                .collect()
        };
        assert_eq!(hits(1, 1), hits(1, 1));
        assert_ne!(hits(1, 1), hits(2, 1));
        assert_ne!(hits(1, 1), hits(1, 2));
        let n = hits(1, 1).iter().filter(|h| **h).count();
        assert!((30..90).contains(&n), "{n}");
        let sticky = rule.clone().sticky();
        for i in 0..50 {
            let k = t(&format!("k{i}"));
            assert_eq!(decide(1, 0, &sticky, &k, 1), decide(1, 0, &sticky, &k, 5));
        }
    }

    #[test]
    fn classifies_requests() {
        let req = |m: Method, uri: &str| {
            hyper::Request::builder()
                .method(m)
                .uri(uri)
                .header("range", "bytes=10-19")
                .body(())
                .unwrap()
        };
        let t = Target::of(&req(Method::GET, "/bkt/a%20b/c?x-id=GetObject")).unwrap();
        assert_eq!((t.op, &*t.bucket, &*t.key), (Op::GetObject, "bkt", "a b/c"));
        assert_eq!(t.range_start, Some(10));
        let t = Target::of(&req(Method::GET, "/bkt?list-type=2&prefix=a")).unwrap();
        assert_eq!(t.op, Op::ListV2);
        assert_eq!(
            Target::of(&req(Method::GET, "/bkt?prefix=a")).unwrap().op,
            Op::ListV1
        );
        assert!(Target::of(&req(Method::GET, "/bkt?location")).is_none());
        assert!(Target::of(&req(Method::GET, "/bkt/k?tagging")).is_none());
        assert!(Target::of(&req(Method::PUT, "/bkt/k")).is_none());
        assert!(Target::of(&req(Method::GET, "/")).is_none());
    }
}
