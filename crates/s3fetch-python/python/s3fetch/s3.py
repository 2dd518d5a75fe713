"""The per-object result type, as in s3fetch 2.1.2, and the objects :func:`s3fetch.iter_objects`
yields.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

__all__ = ["DownloadResult", "S3Object"]


class S3Object(NamedTuple):
    """One object from :func:`s3fetch.iter_objects`: what the listing said of it, and its bytes
    (verified against its checksum).

    Attributes:
        key: The S3 object key.
        size: Its size in bytes (``len(data)``).
        etag: Its ETag, quotes included, as S3 gives it (``None`` if the store sent none).
        last_modified: Its LastModified, timezone-aware (UTC), or ``None``.
        data: Its bytes.

    """

    key: str
    size: int
    etag: str | None
    last_modified: datetime.datetime | None
    data: bytes


@dataclass
class DownloadResult:
    """The result of a single S3 object download attempt.

    Passed to ``download(..., on_result=...)`` once per object, success or failure.

    Attributes:
        key: The S3 object key.
        dest_filename: The absolute local path where the object was (or would have been)
            written; ``None`` when the key was refused (it would escape the directory).
        success: True if the download completed successfully.
        file_size: Size of the downloaded file in bytes; 0 on failure or in a dry run.
        error: The exception that caused the download to fail (a
            :class:`s3fetch.exceptions.S3FetchError`), or None on success.
        skipped: True if the object was not downloaded because its file was up to date
            (``skip_existing`` / ``sync``) or it is archived; ``success`` is True and
            ``file_size`` the object's size then.
        skip_reason: Why it was skipped: ``"up to date"``, or ``"archived"`` (in GLACIER or
            DEEP_ARCHIVE and not restored; ``include_archived=True`` tries it); ``None``
            when it was not skipped.

    """

    key: str
    dest_filename: Path | None
    success: bool
    file_size: int = 0
    error: Exception | None = field(default=None, repr=False)
    skipped: bool = False
    skip_reason: str | None = None
