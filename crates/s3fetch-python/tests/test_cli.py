"""The wheel's ``s3fetch`` command and ``python -m s3fetch`` are the Rust CLI."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from conftest import SAMPLE, Server, tree


def commands() -> list[list[str]]:
    script = shutil.which("s3fetch", path=os.path.dirname(sys.executable))
    assert script, "the wheel installs the s3fetch command beside the interpreter"
    return [[script], [sys.executable, "-m", "s3fetch"]]


def test_the_command_downloads_and_prints_each_key(sample: Server, tmp_path: Path) -> None:
    for i, command in enumerate(commands()):
        dest = tmp_path / f"dest{i}"
        dest.mkdir()
        out = subprocess.run(
            [*command, "s3://bkt/data/2024/", "--download-dir", str(dest), "--endpoint-url", sample.endpoint],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert out.returncode == 0, out.stderr
        assert set(out.stdout.split()) == {"data/2024/a.json", "data/2024/b.csv", "data/2024/sub/c.json"}
        assert tree(dest) == {k.removeprefix("data/2024/"): v for k, v in SAMPLE.items() if k.startswith("data/2024/")}


def test_the_command_has_the_clis_exit_codes_and_help(sample: Server, tmp_path: Path) -> None:
    for command in commands():
        usage = subprocess.run(
            [*command, "s3://bkt/", "-c", "0", "--download-dir", str(tmp_path)], capture_output=True, text=True
        )
        assert usage.returncode == 2
        assert "--concurrent-downloads must be at least 1" in usage.stderr
        missing = subprocess.run(
            [*command, "s3://no-such-bucket/", "--download-dir", str(tmp_path), "--endpoint-url", sample.endpoint],
            capture_output=True,
            text=True,
        )
        assert missing.returncode == 1
        assert "NoSuchBucket" in missing.stderr
        helped = subprocess.run([*command, "--help"], capture_output=True, text=True)
        assert helped.returncode == 0
        assert "Exit codes:" in helped.stdout
        version = subprocess.run([*command, "--version"], capture_output=True, text=True)
        assert version.stdout.startswith("s3fetch ")
