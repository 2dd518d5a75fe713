"""s3fetch against S3 servers nobody here wrote: the compatibility suite's driver.

``scripts/compat-tests.sh`` installs and starts the servers, then runs this with one
``--server`` per running server (the test kit's first: it gives the reference result).
For each server this

1. uploads the tree of awkward keys (``keytree.py``) with boto3, then checks what the server
   kept (its listing, the bytes of the odd keys read back, the checksums): an item the server
   cannot store is skipped for that server only, and said so;
2. downloads the bucket with the CLI (default settings, then ``--list-concurrency 1``) and
   with the Python API (``s3fetch.download()``);
3. checks each download against the documented result (``keytree.expected``: files, bytes,
   failed keys, exit code) and against the same download from the test kit holding the same
   objects (files, directories, bytes, failed keys and their codes, exit code, summary).

Prints a table of what passed where and how long it took; exits 1 on any mismatch, each
named by server, mode and key.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import hashlib
import itertools
import json
import os
import re
import subprocess
import sys
import time
from base64 import b64encode
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from zlib import crc32

import boto3
from botocore.config import Config
from keytree import PART_SIZE, Expected, Item, build, expected

BUCKET = "compat"
REGION = "us-east-1"
#: A download that takes longer than this is a failure (the whole tree takes seconds).
DOWNLOAD_TIMEOUT = 300
#: The kinds of upload that carry a CRC32.
CRC_KINDS = ("put-crc32", "multipart-crc32", "multipart-crc32-full")
MODES = ("cli", "cli --list-concurrency 1", "python")
#: A difference found by a check: the key (or None for the whole run) and what differs.
Problem = tuple[str | None, str]


@dataclass
class Server:
    """A running S3 server, as the shell script started it."""

    name: str
    endpoint: str
    access_key: str
    secret_key: str
    pid: int
    log: Path
    #: The test kit: it gives the reference result (and has no multipart upload).
    reference: bool = False

    def client(self) -> Any:
        """A boto3 client: path style, no checksum unless asked for, few retries."""
        return boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            aws_access_key_id=self.access_key,
            aws_secret_access_key=self.secret_key,
            region_name=REGION,
            config=Config(
                s3={"addressing_style": "path"},
                request_checksum_calculation="when_required",
                response_checksum_validation="when_required",
                retries={"max_attempts": 3, "mode": "standard"},
                max_pool_connections=16,
            ),
        )

    def alive(self) -> bool:
        """Whether the server's process still runs."""
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return False
        return True


