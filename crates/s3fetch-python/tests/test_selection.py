"""Choosing what to fetch: include/exclude globs, size and time limits — the CLI's flags as
keywords, against the test kit's server."""

from __future__ import annotations

import datetime
import json
from pathlib import Path

import pytest
from conftest import SAMPLE, Server, start_server, tree
from s3fetch import DownloadResult, download, plan
from s3fetch.exceptions import InvalidOptionError, InvalidUriError, S3FetchError


def fetched(server: Server, dest: Path, **options: object) -> set[str]:
    success, failures = download("s3://bkt/data/", dest, endpoint_url=server.endpoint, **options)  # type: ignore[arg-type]
    assert failures == []
    files = set(tree(dest))
    assert success == len(files)
    return files


def test_include_and_exclude_globs(sample: Server, tmp_path: Path) -> None:
    cases: list[tuple[dict[str, object], set[str]]] = [
        ({"include": "2024/**", "exclude": ["**/*.csv"]}, {"2024/a.json", "2024/sub/c.json"}),
        ({"include": ["*/a.json", "tmp/*"]}, {"2024/a.json", "tmp/e.json"}),
        ({"include": ("**/*.csv",)}, {"2024/b.csv"}),
        ({"exclude": ["2024/**", "tmp/**"]}, {"2023/d.json"}),
        # Here the includes apply first and an exclude wins.
        ({"exclude": "**", "include": "2023/*"}, set()),
        ({"include": "2024/*", "regex": r"\.json$"}, {"2024/a.json"}),
    ]
    for n, (options, want) in enumerate(cases):
        dest = tmp_path / str(n)
        dest.mkdir()
        assert fetched(sample, dest, **options) == want, options


def test_size_and_time_limits(sample: Server, tmp_path: Path) -> None:
    now = datetime.datetime.now(datetime.timezone.utc)
    everything = {"2024/a.json", "2024/b.csv", "2024/sub/c.json", "2023/d.json", "tmp/e.json"}
    cases: list[tuple[dict[str, object], set[str]]] = [
        ({"max_size": 4}, {"2024/b.csv"}),
        ({"min_size": "5"}, everything - {"2024/b.csv"}),
        ({"newer_than": datetime.timedelta(hours=1)}, everything),
        ({"newer_than": "1h", "older_than": now + datetime.timedelta(hours=1)}, everything),
        ({"older_than": datetime.timedelta(hours=1)}, set()),
        ({"newer_than": now + datetime.timedelta(hours=1)}, set()),
        ({"older_than": (now + datetime.timedelta(days=2)).date()}, everything),
    ]
    for n, (options, want) in enumerate(cases):
        dest = tmp_path / str(n)
        dest.mkdir()
        assert fetched(sample, dest, **options) == want, options


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"include": 5}, "include must be a str or a list of str"),
        ({"exclude": ["ok", b"bytes"]}, "exclude must hold str globs"),
        ({"exclude": "[z"}, "exclude"),
        ({"newer_than": datetime.datetime(2024, 1, 1)}, "timezone-aware"),
        ({"older_than": "yesterday"}, "is not a time"),
        ({"older_than": datetime.timedelta(hours=-1)}, "cannot be negative"),
        ({"min_size": 10, "max_size": 9}, "nothing could match"),
        ({"min_size": 1.5}, "sizes must be an int or a str"),
    ],
)
def test_bad_selections_raise_before_any_request(
    sample: Server, dest: Path, options: dict[str, object], message: str
) -> None:
    before = sum(sample.requests().values())
    with pytest.raises(InvalidOptionError, match=message):
        download("s3://bkt/data/", dest, endpoint_url=sample.endpoint, **options)  # type: ignore[arg-type]
    assert sum(sample.requests().values()) == before


def test_archived_objects_are_skipped_unless_included(tmp_path: Path, aws_env: None) -> None:
    server = start_server(
        tmp_path / "server",
        "--archived",
        "bkt/data/2024/a.json=GLACIER",
        "--archived",
        "bkt/data/2023/d.json=DEEP_ARCHIVE:restored",
    )
    try:
        server.bucket("bkt", SAMPLE)
        dest = tmp_path / "dest"
        dest.mkdir()
        results: list[DownloadResult] = []
        success, failures = download(
            "s3://bkt/data/2024/", dest, endpoint_url=server.endpoint, on_result=results.append
        )
        assert (success, failures) == (2, [])
        skipped = [(r.key, r.skip_reason) for r in results if r.skipped]
        assert skipped == [("data/2024/a.json", "archived")]
        assert download("s3://bkt/data/2023/", dest, endpoint_url=server.endpoint) == (1, []), "restored"

        success, failures = download(
            "s3://bkt/data/2024/a.json", dest, endpoint_url=server.endpoint, include_archived=True
        )
        assert success == 0
        assert [(key, error.code) for key, error in failures] == [("data/2024/a.json", "InvalidObjectState")]
    finally:
        server.stop()


