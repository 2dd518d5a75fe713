"""Exceptions: raised promptly for what stops the run, listed per object for the rest, and
picklable; no temporary file survives a failure."""

from __future__ import annotations

import builtins
import pickle
import time
from pathlib import Path

import pytest
import s3fetch.exceptions as exc
from conftest import SAMPLE, Server, start_server, temporary_files, tree
from s3fetch import download

PROMPT = 10.0  # seconds: every run-stopping error comes well within this


def raises_promptly(error: type[BaseException], *args: object, **kwargs: object) -> BaseException:
    started = time.monotonic()
    with pytest.raises(error) as caught:
        download(*args, **kwargs)  # type: ignore[arg-type]
    assert time.monotonic() - started < PROMPT
    return caught.value


def test_all_errors_derive_from_s3fetch_error() -> None:
    for name in exc.__all__:
        if name.endswith("Warning"):
            assert issubclass(getattr(exc, name), UserWarning), name
            continue
        assert issubclass(getattr(exc, name), exc.S3FetchError), name
    assert issubclass(exc.PermissionError, builtins.PermissionError)
    assert issubclass(exc.RegexError, ValueError)
    assert issubclass(exc.ChecksumError, exc.DownloadError)


def test_usage_errors(server: Server, dest: Path) -> None:
    ep = server.endpoint
    error = raises_promptly(exc.RegexError, "s3://bkt/", dest, regex="a(b", endpoint_url=ep)
    assert '"a(b"' in str(error)
    raises_promptly(exc.RegexError, "s3://bkt/", dest, regex="(?<=a", endpoint_url=ep)
    raises_promptly(exc.InvalidUriError, "bkt/data", dest, endpoint_url=ep)
    raises_promptly(exc.InvalidUriError, "s3:///x", dest, endpoint_url=ep)
    raises_promptly(exc.InvalidUriError, 42, dest, endpoint_url=ep)
    missing = dest / "missing"
    error = raises_promptly(exc.DirectoryDoesNotExistError, "s3://bkt/", missing, endpoint_url=ep)
    assert "does not exist" in str(error)
    assert not missing.exists(), "never created"
    (dest / "file").write_text("x")
    error = raises_promptly(exc.DirectoryDoesNotExistError, "s3://bkt/", dest / "file", endpoint_url=ep)
    assert "not a directory" in str(error)
    for kwargs, needle in (
        ({"list_concurrency": 0}, "list_concurrency must be at least 1"),
        ({"part_size": "0"}, "part_size"),
        ({"multipart_threshold": "8 parsecs"}, "multipart_threshold"),
        ({"idle_timeout": -1}, "idle_timeout must be more than 0"),
        ({"checksum_mode": "sometimes"}, "checksum_mode"),
        ({"delimiter": ""}, "delimiter must not be empty"),
        ({"endpoint_url": "ftp://x"}, "endpoint_url"),
        ({"retries": -1}, "retries must be at least 0"),
        ({"max_bandwidth": "100Mb/s"}, "max_bandwidth"),
        ({"max_bandwidth": 0}, "max_bandwidth"),
        ({"max_bandwidth": [100]}, "max_bandwidth must be bytes per second"),
        ({"max_memory": "8MiB"}, "max_memory must be at least 16MiB"),
        ({"max_memory": 32 << 20, "part_size": "64MiB"}, "at least 64MiB"),
        ({"max_memory": "lots"}, "max_memory"),
        ({"max_memory": 1.5}, "sizes must be an int"),
        ({"on_complete": "not callable"}, "on_complete must be callable"),
    ):
        arguments = {"endpoint_url": ep, **kwargs}
        error = raises_promptly(exc.InvalidOptionError, "s3://bkt/", dest, **arguments)
        assert needle in str(error), (kwargs, error)
    assert server.stop()["http_requests"] == 0, "usage errors send no request"


def test_a_missing_bucket(sample: Server, dest: Path) -> None:
    error = raises_promptly(exc.BucketNotFoundError, "s3://no-such-bucket/", dest, endpoint_url=sample.endpoint)
    assert error.code == "NoSuchBucket"


def test_bad_and_missing_credentials(sample: Server, dest: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "wrong")
    error = raises_promptly(exc.InvalidCredentialsError, "s3://bkt/", dest, endpoint_url=sample.endpoint)
    assert error.code == "SignatureDoesNotMatch"
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    error = raises_promptly(exc.NoCredentialsError, "s3://bkt/", dest, endpoint_url=sample.endpoint)
    assert "no credentials" in str(error)


def test_an_unreachable_endpoint(dest: Path, aws_env: None) -> None:
    error = raises_promptly(
        exc.EndpointConnectionError, "s3://bkt/", dest, endpoint_url="http://127.0.0.1:9", retries=1
    )
    assert "onnect" in str(error)