@dataclass
class Stored:
    """What one server kept of the tree."""

    items: list[Item]
    #: (label or key, reason) of each item not stored, or stored without what it tests.
    skipped: list[tuple[str, str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0


@dataclass
class Outcome:
    """One download of the bucket."""

    mode: str
    command: str
    #: The CLI's exit code; for the Python API 1 when ``failures`` is not empty, else 0.
    exit_code: int | None = None
    #: Relative path -> SHA-256 of the file's bytes.
    files: dict[str, str] = field(default_factory=dict)
    dirs: set[str] = field(default_factory=set)
    #: Failed key -> error code (CLI: ``error.code`` of the JSON line; Python: exception class).
    failed: dict[str, str] = field(default_factory=dict)
    #: found / downloaded / skipped / failed (CLI: the JSON summary; Python: from the results).
    counts: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0
    #: A crash, a time-out, an exception out of ``download()``, unreadable output.
    error: str | None = None
    stderr: Path | None = None


def crc32_b64(data: bytes) -> str:
    """S3's form of a CRC32: base64 of its 4 big-endian bytes."""
    return b64encode(crc32(data).to_bytes(4, "big")).decode()


def utf8_order(key: str) -> bytes:
    """S3 lists keys in the order of their UTF-8 bytes."""
    return key.encode("utf-8", "surrogateescape")


# ---------------------------------------------------------------------------------------
# Upload


def put(client: Any, bucket: str, item: Item, reference: bool) -> None:
    """Uploads one item; multipart kinds as a multipart upload (one PUT on the test kit,
    which has no multipart upload: the reference needs the bytes, not the ETag).
    """
    crc = item.kind in CRC_KINDS
    if not item.kind.startswith("multipart") or reference:
        extra = {"ChecksumAlgorithm": "CRC32"} if crc else {}
        client.put_object(Bucket=bucket, Key=item.key, Body=item.body, **extra)
        return
    create: dict[str, str] = {}
    if item.kind == "multipart-crc32":
        create = {"ChecksumAlgorithm": "CRC32"}
    elif item.kind == "multipart-crc32-full":
        create = {"ChecksumAlgorithm": "CRC32", "ChecksumType": "FULL_OBJECT"}
    upload_id = client.create_multipart_upload(Bucket=bucket, Key=item.key, **create)["UploadId"]
    try:
        parts = []
        for number, start in enumerate(range(0, len(item.body), PART_SIZE), start=1):
            body = item.body[start : start + PART_SIZE]
            part_extra = {"ChecksumCRC32": crc32_b64(body)} if crc else {}
            answer = client.upload_part(
                Bucket=bucket, Key=item.key, UploadId=upload_id, PartNumber=number, Body=body, **part_extra
            )
            parts.append({"ETag": answer["ETag"], "PartNumber": number, **part_extra})
        complete: dict[str, str] = {}
        if item.kind == "multipart-crc32-full":
            complete = {"ChecksumCRC32": crc32_b64(item.body), "ChecksumType": "FULL_OBJECT"}
        client.complete_multipart_upload(
            Bucket=bucket, Key=item.key, UploadId=upload_id, MultipartUpload={"Parts": parts}, **complete
        )
    except Exception:
        try:
            client.abort_multipart_upload(Bucket=bucket, Key=item.key, UploadId=upload_id)
        except Exception:
            pass  # the upload's own error is the one to report
        raise


def describe(error: BaseException) -> str:
    """An upload error in one line."""
    response = getattr(error, "response", None)
    if isinstance(response, dict) and "Error" in response:
        status = response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        return f"{response['Error'].get('Code')} (HTTP {status}): {response['Error'].get('Message')}"
    return f"{type(error).__name__}: {error}"


def list_keys(client: Any, bucket: str) -> list[tuple[str, int]]:
    """Every key and size of the bucket, in the server's order (boto3's listing)."""
    listed: list[tuple[str, int]] = []
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        listed.extend((entry["Key"], entry["Size"]) for entry in page.get("Contents", []))
    return listed


def upload(server: Server, bucket: str, items: list[Item]) -> Stored:
    """Uploads ``items`` to ``server`` and checks what it kept; items it cannot store are
    left out of the result (and off the server), each with the reason.
    """
    started = time.monotonic()
    client = server.client()
    client.create_bucket(Bucket=bucket)
    stored = Stored([])
    failed: dict[str, str] = {}

    def one(item: Item) -> None:
        try:
            put(client, bucket, item, server.reference)
        except Exception as error:
            failed[item.key] = describe(error)

    # Large objects first, one at a time (memory), then the small ones 8 at a time.
    for item in items:
        if item.kind.startswith("multipart"):
            one(item)
            if not server.alive():
                raise RuntimeError(f"{server.name} exited while storing {show(item.key)}: see {server.log}")
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        list(pool.map(one, [item for item in items if not item.kind.startswith("multipart")]))
    if not server.alive():
        raise RuntimeError(f"{server.name} exited during the upload: see {server.log}")
    if server.reference and any(item.kind.startswith("multipart") for item in items):
        stored.notes.append("no multipart upload: the 40 MiB objects were stored with one PUT each")

    # What the server lists: every key once, with its size, nothing else.
    by_key = {item.key: item for item in items}
    listed = list_keys(client, bucket)
    listed_sizes = dict(listed)
    unwanted: set[str] = set()
    for key, size in listed:
        if key not in by_key:
            unwanted.add(key)
            stored.notes.append(f"lists a key that was never uploaded: {show(key)} ({size} bytes)")
        elif key not in failed and size != len(by_key[key].body):
            failed[key] = f"listed with {size} bytes instead of {len(by_key[key].body)}"
            unwanted.add(key)
    for key in by_key:
        if key not in failed and key not in listed_sizes:
            failed[key] = "the PUT succeeded but the key is not in the server's listing"
    disorder = [(a, b) for a, b in itertools.pairwise(key for key, _ in listed) if utf8_order(a) >= utf8_order(b)]
    if disorder:
        shown = ", ".join(f"{show(a)} before {show(b)}" for a, b in disorder[:3])
        stored.notes.append(f"lists keys out of UTF-8 byte order (S3's order) at {len(disorder)} place(s): {shown}")

    # The odd keys read back (not the bulk folders, not the large objects).
    for item in items:
        if item.key in failed or item.key.startswith(("flat/", "folders/", "big/")):
            continue
        try:
            body = client.get_object(Bucket=bucket, Key=item.key)["Body"].read()
        except Exception as error:
            failed[item.key] = f"read back with boto3: {describe(error)}"
            unwanted.add(item.key)
            continue
        if body != item.body:
            failed[item.key] = f"read back with boto3: {len(body)} bytes that differ from the {len(item.body)} uploaded"
            unwanted.add(item.key)

    # Checksums: an object the server keeps without its CRC32 is still downloaded, as an
    # object without one; what the item was there to test is skipped.
    seen_put_crc = False
    for item in items:
        if (
            item.kind not in CRC_KINDS
            or server.reference
            or item.key in failed
            or (item.kind == "put-crc32" and seen_put_crc)
        ):
            continue
        seen_put_crc |= item.kind == "put-crc32"
        head = client.head_object(Bucket=bucket, Key=item.key, ChecksumMode="ENABLED")
        if not head.get("ChecksumCRC32"):
            what = "single PUTs with a CRC32 (every put-crc32 object)" if item.kind == "put-crc32" else item.label
            kept = sorted(name for name in head if name.startswith("Checksum")) or "none"
            stored.skipped.append(
                (what, f"the server keeps no CRC32 (checksum fields: {kept}); stored and downloaded without it")
            )
        elif item.kind.startswith("multipart"):
            kind = head.get("ChecksumType", "no type")
            stored.notes.append(f"{item.key}: HEAD gives CRC32 {head['ChecksumCRC32']} ({kind}), ETag {head['ETag']}")
    for item in items:
        if item.kind == "multipart" and item.key not in failed and not server.reference:
            head = client.head_object(Bucket=bucket, Key=item.key)
            stored.notes.append(f"{item.key}: ETag {head['ETag']}")

    for key in sorted(unwanted):
        try:
            client.delete_object(Bucket=bucket, Key=key)
        except Exception as error:
            why = describe(error)
            raise RuntimeError(f"{server.name}: cannot delete {show(key)}, which it stored wrongly: {why}") from error
    if unwanted and {key for key, _ in list_keys(client, bucket)} & unwanted:
        raise RuntimeError(f"{server.name}: keys it stored wrongly are still listed after their DELETE")
    for item in items:
        if item.key in failed:
            stored.skipped.append((f"{item.label}: {show(item.key)}", failed[item.key]))
        else:
            stored.items.append(item)
    stored.seconds = time.monotonic() - started
    return stored


# ---------------------------------------------------------------------------------------
# Download


def environment(server: Server) -> dict[str, str]:
    """The environment of a download: the server's credentials and nothing else of AWS's."""
    env = {name: value for name, value in os.environ.items() if not name.startswith("AWS_") and name != "RUST_LOG"}
    env.update(
        AWS_ACCESS_KEY_ID=server.access_key,
        AWS_SECRET_ACCESS_KEY=server.secret_key,
        AWS_REGION=REGION,
        AWS_CONFIG_FILE=os.devnull,
        AWS_SHARED_CREDENTIALS_FILE=os.devnull,
        AWS_EC2_METADATA_DISABLED="true",
    )
    return env


def scan(root: Path) -> tuple[dict[str, str], set[str]]:
    """The files (relative path -> SHA-256) and directories under ``root``."""
    files: dict[str, str] = {}
    dirs: set[str] = set()
    for path, dirnames, filenames in os.walk(root):
        relative = os.path.relpath(path, root)
        for name in dirnames:
            dirs.add(name if relative == "." else f"{relative}/{name}")
        for name in filenames:
            digest = hashlib.sha256()
            with open(os.path.join(path, name), "rb") as file:
                for chunk in iter(lambda file=file: file.read(1 << 20), b""):  # type: ignore[misc]
                    digest.update(chunk)
            files[name if relative == "." else f"{relative}/{name}"] = digest.hexdigest()
    return files, dirs


def download(server: Server, bucket: str, mode: str, work: Path, binary: Path) -> Outcome:
    """One download of the whole bucket into a fresh directory."""
    dest = work / "download"
    if dest.exists():
        subprocess.run(["rm", "-rf", str(dest)], check=True)
    dest.mkdir(parents=True)
    uri = f"s3://{bucket}/"
    if mode == "python":
        helper = Path(__file__).with_name("pyapi_download.py")
        command = [sys.executable, str(helper), uri, str(dest), server.endpoint]
    else:
        command = [str(binary), uri, "--endpoint-url", server.endpoint, "--download-dir", str(dest), "--output", "json"]
        command += mode.split()[1:]
    outcome = Outcome(mode, " ".join(command), stderr=work / "stderr.txt")
    stdout_path = work / "stdout.txt"
    started = time.monotonic()
    with open(stdout_path, "wb") as stdout, open(work / "stderr.txt", "wb") as stderr:
        try:
            process = subprocess.run(
                command, stdout=stdout, stderr=stderr, env=environment(server), timeout=DOWNLOAD_TIMEOUT, check=False
            )
        except subprocess.TimeoutExpired:
            outcome.error = f"timed out after {DOWNLOAD_TIMEOUT} s"
            return outcome
    outcome.seconds = time.monotonic() - started
    outcome.files, outcome.dirs = scan(dest)
    if mode == "python":
        read_python(outcome, process.returncode, stdout_path)
    else:
        read_cli(outcome, process.returncode, stdout_path)
    return outcome


def read_cli(outcome: Outcome, code: int, stdout: Path) -> None:
    """The CLI's exit code, failed keys and summary, from its JSON lines."""
    outcome.exit_code = code
    if code < 0:
        outcome.error = f"killed by signal {-code}"
    for line in stdout.read_text(errors="replace").splitlines():
        try:
            event = json.loads(line)
        except json.JSONDecodeError:
            outcome.error = f"a stdout line that is not JSON: {line[:200]!r}"
            continue
        if event.get("event") == "failed":
            if event.get("key") is None:
                outcome.error = f"the run failed: {event.get('error')}"
            else:
                outcome.failed[event["key"]] = event.get("error", {}).get("code")
        elif event.get("event") == "summary":
            outcome.counts = {name: event.get(name) for name in ("found", "downloaded", "skipped", "failed")}
    if not outcome.counts and outcome.error is None and code in (0, 1):
        outcome.error = "no summary line on stdout"


def read_python(outcome: Outcome, code: int, stdout: Path) -> None:
    """The Python API's result: exit code 1 when it reported failures, as the CLI's."""
    text = stdout.read_text(errors="replace").strip()
    if code != 0 or not text:
        outcome.error = f"the Python process exited with {code}"
        return
    result = json.loads(text.splitlines()[-1])
    if "raised" in result:
        outcome.error = f"download() raised {result['raised']}: {result['message']}"
        return
    outcome.failed = {key: f"{cls}/{code_}" for key, cls, code_, _message in result["failures"]}
    outcome.exit_code = 1 if result["failures"] else 0
    results = result["results"]
    outcome.counts = {
        "found": len(results),
        "downloaded": result["success_count"],
        "skipped": sum(1 for _key, _success, skipped in results if skipped),
        "failed": len(result["failures"]),
    }


# ---------------------------------------------------------------------------------------
# Checks


def check_expected(outcome: Outcome, want: Expected) -> list[Problem]:
    """Differences between a download and the documented result."""
    if outcome.error:
        return [(None, f"the run did not complete: {outcome.error}")]
    problems: list[Problem] = []
    for path in sorted(want.files.keys() - outcome.files.keys()):
        why = f" (reported failed: {outcome.failed[path]})" if path in outcome.failed else ""
        problems.append((path, f"missing{why}"))
    for path in sorted(outcome.files.keys() - want.files.keys()):
        problems.append((path, "a file that should not be there"))
    for path in sorted(want.files.keys() & outcome.files.keys()):
        if want.files[path] != outcome.files[path]:
            problems.append((path, "wrong bytes"))
    for key in sorted(want.failed.keys() - outcome.failed.keys()):
        problems.append((key, f"not reported as failed (want {want.failed[key]})"))
    for key in sorted(outcome.failed.keys() - want.failed.keys() - want.files.keys()):
        problems.append((key, f"reported as failed: {outcome.failed[key]}"))
    if outcome.mode != "python":
        for key in sorted(want.failed.keys() & outcome.failed.keys()):
            if want.failed[key] != outcome.failed[key]:
                problems.append((key, f"failed with {outcome.failed[key]}, want {want.failed[key]}"))
    if outcome.mode != "python" and outcome.exit_code != want.exit_code:  # Python: the failed keys say it
        problems.append((None, f"exit code {outcome.exit_code}, want {want.exit_code}"))
    if outcome.mode == "python" and outcome.counts.get("downloaded") != len(want.files):
        problems.append(
            (None, f"download() counted {outcome.counts.get('downloaded')} successes, want {len(want.files)}")
        )
    return problems


def check_reference(outcome: Outcome, reference: Outcome) -> list[Problem]:
    """Differences between a download and the same download from the test kit."""
    if outcome.error or reference.error:
        return []  # already reported
    problems: list[Problem] = []
    for path in sorted(outcome.files.keys() ^ reference.files.keys()):
        where = "only here" if path in outcome.files else "only from the test kit"
        problems.append((path, f"file {where}"))
    for path in sorted(outcome.files.keys() & reference.files.keys()):
        if outcome.files[path] != reference.files[path]:
            problems.append((path, "other bytes than from the test kit"))
    for path in sorted(outcome.dirs ^ reference.dirs):
        where = "only here" if path in outcome.dirs else "only from the test kit"
        problems.append((path, f"directory {where}"))
    for key in sorted(outcome.failed.keys() | reference.failed.keys()):
        mine, theirs = outcome.failed.get(key), reference.failed.get(key)
        if mine != theirs:
            problems.append((key, f"failed with {mine}, from the test kit {theirs}"))
    if outcome.mode != "python" and outcome.exit_code != reference.exit_code:
        problems.append((None, f"exit code {outcome.exit_code}, from the test kit {reference.exit_code}"))
    if outcome.counts != reference.counts:
        problems.append((None, f"counts {outcome.counts}, from the test kit {reference.counts}"))
    return problems


def show(key: str) -> str:
    """A key for a message: its repr, the middle of a very long one left out."""
    text = repr(key)
    return text if len(text) <= 100 else f"{text[:60]}...({len(key.encode())} bytes)...{text[-30:]}"


def summarize(problems: list[Problem]) -> list[str]:
    """One line per problem, except that five or more of one kind in one top folder make one
    line (a folder that went missing is one line, not hundreds).
    """
    groups: dict[tuple[str, str], list[str]] = {}
    for key, what in problems:
        if key is not None:
            groups.setdefault((key.split("/", 1)[0], what), []).append(key)
    lines: list[str] = []
    done: set[tuple[str, str]] = set()
    for key, what in problems:
        if key is None:
            lines.append(what)
            continue
        group = (key.split("/", 1)[0], what)
        keys = groups[group]
        if len(keys) < 5:
            lines.append(f"{show(key)}: {what}")
        elif group not in done:
            done.add(group)
            lines.append(f"{len(keys)} keys under {group[0] + '/'!r}: {what} ({show(keys[0])} ... {show(keys[-1])})")
    return lines


def stderr_tail(outcome: Outcome, lines: int = 12) -> str:
    """The last lines of a run's stderr, indented."""
    if outcome.stderr is None or not outcome.stderr.exists():
        return ""
    text = re.sub(r"\x1b\[[0-9;]*m", "", outcome.stderr.read_text(errors="replace"))  # colours
    tail = text.splitlines()[-lines:]
    return "".join(f"      | {line}\n" for line in tail)


# ---------------------------------------------------------------------------------------
# Main


@dataclass
class Row:
    """One line of the table."""

    server: str
    upload: float
    #: Items the server could not store (or stored without their checksum).
    skipped: int = 0
    cells: dict[str, str] = field(default_factory=dict)
    ok: bool = True


class Suite:
    """The servers, the reference results and what went wrong."""

    def __init__(self, servers: list[Server], work: Path, binary: Path) -> None:
        self.reference_server, self.others = servers[0], servers[1:]
        self.work = work
        self.binary = binary
        #: The test kit's downloads, per set of stored keys (one bucket each).
        self.references: dict[frozenset[str], dict[str, Outcome]] = {}
        self.rows: list[Row] = []
        self.problems: list[str] = []

    def reference_for(self, items: list[Item]) -> dict[str, Outcome]:
        """The test kit's downloads of a bucket holding exactly ``items``."""
        keys = frozenset(item.key for item in items)
        if keys not in self.references:
            n = len(self.references) + 1
            label = self.reference_server.name + ("" if n == 1 else f" #{n}")
            bucket = BUCKET if n == 1 else f"{BUCKET}-{n}"
            self.references[keys] = self.run(self.reference_server, items, label, bucket)
        return self.references[keys]

    def run(self, server: Server, items: list[Item], label: str, bucket: str = BUCKET) -> dict[str, Outcome]:
        """Uploads ``items`` to ``server``, downloads them back in every mode, checks each."""
        print(f"== {label}: uploading to {server.endpoint}", file=sys.stderr)
        stored = upload(server, bucket, items)
        row = Row(label, stored.seconds, len(stored.skipped))
        for what, reason in stored.skipped:
            print(f"   {label}: SKIPPED {what}: {reason}", file=sys.stderr)
        for note in stored.notes:
            print(f"   {label}: note: {note}", file=sys.stderr)
        want = expected(stored.items)
        reference = None if server.reference else self.reference_for(stored.items)
        outcomes: dict[str, Outcome] = {}
        for mode in MODES:
            work = self.work / label.replace(" ", "").replace("#", "-") / mode.replace(" ", "_")
            outcome = download(server, bucket, mode, work, self.binary)
            outcomes[mode] = outcome
            found = check_expected(outcome, want)
            if reference is not None:
                found += [(key, f"vs the test kit: {what}") for key, what in check_reference(outcome, reference[mode])]
            if not server.alive():
                found.append((None, f"the server exited (log: {server.log})"))
            status = "FAIL" if found else "ok"
            row.cells[mode] = f"{status} {outcome.seconds:.1f} s"
            print(f"   {label} [{mode}]: {status} in {outcome.seconds:.1f} s", file=sys.stderr)
            if found:
                row.ok = False
                every = work / "problems.txt"
                every.write_text("".join(f"{key!r}: {what}\n" for key, what in found))
                lines = summarize(found)
                message = f"{label} [{mode}]: {len(found)} problem(s) (all in {every})\n"
                message += f"    command: {outcome.command}\n"
                message += "".join(f"    {line}\n" for line in lines[:40])
                if len(lines) > 40:
                    message += f"    ... and {len(lines) - 40} more lines\n"
                message += f"    stderr ({outcome.stderr}), last lines:\n{stderr_tail(outcome)}"
                message += f"    server log: {server.log}\n"
                self.problems.append(message)
        self.rows.append(row)  # after the test kit's row of the same objects, if that ran first
        return outcomes


def main() -> int:
    """Runs the suite; 0 when every server gave the documented and the reference result."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--server",
        nargs=6,
        action="append",
        required=True,
        metavar=("NAME", "ENDPOINT", "ACCESS_KEY", "SECRET_KEY", "PID", "LOG"),
        help="a running server; the first is the test kit (the reference)",
    )
    parser.add_argument("--work", type=Path, required=True, help="scratch directory (emptied per run)")
    parser.add_argument("--s3fetch", type=Path, required=True, help="the s3fetch binary")
    args = parser.parse_args()
    servers = [
        Server(name, endpoint, access, secret, int(pid), Path(log), reference=index == 0)
        for index, (name, endpoint, access, secret, pid, log) in enumerate(args.server)
    ]
    tree = build()
    size = sum(len(item.body) for item in tree) / 2**20
    print(f"== the tree: {len(tree)} objects, {size:.0f} MiB", file=sys.stderr)
    suite = Suite(servers, args.work, args.s3fetch)
    for server in servers:
        try:
            if server.reference:
                suite.reference_for(tree)
            else:
                suite.run(server, tree, server.name)
        except Exception as error:
            suite.rows.append(Row(server.name, 0.0, ok=False))
            suite.problems.append(f"{server.name}: the suite could not go on with it: {describe(error)}\n")
            if server.reference:
                break  # nothing to compare with
    if suite.problems:
        print("\n== MISMATCHES\n" + "\n".join(suite.problems), file=sys.stderr)
    sys.stderr.flush()
    print_table(suite.rows)
    cells = [cell for row in suite.rows for cell in row.cells.values()]
    passed = sum(1 for cell in cells if cell.startswith("ok"))
    failed = len(cells) - passed + sum(1 for row in suite.rows if not row.cells)  # + servers that never got to a run
    # The plain closing line; a run is one server and one way of downloading.
    print(f"compat: {passed} passed, {failed} failed")
    return 1 if suite.problems else 0


def print_table(rows: list[Row]) -> None:
    """The summary table, on stdout."""
    headers = ["server", "upload+check", "skipped", *MODES, "result"]
    lines = [
        [
            row.server,
            f"{row.upload:.1f} s",
            str(row.skipped),
            *(row.cells.get(mode, "-") for mode in MODES),
            "ok" if row.ok else "FAIL",
        ]
        for row in rows
    ]
    widths = [max(len(str(cell)) for cell in column) for column in zip(headers, *lines, strict=False)]
    print()
    for line in [headers, *lines]:
        print("  ".join(str(cell).ljust(width) for cell, width in zip(line, widths, strict=True)).rstrip())


if __name__ == "__main__":
    sys.exit(main())
