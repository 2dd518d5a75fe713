"""The Python examples of s3fetch 2.1.2's README, verbatim, against the test kit's server;
then those of this repository's README and docs/, read from the files.

Only the environment points them at the server (``AWS_ENDPOINT_URL``, keys, and a
``production`` profile for the boto3 example), as a user's environment points them at AWS.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import ACCESS_KEY, REPO, SECRET_KEY, Server

EXAMPLES = {
    "basic": """
from s3fetch import download

success_count, failures = download("s3://my-bucket/data/2023/")

print(f"Downloaded {success_count} objects successfully")
if failures:
    print(f"{len(failures)} objects failed to download")
""",
    "options": """
from s3fetch import download

success_count, failures = download(
    "s3://my-bucket/data/",
    download_dir="./downloads",   # local destination (default: cwd)
    regex=r"\\.csv$",              # only download .csv files
    threads=20,                   # concurrent downloads (default: CPU count)
    dry_run=False,                # set True to list without downloading
)
""",
    "logging": """
import logging

# Option 1: Reduce S3Fetch output
logging.getLogger("s3fetch").setLevel(logging.WARNING)

# Option 2: Disable S3Fetch logging completely
logging.getLogger("s3fetch").disabled = True
""",
    "tracker": """
from s3fetch import download
from s3fetch.utils import ProgressTracker

tracker = ProgressTracker()
success_count, failures = download(
    "s3://my-bucket/data/",
    progress_tracker=tracker,
)

stats = tracker.get_stats()
print(f"Found:      {stats['objects_found']} objects")
print(f"Downloaded: {stats['objects_downloaded']} objects")
print(f"Total size: {stats['bytes_downloaded'] / (1024 * 1024):.1f} MB")
print(f"Speed:      {stats['download_speed_mbps']:.2f} MB/s")
""",
    "client": """
import boto3
from s3fetch import download

session = boto3.Session(profile_name="production")
client = session.client("s3", region_name="us-west-2")

success_count, failures = download(
    "s3://my-bucket/data/",
    client=client,
)
""",
    "on_complete": """
from s3fetch import download

def on_object_complete(key: str) -> None:
    print(f"Finished: {key}")

success_count, failures = download(
    "s3://my-bucket/data/",
    on_complete=on_object_complete,
)
""",
    "protocol": '''
from s3fetch import download, ProgressProtocol

class MyTracker:
    """Minimal tracker that satisfies ProgressProtocol."""

    def increment_found(self) -> None:
        print(".", end="", flush=True)  # one dot per object listed

    def increment_downloaded(self, bytes_count: int) -> None:
        print(f" +{bytes_count // 1024}KB", end="", flush=True)

success_count, failures = download(
    "s3://my-bucket/data/",
    progress_tracker=MyTracker(),
)
''',
}

OBJECTS = {
    "data/2023/jan.csv": b"a,b\n" * 600,
    "data/2023/feb.json": b"{}",
    "data/2024/mar.csv": b"c,d\n",
}


@pytest.fixture
def bucket(server: Server) -> Server:
    server.bucket("my-bucket", OBJECTS)
    return server


@pytest.mark.parametrize("name", list(EXAMPLES))
def test_the_original_readme_example_runs_unchanged(name: str, bucket: Server, tmp_path: Path) -> None:
    work = tmp_path / "work"
    (work / "downloads").mkdir(parents=True)
    # The boto3 example's profile: the server's endpoint and keys, as a user's profile would
    # carry AWS's (botocore reads endpoint_url from profiles).
    config = tmp_path / "config"
    config.write_text(f"[profile production]\nregion = us-west-2\nendpoint_url = {bucket.endpoint}\n")
    credentials = tmp_path / "credentials"
    credentials.write_text(f"[production]\naws_access_key_id = {ACCESS_KEY}\naws_secret_access_key = {SECRET_KEY}\n")
    env = {
        **os.environ,
        "AWS_ENDPOINT_URL": bucket.endpoint,
        "AWS_CONFIG_FILE": str(config),
        "AWS_SHARED_CREDENTIALS_FILE": str(credentials),
    }
    if name == "client":  # the profile, not the environment's keys, must be what works
        env.pop("AWS_ACCESS_KEY_ID")
        env.pop("AWS_SECRET_ACCESS_KEY")
        env.pop("AWS_ENDPOINT_URL")
    out = subprocess.run(
        [sys.executable, "-c", EXAMPLES[name]], cwd=work, env=env, capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0, out.stderr
    files = {str(p.relative_to(work)) for p in work.rglob("*") if p.is_file()}
    expected = {
        "basic": {"jan.csv", "feb.json"},
        "options": {"downloads/2023/jan.csv", "downloads/2024/mar.csv"},
        "logging": set(),
    }.get(name, {"2023/jan.csv", "2023/feb.json", "2024/mar.csv"})
    assert files == expected
    if name == "basic":
        assert "Downloaded 2 objects successfully" in out.stdout
    if name == "tracker":
        assert "Found:      3 objects" in out.stdout and "Downloaded: 3 objects" in out.stdout
    if name == "on_complete":
        assert sorted(out.stdout.split("\n")[:-1]) == sorted(f"Finished: {k}" for k in OBJECTS)
    if name == "protocol":
        assert out.stdout.count(".") == 3 and out.stdout.count("+") == 3


def our_examples() -> dict[str, str]:
    """The ```python blocks of README.md and docs/*.md, by file and number."""
    found = {}
    for doc in [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]:
        blocks = re.findall(r"^```python\n(.*?)^```", doc.read_text(encoding="utf-8"), re.M | re.S)
        for n, block in enumerate(blocks, 1):
            found[f"{doc.relative_to(REPO)}:{n}"] = block
    return found


def test_our_docs_have_python_examples() -> None:
    assert "README.md:1" in our_examples()


@pytest.mark.parametrize("name", list(our_examples()))
def test_the_python_examples_of_our_docs_run(name: str, bucket: Server, tmp_path: Path) -> None:
    """As the original's: against the server the environment names, into a fresh directory."""
    work = tmp_path / "work"
    (work / "downloads").mkdir(parents=True)
    env = {**os.environ, "AWS_ENDPOINT_URL": bucket.endpoint}
    out = subprocess.run(
        [sys.executable, "-c", our_examples()[name]], cwd=work, env=env, capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0, out.stderr
    assert any(p.is_file() for p in work.rglob("*")), f"{name} downloaded nothing:\n{out.stdout}"
