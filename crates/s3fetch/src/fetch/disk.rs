//! Where the file-system work of downloads runs: on the async worker while it is quick, on
//! the blocking pool while it is not.
//!
//! [`Disk::quick`] runs work inline, on the thread that just received the bytes, while a
//! running average of such calls stays under [`SLOW`], and on the blocking pool while it is
//! above: a slow file system must not hold up an async worker. Work known to be long (hashing
//! a file read back, sweeping a directory) always goes to the pool ([`Disk::pool`]).
//! `S3FETCH_FS=pool` (or `inline`) fixes the choice, for comparisons ([`crate::tuning`]).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tokio_util::task::TaskTracker;

use crate::error::{Error, Result};
use crate::tuning::FsMode as Mode;

/// Quick work goes to the pool while calls take this long on average (every call is timed, on
/// the pool too; back inline once the average is under half of it)...
///
/// An average, not a single call: on a busy machine a thread is sometimes descheduled in the
/// middle of a write, and one in 200 writes of a `large` run took 5–10 ms that way; a slow
/// file system makes every call slow.
const SLOW: Duration = Duration::from_millis(2);
/// ...the average over about this many calls (the weight of each new one: 1 / `CALLS`).
const CALLS: u64 = 16;

/// The run's file-system work: where it runs, and the pool's share of it, tracked so the run
/// can wait for writes that cancelled downloads left running.
#[derive(Debug)]
pub(crate) struct Disk {
    mode: Mode,
    /// Running average of the time quick calls take, in nanoseconds.
    average: AtomicU64,
    pooled: AtomicBool,
    pool: TaskTracker,
}

impl Default for Disk {
    fn default() -> Self {
        Disk::new(Mode::Adaptive)
    }
}

impl Disk {
    pub(crate) fn new(mode: Mode) -> Self {
        Disk {
            mode,
            average: AtomicU64::new(0),
            pooled: AtomicBool::new(false),
            pool: TaskTracker::new(),
        }
    }

    /// Runs `f`, file-system work that is normally quick (a write into the page cache,
    /// creating or renaming a file): inline while such work is quick, else on the pool.
    ///
    /// Writing a batch of a body into the page cache takes tens of microseconds, and its bytes
    /// were received on this very thread a moment ago. Done right here, the kernel copies them
    /// from this core's cache, and no thread is woken to do it and then to report back: on the
    /// benchmark's `large` (4 × 512 MiB) that halved the user time and took 0.2 s off the wall
    /// (1.52 against 1.71 s), and `small` (5,000 files) ran in 1.17 instead of 1.34 s
    /// (BENCHMARKS.md, "Writes on the worker"). But a file system can be slow — a network file
    /// system, a disk whose dirty limit makes every writer wait in the kernel — and an async
    /// worker that waits holds up every connection it serves: hence the pool while the
    /// average is above [`SLOW`].
    pub(crate) async fn quick<T: Send + 'static>(
        &self,
        f: impl FnOnce() -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let inline = match self.mode {
            Mode::Inline => true,
            Mode::Pool => false,
            Mode::Adaptive => !self.pooled.load(Ordering::Relaxed),
        };
        if inline {
            let started = Instant::now();
            let result = f();
            self.took(started.elapsed());
            return result;
        }
        let (result, took) = self
            .pool(move || {
                let started = Instant::now();
                let result = f();
                Ok((result, started.elapsed()))
            })
            .await?;
        self.took(took);
        result
    }

    /// Runs `f` on the blocking pool (work known to take long).
    pub(crate) async fn pool<T: Send + 'static>(
        &self,
        f: impl FnOnce() -> Result<T> + Send + 'static,
    ) -> Result<T> {
        match self.pool.spawn_blocking(f).await {
            Ok(result) => result,
            Err(join) if join.is_panic() => std::panic::resume_unwind(join.into_panic()),
            Err(_) => Err(Error::Cancelled),
        }
    }

    /// Waits until the work on the pool has finished, that of downloads dropped on the way
    /// included (a write a cancelled download started runs to its end, or cleans up).
    pub(crate) async fn settle(&self) {
        self.pool.close();
        self.pool.wait().await;
        self.pool.reopen();
    }

    fn took(&self, took: Duration) {
        if self.mode != Mode::Adaptive {
            return;
        }
        let took = u64::try_from(took.as_nanos()).unwrap_or(u64::MAX);
        // Updates from several threads may interleave: an average that misses one is fine.
        let old = self.average.load(Ordering::Relaxed);
        let new = (old - old / CALLS).saturating_add(took / CALLS);
        self.average.store(new, Ordering::Relaxed);
        let slow = SLOW.as_nanos() as u64;
        if new > slow {
            self.pooled.store(true, Ordering::Relaxed);
        } else if new < slow / 2 {
            self.pooled.store(false, Ordering::Relaxed);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::thread::{self, ThreadId};

    fn here() -> Result<ThreadId> {
        Ok(thread::current().id())
    }

    fn slow() -> Result<ThreadId> {
        thread::sleep(SLOW * 4);
        here()
    }

    #[tokio::test]
    async fn quick_work_runs_inline_one_slow_call_changes_nothing() {
        let disk = Disk::new(Mode::Adaptive);
        let me = thread::current().id();
        assert_eq!(disk.quick(here).await.unwrap(), me);
        assert_eq!(disk.quick(slow).await.unwrap(), me);
        assert_eq!(
            disk.quick(here).await.unwrap(),
            me,
            "one slow call is not a slow disk"
        );
    }

    #[tokio::test]
    async fn slow_calls_send_work_to_the_pool_until_calls_are_quick_again() {
        let disk = Disk::new(Mode::Adaptive);
        let me = thread::current().id();
        let mut inline = 0;
        while disk.quick(slow).await.unwrap() == me {
            inline += 1;
            assert!(inline < CALLS, "still inline after {inline} slow calls");
        }
        assert!(inline >= 2, "moved after {inline} slow call(s)");
        let mut pooled = 0;
        while disk.quick(here).await.unwrap() != me {
            pooled += 1;
            assert!(
                pooled < 4 * CALLS,
                "still on the pool after {pooled} quick calls"
            );
        }
        assert!(pooled >= 1);
    }

    #[tokio::test]
    async fn fixed_modes_do_not_adapt_and_errors_and_long_work_pass_through() {
        let me = thread::current().id();
        let inline = Disk::new(Mode::Inline);
        for _ in 0..CALLS {
            assert_eq!(inline.quick(slow).await.unwrap(), me);
        }
        let pool = Disk::new(Mode::Pool);
        assert_ne!(pool.quick(here).await.unwrap(), me);
        assert_ne!(
            inline.pool(here).await.unwrap(),
            me,
            "long work always on the pool"
        );
        let failed = pool.quick(|| -> Result<()> { Err(Error::Cancelled) }).await;
        assert!(matches!(failed, Err(Error::Cancelled)));
        pool.settle().await;
        assert_ne!(pool.quick(here).await.unwrap(), me, "usable after settling");
    }
}
