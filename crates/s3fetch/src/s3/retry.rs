//! The one retry loop, for every request: list pages, HEADs, whole GETs and ranged parts.
//!
//! An [`Attempt`] carries its state from one try to the next: a body that broke off continues
//! from its last byte. Errors are classified once ([`Error::is_retryable`],
//! [`Error::is_throttling`]). [`RetryPolicy::run`] says when to give up and how long to wait
//! between tries; [`RetryPolicy::next_chunk`] when a silent body is abandoned and resumed.
//! Requests are retried here rather than by the SDK (why: [`RetryPolicy`]).

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::error::{Error, Result};

/// Default time a download may receive nothing before it is abandoned and resumed.
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(30);

/// Default number of retries after the first attempt, while nothing else succeeds.
pub const DEFAULT_RETRIES: u32 = 5;
/// While the run makes progress, a request is tried up to this many times `retries + 1`: a
/// store that fails half of all requests at random still delivers every object.
const PERSISTENCE: u32 = 4;
/// Bodies whose checksum mismatches, in a row, before the object is given up.
const CHECKSUM_ATTEMPTS: u32 = 3;
/// The immediate retry waits up to this (jitter, so that retries do not arrive in lockstep).
const QUICK_RETRY: Duration = Duration::from_millis(10);

/// Silence after which a body is abandoned if the rest of the run is moving...
///
/// While other requests complete, the store is answering and this connection is stuck, and
/// waiting for it holds a place in the budget: a store that stalls 2 % of bodies for 3 s
/// otherwise keeps half of 64 places waiting.
const STALL_GRACE: Duration = Duration::from_secs(1);
/// ...as shown by this many requests completed during it.
const STALL_PEERS: u64 = 1;
/// A body that spoke again after a pause shows how long the store's pauses are: the grace is
/// at least this many times the longest one seen...
///
/// A store that is merely slow (reading cold data from its disks, every body in bursts with
/// pauses between) must not look stuck: a body that speaks again after a pause of `p` raises
/// the grace to `STALL_MARGIN` × `p` for [`SLOW_MEMORY`]. A guard against a case seen once: a
/// `large` run on a loaded machine took 18.8 s instead of 2.4 s, parts abandoned during
/// pauses and sent again.
const STALL_MARGIN: u32 = 3;
/// ...within this long (pauses shorter than [`SLOW_PAUSE`] are not worth recording).
const SLOW_MEMORY: Duration = Duration::from_secs(10);
const SLOW_PAUSE: Duration = Duration::from_millis(100);

/// How failed requests are retried.
///
/// Requests are retried here rather than by the SDK. The SDK's retry budget is one token
/// bucket per process (500 tokens, 14 per retry), so a burst of failures at high concurrency
/// empties it and then nothing is retried. And the SDK never retries an error while reading a
/// body, which is where a download spends its time.
#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    /// Retries after the first attempt, while nothing else in the run succeeds (0: none).
    pub retries: u32,
    /// First backoff ceiling; doubled each retry (full jitter: a random wait up to it).
    pub base_delay: Duration,
    /// Largest backoff ceiling: the doubling of `base_delay` stops here. Default: 10 s.
    pub max_delay: Duration,
    /// Longest wait for a response's head.
    pub attempt_timeout: Duration,
    /// Longest wait for the next bytes of a body before the request is abandoned (and resumed).
    pub idle_timeout: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            retries: DEFAULT_RETRIES,
            base_delay: Duration::from_millis(100),
            max_delay: Duration::from_secs(10),
            attempt_timeout: Duration::from_secs(60),
            idle_timeout: DEFAULT_IDLE_TIMEOUT,
        }
    }
}

/// One try of a request; called again after a retryable failure, with what it kept.
pub(crate) trait Attempt: Send {
    type Output: Send;

    fn attempt(&mut self) -> impl Future<Output = Result<Self::Output>> + Send;

    /// Bytes received so far over all tries: a failure after which this grew made progress.
    fn progress(&self) -> u64 {
        0
    }

    /// Whether to try again after `error`. An attempt made of requests that retry on their
    /// own (an object's parts) retries only what they cannot: a checksum mismatch.
    fn retries(&self, error: &Error) -> bool {
        error.is_retryable()
    }
}

