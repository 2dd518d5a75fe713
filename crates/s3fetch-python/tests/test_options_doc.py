"""docs/options.md against the code, so that the options reference cannot drift.

The tables in docs/options.md are written by hand. These tests compare them with what the
code has:

- the flags of ``s3fetch --help``, ``s3fetch plan --help`` and ``s3fetch cat --help``: their names, short forms,
  aliases, value names, ``[default: ...]``, ``[env: ...]`` and possible values;
- the keywords and defaults of ``s3fetch.download``, ``download_async`` and ``s3fetch.plan``;
- the ``pub fn``s of ``impl DownloadOptions`` and the ``pub`` fields of ``ClientOptions``,
  read as text from ``crates/s3fetch/src``.

A failure names each option the doc leaves out or lists in excess, and gives a row to
start from.
"""

from __future__ import annotations

import inspect
import json
import re
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import s3fetch
from conftest import REPO

DOC = REPO / "docs" / "options.md"
LIBRARY = REPO / "crates" / "s3fetch" / "src"

# Headings of docs/options.md (backticks removed) whose first table is checked.
CLI = "Command-line options"
PLAN_CLI = "s3fetch plan"
CAT_CLI = "s3fetch cat"
PY_DOWNLOAD = "s3fetch.download"
PY_PLAN = "s3fetch.plan"
PY_ITER = "s3fetch.iter_objects"
RUST_OPTIONS = "DownloadOptions"
RUST_CLIENT = "ClientOptions"


# --------------------------------------------------------------------------- --help


@dataclass
class HelpFlag:
    """One option as ``--help`` prints it."""

    long: str
    short: str | None = None
    value: str | None = None
    text: str = ""
    values: list[str] = field(default_factory=list)

    def bracket(self, what: str) -> str | None:
        """The ``[default: X]``, ``[env: X]``... annotation of the help text, if any."""
        found = re.search(rf"\[{what}: ([^\]]*)\]", self.text)
        return found.group(1).strip() if found else None

    @property
    def aliases(self) -> list[str]:
        found = self.bracket("aliases") or self.bracket("alias") or ""
        return [a.strip().removeprefix("--") for a in found.split(",") if a.strip().startswith("--")]

    def row(self) -> str:
        """A row for the doc's table, to start from."""
        name = f"-{self.short}, --{self.long}" if self.short else f"--{self.long}"
        if self.value:
            name += f" {self.value}"
        meaning = re.sub(r"\s*\[[a-z ]+: [^\]]*\]", "", self.text).split(". ")[0].strip()
        return f"| `{name.replace('|', chr(92) + '|')}` | {self.bracket('default') or ''} | {meaning} |"


FLAG_LINE = re.compile(r"^(?:  -(\w), |      )--([a-z][a-z0-9-]*)(?: <([^>]+)>)?\s*$")
POSSIBLE_VALUE = re.compile(r"^\s+- ([a-z0-9-]+):")


def cli_help(*command: str) -> str:
    out = subprocess.run(
        [sys.executable, "-m", "s3fetch", *command, "--help"], capture_output=True, text=True, check=True
    )
    return out.stdout


def section(text: str, title: str) -> list[str]:
    """The lines of a section of clap's help (``Options:``), up to the next unindented line."""
    lines = text.split(f"\n{title}\n", 1)[1].splitlines()
    end = next((i for i, line in enumerate(lines) if line and not line.startswith(" ")), len(lines))
    return lines[:end]


def parse_help(text: str) -> tuple[dict[str, HelpFlag], list[str]]:
    """The options of a ``--help`` text by long name, and its positional arguments."""
    flags: dict[str, HelpFlag] = {}
    current: HelpFlag | None = None
    for line in section(text, "Options:"):
        match = FLAG_LINE.match(line)
        if match:
            current = HelpFlag(long=match.group(2), short=match.group(1), value=match.group(3))
            flags[current.long] = current
        elif current is not None:
            current.text = f"{current.text} {line.strip()}".strip()
            value = POSSIBLE_VALUE.match(line)
            if value:
                current.values.append(value.group(1))
    for flag in flags.values():
        listed = flag.bracket("possible values")
        if listed:
            flag.values += [v.strip() for v in listed.split(",")]
    arguments = re.findall(r"^  <([A-Z0-9_]+)>", "\n".join(section(text, "Arguments:")), re.M)
    return flags, arguments


# --------------------------------------------------------------------------- the doc


def doc_tables() -> dict[str, list[list[str]]]:
    """The body rows of the first table under each heading of docs/options.md."""
    tables: dict[str, list[list[str]]] = {}
    heading, previous = "", ""
    for line in DOC.read_text(encoding="utf-8").splitlines():
        if line.startswith("#"):
            heading = line.lstrip("#").strip().replace("`", "")
        elif line.startswith("|") and heading:
            if not previous.startswith("|") and heading in tables:
                heading = ""  # a second table under the heading: not an options table
                continue
            cells = [c.strip().replace("\\|", "|") for c in re.split(r"(?<!\\)\|", line.strip())[1:-1]]
            tables.setdefault(heading, []).append(cells)
        previous = line
    # Each table without its header and separator rows.
    return {h: rows[2:] for h, rows in tables.items()}


