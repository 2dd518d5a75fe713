#!/usr/bin/env bash
# All the tests: the Rust workspace (engine, CLI, test kit), then the Python package — its
# wheel built, installed into a fresh venv and its pytest suite run against the test kit's
# server — then the compatibility suite (scripts/compat-tests.sh): the CLI and the Python API
# against two S3 servers nobody here wrote, moto's server and s3rver, installed from PyPI and
# npm into target/compat, each result compared with the test kit's. This is the README's test
# command; .ci/run calls it.
#   S3FETCH_SKIP_PYTHON=1   no Python package tests (pytest)
#   S3FETCH_SKIP_COMPAT=1   no compatibility suite (both set: Rust tests only)
#   Extra arguments go to pytest (e.g. -k fork).
set -euo pipefail
cd "$(dirname "$0")/.."

echo "== cargo test --workspace" >&2
cargo test --workspace
if [ "${S3FETCH_SKIP_PYTHON:-0}" != 1 ]; then
    echo "== Python package" >&2
    scripts/python-tests.sh "$@"
fi
if [ "${S3FETCH_SKIP_COMPAT:-0}" != 1 ]; then
    echo "== compatibility suite (moto, s3rver)" >&2
    scripts/compat-tests.sh
fi
