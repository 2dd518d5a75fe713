"""download(): return values, where files land, the regex, dry runs, callbacks and trackers."""

from __future__ import annotations

import inspect
import sys
import threading
import time
from pathlib import Path

import pytest
import s3fetch
from conftest import SAMPLE, Server, start_server, temporary_files, tree
from s3fetch import DownloadResult, ProgressProtocol, ProgressTracker, download
from s3fetch.exceptions import InvalidOptionError


def test_downloads_a_prefix_and_returns_the_count(sample: Server, dest: Path) -> None:
    success, failures = download("s3://bkt/data/", dest, endpoint_url=sample.endpoint)
    assert (success, failures) == (5, [])
    expected = {k.removeprefix("data/"): v for k, v in SAMPLE.items() if k.startswith("data/") and not k.endswith("/")}
    assert tree(dest) == expected
    assert not (dest / "marker").exists(), "directory markers are skipped"


def test_prefix_is_rolled_up_to_its_last_delimiter(sample: Server, dest: Path) -> None:
    # The original's rule: prefix `data/20` keeps `2024/...` and `2023/...`.
    success, _ = download("s3://bkt/data/20", str(dest), endpoint_url=sample.endpoint)
    assert success == 4
    assert set(tree(dest)) == {"2024/a.json", "2024/b.csv", "2024/sub/c.json", "2023/d.json"}


def test_an_exact_key_lands_as_its_file_name(sample: Server, dest: Path) -> None:
    assert download("s3://bkt/data/2024/sub/c.json", dest, endpoint_url=sample.endpoint) == (1, [])
    assert tree(dest) == {"c.json": b'{"c": 3}'}


