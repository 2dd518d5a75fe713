"""Fixtures: the test kit's S3 server (``s3fetch-testkit serve``) on 127.0.0.1, over HTTP with
SigV4, started per test, and helpers to fill it and to inspect download directories."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import boto3
import pytest
from botocore.config import Config

ACCESS_KEY = "s3fetch-test"
SECRET_KEY = "s3fetch-test-secret"
REPO = Path(__file__).resolve().parents[3]


def testkit_binary() -> str:
    """The test kit's binary: ``$S3FETCH_TESTKIT``, else the workspace's build of it."""
    explicit = os.environ.get("S3FETCH_TESTKIT")
    if explicit:
        return explicit
    for profile in ("debug", "release"):
        candidate = REPO / "target" / profile / "s3fetch-testkit"
        if candidate.exists():
            return str(candidate)
    found = shutil.which("s3fetch-testkit")
    if found:
        return found
    pytest.exit("s3fetch-testkit not found: run `cargo build -p s3fetch-testkit` or set S3FETCH_TESTKIT", 2)


@dataclass
class Server:
    """A running test server."""

    endpoint: str
    data: Path
    process: subprocess.Popen[bytes]
    stats_file: Path
    log: Path
    stats: dict[str, object] = field(default_factory=dict)
    #: The CA certificate file of a TLS server (``--tls``).
    ca_file: str | None = None

    def client(self, **config: object) -> object:
        """A boto3 client for this server (path-style, the server's keys, its CA)."""
        return boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            aws_access_key_id=ACCESS_KEY,
            aws_secret_access_key=SECRET_KEY,
            region_name="us-east-1",
            verify=self.ca_file,
            config=Config(s3={"addressing_style": "path"}, **config),
        )

    def bucket(self, name: str, objects: dict[str, bytes]) -> None:
        """Creates bucket ``name`` holding ``objects``."""
        client = self.client()
        client.create_bucket(Bucket=name)
        for key, body in objects.items():
            client.put_object(Bucket=name, Key=key, Body=body)

    def requests(self) -> dict[str, int]:
        """The requests answered so far, by S3 operation (SIGUSR1 makes the server rewrite its
        stats file)."""
        self.stats_file.unlink(missing_ok=True)
        self.process.send_signal(signal.SIGUSR1)
        deadline = time.monotonic() + 10
        while not self.stats_file.exists():
            if time.monotonic() > deadline:
                raise RuntimeError("the server wrote no stats")
            time.sleep(0.01)
        counts: dict[str, int] = json.loads(self.stats_file.read_text())["requests"]
        return counts

    def stop(self) -> dict[str, object]:
        """Stops the server; returns its request and fault counts."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            self.process.wait(timeout=10)
        if self.stats_file.exists():
            self.stats = json.loads(self.stats_file.read_text())
        return self.stats


def start_server(work: Path, *extra: str, generate: list[str] | None = None) -> Server:
    """Starts a server on a fresh data directory under ``work``; ``generate`` writes a sample
    bucket into it first (``s3fetch-testkit generate`` arguments)."""
    binary = testkit_binary()
    data = work / "data"
    data.mkdir(parents=True, exist_ok=True)
    if generate is not None:
        subprocess.run([binary, "generate", "--data", str(data), *generate], check=True, capture_output=True)
    stats_file = work / "stats.json"
    log = work / "server.log"
    endpoint_file = work / "endpoint"
    with open(endpoint_file, "wb") as out, open(log, "wb") as err:
        process = subprocess.Popen(
            [binary, "serve", "--data", str(data), "--port", "0", "--stats-file", str(stats_file), *extra],
            stdout=out,
            stderr=err,
        )
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        text = endpoint_file.read_text() if endpoint_file.exists() else ""
        lines = dict(line.split("=", 1) for line in text.splitlines() if "=" in line)
        tls = "--tls" in extra
        if "endpoint" in lines and (not tls or "ca_file" in lines):
            return Server(lines["endpoint"], data, process, stats_file, log, ca_file=lines.get("ca_file"))
        if process.poll() is not None:
            raise RuntimeError(f"the test server exited: {log.read_text()}")
        time.sleep(0.02)
    process.kill()
    raise RuntimeError("the test server did not start")


@pytest.fixture
def aws_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Credentials of the test server in the environment; nothing from the user's setup."""
    for name in list(os.environ):
        if name.startswith("AWS_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", ACCESS_KEY)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent/s3fetch-test-config")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/s3fetch-test-credentials")


@pytest.fixture
def server(tmp_path: Path, aws_env: None) -> Iterator[Server]:
    """A fresh, empty server."""
    running = start_server(tmp_path / "server")
    yield running
    running.stop()


@pytest.fixture
def dest(tmp_path: Path) -> Path:
    """An empty download directory."""
    path = tmp_path / "dest"
    path.mkdir()
    return path


def tree(root: Path) -> dict[str, bytes]:
    """Every file under ``root`` by relative path (``/``-separated), with its contents."""
    return {
        str(path.relative_to(root)): path.read_bytes()
        for path in sorted(root.rglob("*"))
        if path.is_file() or path.is_symlink()
    }


def temporary_files(root: Path) -> list[str]:
    """Temporary files of s3fetch left under ``root`` (there must be none)."""
    return [str(p) for p in root.rglob("*") if p.name.startswith(".s3fetch-") and p.name != ".s3fetch-etags.jsonl"]


SAMPLE = {
    "data/2024/a.json": b'{"a": 1}',
    "data/2024/b.csv": b"b,1\n",
    "data/2024/sub/c.json": b'{"c": 3}',
    "data/2023/d.json": b'{"d": 4}',
    "data/tmp/e.json": b'{"e": 5}',
    "data/marker/": b"",
    "other/f.json": b'{"f": 6}',
}


@pytest.fixture
def sample(server: Server) -> Server:
    """The server with bucket ``bkt`` holding :data:`SAMPLE`."""
    server.bucket("bkt", SAMPLE)
    return server
