#!/usr/bin/env python3
"""Checks the declared MSRV (`rust-version` of the workspace) as far as a machine with only a
newer toolchain can: every package the workspace builds (dependencies included, from
`cargo metadata`) must declare a `rust-version` no newer than ours, since Cargo refuses to
build such a package on our MSRV. Clippy's `incompatible_msrv` lint (on by default, run by
CI with warnings denied) checks the other half: no standard-library API newer than the MSRV
is used. Language features newer than the MSRV are not caught; only a build on that
toolchain would. Exits 1 naming each package that needs a newer Rust."""

import json
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def version(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in text.split("."))


def main() -> int:
    declared = tomllib.loads((ROOT / "Cargo.toml").read_text())["workspace"]["package"]["rust-version"]
    metadata = json.loads(
        subprocess.run(
            ["cargo", "metadata", "--format-version", "1", "--locked"],
            cwd=ROOT,
            check=True,
            capture_output=True,
            text=True,
        ).stdout
    )
    resolved = {node["id"] for node in metadata["resolve"]["nodes"]}
    newer = sorted(
        f"{p['name']} {p['version']} needs Rust {p['rust_version']}"
        for p in metadata["packages"]
        if p["id"] in resolved and p.get("rust_version") and version(p["rust_version"]) > version(declared)
    )
    for line in newer:
        print(f"rust-version {declared} is too old: {line}", file=sys.stderr)
    if newer:
        return 1
    print(f"rust-version {declared}: {len(resolved)} packages declare no newer Rust")
    return 0


if __name__ == "__main__":
    sys.exit(main())
