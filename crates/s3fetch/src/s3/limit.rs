//! The one request budget of a run: how many requests may be in flight, and how fast new ones
//! may start.
//!
//! Downloads (whole GETs, ranged parts, HEADs) and list requests take permits from two counts,
//! each held for the request's whole life ([`Budget`]). When S3 answers SlowDown, the pace
//! lowers the request *rate* ([`Pace`]). Each download in flight holds a connection and an
//! open file: the open-file limit is raised if need be, and the download count lowered to fit
//! it ([`within_open_file_limit`]). The bytes of bodies pass the bandwidth cap, if one is set
//! ([`Budget::received`]), and with a memory cap every body's bytes held take room under it
//! ([`Budget::reserve`]).

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::error::{Error, Result};
use crate::s3::bandwidth::Bandwidth;
use crate::s3::memory::{Lease, Memory, REQUEST_OVERHEAD};

/// File descriptors kept free for everything else the process has open.
const SPARE_FILES: u64 = 64;
/// How long the pace looks at answers before it decides: ~100 ms, a few round trips.
const WINDOW: Duration = Duration::from_millis(100);
/// A window closes once it has this many answers (or has lasted [`WINDOW_LONGEST`]).
const WINDOW_ANSWERS: u32 = 50;
const WINDOW_LONGEST: Duration = Duration::from_secs(1);
/// A window with at least this share of throttled answers (and at least [`THROTTLED_MIN`])
/// lowers the rate; any other raises it.
///
/// A store that throttles a few requests at random (2 %) is thus not slowed down: a window of
/// a handful of answers, two of them SlowDowns, proves nothing, and 5 of 50 at a 2 % rate
/// happen in 0.3 % of windows.
const THROTTLED_SHARE: f64 = 0.1;
const THROTTLED_MIN: u32 = 5;
const DECREASE: f64 = 0.7;
const INCREASE: f64 = 1.2;
/// The rate is never lowered below this (requests per second)...
const MIN_RATE: f64 = 2.0;
/// ...nor below this share of the best rate achieved in the run. A store that throttles a
/// share of requests whatever the rate (30 % of them, in a fault test) would otherwise drive
/// the rate down to nothing: 5,000 small objects took 574 s that way instead of ~20.
const FLOOR: f64 = 0.125;

/// Permits and pace for every request of a run.
///
/// Downloads (whole GETs, ranged parts, HEADs) take permits from one count
/// (`concurrent_downloads`), list requests from another (`list_concurrency`), so a burst of
/// downloads never starves the listing that feeds them. A permit is held for the request's
/// whole life, body included; it never leaves this module except as an opaque [`Permit`].
#[derive(Debug)]
pub(crate) struct Budget {
    transfers: Arc<Semaphore>,
    lists: Arc<Semaphore>,
    pace: Mutex<Pace>,
    /// The cap on the bytes of every body together (`max_bandwidth`).
    bandwidth: Option<Bandwidth>,
    /// The cap on the bytes of bodies held (`max_memory`) by downloads to files.
    memory: Option<Arc<Memory>>,
}

