//! The memory cap (`max_memory`): the bytes of bodies a run may hold at once. A request
//! reserves its share ([`Memory::reserve`], a fair semaphore of KiB units, waited for in
//! order) before it is sent, and gives it back when its bytes are written (downloads) or taken
//! by the reader (`cat`): requests wait for room, so concurrency falls to what fits. The bytes
//! actually held under each [`Lease`] are counted too, and their most at once kept
//! ([`Memory::peak`], the summary's `memory_peak`).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::error::{Error, Result};

/// Memory is reserved in these units (a semaphore's permits).
const UNIT: u64 = 1024;
/// What a download's request holds besides its body's bytes (its connection's buffers, its
/// task): reserved with them, not counted as held. `small` (5,000 × 64 KiB, 256 at once) peaked
/// at ~85 MiB RSS with 16 MiB of bodies, `large` (24 requests) at ~45 MiB: ~180 KiB each.
pub(crate) const REQUEST_OVERHEAD: u64 = 128 * 1024;

/// The cap and its count.
#[derive(Debug)]
pub(crate) struct Memory {
    units: Arc<Semaphore>,
    /// The cap in units.
    cap_units: u64,
    cap: u64,
    /// Bytes held under leases now, and the most at once.
    held: AtomicU64,
    peak: AtomicU64,
}

impl Memory {
    /// A cap of `cap` bytes (at least one unit).
    pub(crate) fn new(cap: u64) -> Arc<Memory> {
        let cap_units = cap.div_ceil(UNIT).clamp(1, u64::from(u32::MAX) / 2);
        Arc::new(Memory {
            units: Arc::new(Semaphore::new(cap_units as usize)),
            cap_units,
            cap,
            held: AtomicU64::new(0),
            peak: AtomicU64::new(0),
        })
    }

    /// The cap in bytes.
    pub(crate) fn cap(&self) -> u64 {
        self.cap
    }

    /// The most bytes held at once so far.
    pub(crate) fn peak(&self) -> u64 {
        self.peak.load(Ordering::Relaxed)
    }

    /// Room for `bytes` (at most the whole cap), waited for.
    pub(crate) async fn reserve(self: &Arc<Self>, bytes: u64) -> Result<Lease> {
        self.reserve_with(bytes, 0).await
    }

    /// Room for `bytes` and `overhead` besides (the whole reservation at most the cap); the
    /// lease's room is `bytes`.
    pub(crate) async fn reserve_with(self: &Arc<Self>, bytes: u64, overhead: u64) -> Result<Lease> {
        let units = (bytes + overhead).div_ceil(UNIT).clamp(1, self.cap_units);
        let permit = self
            .units
            .clone()
            .acquire_many_owned(units as u32)
            .await
            .map_err(|_| Error::Cancelled)?;
        Ok(Lease {
            inner: Some((permit, self.clone())),
            room: bytes.min(units * UNIT),
            held: 0,
        })
    }
}

/// Room reserved for one request's bytes, given back when dropped; without a cap, a lease
/// of unbounded room that counts nothing ([`Lease::unbounded`]).
#[derive(Debug)]
pub(crate) struct Lease {
    inner: Option<(OwnedSemaphorePermit, Arc<Memory>)>,
    room: u64,
    held: u64,
}

impl Lease {
    /// No cap: room for anything.
    pub(crate) fn unbounded() -> Lease {
        Lease {
            inner: None,
            room: u64::MAX,
            held: 0,
        }
    }

    /// Bytes that still fit under the lease.
    pub(crate) fn room(&self) -> u64 {
        self.room.saturating_sub(self.held)
    }

    /// `bytes` more are held under the lease.
    pub(crate) fn hold(&mut self, bytes: u64) {
        self.held += bytes;
        if let Some((_, memory)) = &self.inner {
            let now = memory.held.fetch_add(bytes, Ordering::Relaxed) + bytes;
            memory.peak.fetch_max(now, Ordering::Relaxed);
        }
    }

    /// `bytes` of those held were written (or dropped).
    pub(crate) fn release(&mut self, bytes: u64) {
        let bytes = bytes.min(self.held);
        self.held -= bytes;
        if let Some((_, memory)) = &self.inner {
            memory.held.fetch_sub(bytes, Ordering::Relaxed);
        }
    }

    /// Everything held was written (or dropped, as a failed try's bytes are).
    pub(crate) fn release_all(&mut self) {
        self.release(self.held);
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        self.release_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn leases_wait_for_room_and_count_what_they_hold() {
        let memory = Memory::new(4 * UNIT);
        let mut a = memory.reserve(3 * UNIT).await.unwrap();
        a.hold(3 * UNIT);
        assert_eq!(a.room(), 0);
        let waiting = memory.reserve(2 * UNIT);
        tokio::pin!(waiting);
        assert!(futures::poll!(waiting.as_mut()).is_pending(), "no room yet");
        a.release(UNIT);
        assert!(
            futures::poll!(waiting.as_mut()).is_pending(),
            "room comes back on drop"
        );
        drop(a);
        let mut b = waiting.await.unwrap();
        b.hold(UNIT);
        assert_eq!(memory.peak(), 3 * UNIT);
        assert_eq!(memory.held.load(Ordering::Relaxed), UNIT);
        drop(b);
        assert_eq!(memory.held.load(Ordering::Relaxed), 0);
        let whole = memory.reserve(100 * UNIT).await.unwrap();
        assert_eq!(whole.room(), 4 * UNIT, "at most the whole cap");
        drop(whole);
        let request = memory.reserve_with(UNIT, 2 * UNIT).await.unwrap();
        assert_eq!(
            request.room(),
            UNIT,
            "the overhead is reserved, not room for bytes"
        );
        assert_eq!(memory.units.available_permits(), 1);
    }
}
