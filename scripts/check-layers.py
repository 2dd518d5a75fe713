#!/usr/bin/env python3
"""Checks that the library's rooms import one another downhill only: no loop between the
top-level modules of crates/s3fetch/src (docs/architecture.md draws them). Reads the
`crate::room` paths of every source file, tests and doc comments left out; prints the graph
with -v; exits 1 naming a loop if there is one."""

import collections
import re
import sys
from pathlib import Path

SRC = Path(__file__).resolve().parent.parent / "crates" / "s3fetch" / "src"


def rooms() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = collections.defaultdict(set)
    for path in SRC.rglob("*.rs"):
        relative = path.relative_to(SRC)
        if path.name == "tests.rs" or relative.name == "lib.rs":
            continue
        room = relative.parts[0].removesuffix(".rs")
        text = path.read_text().split("#[cfg(test)]\nmod tests {")[0]
        for line in text.splitlines():
            if line.lstrip().startswith("//"):
                continue
            for target in re.findall(r"crate::(\w+)", line):
                if target != room:
                    graph[room].add(target)
    return graph


def loop(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return path[path.index(nxt) :] + [nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        state[node] = 2
        path.pop()
        return None

    for node in sorted(graph):
        if node not in state and (found := visit(node)):
            return found
    return None


def main() -> int:
    graph = rooms()
    if "-v" in sys.argv:
        for room in sorted(graph):
            print(f"{room} -> {', '.join(sorted(graph[room]))}")
    found = loop(graph)
    if found:
        print(f"import loop between the library's rooms: {' -> '.join(found)}", file=sys.stderr)
        return 1
    print(f"library rooms: {len(graph)} importing, no loop")
    return 0


if __name__ == "__main__":
    sys.exit(main())
