#!/usr/bin/env python3
"""Checks that every dependency a crate of the workspace declares is used by it: its name
(with `_` for `-`, or its `package = ...` rename) appears in the crate's Rust sources as a
path (`name::`) or a `use`/`extern crate`. Dev-dependencies are looked for in tests, benches
and examples too. Exits 1 naming each unused one (a dependency used only for its features
can be listed in KEEP with the reason)."""

import re
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# Dependencies used without being named in the source, and why.
KEEP: dict[tuple[str, str], str] = {}
# Packages whose library has another name.
LIB_NAMES = {"md-5": "md5"}


def sources(crate: Path, dev: bool) -> str:
    dirs = ["src", "build.rs"] + (["tests", "benches", "examples"] if dev else [])
    text = []
    for name in dirs:
        path = crate / name
        files = [path] if path.is_file() else sorted(path.rglob("*.rs")) if path.is_dir() else []
        text.extend(f.read_text() for f in files)
    return "\n".join(text)


def main() -> int:
    workspace = tomllib.loads((ROOT / "Cargo.toml").read_text())
    unused = []
    for member in workspace["workspace"]["members"]:
        crate = ROOT / member
        manifest = tomllib.loads((crate / "Cargo.toml").read_text())
        name = manifest["package"]["name"]
        for table, dev in [("dependencies", False), ("dev-dependencies", True)]:
            deps = dict(manifest.get(table, {}))
            for target in manifest.get("target", {}).values():
                deps.update(target.get(table, {}))
            code = sources(crate, dev)
            for dep, spec in deps.items():
                if (name, dep) in KEEP:
                    continue
                package = spec.get("package", dep) if isinstance(spec, dict) else dep
                idents = {dep.replace("-", "_"), LIB_NAMES.get(package, package.replace("-", "_"))}
                if any(re.search(rf"\b{i}::|\buse {i}\b|extern crate {i}\b", code) for i in idents):
                    continue
                unused.append(f"{name}: {table} `{dep}` is never used")
    for line in unused:
        print(line, file=sys.stderr)
    if unused:
        return 1
    print(f"dependencies: every one used ({len(workspace['workspace']['members'])} crates)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