/// A closure is an attempt that keeps nothing between tries.
impl<T, F, Fut> Attempt for F
where
    T: Send,
    F: FnMut() -> Fut + Send,
    Fut: Future<Output = Result<T>> + Send,
{
    type Output = T;

    fn attempt(&mut self) -> impl Future<Output = Result<T>> + Send {
        self()
    }
}

impl RetryPolicy {
    /// The wait before retry number `retry` (0-based): uniform in `0..=min(max, base * 2^retry)`.
    pub fn backoff(&self, retry: u32) -> Duration {
        let ceiling = self
            .base_delay
            .saturating_mul(1u32 << retry.min(20))
            .min(self.max_delay);
        ceiling.mul_f64(fastrand::f64())
    }

    /// The wait after `failures` failures in a row (at least 1).
    ///
    /// The first retry after a reset, a 5xx or a broken body is immediate (a new connection;
    /// up to [`QUICK_RETRY`]); later ones, and every retry after SlowDown, wait a jittered,
    /// doubling delay ([`RetryPolicy::backoff`]).
    fn delay(&self, failures: u32, throttled: bool) -> Duration {
        match (throttled, failures) {
            (false, 0 | 1) => QUICK_RETRY.mul_f64(fastrand::f64()),
            (false, n) => self.backoff(n - 2),
            (true, n) => self.backoff(n.saturating_sub(1)),
        }
    }

    /// Runs `attempt` until it succeeds or it is time to give up; `stats` counts retries,
    /// resumes and SlowDowns, and hears of every success.
    ///
    /// It gives up:
    /// - at once, for an answer that cannot change (404, 403, an ETag that changed...);
    /// - after [`CHECKSUM_ATTEMPTS`] mismatching bodies in a row;
    /// - after `retries + 1` failures in a row without progress of this request, **if nothing
    ///   else in the run succeeded meanwhile** (the store is down: say so quickly);
    /// - else, while the run makes progress, only after [`PERSISTENCE`] times as many.
    ///
    /// A failure that made progress (bytes arrived before the body broke off) starts the count
    /// again. The waits between tries: [`RetryPolicy::delay`].
    pub(crate) async fn run<A: Attempt>(
        &self,
        stats: &RetryStats,
        attempt: &mut A,
    ) -> Result<A::Output> {
        let mut failures = 0;
        let mut mismatches = 0;
        let mut streak = stats.now();
        loop {
            let before = attempt.progress();
            let outcome = attempt.attempt().await;
            let throttled = matches!(&outcome, Err(e) if e.is_throttling());
            let error = match outcome {
                Ok(output) => {
                    stats.progressed();
                    stats.completed.fetch_add(1, Ordering::Relaxed);
                    return Ok(output);
                }
                Err(error) => error,
            };
            if throttled {
                stats.throttled.fetch_add(1, Ordering::Relaxed);
            }
            if !attempt.retries(&error) {
                return Err(error);
            }
            if matches!(error, Error::Checksum { .. }) {
                mismatches += 1;
                if mismatches >= CHECKSUM_ATTEMPTS {
                    return Err(error);
                }
            }
            if attempt.progress() > before {
                failures = 0;
                streak = stats.now();
                stats.resumes.fetch_add(1, Ordering::Relaxed);
            } else {
                failures += 1;
                let patient = failures <= self.retries.saturating_mul(PERSISTENCE);
                if failures > self.retries && !(patient && stats.progressed_since(streak)) {
                    return Err(error);
                }
                stats.retries.fetch_add(1, Ordering::Relaxed);
            }
            tracing::debug!(%error, failures, "retrying");
            tokio::time::sleep(self.delay(failures, throttled)).await;
        }
    }

