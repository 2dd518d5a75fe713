"""``download(..., progress=True)``: a progress bar fed by the engine's events.

tqdm's ``auto`` bar (a terminal bar, or a widget in Jupyter) when tqdm is installed, else one
line on stderr rewritten in place at most every half second. It is a progress tracker like
any other: the engine's events arrive in batches on the thread that waits for the run, so
the bar costs nothing on the engine's side.
"""

from __future__ import annotations

import sys
import time
from typing import Any

from .utils import format_bytes

#: Seconds between two redraws of the plain line.
_PLAIN_INTERVAL = 0.5


class ProgressBar:
    """Files done of files found, and bytes, as the run goes; :meth:`close` when it ends."""

    def __init__(self, dry_run: bool = False) -> None:
        """Open the bar (tqdm's when it is installed)."""
        self.found = 0
        self.done = 0
        self.bytes = 0
        self._dry_run = dry_run
        self._last_draw = 0.0
        self._bar: Any = None
        try:
            from tqdm.auto import tqdm
        except ImportError:
            return
        self._bar = tqdm(total=0, unit=" files", desc="s3fetch", dynamic_ncols=True, leave=True)

    def increment_found(self) -> None:
        """One more object selected by the listing."""
        self.found += 1
        if self._bar is not None:
            self._bar.total = self.found
            if self._due():
                self._bar.refresh()
        elif self._due():
            self._draw()

    def increment_downloaded(self, bytes_count: int) -> None:
        """One more object downloaded (``bytes_count`` bytes)."""
        self.done += 1
        self.bytes += bytes_count
        if self._bar is not None:
            self._bar.set_postfix_str(format_bytes(self.bytes), refresh=False)
            self._bar.update(1)
        elif self._due():
            self._draw()

    def close(self) -> None:
        """Draw the final state and end the line."""
        if self._bar is not None:
            self._bar.total = self.found
            self._bar.set_postfix_str(format_bytes(self.bytes), refresh=False)
            self._bar.close()
        else:
            self._draw()
            sys.stderr.write("\n")
            sys.stderr.flush()

    def _due(self) -> bool:
        now = time.monotonic()
        if now - self._last_draw < _PLAIN_INTERVAL:
            return False
        self._last_draw = now
        return True

    def _draw(self) -> None:
        verb = "listed" if self._dry_run else "downloaded"
        sys.stderr.write(f"\rs3fetch: {self.done} of {self.found} files {verb}, {format_bytes(self.bytes)}")
        sys.stderr.flush()


class Both:
    """Two progress trackers fed the same events (the caller's and the bar)."""

    def __init__(self, first: Any, second: Any) -> None:
        """Feed ``first``, then ``second``."""
        self._trackers = (first, second)

    def increment_found(self) -> None:
        """Count one object found in both."""
        for tracker in self._trackers:
            tracker.increment_found()

    def increment_downloaded(self, bytes_count: int) -> None:
        """Count one downloaded object in both."""
        for tracker in self._trackers:
            tracker.increment_downloaded(bytes_count)