def test_relative_download_dir_and_the_default(sample: Server, dest: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(dest.parent)
    assert download("s3://bkt/other/", Path(dest.name), endpoint_url=sample.endpoint)[0] == 1
    assert tree(dest) == {"f.json": b'{"f": 6}'}
    monkeypatch.chdir(dest)
    assert download("s3://bkt/data/2023/", endpoint_url=sample.endpoint)[0] == 1
    assert (dest / "d.json").read_bytes() == b'{"d": 4}'


def test_existing_files_are_overwritten(sample: Server, dest: Path) -> None:
    (dest / "f.json").write_bytes(b"stale and longer than the object")
    assert download("s3://bkt/other/", dest, endpoint_url=sample.endpoint) == (1, [])
    assert (dest / "f.json").read_bytes() == b'{"f": 6}'


def test_regex_is_searched_in_the_full_key(sample: Server, dest: Path) -> None:
    success, _ = download("s3://bkt/", dest, regex=r"^data/.*\.json$", endpoint_url=sample.endpoint)
    assert success == 4
    assert set(tree(dest)) == {"data/2024/a.json", "data/2024/sub/c.json", "data/2023/d.json", "data/tmp/e.json"}


def test_regex_with_look_around_as_in_python_re(sample: Server, dest: Path) -> None:
    # Negative look-ahead (not under tmp/) and look-behind (a file directly after a year).
    success, _ = download("s3://bkt/", dest, regex=r"^data/(?!tmp/).*(?<=\d/)\w+\.json$", endpoint_url=sample.endpoint)
    assert success == 2
    assert set(tree(dest)) == {"data/2024/a.json", "data/2023/d.json"}


def test_regex_with_a_backreference(server: Server, dest: Path) -> None:
    server.bucket("bkt", {"x/cat/cat.txt": b"1", "x/cat/dog.txt": b"2"})
    assert download("s3://bkt/x/", dest, regex=r"/(\w+)/\1\.txt$", endpoint_url=server.endpoint)[0] == 1
    assert set(tree(dest)) == {"cat/cat.txt"}


def test_dry_run_writes_nothing_and_reports_each_key(sample: Server, dest: Path) -> None:
    keys: list[str] = []
    tracker = ProgressTracker()
    empty = dest / "empty"
    empty.mkdir()
    success, failures = download(
        "s3://bkt/data/",
        empty,
        dry_run=True,
        on_complete=keys.append,
        progress_tracker=tracker,
        endpoint_url=sample.endpoint,
    )
    assert (success, failures) == (5, [])
    assert sorted(keys) == sorted(k for k in SAMPLE if k.startswith("data/") and not k.endswith("/"))
    assert list(empty.iterdir()) == [], "no files and no directories"
    stats = tracker.get_stats()
    assert (stats["objects_found"], stats["objects_downloaded"], stats["bytes_downloaded"]) == (5, 0, 0)
    requests = sample.stop()["requests"]
    assert requests.get("GetObject", 0) == 0, requests


def test_on_complete_gets_each_full_key_once_its_file_is_on_disk(sample: Server, dest: Path) -> None:
    seen: list[tuple[str, bytes]] = []
    calls_running = threading.Event()

    def on_complete(key: str) -> None:
        calls_running.set()
        path = dest / key.removeprefix("data/")
        seen.append((key, path.read_bytes()))  # complete on disk, under its final name
        time.sleep(0.01)  # a slow callback: download() still waits for every call

    success, _ = download("s3://bkt/data/", dest, on_complete=on_complete, endpoint_url=sample.endpoint)
    assert success == 5 == len(seen)
    assert {k: v for k, v in seen} == {k: v for k, v in SAMPLE.items() if k.startswith("data/") and not k.endswith("/")}


def test_on_complete_is_not_called_for_failed_keys(sample: Server, dest: Path, tmp_path: Path) -> None:
    faulty = start_server(tmp_path / "faulty", "--faults", "forbidden=1@key=data/2024/a.json")
    try:
        faulty.bucket("bkt", SAMPLE)
        keys: list[str] = []
        success, failures = download("s3://bkt/data/", dest, on_complete=keys.append, endpoint_url=faulty.endpoint)
        assert success == 4 and len(keys) == 4
        assert "data/2024/a.json" not in keys
        assert [key for key, _ in failures] == ["data/2024/a.json"]
    finally:
        faulty.stop()


def test_on_result_gets_a_download_result_per_object(sample: Server, dest: Path, tmp_path: Path) -> None:
    faulty = start_server(tmp_path / "faulty", "--faults", "not_found=1@key=data/2024/b.csv")
    try:
        faulty.bucket("bkt", SAMPLE)
        results: list[DownloadResult] = []
        download("s3://bkt/data/2024/", dest, on_result=results.append, endpoint_url=faulty.endpoint)
        by_key = {r.key: r for r in results}
        assert set(by_key) == {"data/2024/a.json", "data/2024/b.csv", "data/2024/sub/c.json"}
        good = by_key["data/2024/a.json"]
        assert good.success and good.error is None and good.file_size == len(SAMPLE["data/2024/a.json"])
        assert good.dest_filename == dest.resolve() / "a.json"
        bad = by_key["data/2024/b.csv"]
        assert not bad.success and bad.file_size == 0
        assert isinstance(bad.error, s3fetch.exceptions.DownloadError)
        assert bad.error.key == "data/2024/b.csv"
    finally:
        faulty.stop()


def test_the_builtin_tracker_can_be_polled_from_another_thread(tmp_path: Path, aws_env: None, dest: Path) -> None:
    # 400 objects on a server that answers each GET after 20 ms: the run takes a while.
    server = start_server(
        tmp_path / "slow",
        "--get-latency-ms",
        "20",
        generate=["--bucket", "many", "--objects", "400", "--size", "1000", "--folders", "4"],
    )
    try:
        tracker = ProgressTracker()
        polls: list[dict[str, float]] = []
        stop = threading.Event()

        def poll() -> None:
            while not stop.is_set():
                polls.append(tracker.get_stats())
                time.sleep(0.005)

        poller = threading.Thread(target=poll)
        poller.start()
        try:
            success, _ = download(
                "s3://many/", dest, progress_tracker=tracker, concurrent_downloads=8, endpoint_url=server.endpoint
            )
        finally:
            stop.set()
            poller.join()
        assert success == 400
        stats = tracker.get_stats()
        assert stats["objects_found"] == stats["objects_downloaded"] == 400
        assert stats["bytes_downloaded"] == 400 * 1000
        assert stats["download_speed_mbps"] > 0
        middle = [p for p in polls if 0 < p["objects_downloaded"] < 400]
        assert middle, "the poller saw the run in progress (the GIL was free)"
        for name in ("objects_found", "objects_downloaded", "bytes_downloaded"):
            values = [p[name] for p in polls]
            assert values == sorted(values), f"{name} never goes backwards"
    finally:
        server.stop()


def test_a_duck_typed_tracker(sample: Server, dest: Path) -> None:
    class Counting:
        def __init__(self) -> None:
            self.found = 0
            self.sizes: list[int] = []

        def increment_found(self) -> None:
            self.found += 1

        def increment_downloaded(self, bytes_count: int) -> None:
            self.sizes.append(bytes_count)

    tracker = Counting()
    assert isinstance(tracker, ProgressProtocol)
    download("s3://bkt/data/2024/", dest, progress_tracker=tracker, endpoint_url=sample.endpoint)
    assert tracker.found == 3
    assert sorted(tracker.sizes) == sorted(
        len(SAMPLE[k]) for k in ("data/2024/a.json", "data/2024/b.csv", "data/2024/sub/c.json")
    )


def test_progress_draws_a_line_without_tqdm(
    sample: Server, dest: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "tqdm.auto", None)  # as if tqdm were not installed
    tracker = ProgressTracker()
    success, failures = download(
        "s3://bkt/data/2024/", dest, progress=True, progress_tracker=tracker, endpoint_url=sample.endpoint
    )
    assert (success, failures) == (3, [])
    err = capsys.readouterr().err
    assert err.endswith("\n"), err
    assert err.rstrip("\n").split("\r")[-1].startswith("s3fetch: 3 of 3 files downloaded, "), err
    # The caller's tracker is fed beside the bar.
    assert (tracker.objects_found, tracker.objects_downloaded) == (3, 3)


def test_progress_uses_tqdm_when_installed(sample: Server, dest: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("tqdm")
    download("s3://bkt/data/2024/", dest, progress=True, endpoint_url=sample.endpoint)
    err = capsys.readouterr().err
    assert "s3fetch" in err and "3/3" in err, err


def test_progress_must_be_a_bool(sample: Server, dest: Path) -> None:
    with pytest.raises(InvalidOptionError, match="progress must be True or False"):
        download("s3://bkt/data/2024/", dest, progress="fancy", endpoint_url=sample.endpoint)  # type: ignore[arg-type]


def test_a_tracker_without_the_methods_is_refused(sample: Server, dest: Path) -> None:
    with pytest.raises(InvalidOptionError, match="increment_found"):
        download("s3://bkt/", dest, progress_tracker=object(), endpoint_url=sample.endpoint)


def test_threads_and_concurrent_downloads(sample: Server, dest: Path) -> None:
    assert download("s3://bkt/data/", dest, threads=1, endpoint_url=sample.endpoint)[0] == 5
    assert download("s3://bkt/data/", dest, concurrent_downloads=2, endpoint_url=sample.endpoint)[0] == 5
    with pytest.raises(InvalidOptionError, match="not both"):
        download("s3://bkt/", dest, threads=2, concurrent_downloads=3, endpoint_url=sample.endpoint)
    for bad in (0, -4):
        with pytest.raises(InvalidOptionError, match="concurrent_downloads must be at least 1"):
            download("s3://bkt/", dest, threads=bad, endpoint_url=sample.endpoint)


def test_every_cli_option_is_a_keyword(sample: Server, dest: Path) -> None:
    parameters = inspect.signature(download).parameters
    for name in (
        "regex",
        "threads",
        "region",
        "delimiter",
        "dry_run",
        "client",
        "on_complete",
        "progress_tracker",
        "on_result",
        "concurrent_downloads",
        "list_concurrency",
        "multipart_threshold",
        "part_size",
        "retries",
        "idle_timeout",
        "checksum_mode",
        "endpoint_url",
        "profile",
        "no_sign_request",
        "force_path_style",
        "ca_bundle",
    ):
        assert parameters[name].kind is inspect.Parameter.KEYWORD_ONLY, name
    success, failures = download(
        "s3://bkt/data/",
        dest,
        list_concurrency=1,
        multipart_threshold="1KiB",
        part_size=4,
        retries=0,
        idle_timeout=5,
        checksum_mode="disabled",
        delimiter="/",
        region="us-east-1",
        force_path_style=True,
        endpoint_url=sample.endpoint,
    )
    assert (success, failures) == (5, [])
    assert tree(dest)["2024/a.json"] == SAMPLE["data/2024/a.json"]


def test_large_objects_come_in_ranged_parts(server: Server, dest: Path) -> None:
    body = bytes(range(256)) * 4096 + b"tail"  # 1 MiB + 4 bytes
    server.bucket("bkt", {"big": body})
    assert download(
        "s3://bkt/big", dest, multipart_threshold="256KiB", part_size=256 * 1024, endpoint_url=server.endpoint
    ) == (1, [])
    assert (dest / "big").read_bytes() == body
    gets = server.stop()["requests"]["GetObject"]
    assert gets == 5, "four 256 KiB parts and the 4-byte tail"


def test_ten_thousand_keys(tmp_path: Path, aws_env: None, dest: Path) -> None:
    server = start_server(
        tmp_path / "big", generate=["--bucket", "tenk", "--objects", "10000", "--size", "10", "--folders", "10"]
    )
    try:
        tracker = ProgressTracker()
        started = time.monotonic()
        success, failures = download("s3://tenk/", dest, progress_tracker=tracker, endpoint_url=server.endpoint)
        elapsed = time.monotonic() - started
        assert (success, failures) == (10_000, [])
        files = [p for p in dest.rglob("*") if p.is_file()]
        assert len(files) == 10_000 and all(p.stat().st_size == 10 for p in files)
        assert tracker.get_stats()["objects_downloaded"] == 10_000
        assert not temporary_files(dest)
        print(f"10,000 keys in {elapsed:.2f} s")
    finally:
        server.stop()


def test_public_names_have_docstrings() -> None:
    import s3fetch.exceptions
    import s3fetch.utils

    for module in (s3fetch, s3fetch.exceptions, s3fetch.utils):
        assert module.__doc__
        for name in getattr(module, "__all__", []):
            if name == "__version__":
                continue
            assert getattr(module, name).__doc__, f"{module.__name__}.{name}"
    assert "s3_uri" in (download.__doc__ or "")
    assert s3fetch.__version__


def test_max_bandwidth_caps_the_run(server: Server, dest: Path) -> None:
    import os

    mib = 1 << 20
    objects = {"data/a.bin": os.urandom(6 * mib), "data/b.bin": os.urandom(6 * mib)}
    server.bucket("bkt", objects)
    for cap, rate in ((4 * mib, 4.0), ("4MiB/s", 4.0)):
        for path in dest.iterdir():
            path.unlink()
        started = time.monotonic()
        assert download("s3://bkt/data/", dest, endpoint_url=server.endpoint, max_bandwidth=cap) == (2, [])
        measured = 12 / (time.monotonic() - started)
        assert abs(measured / rate - 1) <= 0.10, f"{measured:.2f} MiB/s, not {rate} MiB/s"


def test_max_memory_caps_what_is_held(server: Server, dest: Path) -> None:
    import os

    mib = 1 << 20
    objects = {f"data/{i}.bin": os.urandom(300_000) for i in range(40)}
    objects["data/large.bin"] = os.urandom(20 * mib + 1)
    server.bucket("bkt", objects)
    for cap in (16 * mib, "16MiB"):
        for path in dest.iterdir():
            path.unlink()
        assert download("s3://bkt/data/", dest, endpoint_url=server.endpoint, max_memory=cap, part_size="2MiB") == (
            41,
            [],
        )
        for key, body in objects.items():
            assert (dest / key.removeprefix("data/")).read_bytes() == body, key
