"""Download one S3 prefix as N Dask tasks, each taking its shard of the keys.

    python fetch_sharded.py s3://bucket/prefix/ DEST --shards 8 [--by range] [--scheduler ADDRESS]

Every task runs ``s3fetch.download(uri, dest, shard=(k, n))``: the N shards are disjoint
and together they are the whole selection, so each key is fetched exactly once. With
``--by range``, the client first makes a plan (``s3fetch.plan``, a few LIST requests) and
every task lists only its own range of keys. The results come back to the client, which
reports the job as a whole.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any


def fetch_shard(
    uri: str, dest: str, k: int, n: int, options: dict[str, Any]
) -> tuple[int, list[tuple[str, Exception]]]:
    """One task: shard ``k`` of ``n``. Runs on a worker."""
    from s3fetch import download

    return download(uri, dest, shard=(k, n), **options)


def fetch_sharded(
    client: Any, uri: str, dest: str, n: int, by: str = "hash", **options: Any
) -> list[tuple[int, list[tuple[str, Exception]]]]:
    """Runs the ``n`` shards as tasks of ``client`` (a ``distributed.Client``) and returns
    their results in shard order. ``options`` go to every ``download()`` call. ``by``:
    ``"hash"`` (every task lists the prefix) or ``"range"`` (one plan, made here, shared).
    """
    if by == "range":
        from s3fetch import plan

        connection = {k: v for k, v in options.items() if k in ("endpoint_url", "region", "profile", "client")}
        options = {**options, "plan": plan(uri, n, **connection)}
    futures = [client.submit(fetch_shard, uri, dest, k, n, options, pure=False) for k in range(n)]
    return list(client.gather(futures))


def main() -> int:
    """The command: run the shards, print what the job did; exit 1 if any object failed."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("uri")
    parser.add_argument("dest")
    parser.add_argument("--shards", type=int, default=4)
    parser.add_argument("--by", choices=("hash", "range"), default="hash", help="how keys are dealt out")
    parser.add_argument("--scheduler", help="a Dask scheduler's address (default: a local cluster)")
    args = parser.parse_args()

    from distributed import Client, LocalCluster

    if args.scheduler:
        client = Client(args.scheduler)
    else:
        client = Client(LocalCluster(n_workers=2, threads_per_worker=2))
    with client:
        results = fetch_sharded(client, args.uri, args.dest, args.shards, by=args.by)
    failed = [(key, error) for _, failures in results for key, error in failures]
    downloaded = sum(success for success, _ in results)
    print(f"{downloaded} objects downloaded by {args.shards} shards, {len(failed)} failed")
    for key, error in failed:
        print(f"  {key}: {type(error).__name__}: {error}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
