#!/usr/bin/env python3
"""Pipes and caps beside plain downloads (issue 26): `s3fetch cat` of one object against
`aws s3 cp s3://… -`, `cat` and downloads under `--max-memory`, downloads under
`--max-bandwidth`, `small` as `cat --format tar | tar -x` beside a download and beside `tar -x`
of the same stream read from a file. Prints one markdown table of medians.

    python3 bench/pipes_and_caps.py [--bin-dir target/release] [--reps 5] [--aws aws]

Needs the benchmark's `large` and `small` datasets in target/bench/data (made by
`bench/run.sh --scenarios small,large` or `python3 bench/bench.py --scenarios small,large
--tools s3fetch`). The test kit serves them as bench.py does (20 ms per GET, 60 ms per list
page); every command runs in turn, each repetition in a new order-alternating round, and
each process's wall time, CPU and peak RSS come from `os.wait4`.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ACCESS_KEY, SECRET_KEY = "s3fetch-test", "s3fetch-test-secret"
MIB = 1 << 20
ONE = "s3://large/obj-00000000.bin"  # 512 MiB


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def timed(argv: list[str], env: dict[str, str], stdout: int | None = subprocess.DEVNULL) -> tuple[float, float, float]:
    """Runs `argv`; returns (wall s, CPU s, peak RSS MiB). Fails loudly on a non-zero exit."""
    start = time.perf_counter()
    proc = subprocess.Popen(argv, env=env, stdout=stdout, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(argv)}: exit {proc.returncode}\n{err[-2000:]}")
    return wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bin-dir", type=Path, default=ROOT / "target" / "release")
    parser.add_argument("--data", type=Path, default=ROOT / "target" / "bench" / "data")
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--aws", default=shutil.which("aws"), help="the aws cli (skipped when absent)")
    args = parser.parse_args()
    s3fetch, testkit = str(args.bin_dir / "s3fetch"), str(args.bin_dir / "s3fetch-testkit")
    for bucket in ("large", "small"):
        if not (args.data / bucket).is_dir():
            raise SystemExit(f"no {bucket} dataset in {args.data}: run bench.py --scenarios small,large first")

    port = free_port()
    ep = f"http://127.0.0.1:{port}"
    server = subprocess.Popen(
        [testkit, "serve", "--data", str(args.data), "--port", str(port), "--get-latency-ms", "20",
         "--list-latency-ms", "60"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(AWS_ACCESS_KEY_ID=ACCESS_KEY, AWS_SECRET_ACCESS_KEY=SECRET_KEY, AWS_EC2_METADATA_DISABLED="true",
               AWS_DEFAULT_REGION="us-east-1", AWS_REGION="us-east-1")
    work = Path(tempfile.mkdtemp(prefix="s3fetch-pipes-", dir=ROOT / "target"))
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise SystemExit("the test kit did not start")
                time.sleep(0.05)

        def download(bucket: str, *flags: str) -> list[str]:
            dest = work / "dest"
            shutil.rmtree(dest, ignore_errors=True)
            dest.mkdir()
            return [s3fetch, f"s3://{bucket}/", "--download-dir", str(dest), "-q", "--endpoint-url", ep, *flags]

        cases: list[tuple[str, object, float | None]] = [
            # (label, argv or a function making it, bytes moved for a rate)
            ("cat, one 512 MiB object", lambda: [s3fetch, "cat", ONE, "--endpoint-url", ep], None),
        ]
        if args.aws:
            cases.append(("aws s3 cp … -, the same object", lambda: [args.aws, "s3", "cp", ONE, "-", "--endpoint-url", ep], None))
        for cap in ("64MiB", "128MiB", "256MiB"):
            cases.append((f"cat, one object, --max-memory {cap}",
                          lambda cap=cap: [s3fetch, "cat", ONE, "--endpoint-url", ep, "--max-memory", cap], None))
        cases.append(("download large (4 × 512 MiB)", lambda: download("large"), 4 * 512 * MIB))
        cases.append(("download large, --max-memory 16MiB", lambda: download("large", "--max-memory", "16MiB"), None))
        cases.append(("download small (5,000 × 64 KiB)", lambda: download("small"), None))
        cases.append(("download small, --max-memory 16MiB", lambda: download("small", "--max-memory", "16MiB"), None))
        # The tar target (small as `cat --format tar | tar -x` within 1.3x of a download) and
        # its floor: the same tar stream saved to a file once, then `tar -x` of that file.
        saved = work / "small.tar"
        with saved.open("wb") as out:
            subprocess.run([s3fetch, "cat", "s3://small/", "--format", "tar", "--endpoint-url", ep], env=env,
                           stdout=out, check=True)

        def extract(source: str) -> list[str]:
            dest = work / "dest"
            shutil.rmtree(dest, ignore_errors=True)
            dest.mkdir()
            return ["bash", "-o", "pipefail", "-c", f"{source} | tar -x -C {dest}"]

        cases.append(("cat small --format tar > /dev/null", lambda: [s3fetch, "cat", "s3://small/", "--format", "tar", "--endpoint-url", ep], None))
        cases.append(("cat small --format tar | tar -x", lambda: extract(f"{s3fetch} cat s3://small/ --format tar --endpoint-url {ep}"), None))
        cases.append(("cat saved.tar | tar -x (no S3: tar's floor)", lambda: extract(f"cat {saved}"), None))
        for rate, per_s in (("200MB/s", 200e6), ("500MB/s", 500e6)):
            cases.append((f"download large, --max-bandwidth {rate}",
                          lambda rate=rate: download("large", "--max-bandwidth", rate), per_s))

        results: dict[str, list[tuple[float, float, float]]] = {label: [] for label, _, _ in cases}
        for rep in range(args.reps):
            order = cases if rep % 2 == 0 else list(reversed(cases))
            for label, make, _ in order:
                subprocess.run(["sync"], check=False)
                results[label].append(timed(make(), env))  # type: ignore[operator]
            print(f"[pipes_and_caps] round {rep + 1} of {args.reps} done", file=sys.stderr)

        med = {label: tuple(statistics.median(r[i] for r in runs) for i in range(3)) for label, runs in results.items()}
        print(f"| run | wall s | CPU s | peak RSS MiB | note |  (medians of {args.reps}; {ep})")
        print("|---|---:|---:|---:|---|")
        for label, _, rate in cases:
            wall, cpu, rss = med[label]
            note = ""
            cap = re.search(r"--max-memory (\d+)MiB", label)
            if cap:
                note = f"RSS − cap {rss - int(cap.group(1)):+.0f} MiB"
            if label.startswith("download large, --max-bandwidth"):
                note = f"{4 * 512 * MIB / wall / 1e6:.0f} MB/s of {rate / 1e6:.0f} MB/s ({4 * 512 * MIB / wall / rate:.3f}×)"
            elif rate:
                note = f"{rate / wall / 1e6:.0f} MB/s"
            if "| tar -x" in label:
                note = f"{wall / med['download small (5,000 × 64 KiB)'][0]:.2f}× the download of small"
            if label.startswith("aws"):
                note = f"{wall / med['cat, one 512 MiB object'][0]:.2f}× cat's wall"
            print(f"| {label} | {wall:.3f} | {cpu:.2f} | {rss:.1f} | {note} |")
    finally:
        server.terminate()
        server.wait(timeout=10)
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
