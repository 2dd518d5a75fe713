r"""s3fetch: fast, safe bulk downloads from Amazon S3 and S3-compatible stores.

The API of s3fetch 2.1.2 on a Rust engine: downloads start while the listing is still
running, one prefix is listed in parallel, and the GIL is released for the whole run.

    from s3fetch import download

    success, failures = download("s3://my-bucket/data/", download_dir="./out", regex=r"\.csv$")
"""

import logging

from ._s3fetch import __version__
from .api import download, download_async
from .s3 import DownloadResult
from .utils import ProgressProtocol, ProgressTracker

logger = logging.getLogger("s3fetch")

__all__ = [
    "DownloadResult",
    "ProgressProtocol",
    "ProgressTracker",
    "__version__",
    "download",
    "download_async",
]
