#!/usr/bin/env python3
"""The Python-API tools of the benchmark: one short program per library.

    python bench/python_peers.py TOOL --endpoint EP --bucket B --dest DIR [--regex RE]
                                 [--ca-bundle PEM]
    python bench/python_peers.py --version TOOL

Each TOOL downloads every key of bucket B in which RE is found (`re.search` in the full key;
no RE: every key) to DIR/<key>, the way a user of that library would write it, and exits 0
only when every selected object was written. `bench/bench.py` runs it with the interpreter of
the venv that holds the library, through the same launcher as the CLI tools (so the
interpreter's start-up and the library's import are part of the wall time), and verifies the
files. Credentials and the region come from the environment (AWS_ACCESS_KEY_ID,
AWS_SECRET_ACCESS_KEY, AWS_REGION), as bench.py sets them for every tool.

Tools (standard library + that one library each):
  py-s3fetch        this repository's package: s3fetch.download(uri, dest, regex=RE,
                    endpoint_url=EP), default settings (64 downloads in flight, 64 list
                    requests in flight), no callbacks
  py-s3fetch-2.1.2  the original package: s3fetch.download(uri, dest, regex=RE, threads=64);
                    it has no endpoint argument: boto3 reads AWS_ENDPOINT_URL (bench.py sets it)
  py-boto3          one client (max_pool_connections=64, path-style); a list_objects_v2
                    paginator feeds a ThreadPoolExecutor(64): get_object + write per key,
                    submitted while the listing goes on
  py-s3fs           s3fs.S3FileSystem (aiobotocore; max_pool_connections=64, path-style);
                    no RE: fs.get("B/", DIR/, recursive=True, batch_size=64); with RE:
                    fs.find("B"), filter, fs.get(keys, local_paths, batch_size=64)
  py-obstore        obstore.store.S3Store (path-style, allow_http); asyncio: obstore.list
                    batches feed tasks, obstore.get_async + bytes_async with 64 at once
                    (a semaphore), each file written when its body is in
An https:// endpoint with a private CA (bench.py --tls): py-s3fetch and py-obstore trust
--ca-bundle PEM through their own options (ca_bundle=, client_options root_certificate);
the botocore-based tools read AWS_CA_BUNDLE, which bench.py sets for them.
The last line on stdout is a JSON summary: keys selected (-1: the library does not say),
startup_s (process start to the library imported, from /proc), import_s (the import alone)
and run_s (the download call).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import time

CONCURRENCY = 64  # every peer but py-s3fetch: requests in flight (py-s3fetch runs on its default, 256)
TOOLS = ["py-s3fetch", "py-s3fetch-2.1.2", "py-boto3", "py-s3fs", "py-obstore"]
# The distributions whose versions --version prints, per tool.
DISTS = {
    "py-s3fetch": ["s3fetch"],
    "py-s3fetch-2.1.2": ["s3fetch", "boto3", "botocore"],
    "py-boto3": ["boto3", "botocore"],
    "py-s3fs": ["s3fs", "fsspec", "aiobotocore", "botocore"],
    "py-obstore": ["obstore"],
}
MODULES = {"py-s3fetch": "s3fetch", "py-s3fetch-2.1.2": "s3fetch", "py-boto3": "boto3",
           "py-s3fs": "s3fs", "py-obstore": "obstore"}


class Failed(Exception):
    """Some selected objects were not downloaded."""


def local_path(dest: str, key: str) -> str:
    return os.path.join(dest, key)


class DirMaker:
    """os.makedirs once per directory (thread-safe enough: exist_ok absorbs races)."""

    def __init__(self) -> None:
        self.made: set[str] = set()

    def parent(self, path: str) -> None:
        d = os.path.dirname(path)
        if d not in self.made:
            os.makedirs(d, exist_ok=True)
            self.made.add(d)


def report_failures(failures: list[tuple[str, object]]) -> None:
    for key, err in failures[:20]:
        print(f"FAILED {key}: {err!r}", file=sys.stderr)
    if failures:
        raise Failed(f"{len(failures)} object(s) failed")


# --------------------------------------------------------------------------- the tools


def check_s3fetch(original: bool) -> None:
    """Both packages are named s3fetch: make sure the venv holds the one this tool times."""
    import s3fetch

    if (s3fetch.__version__ == "2.1.2") != original:
        raise SystemExit(f"wrong s3fetch in this venv: {s3fetch.__version__} ({s3fetch.__file__})")


def run_py_s3fetch(a) -> int:
    check_s3fetch(original=False)
    from s3fetch import download

    tls = {"ca_bundle": a.ca_bundle} if a.ca_bundle else {}
    # S3FETCH_BENCH_PROGRESS=1: the same with download(progress=True), the bar's cost.
    progress = os.environ.get("S3FETCH_BENCH_PROGRESS") == "1"
    n, failures = download(f"s3://{a.bucket}/", a.dest, regex=a.regex, endpoint_url=a.endpoint,
                           progress=progress, **tls)
    report_failures(failures)
    return n


def run_py_s3fetch_212(a) -> int:
    check_s3fetch(original=True)
    from s3fetch import download

    # The original has no endpoint argument: its boto3 client reads AWS_ENDPOINT_URL.
    if os.environ.get("AWS_ENDPOINT_URL") != a.endpoint:
        raise SystemExit("py-s3fetch-2.1.2: AWS_ENDPOINT_URL must be the endpoint")
    n, failures = download(f"s3://{a.bucket}/", a.dest, regex=a.regex, threads=CONCURRENCY)
    report_failures(failures)
    return n


def run_py_boto3(a) -> int:
    import shutil
    from concurrent.futures import ThreadPoolExecutor

    import boto3
    from botocore.config import Config

    s3 = boto3.client("s3", endpoint_url=a.endpoint, config=Config(
        max_pool_connections=CONCURRENCY, s3={"addressing_style": "path"}))
    rx = re.compile(a.regex) if a.regex else None
    dirs = DirMaker()

    def fetch(key: str) -> None:
        path = local_path(a.dest, key)
        dirs.parent(path)
        body = s3.get_object(Bucket=a.bucket, Key=key)["Body"]
        with open(path, "wb") as f:
            shutil.copyfileobj(body, f, 1 << 20)
        body.close()

    futures = {}
    with ThreadPoolExecutor(CONCURRENCY) as pool:
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=a.bucket):
            for obj in page.get("Contents", []):
                key = obj["Key"]
                if key.endswith("/") or (rx is not None and not rx.search(key)):
                    continue
                futures[key] = pool.submit(fetch, key)
    failures = [(k, f.exception()) for k, f in futures.items() if f.exception() is not None]
    report_failures(failures)
    return len(futures)


def run_py_s3fs(a) -> int:
    import s3fs

    fs = s3fs.S3FileSystem(
        endpoint_url=a.endpoint,
        config_kwargs={"max_pool_connections": CONCURRENCY, "s3": {"addressing_style": "path"}},
    )
    dest = os.path.abspath(a.dest)
    if a.regex is None:
        # "B/" with a trailing slash: the bucket's contents go into dest (not dest/B/...).
        fs.get(f"{a.bucket}/", dest + "/", recursive=True, batch_size=CONCURRENCY)
        return -1  # s3fs does not say; the driver counts the files
    rx = re.compile(a.regex)
    cut = len(a.bucket) + 1
    keys = [p for p in fs.find(a.bucket) if rx.search(p[cut:])]
    if keys:
        fs.get(keys, [local_path(dest, p[cut:]) for p in keys], batch_size=CONCURRENCY)
    return len(keys)


def run_py_obstore(a) -> int:
    import asyncio

    import obstore
    from obstore.store import S3Store

    client_options = {"allow_http": True}
    if a.ca_bundle:  # trusted besides the system's roots
        with open(a.ca_bundle) as f:
            client_options["root_certificate"] = f.read()
    store = S3Store(
        a.bucket,
        endpoint=a.endpoint,
        region=os.environ.get("AWS_REGION", "us-east-1"),
        access_key_id=os.environ["AWS_ACCESS_KEY_ID"],
        secret_access_key=os.environ["AWS_SECRET_ACCESS_KEY"],
        virtual_hosted_style_request=False,
        client_options=client_options,
    )
    rx = re.compile(a.regex) if a.regex else None
    dirs = DirMaker()

    async def main() -> int:
        sem = asyncio.Semaphore(CONCURRENCY)

        async def fetch(key: str) -> None:
            async with sem:
                result = await obstore.get_async(store, key)
                data = await result.bytes_async()
            path = local_path(a.dest, key)
            dirs.parent(path)
            with open(path, "wb") as f:
                f.write(data)

        tasks: dict[str, asyncio.Task] = {}
        async for batch in obstore.list(store, chunk_size=1000):
            for meta in batch:
                key = meta["path"]
                if rx is None or rx.search(key):
                    tasks[key] = asyncio.create_task(fetch(key))
        results = await asyncio.gather(*tasks.values(), return_exceptions=True)
        report_failures([(k, r) for k, r in zip(tasks, results, strict=True)
                         if isinstance(r, BaseException)])
        return len(tasks)

    return asyncio.run(main())


RUN = {
    "py-s3fetch": run_py_s3fetch,
    "py-s3fetch-2.1.2": run_py_s3fetch_212,
    "py-boto3": run_py_boto3,
    "py-s3fs": run_py_s3fs,
    "py-obstore": run_py_obstore,
}


# --------------------------------------------------------------------------- main


def since_process_start() -> float | None:
    """Seconds since this process was started (fork), from /proc: 1/CLK_TCK resolution."""
    try:
        stat = open("/proc/self/stat").read()
        start_ticks = int(stat[stat.rindex(")") + 2:].split()[19])
        return time.clock_gettime(time.CLOCK_BOOTTIME) - start_ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError, AttributeError):
        return None


def version(tool: str) -> str:
    import importlib.metadata  # here: 70 ms to import, which a timed run does not pay
    import platform

    __import__(MODULES[tool])  # fails (exit 1) when the library is not installed
    if tool in ("py-s3fetch", "py-s3fetch-2.1.2"):
        check_s3fetch(original=tool == "py-s3fetch-2.1.2")
    parts = []
    for d in DISTS[tool]:
        try:
            parts.append(f"{d} {importlib.metadata.version(d)}")
        except importlib.metadata.PackageNotFoundError:
            parts.append(f"{d} ?")
    return f"{parts[0]} ({', '.join(parts[1:] + ['Python ' + platform.python_version()])})"


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("tool", choices=TOOLS)
    p.add_argument("--version", action="store_true", help="print the library's version, exit")
    p.add_argument("--endpoint")
    p.add_argument("--bucket")
    p.add_argument("--dest")
    p.add_argument("--regex", default=None)
    p.add_argument("--ca-bundle", default=None,
                   help="PEM CA file to trust (py-s3fetch, py-obstore; the others: AWS_CA_BUNDLE)")
    a = p.parse_args(argv)
    if a.version:
        print(version(a.tool))
        return 0
    if not (a.endpoint and a.bucket and a.dest):
        p.error("--endpoint, --bucket and --dest are required")
    t0 = time.monotonic()
    __import__(MODULES[a.tool])
    t1 = time.monotonic()
    startup = since_process_start()
    try:
        n = RUN[a.tool](a)
    except Failed as e:
        print(f"{a.tool}: {e}", file=sys.stderr)
        return 1
    t2 = time.monotonic()
    print(json.dumps({"tool": a.tool, "selected": n,
                      "startup_s": None if startup is None else round(startup, 3),
                      "import_s": round(t1 - t0, 4), "run_s": round(t2 - t1, 4)}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
