#!/usr/bin/env bash
# All the tests: the Rust workspace (engine, CLI, test kit), then the Python package — its
# wheel built, installed into a fresh venv and its pytest suite run against the test kit's
# server. This is the README's test command; .ci/run calls it.
#   S3FETCH_SKIP_PYTHON=1   Rust tests only
#   Extra arguments go to pytest (e.g. -k fork).
set -euo pipefail
cd "$(dirname "$0")/.."

echo "== cargo test --workspace" >&2
cargo test --workspace
if [ "${S3FETCH_SKIP_PYTHON:-0}" = 1 ]; then
    exit 0
fi
echo "== Python package" >&2
exec scripts/python-tests.sh "$@"
