"""Stores that behave as real ones do: a bucket in another region (also through ``client=``),
requester pays, listings out of order, an S3 Express directory bucket (the test kit's
emulations, ``s3fetch-testkit serve --help``, "Bucket quirks")."""

from __future__ import annotations

import warnings
from pathlib import Path

import boto3
import pytest
from botocore.config import Config
from conftest import ACCESS_KEY, SECRET_KEY, Server, start_server, tree
from s3fetch import download, exceptions, plan
from s3fetch.exceptions import InvalidOptionError

EXPRESS = "data--usw2-az1--x-s3"
#: 40 keys in four folders, a file ``a`` beside ``a/b``.
OBJECTS = {f"p/{i % 4}/k{i:02}.txt": str(i).encode() for i in range(40)} | {"p/a": b"file a", "p/a/b": b"under a"}
#: What a download of ``p/`` leaves: the file ``a`` wins over the folder ``a/``.
EXPECTED = {key[2:]: body for key, body in OBJECTS.items() if key != "p/a/b"}


def fill(server: Server, bucket: str, region: str = "us-east-1") -> None:
    """Puts :data:`OBJECTS` into ``bucket`` (created by the server or here), signed for
    ``region``."""
    client = boto3.client(
        "s3",
        endpoint_url=server.endpoint,
        aws_access_key_id=ACCESS_KEY,
        aws_secret_access_key=SECRET_KEY,
        region_name=region,
        config=Config(s3={"addressing_style": "path"}),
    )
    if bucket != EXPRESS:
        client.create_bucket(Bucket=bucket)
    for key, body in OBJECTS.items():
        client.put_object(Bucket=bucket, Key=key, Body=body)


def only_conflict(failures: list[tuple[str, Exception]]) -> None:
    assert [key for key, _ in failures] == ["p/a/b"], failures


def test_a_client_made_for_us_east_1_reads_a_bucket_in_us_west_2(tmp_path: Path, aws_env: None, dest: Path) -> None:
    server = start_server(tmp_path / "server", "--bucket-region", "west=us-west-2")
    try:
        fill(server, "west", region="us-west-2")
        client = boto3.client(
            "s3",
            endpoint_url=server.endpoint,
            aws_access_key_id=ACCESS_KEY,
            aws_secret_access_key=SECRET_KEY,
            region_name="us-east-1",
            config=Config(s3={"addressing_style": "path"}),
        )
        before = server.requests().get("ListObjectsV2", 0)
        count, failures = download("s3://west/p/", dest, client=client)
        assert count == len(EXPECTED)
        only_conflict(failures)
        assert tree(dest) == EXPECTED
        assert server.requests()["ListObjectsV2"] - before == 2, "one refused, then the bucket's region"
        # Without a client, the default region too; and plan().
        other = tmp_path / "other"
        other.mkdir()
        assert download("s3://west/p/", other, endpoint_url=server.endpoint)[0] == len(EXPECTED)
        assert plan("s3://west/p/", 2, endpoint_url=server.endpoint)["uri"] == "s3://west/p/"
    finally:
        server.stop()


def test_requester_pays_is_a_keyword(tmp_path: Path, aws_env: None, dest: Path) -> None:
    server = start_server(tmp_path / "server", "--requester-pays", "paid")
    try:
        client = boto3.client(
            "s3",
            endpoint_url=server.endpoint,
            aws_access_key_id=ACCESS_KEY,
            aws_secret_access_key=SECRET_KEY,
            region_name="us-east-1",
            config=Config(s3={"addressing_style": "path"}),
        )
        for key, body in OBJECTS.items():
            client.put_object(Bucket="paid", Key=key, Body=body, RequestPayer="requester")
        with pytest.raises(exceptions.PermissionError) as refused:
            download("s3://paid/p/", dest, endpoint_url=server.endpoint)
        assert refused.value.code == "AccessDenied"
        count, failures = download("s3://paid/p/", dest, endpoint_url=server.endpoint, request_payer="requester")
        assert count == len(EXPECTED)
        only_conflict(failures)
        assert tree(dest) == EXPECTED
        assert plan("s3://paid/p/", 2, endpoint_url=server.endpoint, request_payer="requester")["uri"] == "s3://paid/p/"
        with pytest.raises(InvalidOptionError, match="requester"):
            download("s3://paid/p/", dest, endpoint_url=server.endpoint, request_payer="owner")
    finally:
        server.stop()


@pytest.mark.parametrize("quirk", ["--unordered", "--ignore-start-after", "--refuse-start-after"])
def test_a_store_that_lists_differently_loses_nothing(tmp_path: Path, aws_env: None, dest: Path, quirk: str) -> None:
    server = start_server(tmp_path / "server", quirk, "odd")
    try:
        fill(server, "odd")
        for list_concurrency in (1, 64):
            out = tmp_path / f"out-{list_concurrency}"
            out.mkdir()
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                count, failures = download(
                    "s3://odd/p/", out, endpoint_url=server.endpoint, list_concurrency=list_concurrency
                )
            said = [str(w.message) for w in caught if issubclass(w.category, exceptions.S3FetchWarning)]
            # One page holds every key here: only a store out of order shows itself.
            assert len(said) == (1 if quirk == "--unordered" else 0), said
            assert all("out of order" in s and "page by page" in s for s in said), said
            assert count == len(EXPECTED)
            only_conflict(failures)
            assert tree(out) == EXPECTED
    finally:
        server.stop()


def test_a_directory_bucket_downloads_and_refuses_what_cannot_work_there(
    tmp_path: Path, aws_env: None, dest: Path
) -> None:
    server = start_server(tmp_path / "server", "--directory-bucket", EXPRESS)
    try:
        fill(server, EXPRESS)
        count, failures = download(f"s3://{EXPRESS}/p/", dest, endpoint_url=server.endpoint)
        assert count == len(EXPECTED)
        only_conflict(failures)
        assert tree(dest) == EXPECTED
        assert server.requests().get("CreateSession", 0) >= 1
        with pytest.raises(InvalidOptionError, match="delimiter"):
            download(f"s3://{EXPRESS}/p/", dest, endpoint_url=server.endpoint, delimiter="-")
        with pytest.raises(InvalidOptionError, match="hash shards"):
            download(f"s3://{EXPRESS}/p/", dest, endpoint_url=server.endpoint, shard=(0, 2), shard_by="range")
        with pytest.raises(InvalidOptionError, match="directory bucket"):
            plan(f"s3://{EXPRESS}/p/", 2, endpoint_url=server.endpoint)
    finally:
        server.stop()
