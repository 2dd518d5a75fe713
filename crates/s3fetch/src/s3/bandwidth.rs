//! The run's bandwidth cap (`max_bandwidth`): one token bucket that every response body's
//! bytes pass through, whatever the GET path, so that all bodies together keep to the rate.
//! A reader pays for each chunk as it arrives; when the bucket runs into debt it sleeps until
//! the debt is paid (a timer, no polling, no thread), and later readers queue behind it. The
//! connections it does not read meanwhile fill up and the server pauses: TCP does the rest.

use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

/// Bytes the bucket holds at most: this long at the rate. An idle run may send this much at
/// once, so the rate holds over any window much longer (1 % over 10 seconds).
const BURST: Duration = Duration::from_millis(100);
/// ...and at least this many bytes, so that a low rate still passes whole chunks.
const MIN_BURST: f64 = 16.0 * 1024.0;

/// A token bucket of `rate` bytes per second, shared by every body of a run.
#[derive(Debug)]
pub(crate) struct Bandwidth {
    /// Bytes per second.
    rate: f64,
    capacity: f64,
    state: Mutex<State>,
}

#[derive(Debug)]
struct State {
    /// Bytes that may pass now; negative: owed, to be waited for.
    tokens: f64,
    at: Instant,
}

impl Bandwidth {
    /// A bucket of `bytes_per_sec` (at least 1), full.
    pub(crate) fn new(bytes_per_sec: u64) -> Self {
        let rate = bytes_per_sec.max(1) as f64;
        let capacity = (rate * BURST.as_secs_f64()).max(MIN_BURST);
        Bandwidth {
            rate,
            capacity,
            state: Mutex::new(State {
                tokens: capacity,
                at: Instant::now(),
            }),
        }
    }

    /// Pays for `bytes` received: returns at once while the bucket holds them, else once the
    /// rate has made up for them (and for what earlier readers owe).
    pub(crate) async fn take(&self, bytes: usize) {
        let wait = {
            let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
            let now = Instant::now();
            let refill = now.duration_since(state.at).as_secs_f64() * self.rate;
            state.tokens = (state.tokens + refill).min(self.capacity) - bytes as f64;
            state.at = now;
            (state.tokens < 0.0).then(|| Duration::from_secs_f64(-state.tokens / self.rate))
        };
        if let Some(wait) = wait {
            tokio::time::sleep(wait).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::Arc;

    use super::*;

    /// Many readers at once, in chunks of several sizes, over 10 seconds of (paused) time:
    /// the bytes that passed stay within 2 % of the rate (the first window has the full
    /// bucket's 1 % on top), whatever the window's start.
    #[tokio::test(start_paused = true)]
    async fn readers_together_keep_to_the_rate() {
        const RATE: u64 = 20_000_000;
        let bandwidth = Arc::new(Bandwidth::new(RATE));
        let passed = Arc::new(AtomicU64::new(0));
        let start = Instant::now();
        for reader in 0..32usize {
            let (bandwidth, passed) = (bandwidth.clone(), passed.clone());
            tokio::spawn(async move {
                let chunk = 1024 * (1 + reader % 64);
                loop {
                    bandwidth.take(chunk).await;
                    passed.fetch_add(chunk as u64, Ordering::Relaxed);
                }
            });
        }
        let mut samples = Vec::new();
        for _ in 0..=200 {
            samples.push(passed.load(Ordering::Relaxed));
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        // Every 10-second window (100 samples apart).
        for (first, last) in samples.iter().zip(&samples[100..]) {
            let rate = (last - first) as f64 / 10.0;
            assert!(
                (rate / RATE as f64 - 1.0).abs() < 0.02,
                "{rate} bytes/s over 10 s, not {RATE}"
            );
        }
        assert!(start.elapsed() >= Duration::from_secs(20));
    }

    /// A chunk larger than the bucket passes, and the next reader waits for it.
    #[tokio::test(start_paused = true)]
    async fn a_large_chunk_is_paid_by_waiting() {
        let bandwidth = Bandwidth::new(100_000);
        let start = Instant::now();
        bandwidth.take(16 * 1024).await;
        assert_eq!(start.elapsed(), Duration::ZERO, "the burst passes at once");
        bandwidth.take(200_000).await;
        let paid = start.elapsed();
        assert!(
            paid >= Duration::from_secs(2) && paid <= Duration::from_millis(2001),
            "{paid:?}"
        );
        bandwidth.take(1).await;
        assert!(start.elapsed() > Duration::from_secs(2));
    }
}
