"""One ``s3fetch.download()`` of a whole bucket, in a process of its own (a crash of the
extension module then fails one run, not the suite).

Usage: ``python pyapi_download.py S3_URI DOWNLOAD_DIR ENDPOINT_URL``; credentials and region
come from the environment. Prints one JSON object on stdout: ``success_count``, ``failures``
(``[key, exception class, .code, message]`` each) and ``results`` (the ``on_result`` calls:
``[key, success, skipped]``), or ``raised`` (the exception's class) and ``message`` when
``download()`` raised.
"""

from __future__ import annotations

import json
import sys

import s3fetch
from s3fetch.exceptions import S3FetchError
from s3fetch.s3 import DownloadResult


def main() -> int:
    """Runs the download and prints its result."""
    uri, download_dir, endpoint_url = sys.argv[1:4]
    results: list[list[object]] = []

    def on_result(result: DownloadResult) -> None:
        results.append([result.key, result.success, result.skipped])

    try:
        count, failures = s3fetch.download(uri, download_dir, endpoint_url=endpoint_url, on_result=on_result)
    except S3FetchError as error:
        print(json.dumps({"raised": type(error).__name__, "message": str(error)}))
        return 0
    print(
        json.dumps(
            {
                "success_count": count,
                "failures": [
                    [key, type(error).__name__, getattr(error, "code", None), str(error)] for key, error in failures
                ],
                "results": results,
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
