"""Type stubs of the native module (see ``src/`` of the ``s3fetch-python`` crate)."""

from collections.abc import Callable
from typing import Any

from .exceptions import S3FetchError

__version__: str

class Run:
    """A run in progress: wait for it once; dropping it cancels it."""

    def cancel(self) -> None:
        """Stop the run: listing stops, downloads abort, temporary files are removed."""

    def wait(
        self, dispatch: Callable[[list[tuple[Any, ...]]], None] | None = None
    ) -> tuple[int, list[tuple[str, S3FetchError]]]:
        """Wait with the GIL released, passing event batches to ``dispatch``."""

class Objects:
    """The objects of one ``iter_objects`` call, in key order; dropping it cancels the rest."""

    def __iter__(self) -> Objects: ...
    def __next__(self) -> tuple[str, int, str | None, float | None, bytes]:
        """The next object whole: key, size, ETag, LastModified (seconds since the epoch)
        and bytes; its failure raised as an exception of ``s3fetch.exceptions``.
        """

    def close(self) -> None:
        """Stop the stream and wait until it has: the listing and every request end."""

def iter_objects(s3_uri: str, options: dict[str, Any], connection: dict[str, Any]) -> Objects:
    """Start the stream of the selected objects."""

def start(
    s3_uri: str,
    download_dir: str,
    options: dict[str, Any],
    connection: dict[str, Any],
    *,
    want_found: bool = False,
    want_downloaded: bool = False,
    want_failed: bool = False,
    want_skipped: bool = False,
) -> Run:
    """Start a run on the engine's runtime."""

def main(argv: list[str]) -> int:
    """Run the ``s3fetch`` command line ``argv`` (program name first); return its exit code."""

def plan(s3_uri: str, shards: int, options: dict[str, Any], connection: dict[str, Any]) -> str:
    """The plan's JSON text."""
