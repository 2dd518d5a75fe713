"""Every relative link of the documentation leads somewhere: the file exists, and the
``#anchor`` is a heading of it (GitHub's slugs). Moving a section breaks the links to it;
this test names them."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from conftest import REPO

DOCS = sorted(
    [
        REPO / "README.md",
        REPO / "BENCHMARKS.md",
        REPO / "RELIABILITY.md",
        REPO / "bench" / "README.md",
        REPO / "examples" / "README.md",
        *(REPO / "docs").glob("*.md"),
    ]
)
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)")


def prose(text: str) -> list[str]:
    """The lines outside fenced code blocks."""
    lines, fenced = [], False
    for line in text.splitlines():
        if line.lstrip().startswith("```"):
            fenced = not fenced
        elif not fenced:
            lines.append(line)
    return lines


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to ``-``."""
    text = heading.strip().lower().replace("`", "")
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def anchors(path: Path) -> set[str]:
    found: set[str] = set()
    for line in prose(path.read_text(encoding="utf-8")):
        if line.startswith("#"):
            base = slug(line.lstrip("#"))
            name, n = base, 0
            while name in found:  # a repeated heading gets -1, -2...
                n += 1
                name = f"{base}-{n}"
            found.add(name)
    return found


def test_the_slugs_are_githubs() -> None:
    assert slug("Migrating from s3fetch 2.1.2") == "migrating-from-s3fetch-212"
    assert slug("HTTPS (`--tls`)") == "https---tls"
    assert slug("`s3fetch plan`") == "s3fetch-plan"


@pytest.mark.parametrize("doc", DOCS, ids=[str(d.relative_to(REPO)) for d in DOCS])
def test_every_relative_link_resolves(doc: Path) -> None:
    problems = []
    for line in prose(doc.read_text(encoding="utf-8")):
        for target in LINK.findall(line):
            if re.match(r"[a-z]+:", target):
                continue  # https:, mailto:
            file, _, anchor = target.partition("#")
            path = (doc.parent / file).resolve() if file else doc
            if not path.exists():
                problems.append(f"{target}: no {path.relative_to(REPO) if path.is_relative_to(REPO) else path}")
            elif anchor and path.suffix == ".md" and anchor not in anchors(path):
                problems.append(f"{target}: no heading #{anchor} in {path.relative_to(REPO)}")
    assert not problems, f"{doc.relative_to(REPO)}:\n" + "\n".join(problems)