def test_shards_split_the_selection(sample: Server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "all").mkdir()
    everything = fetched(sample, tmp_path / "all")
    parts = []
    for k in range(3):
        dest = tmp_path / f"shard{k}"
        dest.mkdir()
        parts.append(fetched(sample, dest, shard=(k, 3)))
    assert sum(len(p) for p in parts) == len(everything) == 5
    assert set().union(*parts) == everything
    # "auto" from an orchestrator's variables, "k/n" as text: the same split.
    monkeypatch.setenv("JOB_COMPLETION_INDEX", "2")
    dest = tmp_path / "auto"
    dest.mkdir()
    assert fetched(sample, dest, shard="auto", shard_count=3) == parts[2]
    dest = tmp_path / "text"
    dest.mkdir()
    assert fetched(sample, dest, shard="1/3") == parts[1]


@pytest.mark.parametrize(
    ("shard", "message"),
    [
        ((3, 3), "K must be less than N"),
        ((1,), "must be a \\(k, n\\) tuple"),
        ((-1, 2), "negative"),
        ("auto", "none of"),
    ],
)
def test_bad_shards_raise(sample: Server, dest: Path, shard: object, message: str) -> None:
    with pytest.raises(InvalidOptionError, match=message):
        download("s3://bkt/data/", dest, endpoint_url=sample.endpoint, shard=shard)  # type: ignore[arg-type]


def test_inventory_replaces_the_listing(sample: Server, dest: Path) -> None:
    """An S3 Inventory report written as S3 writes one (gzip'd CSV, URL-encoded keys)."""
    import gzip
    import json
    from urllib.parse import quote_plus

    client = sample.client()
    rows = "".join(
        f'"bkt","{quote_plus(key)}","{len(body)}","2024-06-01T00:00:00.000Z","x"\n'
        for key, body in SAMPLE.items()
        if not key.endswith("/")
    )
    client.create_bucket(Bucket="inv")  # type: ignore[attr-defined]
    client.put_object(Bucket="inv", Key="r/data/0.csv.gz", Body=gzip.compress(rows.encode()))  # type: ignore[attr-defined]
    manifest = {
        "sourceBucket": "bkt",
        "fileFormat": "CSV",
        "fileSchema": "Bucket, Key, Size, LastModifiedDate, ETag",
        "files": [{"key": "r/data/0.csv.gz", "size": 1, "MD5checksum": "x"}],
    }
    client.put_object(Bucket="inv", Key="r/manifest.json", Body=json.dumps(manifest).encode())  # type: ignore[attr-defined]
    before = sample.requests().get("ListObjectsV2", 0)
    assert fetched(sample, dest, inventory="s3://inv/r/manifest.json", max_size=4) == {"2024/b.csv"}
    assert sample.requests().get("ListObjectsV2", 0) == before, "no LIST request"
    with pytest.raises(InvalidOptionError, match="inventory must be an s3:// URI str"):
        download("s3://bkt/data/", dest, endpoint_url=sample.endpoint, inventory=5)  # type: ignore[arg-type]


def test_range_shards_from_a_plan(sample: Server, tmp_path: Path) -> None:
    (tmp_path / "all").mkdir()
    everything = fetched(sample, tmp_path / "all")
    the_plan = plan("s3://bkt/data/", 3, endpoint_url=sample.endpoint)
    assert the_plan["shards"] == 3 and len(the_plan["splits"]) == 2
    # Every key under the prefix counts, the directory marker too.
    assert the_plan["exact"] is True and sum(the_plan["estimated_objects"]) == 6
    saved = tmp_path / "plan.json"
    saved.write_text(json.dumps(the_plan))
    parts = []
    for k in range(3):
        dest = tmp_path / f"shard{k}"
        dest.mkdir()
        # The dict and the file are the same plan.
        parts.append(fetched(sample, dest, shard=(k, 3), plan=the_plan if k % 2 else saved))
    assert sum(len(p) for p in parts) == len(everything)
    assert set().union(*parts) == everything


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"shard": (0, 3), "shard_by": "range"}, "s3fetch plan"),
        ({"shard": (0, 3), "shard_by": 3}, "shard_by must be"),
        ({"shard": (0, 3), "shard_by": "sideways"}, "neither hash nor range"),
        ({"plan": {"s3fetch_plan": 1, "uri": "s3://bkt/data/", "shards": 1, "splits": []}}, "needs a shard"),
        ({"shard": (0, 2), "plan": "/nonexistent/plan.json"}, "plan /nonexistent"),
        (
            {"shard": (0, 2), "plan": {"s3fetch_plan": 1, "uri": "s3://bkt/data/", "shards": 3, "splits": ["a", "b"]}},
            "has 3 shards",
        ),
    ],
)
def test_bad_range_shards_raise(sample: Server, dest: Path, options: dict[str, object], message: str) -> None:
    with pytest.raises(InvalidOptionError, match=message):
        download("s3://bkt/data/", dest, endpoint_url=sample.endpoint, **options)  # type: ignore[arg-type]


def test_plan_errors_raise_promptly(sample: Server) -> None:
    with pytest.raises(InvalidOptionError, match="shards must be"):
        plan("s3://bkt/data/", 0, endpoint_url=sample.endpoint)
    with pytest.raises(InvalidUriError):
        plan("bkt/data/", 2, endpoint_url=sample.endpoint)
    with pytest.raises(S3FetchError, match=r"NoSuchBucket|does not exist"):
        plan("s3://no-such-bucket/", 2, endpoint_url=sample.endpoint)
