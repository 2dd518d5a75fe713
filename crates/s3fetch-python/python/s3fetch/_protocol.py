"""The progress tracker protocol of s3fetch 2.1.2 (in its own module: it needs ``typing``,
which a script that only calls ``download()`` need not import).
"""

from typing import Protocol, runtime_checkable

__all__ = ["ProgressProtocol"]


@runtime_checkable
class ProgressProtocol(Protocol):
    """Anything with :meth:`increment_found` and :meth:`increment_downloaded` (no inheritance
    needed): pass it as ``download(..., progress_tracker=...)``.

    The calls are made from the thread that called ``download()`` (for ``download_async``, a
    worker thread of the event loop's executor), one at a time.
    """

    def increment_found(self) -> None:
        """Called once for each object the listing selects."""
        ...

    def increment_downloaded(self, bytes_count: int) -> None:
        """Called once for each object downloaded (not in a dry run), with its size."""
        ...
