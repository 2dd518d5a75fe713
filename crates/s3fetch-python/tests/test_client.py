"""client=: a boto3 client's endpoint, region, addressing style and credentials are used, the
environment's are not."""

from __future__ import annotations

import datetime
import threading
import time
from pathlib import Path

import boto3
import botocore
import pytest
from botocore.config import Config
from botocore.credentials import RefreshableCredentials
from conftest import ACCESS_KEY, SAMPLE, SECRET_KEY, Server, start_server, tree
from s3fetch import download
from s3fetch.exceptions import EndpointConnectionError, InvalidCredentialsError


@pytest.fixture
def misleading_env(monkeypatch: pytest.MonkeyPatch, aws_env: None) -> None:
    """An environment that cannot work: a dead endpoint, keys the server does not know."""
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "not-the-key")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "not-the-secret")
    monkeypatch.setenv("AWS_REGION", "eu-west-3")


def test_the_clients_endpoint_and_credentials_win_over_the_environment(
    sample: Server, dest: Path, misleading_env: None
) -> None:
    client = boto3.client(
        "s3",
        endpoint_url=sample.endpoint,
        aws_access_key_id=ACCESS_KEY,
        aws_secret_access_key=SECRET_KEY,
        region_name="us-east-1",
        config=Config(s3={"addressing_style": "path"}),
    )
    assert download("s3://bkt/data/2024/", dest, client=client) == (3, [])
    assert set(tree(dest)) == {"a.json", "b.csv", "sub/c.json"}
    # Without the client, the environment is used, and fails.
    with pytest.raises(EndpointConnectionError):
        download("s3://bkt/data/2024/", dest, retries=0)


def test_a_client_with_wrong_keys_fails_even_with_good_ones_in_the_environment(sample: Server, dest: Path) -> None:
    client = boto3.client(
        "s3",
        endpoint_url=sample.endpoint,
        aws_access_key_id=ACCESS_KEY,
        aws_secret_access_key="wrong",
        region_name="us-east-1",
    )
    with pytest.raises(InvalidCredentialsError):
        download("s3://bkt/", dest, client=client)


def test_refreshable_credentials_are_refreshed_through_the_client(
    sample: Server, dest: Path, misleading_env: None
) -> None:
    refreshes = 0
    lock = threading.Lock()

    def refresh() -> dict[str, str]:
        nonlocal refreshes
        with lock:
            refreshes += 1
        expiry = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(hours=1)
        return {"access_key": ACCESS_KEY, "secret_key": SECRET_KEY, "token": "", "expiry_time": expiry.isoformat()}

    # Expired keys that would be refused: only a refresh through botocore can make this work.
    expired = (datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(minutes=5)).isoformat()
    credentials = RefreshableCredentials.create_from_metadata(
        metadata={"access_key": "old", "secret_key": "old", "token": "", "expiry_time": expired},
        refresh_using=refresh,
        method="test-assume-role",
    )
    session = botocore.session.get_session()
    session._credentials = credentials
    client = boto3.Session(botocore_session=session).client(
        "s3", endpoint_url=sample.endpoint, region_name="us-east-1", config=Config(s3={"addressing_style": "path"})
    )
    assert download("s3://bkt/data/", dest, client=client) == (5, [])
    assert refreshes >= 1


def test_an_unsigned_client_reads_a_public_bucket(tmp_path: Path, aws_env: None, dest: Path) -> None:
    server = start_server(tmp_path / "public", "--public-bucket", "open")
    try:
        server.bucket("open", SAMPLE)
        client = boto3.client(
            "s3",
            endpoint_url=server.endpoint,
            region_name="us-east-1",
            config=Config(signature_version=botocore.UNSIGNED),
        )
        assert download("s3://open/other/", dest, client=client) == (1, [])
        assert tree(dest) == {"f.json": SAMPLE["other/f.json"]}
    finally:
        server.stop()


def test_https_with_a_private_ca(tmp_path: Path, aws_env: None, dest: Path) -> None:
    server = start_server(tmp_path / "tls", "--tls")
    try:
        assert server.endpoint.startswith("https://") and server.ca_file
        server.bucket("bkt", SAMPLE)
        assert download("s3://bkt/other/", dest, endpoint_url=server.endpoint, ca_bundle=server.ca_file) == (1, [])
        # The CA of a boto3 client's verify= is taken too.
        again = dest / "again"
        again.mkdir()
        assert download("s3://bkt/other/", again, client=server.client()) == (1, [])
        # Not trusted: an error at once, not retried.
        started = time.monotonic()
        with pytest.raises(EndpointConnectionError, match="certificate"):
            download("s3://bkt/other/", dest, endpoint_url=server.endpoint)
        assert time.monotonic() - started < 5
    finally:
        server.stop()