def test_a_denied_bucket_is_a_permission_error(tmp_path: Path, aws_env: None, dest: Path) -> None:
    # Unsigned requests: allowed on the public bucket, AccessDenied on the other.
    public = start_server(tmp_path / "public", "--public-bucket", "open")
    try:
        public.bucket("open", {"k": b"v"})
        public.bucket("closed", {"k": b"v"})
        assert download("s3://open/", dest, endpoint_url=public.endpoint, no_sign_request=True) == (1, [])
        error = raises_promptly(
            exc.PermissionError, "s3://closed/", dest, endpoint_url=public.endpoint, no_sign_request=True
        )
        assert error.code == "AccessDenied"
    finally:
        public.stop()


def test_per_object_failures_are_listed_not_raised(tmp_path: Path, aws_env: None, dest: Path) -> None:
    server = start_server(
        tmp_path / "faulty",
        "--faults",
        "forbidden=1@key=data/2024/a.json,not_found=1@key=data/2024/b.csv",
    )
    try:
        server.bucket("bkt", {**SAMPLE, "data/../escape.json": b"x"})
        success, failures = download("s3://bkt/data/", dest, endpoint_url=server.endpoint)
        assert success == 3
        by_key = dict(failures)
        assert set(by_key) == {"data/2024/a.json", "data/2024/b.csv", "data/../escape.json"}
        assert isinstance(by_key["data/2024/a.json"], exc.PermissionError)
        assert by_key["data/2024/a.json"].code == "AccessDenied"
        assert "data/2024/a.json" in str(by_key["data/2024/a.json"])
        assert isinstance(by_key["data/2024/b.csv"], exc.DownloadError)
        assert by_key["data/2024/b.csv"].code == "NoSuchKey"
        assert isinstance(by_key["data/../escape.json"], exc.PathTraversalError)
        assert set(tree(dest)) == {"2024/sub/c.json", "2023/d.json", "tmp/e.json"}
        assert not (tmp_path / "escape.json").exists()
    finally:
        server.stop()


def test_a_body_cut_off_leaves_no_temporary_file(tmp_path: Path, aws_env: None, dest: Path) -> None:
    # Cut before the body's first byte, every time: no progress, so retries=0 gives up at once.
    # (A body that breaks off after some bytes is resumed from there, however often: with a cut
    # after every 1,000 bytes of 5 MB, the download was still resuming six minutes in.)
    server = start_server(tmp_path / "cut", "--faults", "cut_body_after=1:0@key=big")
    try:
        server.bucket("bkt", {"big": b"x" * 5_000_000, "small": b"ok"})
        success, failures = download("s3://bkt/", dest, retries=0, endpoint_url=server.endpoint)
        assert success == 1
        assert [key for key, _ in failures] == ["big"]
        assert isinstance(failures[0][1], exc.DownloadError)
        assert tree(dest) == {"small": b"ok"}
        assert not temporary_files(dest)
    finally:
        server.stop()


def test_failures_and_exceptions_pickle(tmp_path: Path, aws_env: None, dest: Path) -> None:
    server = start_server(tmp_path / "faulty", "--faults", "forbidden=1@key=data/2024/a.json")
    try:
        server.bucket("bkt", SAMPLE)
        _, failures = download("s3://bkt/data/2024/", dest, endpoint_url=server.endpoint)
        assert len(failures) == 1
        copy = pickle.loads(pickle.dumps(failures))
        key, error = copy[0]
        assert key == "data/2024/a.json"
        assert type(error) is exc.PermissionError
        assert (error.key, error.code, str(error)) == (failures[0][1].key, "AccessDenied", str(failures[0][1]))
    finally:
        server.stop()
    for error in (exc.RegexError("bad"), exc.DownloadError("x", key="k", code="C"), exc.NoCredentialsError()):
        again = pickle.loads(pickle.dumps(error))
        assert (type(again), str(again), again.key, again.code) == (type(error), str(error), error.key, error.code)


def test_an_exception_in_a_callback_stops_the_run_and_propagates(tmp_path: Path, aws_env: None, dest: Path) -> None:
    server = start_server(
        tmp_path / "slow",
        "--get-latency-ms",
        "30",
        generate=["--bucket", "many", "--objects", "300", "--size", "100000"],
    )
    try:
        calls = 0

        class Boom(Exception):
            pass

        def on_complete(key: str) -> None:
            nonlocal calls
            calls += 1
            if calls == 3:
                raise Boom(key)

        started = time.monotonic()
        with pytest.raises(Boom):
            download("s3://many/", dest, on_complete=on_complete, concurrent_downloads=4, endpoint_url=server.endpoint)
        assert time.monotonic() - started < 5
        assert calls == 3, "no callback after the one that raised"
        assert not temporary_files(dest)
        assert len(list(dest.iterdir())) < 300, "the run stopped"
    finally:
        server.stop()