    /// The next item of `body`, or, as `Err`, how long it was silent when it was given up.
    ///
    /// A silent body is abandoned (and resumed) after the idle timeout, or sooner, after the
    /// stall grace ([`STALL_GRACE`], or more after long pauses of other bodies:
    /// [`STALL_MARGIN`]) if [`STALL_PEERS`] other requests of the run completed meanwhile.
    pub(crate) async fn next_chunk<S>(
        &self,
        stats: &RetryStats,
        body: &mut S,
    ) -> std::result::Result<Option<S::Item>, Duration>
    where
        S: futures::Stream + Unpin,
    {
        use futures::StreamExt;
        let (start, completed) = (tokio::time::Instant::now(), stats.completed());
        let mut next = body.next();
        let mut wait = stats.stall_grace().min(self.idle_timeout);
        loop {
            if let Ok(item) = tokio::time::timeout(wait, &mut next).await {
                let silent = start.elapsed();
                if silent >= SLOW_PAUSE {
                    stats.paused(silent);
                }
                return Ok(item);
            }
            let silent = start.elapsed();
            let moving = stats.completed().saturating_sub(completed) >= STALL_PEERS;
            if silent >= self.idle_timeout || (silent >= stats.stall_grace() && moving) {
                return Err(silent);
            }
            wait = (STALL_GRACE / 4).min(self.idle_timeout.saturating_sub(silent));
        }
    }

    /// `future` (a `request` about `key`) bounded by the attempt timeout; running out is a
    /// retryable error.
    pub(crate) async fn timed<T>(
        &self,
        key: Option<&str>,
        request: &str,
        future: impl Future<Output = Result<T>>,
    ) -> Result<T> {
        match tokio::time::timeout(self.attempt_timeout, future).await {
            Ok(outcome) => outcome,
            Err(_) => Err(Error::Timeout {
                key: key.map(str::to_owned),
                reason: format!("{request}: no response within {:?}", self.attempt_timeout),
            }),
        }
    }
}

/// Counters of the run's retries and resumes, and when anything last succeeded.
#[derive(Debug)]
pub(crate) struct RetryStats {
    pub retries: AtomicU64,
    pub resumes: AtomicU64,
    pub throttled: AtomicU64,
    /// Objects whose checksum was verified.
    pub verified: AtomicU64,
    /// Bytes of partial files left by earlier runs that were taken instead of fetched.
    pub resumed_bytes: AtomicU64,
    /// Requests that succeeded.
    completed: AtomicU64,
    started: Instant,
    /// One more than the microseconds from `started` to the last success or progress of any
    /// request; 0: none yet.
    last_progress: AtomicU64,
    /// The longest pause after which a body spoke again (microseconds), and when (from
    /// `started`, microseconds).
    slow_pause: AtomicU64,
    slow_pause_at: AtomicU64,
}

impl Default for RetryStats {
    fn default() -> Self {
        RetryStats {
            retries: AtomicU64::new(0),
            resumes: AtomicU64::new(0),
            resumed_bytes: AtomicU64::new(0),
            throttled: AtomicU64::new(0),
            verified: AtomicU64::new(0),
            completed: AtomicU64::new(0),
            started: Instant::now(),
            last_progress: AtomicU64::new(0),
            slow_pause: AtomicU64::new(0),
            slow_pause_at: AtomicU64::new(0),
        }
    }
}

impl RetryStats {
    /// Microseconds since the run started.
    fn now(&self) -> u64 {
        u64::try_from(self.started.elapsed().as_micros()).unwrap_or(u64::MAX)
    }

    /// Some request succeeded, or a body received bytes.
    pub(crate) fn progressed(&self) {
        self.last_progress
            .fetch_max(self.now().saturating_add(1), Ordering::Relaxed);
    }

    /// A body spoke again after `pause`.
    fn paused(&self, pause: Duration) {
        let (now, pause) = (self.now(), micros(pause));
        // Racing updates may keep the smaller of two pauses seen at once: harmless.
        if pause > self.recent_pause(now) {
            self.slow_pause.store(pause, Ordering::Relaxed);
            self.slow_pause_at.store(now, Ordering::Relaxed);
        }
    }

    /// The longest pause seen within [`SLOW_MEMORY`] (microseconds), 0 if none.
    fn recent_pause(&self, now: u64) -> u64 {
        let at = self.slow_pause_at.load(Ordering::Relaxed);
        if now.saturating_sub(at) > micros(SLOW_MEMORY) {
            return 0;
        }
        self.slow_pause.load(Ordering::Relaxed)
    }

