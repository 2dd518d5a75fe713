r"""s3fetch: fast, safe bulk downloads from Amazon S3 and S3-compatible stores.

The API of s3fetch 2.1.2 on a Rust engine: downloads start while the listing is still
running, one prefix is listed in parallel, and the GIL is released for the whole run.

    from s3fetch import download

    success, failures = download("s3://my-bucket/data/", download_dir="./out", regex=r"\.csv$")
"""

from ._s3fetch import __version__
from .api import download, download_async, iter_objects, plan
from .utils import ProgressTracker

__all__ = [
    "DownloadResult",
    "ProgressProtocol",
    "ProgressTracker",
    "__version__",
    "download",
    "download_async",
    "iter_objects",
    "plan",
    "S3Object",
]


def __getattr__(name: str) -> object:
    """Names imported on first use: a script that only calls ``download()`` does not pay for
    ``typing``, ``logging`` or ``dataclasses`` at start-up.
    """
    if name == "ProgressProtocol":
        from ._protocol import ProgressProtocol

        return ProgressProtocol
    if name == "DownloadResult":
        from .s3 import DownloadResult

        return DownloadResult
    if name == "S3Object":
        from .s3 import S3Object

        return S3Object
    if name == "logger":
        import logging

        return logging.getLogger("s3fetch")
    raise AttributeError(f"module 's3fetch' has no attribute {name!r}")
