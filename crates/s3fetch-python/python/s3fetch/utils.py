"""Progress tracking, as in s3fetch 2.1.2: :class:`ProgressProtocol` and :class:`ProgressTracker`."""

from __future__ import annotations

import os
import threading
import time

__all__ = ["ProgressProtocol", "ProgressTracker", "format_bytes", "get_available_threads"]  # noqa: F822


def __getattr__(name: str) -> object:
    """``ProgressProtocol`` is imported on first use (it needs ``typing``)."""
    if name == "ProgressProtocol":
        from ._protocol import ProgressProtocol

        return ProgressProtocol
    raise AttributeError(f"module 's3fetch.utils' has no attribute {name!r}")


class ProgressTracker:
    """Thread-safe progress counters; :meth:`get_stats` may be polled from any thread while
    ``download()`` runs. Counters only go up.
    """

    def __init__(self) -> None:
        """Start counting from zero, now."""
        self.objects_found = 0
        self.objects_downloaded = 0
        self.bytes_downloaded = 0
        self._lock = threading.Lock()
        self.start_time = time.time()

    def increment_found(self) -> None:
        """Count one object found by the listing."""
        with self._lock:
            self.objects_found += 1

    def increment_downloaded(self, bytes_count: int) -> None:
        """Count one downloaded object of ``bytes_count`` bytes."""
        with self._lock:
            self.objects_downloaded += 1
            self.bytes_downloaded += bytes_count

    def get_stats(self) -> dict[str, float]:
        """Current progress: ``objects_found``, ``objects_downloaded``, ``bytes_downloaded``,
        ``elapsed_time`` (seconds) and ``download_speed_mbps`` (MiB per second).
        """
        with self._lock:
            found = self.objects_found
            downloaded = self.objects_downloaded
            bytes_downloaded = self.bytes_downloaded
        elapsed = time.time() - self.start_time
        speed = (bytes_downloaded / (1024 * 1024)) / elapsed if elapsed > 0 else 0.0
        return {
            "objects_found": found,
            "objects_downloaded": downloaded,
            "bytes_downloaded": bytes_downloaded,
            "elapsed_time": elapsed,
            "download_speed_mbps": speed,
        }


def format_bytes(num_bytes: float, suffix: str = "") -> str:
    """A byte count with adaptive units: ``512 B``, ``1.5 KB``, ``12.3 MB/s`` (``suffix="/s"``)."""
    if num_bytes < 1024:
        return f"{int(num_bytes)} B{suffix}"
    if num_bytes < 1024**2:
        return f"{num_bytes / 1024:.1f} KB{suffix}"
    if num_bytes < 1024**3:
        return f"{num_bytes / 1024**2:.1f} MB{suffix}"
    return f"{num_bytes / 1024**3:.1f} GB{suffix}"


def get_available_threads() -> int:
    """The CPUs this process may run on (at least 1). s3fetch no longer uses it as its default
    concurrency (downloads wait on the network, not the CPU); kept for code that called it.
    """
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)