    /// How long a body may be silent, while others complete, before it counts as stuck.
    fn stall_grace(&self) -> Duration {
        let pause = Duration::from_micros(self.recent_pause(self.now()));
        STALL_GRACE.max(pause.saturating_mul(STALL_MARGIN))
    }

    fn completed(&self) -> u64 {
        self.completed.load(Ordering::Relaxed)
    }

    /// Whether anything progressed at or after `since` (from [`RetryStats::now`]).
    fn progressed_since(&self, since: u64) -> bool {
        self.last_progress.load(Ordering::Relaxed) > since
    }
}

fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_is_jittered_and_capped() {
        let policy = RetryPolicy::default();
        for retry in 0..30 {
            let ceiling = Duration::from_millis(100)
                .saturating_mul(1 << retry.min(20))
                .min(Duration::from_secs(10));
            assert!(policy.backoff(retry) <= ceiling);
        }
        let waits: std::collections::HashSet<_> = (0..20).map(|_| policy.backoff(5)).collect();
        assert!(waits.len() > 1, "jittered");
        assert!(
            policy.delay(1, false) <= QUICK_RETRY,
            "the first retry is quick"
        );
        assert!(policy.delay(2, false) <= Duration::from_millis(100));
    }

    fn policy() -> RetryPolicy {
        RetryPolicy {
            base_delay: Duration::from_millis(1),
            max_delay: Duration::from_millis(1),
            ..RetryPolicy::default()
        }
    }

    fn transient() -> Error {
        Error::Timeout {
            key: None,
            reason: "slow".into(),
        }
    }

    #[tokio::test]
    async fn gives_up_quickly_when_nothing_succeeds() {
        let stats = RetryStats::default();
        let mut calls = 0;
        let outcome: Result<()> = policy()
            .run(&stats, &mut || {
                calls += 1;
                async { Err(transient()) }
            })
            .await;
        assert!(outcome.is_err());
        assert_eq!(calls, 6, "the first try and 5 retries");
        assert_eq!(stats.retries.load(Ordering::Relaxed), 5);
        let mut calls = 0;
        let _: Result<()> = policy()
            .run(&stats, &mut || {
                calls += 1;
                async { Err(Error::Cancelled) }
            })
            .await;
        assert_eq!(calls, 1, "not retryable");
    }

    #[tokio::test]
    async fn persists_while_other_requests_succeed() {
        let stats = RetryStats::default();
        let mut calls = 0;
        // Every try fails, but the run makes progress meanwhile (another request succeeds).
        let outcome: Result<()> = policy()
            .run(&stats, &mut || {
                calls += 1;
                stats.progressed();
                async { Err(transient()) }
            })
            .await;
        assert!(outcome.is_err(), "still bounded");
        assert_eq!(
            calls,
            1 + 5 * PERSISTENCE,
            "tried {PERSISTENCE} times as long"
        );
        // With no retries at all, none.
        let mut calls = 0;
        let none = RetryPolicy {
            retries: 0,
            ..policy()
        };
        let _: Result<()> = none
            .run(&stats, &mut || {
                calls += 1;
                stats.progressed();
                async { Err(transient()) }
            })
            .await;
        assert_eq!(calls, 1);
    }

    /// Fails every other try, having received one more byte each time.
    struct Resuming {
        received: u64,
        tries: u32,
    }

    impl Attempt for Resuming {
        type Output = u64;
        async fn attempt(&mut self) -> Result<u64> {
            self.tries += 1;
            self.received += 1;
            if self.received < 20 {
                Err(transient())
            } else {
                Ok(self.received)
            }
        }
        fn progress(&self) -> u64 {
            self.received
        }
    }

    #[tokio::test]
    async fn progress_starts_the_count_again() {
        let stats = RetryStats::default();
        let mut resuming = Resuming {
            received: 0,
            tries: 0,
        };
        // 19 failures in a row, each after progress: far beyond 5 retries, and it succeeds.
        let outcome = policy().run(&stats, &mut resuming).await;
        assert_eq!(outcome.unwrap(), 20);
        assert_eq!(stats.resumes.load(Ordering::Relaxed), 19);
        assert_eq!(stats.retries.load(Ordering::Relaxed), 0);
    }

    #[tokio::test]
    async fn a_checksum_that_keeps_mismatching_is_given_up() {
        let stats = RetryStats::default();
        let mut calls = 0;
        let outcome: Result<()> = policy()
            .run(&stats, &mut || {
                calls += 1;
                stats.progressed();
                async {
                    Err(Error::Checksum {
                        bucket: "b".into(),
                        key: "k".into(),
                        reason: "mismatch".into(),
                    })
                }
            })
            .await;
        assert!(matches!(outcome, Err(Error::Checksum { .. })));
        assert_eq!(calls, CHECKSUM_ATTEMPTS);
    }

    /// The default idle timeout, which a silent body waits out when nothing else completes.
    fn patient() -> RetryPolicy {
        RetryPolicy {
            idle_timeout: Duration::from_secs(30),
            ..policy()
        }
    }

    /// A body that never yields.
    fn silent() -> futures::stream::Pending<Result<bytes::Bytes>> {
        futures::stream::pending()
    }

    #[tokio::test(start_paused = true)]
    async fn a_silent_body_waits_the_idle_timeout_while_nothing_else_completes() {
        let (stats, policy) = (RetryStats::default(), patient());
        let start = tokio::time::Instant::now();
        let silent_for = policy.next_chunk(&stats, &mut silent()).await.unwrap_err();
        assert_eq!(silent_for, Duration::from_secs(30));
        assert_eq!(start.elapsed(), Duration::from_secs(30));
    }

    #[tokio::test(start_paused = true)]
    async fn a_silent_body_is_given_up_early_while_other_requests_complete() {
        let (stats, policy) = (RetryStats::default(), patient());
        let start = tokio::time::Instant::now();
        let others = async {
            tokio::time::sleep(Duration::from_millis(300)).await;
            let _: Result<()> = policy.run(&stats, &mut || async { Ok(()) }).await;
            std::future::pending::<()>().await
        };
        let mut body = silent();
        let silent_for = tokio::select! {
            outcome = policy.next_chunk(&stats, &mut body) => outcome.unwrap_err(),
            _ = others => unreachable!(),
        };
        assert!(
            silent_for >= STALL_GRACE && silent_for < 2 * STALL_GRACE,
            "{silent_for:?}"
        );
        assert!(start.elapsed() < 2 * STALL_GRACE);
        // A body that speaks is passed on.
        let mut talking = futures::stream::iter([Ok::<_, Error>(bytes::Bytes::from("x"))]);
        assert!(matches!(
            policy.next_chunk(&stats, &mut talking).await,
            Ok(Some(Ok(_)))
        ));
    }

    #[tokio::test(start_paused = true)]
    async fn after_a_long_pause_of_a_body_that_went_on_others_get_longer() {
        let (stats, policy) = (RetryStats::default(), patient());
        // A slow store: this body speaks after 900 ms of silence.
        let mut slow = Box::pin(futures::stream::once(async {
            tokio::time::sleep(Duration::from_millis(900)).await;
            Ok::<_, Error>(bytes::Bytes::from("x"))
        }));
        assert!(policy.next_chunk(&stats, &mut slow).await.is_ok());
        assert_eq!(stats.stall_grace(), Duration::from_millis(2_700));
        // Now a silent body, while others complete, is given up after 2.7 s, not 1 s.
        let others = async {
            loop {
                tokio::time::sleep(Duration::from_millis(300)).await;
                let _: Result<()> = policy.run(&stats, &mut || async { Ok(()) }).await;
            }
        };
        let mut body = silent();
        let silent_for = tokio::select! {
            outcome = policy.next_chunk(&stats, &mut body) => outcome.unwrap_err(),
            _ = others => unreachable!(),
        };
        assert!(
            silent_for >= Duration::from_millis(2_700) && silent_for < Duration::from_secs(3),
            "{silent_for:?}"
        );
        // Short pauses leave the grace as it was.
        let fresh = RetryStats::default();
        fresh.paused(Duration::from_millis(200));
        assert_eq!(fresh.stall_grace(), STALL_GRACE);
    }
}
