"""Stage one S3 prefix onto Ray nodes' local disks with s3fetch.

    python stage.py s3://bucket/prefix/ DEST --shards 8          # N tasks, range shards
    python stage.py s3://bucket/prefix/ DEST --per-node          # a full copy on every node

``stage_sharded``: the driver makes one plan (``s3fetch.plan``, a few LIST requests), and N
Ray tasks each download their own range of keys (``download(..., shard=(k, n), plan=...)``):
the shards are disjoint, together they are the whole selection, and each task lists only its
range. ``stage_per_node``: every node gets the whole prefix in DEST, once per node however
many tasks ask for it: each task calls ``download(..., lock=True)``; the first on a node
downloads, the others wait for it and then find every file in place (no GET). The results
come back to the driver, which reports the job as a whole.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

import ray


@ray.remote
def fetch_shard(uri: str, dest: str, k: int, n: int, options: dict[str, Any]) -> tuple[int, list[Any]]:
    """One task: shard ``k`` of ``n`` into ``dest`` on the node it runs on."""
    from s3fetch import download

    return download(uri, dest, shard=(k, n), **options)


@ray.remote
def fetch_locked(uri: str, dest: str, options: dict[str, Any]) -> tuple[str, int, list[Any]]:
    """One task: the whole prefix into ``dest`` on its node, once per node (``lock=True``)."""
    from s3fetch import download

    success, failures = download(uri, dest, lock=True, **options)
    return ray.get_runtime_context().get_node_id(), success, failures


def stage_sharded(uri: str, dest: str, n: int, **options: Any) -> list[tuple[int, list[Any]]]:
    """Runs ``n`` range shards as Ray tasks and returns their results in shard order.
    ``options`` go to every ``download()`` call (and the connection ones to ``plan()``).
    """
    from s3fetch import plan

    connection = {k: v for k, v in options.items() if k in ("endpoint_url", "region", "profile")}
    options = {**options, "plan": plan(uri, n, **connection)}
    return ray.get([fetch_shard.remote(uri, dest, k, n, options) for k in range(n)])


def stage_per_node(uri: str, dest: str, tasks_per_node: int = 1, **options: Any) -> list[tuple[str, int, list[Any]]]:
    """Puts the whole prefix into ``dest`` on every alive node: ``tasks_per_node`` tasks
    pinned to each node (as the ranks of a job on one node would each ask), one download per
    node. Returns each task's (node id, files, failures).
    """
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    refs = []
    for node in ray.nodes():
        if not node["Alive"]:
            continue
        pin = NodeAffinitySchedulingStrategy(node_id=node["NodeID"], soft=False)
        refs += [
            fetch_locked.options(scheduling_strategy=pin).remote(uri, dest, options) for _ in range(tasks_per_node)
        ]
    return ray.get(refs)


def main() -> int:
    """The command: stage, print what the job did; exit 1 if any object failed."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("uri")
    parser.add_argument("dest")
    parser.add_argument("--shards", type=int, default=4, help="range shards (tasks) over the cluster")
    parser.add_argument("--per-node", action="store_true", help="a full copy on every node instead")
    parser.add_argument("--address", help="a Ray cluster's address (default: start a local one)")
    args = parser.parse_args()

    ray.init(address=args.address)
    if args.per_node:
        results = [(success, failures) for _, success, failures in stage_per_node(args.uri, args.dest)]
    else:
        results = stage_sharded(args.uri, args.dest, args.shards)
    failed = [(key, error) for _, failures in results for key, error in failures]
    print(f"{sum(success for success, _ in results)} objects by {len(results)} tasks, {len(failed)} failed")
    for key, error in failed:
        print(f"  {key}: {type(error).__name__}: {error}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
