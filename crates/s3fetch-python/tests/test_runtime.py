"""The engine under Python: Ctrl-C, fork, asyncio, threads."""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest
from conftest import SAMPLE, Server, start_server, temporary_files, tree
from s3fetch import download, download_async


@pytest.fixture
def slow(tmp_path: Path, aws_env: None) -> Server:
    """Twenty 4 MiB objects served at 8 MB/s per connection: downloads stay in flight a while."""
    server = start_server(
        tmp_path / "slow",
        "--bandwidth-mbps",
        "64",
        generate=["--bucket", "slow", "--objects", "20", "--size", str(4 << 20)],
    )
    yield server
    server.stop()


def wait_for(condition: object, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, "timed out waiting"
        time.sleep(0.01)


def complete_files(dest: Path, size: int) -> None:
    for path in dest.rglob("*"):
        if path.is_file():
            assert path.stat().st_size == size, f"{path} is not whole"


def test_ctrl_c_raises_keyboard_interrupt_promptly_after_cleaning_up(slow: Server, dest: Path) -> None:
    script = textwrap.dedent(
        """
        import signal, sys
        # Python leaves SIGINT ignored when it starts with it ignored (a CI job run in the
        # background): install the handler a terminal's Python has.
        signal.signal(signal.SIGINT, signal.default_int_handler)
        from s3fetch import download
        try:
            download("s3://slow/", sys.argv[1], endpoint_url=sys.argv[2], concurrent_downloads=4,
                     multipart_threshold="64MiB")
        except KeyboardInterrupt:
            sys.exit(42)
        sys.exit(0)
        """
    )
    child = subprocess.Popen([sys.executable, "-c", script, str(dest), slow.endpoint], stderr=subprocess.PIPE)
    try:
        wait_for(lambda: temporary_files(dest))  # downloads are writing
        child.send_signal(signal.SIGINT)
        sent = time.monotonic()
        code = child.wait(timeout=10)
        took = time.monotonic() - sent
    finally:
        child.kill()
    assert code == 42, child.stderr.read().decode() if child.stderr else ""
    assert took < 0.5, f"KeyboardInterrupt after {took:.3f} s"
    assert not temporary_files(dest)
    complete_files(dest, 4 << 20)
    assert len(list(dest.iterdir())) < 20, "interrupted before the end"


def test_a_forked_child_gets_its_own_runtime(sample: Server, dest: Path) -> None:
    parent_dest = dest / "parent"
    parent_dest.mkdir()
    assert download("s3://bkt/data/", parent_dest, endpoint_url=sample.endpoint)[0] == 5  # the parent's runtime exists
    child_dest = dest / "child"
    child_dest.mkdir()
    pid = os.fork()
    if pid == 0:  # the child: never return into pytest
        try:
            success, failures = download("s3://bkt/data/", child_dest, endpoint_url=sample.endpoint)
            os._exit(0 if (success, failures) == (5, []) else 1)
        except BaseException:
            os._exit(2)
    deadline = time.monotonic() + 30
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            break
        if time.monotonic() > deadline:
            os.kill(pid, signal.SIGKILL)
            pytest.fail("the forked child hung")
        time.sleep(0.02)
    assert os.waitstatus_to_exitcode(status) == 0
    assert len(tree(child_dest)) == 5


def fetch_into(args: tuple[str, str, str]) -> tuple[int, list[tuple[str, Exception]]]:
    uri, target, endpoint = args
    return download(uri, target, endpoint_url=endpoint)


def test_multiprocessing_fork_workers_while_the_parent_downloads(slow: Server, sample_bucket_dirs: list[Path]) -> None:
    # A download runs in a parent thread while fork workers start and download themselves.
    parent_dest = sample_bucket_dirs[0]
    background = threading.Thread(
        target=download,
        args=("s3://slow/", parent_dest),
        kwargs={"endpoint_url": slow.endpoint, "concurrent_downloads": 2},
    )
    background.start()
    try:
        wait_for(lambda: temporary_files(parent_dest))
        slow.bucket("small", {f"k{i}": f"v{i}".encode() for i in range(20)})
        context = multiprocessing.get_context("fork")
        jobs = [("s3://small/", str(d), slow.endpoint) for d in sample_bucket_dirs[1:]]
        with context.Pool(len(jobs)) as pool:
            results = pool.map(fetch_into, jobs, chunksize=1)
    finally:
        background.join()
    assert results == [(20, [])] * len(jobs)
    for d in sample_bucket_dirs[1:]:
        assert tree(d) == {f"k{i}": f"v{i}".encode() for i in range(20)}
    assert len(tree(parent_dest)) == 20


@pytest.fixture
def sample_bucket_dirs(tmp_path: Path) -> list[Path]:
    dirs = [tmp_path / f"d{i}" for i in range(4)]
    for d in dirs:
        d.mkdir()
    return dirs


def test_download_async_matches_download(sample: Server, dest: Path) -> None:
    ticks = 0

    async def main() -> tuple[int, list[tuple[str, Exception]]]:
        nonlocal ticks

        async def ticker() -> None:
            nonlocal ticks
            while True:
                ticks += 1
                await asyncio.sleep(0.001)

        beat = asyncio.create_task(ticker())
        keys: list[str] = []
        result = await download_async("s3://bkt/data/", dest, endpoint_url=sample.endpoint, on_complete=keys.append)
        beat.cancel()
        assert len(keys) == 5
        return result

    assert asyncio.run(main()) == (5, [])
    assert ticks > 0, "the event loop ran while the download did"
    assert set(tree(dest)) == {k.removeprefix("data/") for k in SAMPLE if k.startswith("data/") and not k.endswith("/")}


def test_download_async_raises_like_download(sample: Server, dest: Path) -> None:
    from s3fetch.exceptions import RegexError

    with pytest.raises(RegexError):
        asyncio.run(download_async("s3://bkt/", dest, regex="(", endpoint_url=sample.endpoint))


def test_cancelling_the_task_cancels_the_run_and_removes_temporary_files(slow: Server, dest: Path) -> None:
    async def main() -> None:
        task = asyncio.create_task(
            download_async(
                "s3://slow/", dest, endpoint_url=slow.endpoint, concurrent_downloads=4, multipart_threshold="64MiB"
            )
        )
        while not temporary_files(dest):
            assert not task.done()
            await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert not temporary_files(dest), "removed before the cancellation propagated"

    asyncio.run(main())
    complete_files(dest, 4 << 20)
    assert len(list(dest.iterdir())) < 20


def test_two_downloads_at_once_from_two_threads(slow: Server, tmp_path: Path) -> None:
    slow.bucket("other", {f"x/{i}": bytes([i]) * 1000 for i in range(50)})
    both_running = threading.Barrier(2, timeout=20)
    results: dict[str, object] = {}

    def run(name: str, uri: str) -> None:
        target = tmp_path / name
        target.mkdir()
        first = True

        def on_complete(_key: str) -> None:
            nonlocal first
            if first:
                first = False
                both_running.wait()  # fails unless the other run is going at the same time

        try:
            results[name] = download(
                uri, target, endpoint_url=slow.endpoint, on_complete=on_complete, concurrent_downloads=2
            )
        except BaseException as error:
            results[name] = error

    threads = [
        threading.Thread(target=run, args=("a", "s3://slow/")),
        threading.Thread(target=run, args=("b", "s3://other/x/")),
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == {"a": (20, []), "b": (50, [])}
    assert tree(tmp_path / "b") == {str(i): bytes([i]) * 1000 for i in range(50)}
    complete_files(tmp_path / "a", 4 << 20)
