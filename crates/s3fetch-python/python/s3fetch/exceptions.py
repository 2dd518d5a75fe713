"""Exceptions raised by s3fetch, rooted at :class:`S3FetchError`.

The classes of s3fetch 2.1.2 keep their names and causes; the ones it lacked are new
subclasses, so ``except S3FetchError`` still catches everything. Errors in the arguments
also derive from :class:`ValueError`, and :class:`PermissionError` from the built-in
``PermissionError``. Every exception has ``key`` (the object it is about, or ``None``) and
``code`` (the S3 error code such as ``"AccessDenied"``, or ``None``), and pickles with
them (Ray, Dask and ``multiprocessing`` ship exceptions between processes).
"""

from __future__ import annotations

import builtins

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

__all__ = [
    "BucketNotFoundError",
    "ChecksumError",
    "DirectoryDoesNotExistError",
    "DownloadError",
    "EndpointConnectionError",
    "InvalidCredentialsError",
    "InvalidOptionError",
    "InvalidUriError",
    "ListingError",
    "NoCredentialsError",
    "NoObjectsFoundError",
    "PathTraversalError",
    "PermissionError",
    "PrefixDoesNotExistError",
    "RegexError",
    "S3FetchError",
    "S3FetchQueueClosed",
    "S3FetchWarning",
]


def _rebuild(cls: type[S3FetchError], args: tuple[Any, ...], state: dict[str, Any]) -> S3FetchError:
    error = cls(*args)
    error.__dict__.update(state)
    return error


class S3FetchError(Exception):
    """Base class for all S3Fetch errors."""

    key: str | None
    code: str | None

    def __init__(self, message: str = "", *, key: str | None = None, code: str | None = None) -> None:
        """Create the error; ``key`` and ``code`` say which object and S3 error it is about."""
        if message:
            super().__init__(message)
        else:
            super().__init__()
        self.key = key
        self.code = code

    def __reduce__(self) -> tuple[Any, ...]:
        """Pickle with ``key``, ``code`` and any other attribute."""
        return (_rebuild, (type(self), self.args, self.__dict__))


class S3FetchWarning(UserWarning):
    """Something about a run that is no failure.

    A store that lists keys out of order, say: the listing went on another way, and every key
    is still downloaded once.
    """


class RegexError(S3FetchError, ValueError):
    """Raised when the regex cannot be compiled due to an error."""


class InvalidUriError(S3FetchError, ValueError):
    """Raised when the S3 URI is not of the form ``s3://bucket[/prefix]``."""


class InvalidOptionError(S3FetchError, ValueError):
    """Raised when an option cannot work (zero threads, an empty delimiter, a bad size...)."""


class DirectoryDoesNotExistError(S3FetchError):
    """Raised when the directory does not exist (or is not a directory)."""


class PermissionError(S3FetchError, builtins.PermissionError):  # noqa: A001 - the original's name
    """Raised when access is denied: by S3 (``AccessDenied``) or by the local file system."""


class DownloadError(S3FetchError):
    """Raised when an error occurs during download."""


class ChecksumError(DownloadError):
    """The bytes received do not match the checksum S3 keeps for the object."""


class NoObjectsFoundError(S3FetchError):
    """Raised when no objects are found in the bucket (kept for compatibility: ``download()``
    returns ``(0, [])`` instead).
    """


class NoCredentialsError(S3FetchError):
    """Raised when no credentials are found."""


class InvalidCredentialsError(S3FetchError):
    """Raised when invalid credentials are found (rejected keys, an expired SSO session...)."""


class S3FetchQueueClosed(S3FetchError):
    """Raised when sentry signal is detected indicating the queue has been closed."""


class PrefixDoesNotExistError(S3FetchError):
    """Raised when the prefix does not exist."""


class PathTraversalError(S3FetchError):
    """Raised when an S3 object key resolves outside the download directory."""


class BucketNotFoundError(S3FetchError):
    """Raised when the bucket does not exist (``NoSuchBucket``)."""


class EndpointConnectionError(S3FetchError):
    """Raised when the S3 endpoint cannot be reached (connection refused, DNS, timeouts)."""


class ListingError(S3FetchError):
    """Raised when listing the bucket fails for another reason."""
