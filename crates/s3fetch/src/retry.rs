//! Retry policy and the adaptive limit on requests in flight.
//!
//! Requests are retried here rather than by the SDK: the SDK's retry budget is one token
//! bucket per process (500 tokens, 14 per retry), so a burst of failures at high concurrency
//! empties it and then nothing is retried; and the SDK never retries an error while reading a
//! body, which is where a download spends its time. Which errors are transient is decided by
//! [`Error::is_retryable`] alone.
//!
//! [`Throttle`] halves the requests in flight when S3 answers SlowDown / 503 and adds one back
//! per window of successes (additive increase, multiplicative decrease).

use std::future::Future;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Semaphore;

use crate::error::{Error, Result};

/// Default number of retries after the first attempt.
pub const DEFAULT_RETRIES: u32 = 5;

/// How failed requests are retried.
#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    /// Retries after the first attempt (0: no retries).
    pub retries: u32,
    /// First backoff ceiling; doubled each retry (full jitter: a random wait up to it).
    pub base_delay: Duration,
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
            idle_timeout: crate::options::DEFAULT_IDLE_TIMEOUT,
        }
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

    /// Runs `attempt` until it succeeds, fails for good, or retries run out. `stats` counts
    /// the retries; `throttle`, when given, hears of SlowDown answers and of the success.
    pub(crate) async fn run<T, F, Fut>(
        &self,
        stats: &RetryStats,
        throttle: Option<&Throttle>,
        mut attempt: F,
    ) -> Result<T>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T>>,
    {
        let mut retry = 0;
        loop {
            match attempt().await {
                Err(error) if error.is_retryable() && retry < self.retries => {
                    if let Some(throttle) = throttle {
                        throttle.failed(&error, stats);
                    }
                    stats.retries.fetch_add(1, Ordering::Relaxed);
                    tracing::debug!(%error, retry, "retrying");
                    tokio::time::sleep(self.backoff(retry)).await;
                    retry += 1;
                }
                outcome => {
                    if let (Some(throttle), Ok(_)) = (throttle, &outcome) {
                        throttle.succeeded();
                    }
                    return outcome;
                }
            }
        }
    }

    /// `future` bounded by the attempt timeout; running out is a retryable error.
    pub(crate) async fn timed<T>(
        &self,
        what: &str,
        future: impl Future<Output = Result<T>>,
    ) -> Result<T> {
        match tokio::time::timeout(self.attempt_timeout, future).await {
            Ok(outcome) => outcome,
            Err(_) => Err(Error::Timeout(format!(
                "{what}: no response within {:?}",
                self.attempt_timeout
            ))),
        }
    }
}

/// The run's client: `client` with the SDK's own retries off (they are made here) and its
/// response checksum validation off (made in [`crate::checksum`]), asking for checksums when
/// `verify` is on. Configured once per run, not per request: per-request overrides cost a
/// config merge on every call.
pub(crate) fn run_client(client: aws_sdk_s3::Client, verify: bool) -> aws_sdk_s3::Client {
    let mut config = client
        .config()
        .to_builder()
        .retry_config(aws_sdk_s3::config::retry::RetryConfig::disabled())
        .response_checksum_validation(aws_sdk_s3::config::ResponseChecksumValidation::WhenRequired);
    if verify {
        config = config.interceptor(crate::checksum::AskForChecksums);
    }
    aws_sdk_s3::Client::from_conf(config.build())
}

/// Counters of the run's retries and resumes.
#[derive(Debug, Default)]
pub(crate) struct RetryStats {
    pub retries: AtomicU64,
    pub resumes: AtomicU64,
    pub throttled: AtomicU64,
    /// Objects whose checksum was verified.
    pub verified: AtomicU64,
}

/// Additive-increase, multiplicative-decrease limit on requests in flight, applied to the
/// run's semaphore.
#[derive(Debug)]
pub(crate) struct Throttle {
    permits: Arc<Semaphore>,
    max: usize,
    limit: AtomicUsize,
    successes: AtomicUsize,
}

impl Throttle {
    pub fn new(permits: Arc<Semaphore>, max: usize) -> Self {
        Throttle {
            permits,
            max,
            limit: AtomicUsize::new(max),
            successes: AtomicUsize::new(0),
        }
    }

    /// A request failed with `error` and is retried: if the server asked to slow down, the
    /// limit is halved and `stats` counts it.
    pub fn failed(&self, error: &Error, stats: &RetryStats) {
        if error.is_throttling() {
            stats.throttled.fetch_add(1, Ordering::Relaxed);
            self.throttled();
        }
    }

    /// The server asked to slow down: halve the limit (at least 1).
    pub fn throttled(&self) {
        let limit = self.limit.load(Ordering::Relaxed);
        let target = (limit / 2).max(1);
        if target < limit
            && self
                .limit
                .compare_exchange(limit, target, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            tracing::debug!(
                from = limit,
                to = target,
                "throttled: fewer requests in flight"
            );
            // Take the permits out of circulation as they come back.
            let permits = self.permits.clone();
            let shrink = (limit - target) as u32;
            tokio::spawn(async move {
                if let Ok(taken) = permits.acquire_many_owned(shrink).await {
                    taken.forget();
                }
            });
        }
    }

    /// A request succeeded: after a window of `limit` successes, allow one more in flight.
    pub fn succeeded(&self) {
        let limit = self.limit.load(Ordering::Relaxed);
        if limit >= self.max {
            return;
        }
        if self.successes.fetch_add(1, Ordering::Relaxed) + 1 >= limit {
            self.successes.store(0, Ordering::Relaxed);
            if self
                .limit
                .compare_exchange(limit, limit + 1, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
            {
                self.permits.add_permits(1);
            }
        }
    }

    #[cfg(test)]
    pub fn limit(&self) -> usize {
        self.limit.load(Ordering::Relaxed)
    }
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
    }

    #[tokio::test]
    async fn throttle_halves_and_recovers() {
        let permits = Arc::new(Semaphore::new(8));
        let throttle = Throttle::new(permits.clone(), 8);
        throttle.throttled();
        assert_eq!(throttle.limit(), 4);
        tokio::task::yield_now().await;
        tokio::time::sleep(Duration::from_millis(10)).await;
        assert_eq!(permits.available_permits(), 4);
        throttle.throttled();
        throttle.throttled();
        throttle.throttled();
        assert_eq!(throttle.limit(), 1);
        for _ in 0..1 + 2 + 3 {
            throttle.succeeded();
        }
        assert_eq!(throttle.limit(), 4, "one more per window of successes");
    }

    #[tokio::test]
    async fn only_transient_errors_are_retried() {
        let policy = RetryPolicy {
            base_delay: Duration::from_millis(1),
            ..RetryPolicy::default()
        };
        let stats = RetryStats::default();
        let mut calls = 0;
        let outcome: Result<()> = policy
            .run(&stats, None, || {
                calls += 1;
                async { Err(Error::Timeout("slow".into())) }
            })
            .await;
        assert!(outcome.is_err());
        assert_eq!(calls, 6);
        assert_eq!(stats.retries.load(Ordering::Relaxed), 5);
        let mut calls = 0;
        let _: Result<()> = policy
            .run(&stats, None, || {
                calls += 1;
                async { Err(Error::Cancelled) }
            })
            .await;
        assert_eq!(calls, 1);
    }
}