def plain(cell: str) -> str:
    return cell.replace("`", "").strip()


@dataclass
class DocFlag:
    """One row of a flag table: ``-r, --regex RE`` or ``--dry-run``, ``--list-only``."""

    longs: list[str]
    short: str | None
    value: str | None
    default: str
    row: str


def doc_flags(heading: str) -> tuple[dict[str, DocFlag], list[str], list[str]]:
    """A flag table's rows by long name, its positional arguments, and problems reading it."""
    flags: dict[str, DocFlag] = {}
    positional: list[str] = []
    problems: list[str] = []
    for cells in doc_tables().get(heading, []):
        longs: list[str] = []
        short = value = None
        for part in plain(cells[0]).split(", "):
            if part.startswith("--"):
                name, _, rest = part[2:].partition(" ")
                longs.append(name)
                value = value or rest or None
            elif part.startswith("-"):
                short = part[1:]
            else:
                positional.append(part)
        if longs:
            if longs[0] in flags:
                problems.append(f"{heading}: --{longs[0]} has two rows")
            flags[longs[0]] = DocFlag(longs, short, value, plain(cells[1]), " | ".join(cells))
    return flags, positional, problems


def compare_flags(command: str, heading: str) -> list[str]:
    """What differs between ``COMMAND --help`` and the doc's table of its options."""
    shown = f"`s3fetch {command + ' ' if command else ''}--help`"
    where = f"docs/options.md, {heading}"
    helped, arguments = parse_help(cli_help(*command.split()))
    assert {"help", "region", "endpoint-url"} <= set(helped), f"{shown} could not be read: {sorted(helped)}"
    documented, positional, problems = doc_flags(heading)
    for name in sorted(set(helped) - set(documented)):
        problems.append(f"--{name} is in {shown} but not in {where}; a row to start from:\n    {helped[name].row()}")
    for name in sorted(set(documented) - set(helped)):
        problems.append(f"--{name} is in {where} but not in {shown}")
    for name in sorted(set(helped) & set(documented)):
        h, d = helped[name], documented[name]
        if d.longs[1:] != h.aliases:
            problems.append(f"--{name}: aliases {h.aliases} in {shown}, {d.longs[1:]} in {where}")
        if d.short != h.short:
            problems.append(f"--{name}: short form {h.short or 'none'} in {shown}, {d.short or 'none'} in {where}")
        if d.value != h.value:
            problems.append(f"--{name}: value {h.value!r} in {shown}, {d.value!r} in {where}")
        default = h.bracket("default")
        if default is not None and d.default != default:
            problems.append(f"--{name}: default {default!r} in {shown}, {d.default!r} in {where}")
        env = h.bracket("env")
        if env is not None and env not in d.row:
            problems.append(f"--{name}: {shown} reads ${env}; {where} does not say so")
        for value in h.values:
            if f"`{value}`" not in d.row:
                problems.append(f"--{name}: {shown} takes `{value}`; {where} does not name it")
    if sorted(positional) != sorted(arguments):
        problems.append(f"arguments {arguments} in {shown}, {positional} in {where}")
    return problems


def test_the_cli_table_lists_exactly_the_flags_of_help() -> None:
    problems = compare_flags("", CLI)
    assert not problems, "\n".join(problems)


def test_the_plan_table_lists_exactly_the_flags_of_plan_help() -> None:
    problems = compare_flags("plan", PLAN_CLI)
    assert not problems, "\n".join(problems)


def test_the_cat_table_lists_exactly_the_flags_of_cat_help() -> None:
    problems = compare_flags("cat", CAT_CLI)
    assert not problems, "\n".join(problems)


# --------------------------------------------------------------------------- Python


def literal(value: object) -> str:
    """A default as the doc writes it: ``"."``, ``None``, ``False``."""
    return json.dumps(value) if isinstance(value, str) else repr(value)


def compare_keywords(function: Callable[..., Any], heading: str, command: str) -> list[str]:
    where = f"docs/options.md, {heading}"
    parameters = inspect.signature(function).parameters
    rows = {plain(cells[0]): cells for cells in doc_tables().get(heading, [])}
    flags, _ = parse_help(cli_help(*command.split()))
    problems = []
    for name in parameters:
        if name not in rows:
            p = parameters[name]
            default = "required" if p.default is p.empty else f"`{literal(p.default)}`"
            problems.append(
                f"{heading}() takes {name}= but {where} does not list it; a row to start from:\n"
                f"    | `{name}` | {default} | `--{name.replace('_', '-')}` | ... |"
            )
    for name in rows:
        if name not in parameters:
            problems.append(f"{where} lists {name}= but {heading}() has no such keyword")
    for name in sorted(set(parameters) & set(rows)):
        p, cells = parameters[name], rows[name]
        expected = "required" if p.default is p.empty else literal(p.default)
        if plain(cells[1]) != expected:
            problems.append(f"{name}=: default {expected} in {heading}(), {plain(cells[1])} in {where}")
        for flag in re.findall(r"--([a-z][a-z0-9-]*)", cells[2]):
            if flag not in flags:
                problems.append(f"{name}=: {where} names --{flag}, which `s3fetch {command} --help` does not have")
    return problems