/// A request's place in the budget; dropping it frees the place.
#[derive(Debug)]
pub(crate) struct Permit(#[allow(dead_code)] OwnedSemaphorePermit);

impl Budget {
    /// A budget of `transfers` downloads and `lists` list requests in flight.
    pub(crate) fn new(transfers: usize, lists: usize) -> Self {
        Budget {
            transfers: Arc::new(Semaphore::new(transfers)),
            lists: Arc::new(Semaphore::new(lists)),
            pace: Mutex::new(Pace::new(Instant::now())),
            bandwidth: None,
            memory: None,
        }
    }

    /// The budget with the bytes of bodies held capped at `bytes`.
    pub(crate) fn with_memory(mut self, bytes: Option<u64>) -> Self {
        self.memory = bytes.map(Memory::new);
        self
    }

    /// Room for `bytes` of a body under the memory cap, with the request's own overhead
    /// ([`REQUEST_OVERHEAD`]), waited for (without a cap, at once).
    pub(crate) async fn reserve(&self, bytes: u64) -> Result<Lease> {
        match &self.memory {
            Some(memory) => memory.reserve_with(bytes, REQUEST_OVERHEAD).await,
            None => Ok(Lease::unbounded()),
        }
    }

    /// The most bytes of bodies held at once under the memory cap (0 without one).
    pub(crate) fn memory_peak(&self) -> u64 {
        self.memory.as_ref().map_or(0, |memory| memory.peak())
    }

    /// The budget with every body's bytes together capped at `bytes_per_sec`.
    pub(crate) fn with_bandwidth(mut self, bytes_per_sec: Option<u64>) -> Self {
        self.bandwidth = bytes_per_sec.map(Bandwidth::new);
        self
    }

    /// Pays `bytes` of a body received into the bandwidth cap, waiting as long as it says.
    pub(crate) async fn received(&self, bytes: usize) {
        if let Some(bandwidth) = &self.bandwidth {
            bandwidth.take(bytes).await;
        }
    }

    /// Waits for a download permit.
    pub(crate) async fn transfer(&self) -> Result<Permit> {
        self.transfers
            .clone()
            .acquire_owned()
            .await
            .map(Permit)
            .map_err(|_| Error::Cancelled)
    }

    /// A download permit if one is free now.
    pub(crate) fn try_transfer(&self) -> Option<Permit> {
        self.transfers.clone().try_acquire_owned().ok().map(Permit)
    }

    /// Waits for a list permit.
    pub(crate) async fn list(&self) -> Result<Permit> {
        self.lists
            .clone()
            .acquire_owned()
            .await
            .map(Permit)
            .map_err(|_| Error::Cancelled)
    }

    /// Waits until the pace lets one more request start; returns when it starts.
    pub(crate) async fn pace(&self) -> Instant {
        loop {
            let wait = self.lock().take(Instant::now());
            match wait {
                None => return Instant::now(),
                Some(wait) => tokio::time::sleep(wait).await,
            }
        }
    }

    /// A request sent at `sent` was answered; `throttled` if the answer was SlowDown.
    pub(crate) fn answered(&self, sent: Instant, throttled: bool) {
        self.lock().answered(Instant::now(), sent, throttled);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Pace> {
        self.pace.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The adaptive rate: a token bucket whose rate moves per window.
///
/// S3 answers SlowDown (503) when a prefix gets more requests per second than it can take.
/// The answer is to lower the *rate*, not to stop: the pace starts unlimited, and at the end
/// of each window ([`WINDOW`], and at least [`WINDOW_ANSWERS`] answers unless a second has
/// passed) looks at the share of requests throttled in it. At least [`THROTTLED_SHARE`] of
/// them (and [`THROTTLED_MIN`]), and the rate drops to 0.7x what was achieved in the window
/// ([`DECREASE`]; once per window, however many SlowDowns it held); any other window raises
/// it by a fifth ([`INCREASE`]), until the limit no longer binds and is lifted. A store that
/// is really overloaded is backed off within a window and recovered within a second.
#[derive(Debug)]
struct Pace {
    /// Requests per second allowed; `None`: unlimited.
    rate: Option<f64>,
    tokens: f64,
    refilled: Instant,
    window: Instant,
    answered: u32,
    throttled: u32,
    /// Answers to requests sent before the rate was last lowered say nothing about the new
    /// rate: they left at the old one.
    lowered: Option<Instant>,
    /// The highest rate a window achieved: the rate is never lowered below [`FLOOR`] of it.
    peak: f64,
}

impl Pace {
    fn new(now: Instant) -> Self {
        Pace {
            rate: None,
            tokens: 0.0,
            refilled: now,
            window: now,
            answered: 0,
            throttled: 0,
            lowered: None,
            peak: 0.0,
        }
    }

    /// Takes a token, or says how long to wait for one.
    fn take(&mut self, now: Instant) -> Option<Duration> {
        let rate = self.rate?;
        // A burst of at most a tenth of a second's worth.
        let capacity = (rate / 10.0).max(1.0);
        let elapsed = now.saturating_duration_since(self.refilled).as_secs_f64();
        self.tokens = (self.tokens + elapsed * rate).min(capacity);
        self.refilled = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            None
        } else {
            Some(Duration::from_secs_f64((1.0 - self.tokens) / rate))
        }
    }

    fn answered(&mut self, now: Instant, sent: Instant, throttled: bool) {
        // Only answers to requests sent at the current rate say something about it.
        if self.lowered.is_some_and(|lowered| sent < lowered) {
            return;
        }
        self.answered += 1;
        self.throttled += u32::from(throttled);
        let elapsed = now.saturating_duration_since(self.window);
        if elapsed < WINDOW || (self.answered < WINDOW_ANSWERS && elapsed < WINDOW_LONGEST) {
            return;
        }
        let achieved = f64::from(self.answered) / elapsed.as_secs_f64();
        let share = f64::from(self.throttled) / f64::from(self.answered);
        self.peak = self.peak.max(achieved);
        if self.throttled >= THROTTLED_MIN && share >= THROTTLED_SHARE {
            let rate = (achieved * DECREASE).max(self.peak * FLOOR).max(MIN_RATE);
            tracing::debug!(rate, share, "throttled: lowering the request rate");
            self.rate = Some(rate);
            self.tokens = 0.0;
            self.refilled = now;
            self.lowered = Some(now);
        } else if let Some(rate) = self.rate {
            let raised = rate * INCREASE;
            // Lifted once it no longer binds: the requests achieved less than allowed.
            self.rate = (raised < 2.0 * achieved).then_some(raised);
        }
        self.window = now;
        self.answered = 0;
        self.throttled = 0;
    }
}

/// `requested`, lowered if need be so that every request can hold a connection and an open
/// file within the open-file limit (`ulimit -n`), which is raised first if that helps (up to
/// the hard limit, never lowered).
pub(crate) fn within_open_file_limit(requested: usize) -> usize {
    #[cfg(unix)]
    {
        use rustix::process::{getrlimit, setrlimit, Resource};
        let needed = (requested as u64)
            .saturating_mul(2)
            .saturating_add(SPARE_FILES);
        let mut limit = getrlimit(Resource::Nofile);
        let Some(current) = limit.current else {
            return requested; // unlimited
        };
        if current < needed {
            let raised = limit.maximum.map_or(needed, |max| max.min(needed));
            if raised > current {
                limit.current = Some(raised);
                if setrlimit(Resource::Nofile, limit).is_ok() {
                    tracing::debug!(from = current, to = raised, "raised the open-file limit");
                    return fitting(requested, raised);
                }
            }
        }
        fitting(requested, current)
    }
    #[cfg(not(unix))]
    requested
}

#[cfg(unix)]
fn fitting(requested: usize, limit: u64) -> usize {
    let fits = usize::try_from(limit.saturating_sub(SPARE_FILES) / 2)
        .unwrap_or(usize::MAX)
        .max(1);
    if requested > fits {
        tracing::warn!(
            requested,
            fits,
            limit,
            "fewer downloads at once than asked: the open-file limit (ulimit -n) is too low"
        );
        return fits;
    }
    requested
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feeds `n` answers spread over `over`, `throttled_every`-th of them throttled.
    fn feed(pace: &mut Pace, start: Instant, over: Duration, n: u32, throttled_every: u32) {
        for i in 0..n {
            let now = start + over.mul_f64(f64::from(i + 1) / f64::from(n));
            pace.answered(
                now,
                now - Duration::from_millis(20),
                throttled_every > 0 && i % throttled_every == 0,
            );
        }
    }

    #[test]
    fn a_few_random_slowdowns_do_not_slow_down() {
        let t0 = Instant::now();
        let mut pace = Pace::new(t0);
        // 3,000 answers a second for a second, 2 % of them SlowDown.
        for w in 0..10 {
            feed(&mut pace, t0 + WINDOW * w, WINDOW, 300, 50);
        }
        assert_eq!(pace.rate, None);
    }

    #[test]
    fn slowdowns_among_few_answers_do_not_slow_down() {
        let t0 = Instant::now();
        let mut pace = Pace::new(t0);
        // Large parts: 8 answers a window, 2 of the first 8 SlowDown, then 2 % of them.
        feed(&mut pace, t0, WINDOW, 8, 4);
        for w in 1..20 {
            feed(
                &mut pace,
                t0 + WINDOW * w,
                WINDOW,
                8,
                if w % 6 == 0 { 8 } else { 0 },
            );
        }
        assert_eq!(pace.rate, None);
        // A lowered rate comes back under the same 2 %: it is not ratcheted down.
        pace.rate = Some(1000.0);
        let t1 = t0 + WINDOW * 20;
        for w in 0..20 {
            feed(&mut pace, t1 + WINDOW * w, WINDOW, 300, 50);
        }
        assert_eq!(pace.rate, None, "lifted");
    }

    #[test]
    fn an_overloaded_store_lowers_the_rate_once_per_window_then_recovers() {
        let t0 = Instant::now();
        let mut pace = Pace::new(t0);
        // A window where a third of 300 answers are SlowDown: one decrease, to 0.7 x achieved.
        feed(&mut pace, t0, WINDOW, 300, 3);
        let lowered = pace.rate.expect("limited");
        assert!((lowered - 0.7 * 3000.0).abs() < 50.0, "{lowered}");
        // Late answers of requests sent before the decrease do not lower it again.
        let t1 = t0 + WINDOW;
        for i in 0..300 {
            let now = t1 + WINDOW.mul_f64(f64::from(i + 1) / 300.0);
            pace.answered(now, t0, true);
        }
        assert_eq!(pace.rate, Some(lowered));
        // Clean windows raise it by a fifth each, until it is lifted.
        let mut t = t1 + WINDOW;
        let mut windows = 0;
        while pace.rate.is_some() {
            feed(&mut pace, t, WINDOW, 300, 0);
            t += WINDOW;
            windows += 1;
            assert!(windows < 20, "recovers within two seconds");
        }
    }

    #[test]
    fn throttling_whatever_the_rate_keeps_an_eighth_of_the_best_rate() {
        let t0 = Instant::now();
        let mut pace = Pace::new(t0);
        feed(&mut pace, t0, WINDOW, 300, 0); // 3,000 a second
                                             // Then a third of the answers are SlowDowns, however slowly the requests go.
        let mut t = t0 + WINDOW;
        for _ in 0..50 {
            let n = (pace.rate.unwrap_or(3000.0) * WINDOW.as_secs_f64()).max(60.0) as u32;
            feed(&mut pace, t, WINDOW, n, 3);
            t += WINDOW;
        }
        let rate = pace.rate.expect("limited");
        assert!(rate >= 3000.0 * FLOOR * 0.99, "{rate}");
    }

    #[test]
    fn tokens_pace_requests_at_the_rate() {
        let t0 = Instant::now();
        let mut pace = Pace::new(t0);
        assert_eq!(pace.take(t0), None, "unlimited");
        pace.rate = Some(100.0);
        pace.tokens = 0.0;
        pace.refilled = t0;
        let wait = pace.take(t0).expect("must wait");
        assert!((wait.as_secs_f64() - 0.01).abs() < 1e-6);
        // After 50 ms, 5 tokens (the burst is capped at a tenth of a second's worth: 10).
        let t1 = t0 + Duration::from_millis(50);
        let taken = (0..10).filter(|_| pace.take(t1).is_none()).count();
        assert_eq!(taken, 5);
    }

    #[tokio::test]
    async fn permits_are_counted_per_kind() {
        let budget = Budget::new(2, 1);
        let a = budget.transfer().await.unwrap();
        let _b = budget.try_transfer().expect("a second one");
        assert!(budget.try_transfer().is_none());
        let _list = budget.list().await.expect("lists have their own count");
        drop(a);
        assert!(budget.try_transfer().is_some());
    }
}
