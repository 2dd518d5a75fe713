"""Runs you can repeat: skip_existing and sync, kept modification times, failed_keys and
keys_from, JSON lines — the same options as the CLI's flags, against the test kit's server."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import SAMPLE, Server, start_server, tree
from s3fetch import DownloadResult, download, plan
from s3fetch.exceptions import InvalidOptionError

HOUR_AGO = time.time() - 3600


def gets(server: Server) -> int:
    return server.requests().get("GetObject", 0)


def test_sync_and_skip_existing_send_no_get_for_up_to_date_files(sample: Server, dest: Path) -> None:
    assert download("s3://bkt/data/", dest, endpoint_url=sample.endpoint) == (5, [])
    before = gets(sample)
    for option in ("sync", "skip_existing"):
        results: list[DownloadResult] = []
        success, failures = download(
            "s3://bkt/data/", dest, endpoint_url=sample.endpoint, on_result=results.append, **{option: True}
        )
        assert (success, failures) == (0, []), option
        assert gets(sample) == before, f"{option}: no GET"
        assert len(results) == 5 and all(r.skipped and r.success for r in results), results
        assert {r.file_size for r in results} == {len(SAMPLE["data/2024/a.json"]), len(SAMPLE["data/2024/b.csv"])}

    # Same size, another modification time: sync fetches it again, skip_existing does not.
    a = dest / "2024" / "a.json"
    a.write_bytes(b'{"A": 1}')
    os.utime(a, (HOUR_AGO, HOUR_AGO))
    assert download("s3://bkt/data/", dest, endpoint_url=sample.endpoint, skip_existing=True)[0] == 0
    assert a.read_bytes() == b'{"A": 1}'
    completed: list[str] = []
    success, _ = download("s3://bkt/data/", dest, endpoint_url=sample.endpoint, sync=True, on_complete=completed.append)
    assert success == 1
    assert completed == ["data/2024/a.json"], "on_complete: downloaded objects only"
    assert a.read_bytes() == SAMPLE["data/2024/a.json"]


def test_files_take_the_objects_last_modified_unless_preserve_mtime_is_off(sample: Server, dest: Path) -> None:
    listing = sample.client().list_objects_v2(Bucket="bkt", Prefix="data/2024/a.json")  # type: ignore[attr-defined]
    last_modified = listing["Contents"][0]["LastModified"].timestamp()
    download("s3://bkt/data/2024/a.json", dest, endpoint_url=sample.endpoint)
    # The listing's time has milliseconds, and the file takes it to the millisecond: a file that
    # kept the time of its download would differ even within the second the object was written.
    assert abs((dest / "a.json").stat().st_mtime - last_modified) < 0.0005
    other = dest / "other"
    other.mkdir()
    started = time.time()
    download("s3://bkt/data/2024/a.json", other, endpoint_url=sample.endpoint, preserve_mtime=False)
    assert (other / "a.json").stat().st_mtime >= started - 1


def test_failed_keys_then_keys_from_rerun_just_the_failures(dest: Path, tmp_path: Path, aws_env: None) -> None:
    listing = tmp_path / "failed.txt"
    faulty = start_server(tmp_path / "faulty", "--faults", "forbidden=1@key=data/2024/b.csv")
    try:
        faulty.bucket("bkt", SAMPLE)
        success, failures = download("s3://bkt/data/", dest, endpoint_url=faulty.endpoint, failed_keys=listing)
        assert success == 4 and [k for k, _ in failures] == ["data/2024/b.csv"]
    finally:
        faulty.stop()
    assert listing.read_text() == "data/2024/b.csv\n"

    healthy = start_server(tmp_path / "healthy")
    try:
        healthy.bucket("bkt", SAMPLE)
        before = healthy.requests()
        success, failures = download("s3://bkt/data/", dest, endpoint_url=healthy.endpoint, keys_from=str(listing))
        after = healthy.requests()
        assert (success, failures) == (1, [])
        assert after.get("ListObjectsV2", 0) == before.get("ListObjectsV2", 0), "no listing"
        assert after.get("GetObject", 0) - before.get("GetObject", 0) == 1
    finally:
        healthy.stop()
    assert tree(dest)["2024/b.csv"] == SAMPLE["data/2024/b.csv"]

    listing.write_text("data/2024/a.json\nother/f.json\n")
    with pytest.raises(InvalidOptionError, match=r"keys_from.*line 2.*other/f\.json"):
        download("s3://bkt/data/", dest, endpoint_url="http://127.0.0.1:9", keys_from=listing)


def test_output_json_writes_one_object_per_event(sample: Server, dest: Path) -> None:
    # A child process, so its stdout is the engine's (as for a script's caller).
    code = (
        "import sys; from s3fetch import download; "
        "n, _ = download('s3://bkt/data/2024/', sys.argv[1], endpoint_url=sys.argv[2], output='json'); "
        "print(n, file=sys.stderr)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, str(dest), sample.endpoint], capture_output=True, text=True, timeout=60, check=True
    )
    lines = [json.loads(line) for line in out.stdout.splitlines()]
    events = [line["event"] for line in lines]
    assert events.count("found") == 3 and events.count("downloaded") == 3 and events[-1] == "summary"
    downloaded = {line["key"]: line for line in lines if line["event"] == "downloaded"}
    assert downloaded["data/2024/b.csv"]["size"] == len(SAMPLE["data/2024/b.csv"])
    assert downloaded["data/2024/b.csv"]["path"] == str(dest.resolve() / "b.csv")
    assert lines[-1]["downloaded"] == 3 and lines[-1]["failed"] == 0
    assert out.stderr.strip() == "3"
    with pytest.raises(InvalidOptionError, match="output"):
        download("s3://bkt/data/", dest, endpoint_url=sample.endpoint, output="xml")


def test_every_cli_flag_is_a_keyword_of_download() -> None:
    """The rule: each option exists in the CLI and the Python API with the same name."""
    import inspect

    help_text = subprocess.run(
        [sys.executable, "-m", "s3fetch", "--help"], capture_output=True, text=True, check=True
    ).stdout
    flags = set(re.findall(r"--([a-z][a-z-]+)", help_text))
    # Only the command's own: how it prints, its help, and an alias.
    cli_only = {"help", "version", "quiet", "progress", "debug", "list-only", "threads", "download-dir"}
    parameters = inspect.signature(download).parameters
    # `s3fetch plan`'s own flags (its example is in the command's help): keywords of plan().
    plan_help = subprocess.run(
        [sys.executable, "-m", "s3fetch", "plan", "--help"], capture_output=True, text=True, check=True
    ).stdout
    options = plan_help.split("Options:")[1].split("Examples:")[0]
    plan_flags = set(re.findall(r"^\s+--([a-z][a-z-]+)", options, re.M)) - {"help"}
    assert {"shards", "inventory", "max-requests", "endpoint-url"} <= plan_flags
    plan_parameters = inspect.signature(plan).parameters
    for flag in sorted(plan_flags):
        assert flag.replace("-", "_") in plan_parameters, f"plan --{flag} has no keyword"
    plan_only = {f for f in plan_flags if f.replace("-", "_") not in parameters}
    for flag in sorted(flags - cli_only - plan_only):
        name = flag.replace("-", "_")
        name = {"no_preserve_mtime": "preserve_mtime", "no_resume": "resume"}.get(name, name)
        assert name in parameters, f"--{flag} has no keyword {name!r}"
    assert "download_dir" in parameters


def test_lock_runs_wait_for_the_holder_then_fetch_each_object_once(
    sample: Server, dest: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import fcntl
    import threading

    # The test holds the directory's lock, as a first run would, naming a holder.
    held = open(dest / ".s3fetch.lock", "a+")  # held across the threads
    fcntl.flock(held, fcntl.LOCK_EX)
    held.write('{"pid": 4242, "host": "rank-zero"}\n')
    held.flush()
    outcomes: list[tuple[int, list[object], set[str]]] = []

    def rank() -> None:
        results: list[DownloadResult] = []
        success, failures = download(
            "s3://bkt/data/", dest, endpoint_url=sample.endpoint, lock=True, on_result=results.append
        )
        outcomes.append((success, list(failures), {r.key for r in results if r.success}))

    ranks = [threading.Thread(target=rank) for _ in range(4)]
    for thread in ranks:
        thread.start()
    said = ""
    deadline = time.monotonic() + 30
    while said.count("s3fetch: waiting for s3fetch pid 4242 on rank-zero") < len(ranks):
        assert time.monotonic() < deadline, f"not every run said it waits: {said!r}"
        said += capsys.readouterr().err
        time.sleep(0.01)
    assert gets(sample) == 0, "nothing fetched while the lock is held"
    held.close()
    for thread in ranks:
        thread.join(60)
    wanted = {key for key in SAMPLE if key.startswith("data/") and not key.endswith("/")}
    assert [(failures, keys) for _, failures, keys in outcomes] == [([], wanted)] * len(ranks)
    assert sum(success for success, _, _ in outcomes) == len(wanted), "each object downloaded once"
    assert gets(sample) == len(wanted)
    assert "waiting for" not in capsys.readouterr().err, "said once per run"
    assert set(tree(dest)) == {key.removeprefix("data/") for key in wanted}, "no lock file, no temporary file"


def test_lock_needs_preserve_mtime(sample: Server, dest: Path) -> None:
    with pytest.raises(InvalidOptionError, match="lock"):
        download("s3://bkt/data/", dest, endpoint_url=sample.endpoint, lock=True, preserve_mtime=False)
