//! Which request a fault hits: requests are classified into a [`Target`] (operation,
//! bucket, key, range), attempts of the same target are numbered, and each rule decides
//! with a seeded hash of (seed, rule, target, attempt), so the same plan makes the same
//! decisions on every run (see the [module documentation](crate::faults)). [`FaultState`]
//! holds the plan in force, the attempt numbers and the counts of injected faults.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock};

use hyper::http::{header, Method};

use super::plan::{FaultKind, FaultPlan, FaultRule};

impl FaultKind {
    /// Whether this kind can hit a request like `t` at all (its operation and range).
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

impl FaultRule {
    /// Whether `t` passes the rule's kind and filters (before the dice are thrown).
    fn matches(&self, t: &Target) -> bool {
        if !self.kind.applies_to(t) {
            return false;
        }
        if self.bucket.as_ref().is_some_and(|b| *b != t.bucket) {
            return false;
        }
        if matches!(t.op, Op::ListV1 | Op::ListV2) {
            // A list request has no Range header: `ranged` rules never hit one.
            return !self.ranged;
        }
        if self.ranged && t.range.is_none() {
            return false;
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

    /// Whether the plan has any rule (a cheap check before classifying a request).
    pub(crate) fn is_active(&self) -> bool {
        self.active.load(Ordering::Relaxed)
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

    /// Counts one injected fault of `kind`.
    pub(crate) fn count(&self, kind: &FaultKind) {
        *self
            .counts
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .entry(kind.name().to_owned())
            .or_default() += 1;
    }

    /// The fault (if any) hitting this request; numbers the attempt.
    pub(crate) fn decide(&self, t: &Target) -> Option<FaultKind> {
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

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Op {
    GetObject,
    HeadObject,
    ListV2,
    ListV1,
}

impl Op {
    /// The operation's S3 name, as request counts know it.
    pub(crate) fn name(self) -> &'static str {
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
pub(crate) struct Target {
    pub(crate) op: Op,
    bucket: String,
    key: String,
    /// The Range header (objects) or the query string (lists).
    range: Option<String>,
    range_start: Option<u64>,
    /// The request has an `If-Match` header.
    pub(crate) if_match: bool,
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
    pub(crate) fn of<B>(req: &hyper::Request<B>) -> Option<Target> {
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

#[cfg(test)]
mod tests {
    use super::*;

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
    fn ranged_rules_hit_only_requests_with_a_range() {
        let get = |range: Option<&str>| Target {
            op: Op::GetObject,
            bucket: "b".into(),
            key: "k".into(),
            range: range.map(str::to_owned),
            range_start: range
                .and_then(|r| r.strip_prefix("bytes=")?.split('-').next()?.parse().ok()),
            if_match: false,
        };
        let ranged = FaultRule::new(FaultKind::InternalError, 1.0).ranged();
        assert!(ranged.matches(&get(Some("bytes=0-99"))));
        assert!(ranged.matches(&get(Some("bytes=100-199"))));
        assert!(!ranged.matches(&get(None)));
        let any = FaultRule::new(FaultKind::InternalError, 1.0);
        assert!(any.matches(&get(None)) && any.matches(&get(Some("bytes=0-99"))));
        let head = Target {
            op: Op::HeadObject,
            ..get(None)
        };
        assert!(!ranged.matches(&head));
        let list = Target {
            op: Op::ListV2,
            key: String::new(),
            range: Some("list-type=2".into()),
            ..get(None)
        };
        assert!(FaultRule::new(FaultKind::ListSlowDown, 1.0).matches(&list));
        assert!(!FaultRule::new(FaultKind::ListSlowDown, 1.0)
            .ranged()
            .matches(&list));
        // Through a plan: only the ranged attempt is hit.
        let state = FaultState::new(FaultPlan::new(1).with(ranged));
        assert_eq!(state.decide(&get(None)), None);
        assert_eq!(
            state.decide(&get(Some("bytes=0-99"))),
            Some(FaultKind::InternalError)
        );
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
