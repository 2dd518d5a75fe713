"""Type stubs of the native module (see ``src/`` of the ``s3fetch-python`` crate)."""

import os
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

def start(
    s3_uri: str,
    download_dir: str | os.PathLike[str],
    *,
    regex: str | None = None,
    include: list[str] = ...,
    exclude: list[str] = ...,
    min_size: str | None = None,
    max_size: str | None = None,
    newer_than: str | None = None,
    older_than: str | None = None,
    include_archived: bool = False,
    shard: str | None = None,
    shard_count: int | None = None,
    shard_by: str | None = None,
    plan: str | None = None,
    inventory: str | None = None,
    concurrent_downloads: int | None = None,
    list_concurrency: int | None = None,
    multipart_threshold: str | None = None,
    part_size: str | None = None,
    retries: int | None = None,
    idle_timeout: float | None = None,
    checksum_mode: str = "enabled",
    delimiter: str = "/",
    dry_run: bool = False,
    skip_existing: bool = False,
    sync: bool = False,
    compare: str = "mtime",
    preserve_mtime: bool = True,
    resume: bool = True,
    failed_keys: str | None = None,
    keys_from: str | None = None,
    output: str | None = None,
    want_found: bool = False,
    want_downloaded: bool = False,
    want_failed: bool = False,
    want_skipped: bool = False,
    region: str | None = None,
    endpoint_url: str | None = None,
    profile: str | None = None,
    no_sign_request: bool = False,
    force_path_style: bool | None = None,
    ca_bundle: str | None = None,
    credentials: Any = None,
    ignore_environment: bool = False,
    request_payer: str | None = None,
) -> Run:
    """Start a run on the engine's runtime."""

def main(argv: list[str]) -> int:
    """Run the ``s3fetch`` command line ``argv`` (program name first); return its exit code."""

def plan(
    s3_uri: str,
    shards: int,
    *,
    inventory: str | None = None,
    max_requests: int | None = None,
    retries: int | None = None,
    region: str | None = None,
    endpoint_url: str | None = None,
    profile: str | None = None,
    no_sign_request: bool = False,
    force_path_style: bool | None = None,
    ca_bundle: str | None = None,
    credentials: Any = None,
    ignore_environment: bool = False,
    request_payer: str | None = None,
) -> str: ...
