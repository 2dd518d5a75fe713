//! Per-connection bandwidth cap: a token-bucket-throttled stream wrapper.
//!
//! [`Throttled`] wraps a connection's stream and limits the bytes written to it (the
//! server → client direction, i.e. response bodies) to a fixed rate. Reads (requests) are
//! not throttled. The bucket holds at most [`burst`] bytes, so a connection that was idle
//! can send a short burst but never exceeds the rate over any longer window.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::{Instant, Sleep};

/// Bucket capacity for a rate: 10 ms worth of bytes, at least 16 KiB.
#[must_use]
pub fn burst(bytes_per_sec: u64) -> u64 {
    (bytes_per_sec / 100).max(16 * 1024)
}

/// A stream whose writes are limited to `bytes_per_sec`.
#[derive(Debug)]
pub struct Throttled<S> {
    inner: S,
    rate: f64,
    capacity: f64,
    tokens: f64,
    last: Instant,
    sleep: Option<Pin<Box<Sleep>>>,
}

impl<S> Throttled<S> {
    /// Wraps `inner`, limiting writes to `bytes_per_sec` (must be > 0).
    pub fn new(inner: S, bytes_per_sec: u64) -> Self {
        let capacity = burst(bytes_per_sec) as f64;
        Self {
            inner,
            rate: bytes_per_sec.max(1) as f64,
            capacity,
            tokens: capacity,
            last: Instant::now(),
            sleep: None,
        }
    }

    fn refill(&mut self) {
        let now = Instant::now();
        let dt = now.duration_since(self.last).as_secs_f64();
        self.last = now;
        self.tokens = (self.tokens + dt * self.rate).min(self.capacity);
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Throttled<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Throttled<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if buf.is_empty() {
            return Pin::new(&mut this.inner).poll_write(cx, buf);
        }
        loop {
            if let Some(sleep) = this.sleep.as_mut() {
                match sleep.as_mut().poll(cx) {
                    Poll::Ready(()) => this.sleep = None,
                    Poll::Pending => return Poll::Pending,
                }
            }
            this.refill();
            if this.tokens >= 1.0 {
                break;
            }
            // Wait until enough tokens for a reasonable chunk (or the whole buffer).
            let want = (buf.len() as f64).min(this.capacity / 4.0).max(1.0);
            let wait = (want - this.tokens) / this.rate;
            this.sleep = Some(Box::pin(tokio::time::sleep(Duration::from_secs_f64(
                wait.max(0.000_1),
            ))));
        }
        let allowed = (this.tokens as usize).clamp(1, buf.len());
        match Pin::new(&mut this.inner).poll_write(cx, &buf[..allowed]) {
            Poll::Ready(Ok(n)) => {
                this.tokens -= n as f64;
                Poll::Ready(Ok(n))
            }
            other => other,
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[tokio::test]
    async fn caps_the_write_rate() {
        let (a, mut b) = tokio::io::duplex(1 << 20);
        let rate = 2 * 1024 * 1024; // 2 MiB/s
        let mut t = Throttled::new(a, rate);
        let reader = tokio::spawn(async move {
            let mut v = Vec::new();
            b.read_to_end(&mut v).await.unwrap();
            v.len()
        });
        let start = std::time::Instant::now();
        let data = vec![7u8; 1024 * 1024];
        t.write_all(&data).await.unwrap();
        t.shutdown().await.unwrap();
        drop(t);
        assert_eq!(reader.await.unwrap(), data.len());
        let secs = start.elapsed().as_secs_f64();
        // 1 MiB at 2 MiB/s ≈ 0.5 s (minus the initial burst).
        assert!(secs > 0.4, "too fast: {secs}");
        assert!(secs < 2.0, "too slow: {secs}");
    }
}