@pytest.mark.parametrize(
    ("function", "heading", "command"),
    [(s3fetch.download, PY_DOWNLOAD, ""), (s3fetch.plan, PY_PLAN, "plan"), (s3fetch.iter_objects, PY_ITER, "cat")],
    ids=["download", "plan", "iter_objects"],
)
def test_the_python_tables_list_exactly_the_keywords(function: Callable[..., Any], heading: str, command: str) -> None:
    problems = compare_keywords(function, heading, command)
    assert not problems, "\n".join(problems)


def test_download_async_takes_the_arguments_of_download() -> None:
    """The doc says so: one table serves both."""

    def shape(function: Callable[..., Any]) -> list[tuple[str, object]]:
        return [(n, p.default) for n, p in inspect.signature(function).parameters.items()]

    assert shape(s3fetch.download_async) == shape(s3fetch.download)


# --------------------------------------------------------------------------- Rust


def rust_items(opening: re.Pattern[str], item: re.Pattern[str]) -> dict[str, Path]:
    """Names matching ``item`` in the blocks that open with ``opening`` (at the start of a line,
    closed by a ``}`` at the start of a line) in the library's source, with their file."""
    names: dict[str, Path] = {}
    for path in sorted(LIBRARY.rglob("*.rs")):
        inside = False
        for line in path.read_text(encoding="utf-8").splitlines():
            if opening.match(line):
                inside = True
            elif inside and line.startswith("}"):
                inside = False
            elif inside:
                found = item.match(line)
                if found:
                    names[found.group(1)] = path.relative_to(REPO)
    return names


def compare_rust(names: dict[str, Path], heading: str, what: str) -> list[str]:
    where = f"docs/options.md, {heading}"
    assert names, f"no {what} found in {LIBRARY.relative_to(REPO)}: has {heading} moved or been renamed?"
    documented = [plain(cells[0]) for cells in doc_tables().get(heading, [])]
    problems = [f"{where} lists {name} twice" for name in sorted(set(documented)) if documented.count(name) > 1]
    for name in sorted(set(names) - set(documented)):
        problems.append(
            f"{heading}::{name} ({what} in {names[name]}) is not in {where}; a row to start from:\n"
            f"    | `{name}` | ... | ... |"
        )
    for name in sorted(set(documented) - set(names)):
        problems.append(f"{where} lists {name}, which is no {what} of {heading}")
    return problems


def test_the_rust_table_lists_exactly_the_methods_of_download_options() -> None:
    names = rust_items(re.compile(r"^impl DownloadOptions\b"), re.compile(r"^    pub fn (\w+)"))
    problems = compare_rust(names, RUST_OPTIONS, "pub fn")
    assert not problems, "\n".join(problems)


def test_the_rust_table_lists_exactly_the_fields_of_client_options() -> None:
    names = rust_items(re.compile(r"^pub struct ClientOptions\b"), re.compile(r"^    pub (\w+):"))
    problems = compare_rust(names, RUST_CLIENT, "pub field")
    assert not problems, "\n".join(problems)


# --------------------------------------------------------------------------- the checker


def test_the_help_reader_reads_what_clap_prints() -> None:
    """The reader itself, on a sample of clap's layout: a test that reads nothing passes nothing."""
    text = """Usage: s3fetch [OPTIONS] <S3_URI>

Arguments:
  <S3_URI>
          s3://bucket

Options:
  -r, --regex <RE>
          Only keys in which this regex is found

      --compare <WHAT>
          What --sync compares besides the size; `etag` implies
          --sync
          \n          [default: mtime]
          [possible values: mtime, etag]

      --dry-run
          List only
          \n          [alias: --list-only]

      --region <REGION>
          AWS region [default: from the environment or profile, else us-east-1]

      --output <FORMAT>
          Output

          Possible values:
          - text: For people
          - json: For scripts

Examples:
  s3fetch s3://b/ --sync
"""
    flags, arguments = parse_help(text)
    assert arguments == ["S3_URI"]
    assert list(flags) == ["regex", "compare", "dry-run", "region", "output"]
    assert (flags["regex"].short, flags["regex"].value) == ("r", "RE")
    assert flags["compare"].bracket("default") == "mtime" and flags["compare"].values == ["mtime", "etag"]
    assert flags["dry-run"].aliases == ["list-only"]
    assert flags["region"].bracket("default") == "from the environment or profile, else us-east-1"
    assert flags["output"].values == ["text", "json"]
    assert flags["regex"].row() == "| `-r, --regex RE` |  | Only keys in which this regex is found |"
