#!/usr/bin/env bash
# The compatibility suite: s3fetch (the CLI, and the Python API) against two S3 servers that
# nobody here wrote — moto's server (PyPI) and s3rver (npm) — with the test kit's result for
# the same objects as the reference. Installs both under target/compat (kept: later runs reuse
# them), starts each on 127.0.0.1 on a free port (stopped on exit, failure included), uploads
# a tree of awkward keys with boto3 (compat/keytree.py), downloads it with the CLI (default
# settings, then --list-concurrency 1) and with s3fetch.download(), and checks files, bytes,
# failed keys and exit codes against the documented rules and the test kit (compat/compat.py).
# Prints a table per server; exits 1 on any mismatch, naming server, run and key.
#   MOTO_SPEC=SPEC      what pip installs (default: moto[server]==5.2.6)
#   S3RVER_SPEC=SPEC    what npm installs (default: s3rver@3.7.1)
#   PYTHON=python3.12   the interpreter of the venvs (3.10 or later)
# The Python API comes from target/python-test-venv (scripts/python-tests.sh installs the
# wheel there); when that venv is missing the wheel is built and installed the same way.
set -euo pipefail
cd "$(dirname "$0")/.."
started=$SECONDS

python=${PYTHON:-python3}
moto_spec=${MOTO_SPEC:-"moto[server]==5.2.6"}
s3rver_spec=${S3RVER_SPEC:-"s3rver@3.7.1"}
root=target/compat
venv=target/python-test-venv
moto_venv=$root/moto-venv
s3rver_dir=$root/s3rver
run=$root/run
mkdir -p "$root"

cargo build -p s3fetch-cli -p s3fetch-testkit

# The Python API: the wheel scripts/python-tests.sh installed, else built as it builds it.
if ! "$venv/bin/python" -c 'import s3fetch, boto3' 2>/dev/null || [ ! -x "$venv/bin/ruff" ] || [ ! -x "$venv/bin/mypy" ]; then
    echo "== building the s3fetch wheel (dev) into $venv, as scripts/python-tests.sh does" >&2
    wheels=target/wheels/dev
    rm -rf "$wheels" "$venv"
    MATURIN_PEP517_ARGS="--profile dev" "$python" -m pip wheel --no-deps -q -w "$wheels" ./crates/s3fetch-python
    "$python" -m venv "$venv"
    "$venv/bin/python" -m pip install -q --disable-pip-version-check "$wheels"/s3fetch-*.whl boto3 ruff mypy
fi
echo "== compat: s3fetch $("$venv/bin/python" -c 'import s3fetch; print(s3fetch.__version__)') from $venv" >&2

echo "== ruff, mypy (compat/)" >&2
(
    cd crates/s3fetch-python # its pyproject.toml holds the project's ruff and mypy settings
    "../../$venv/bin/ruff" check ../../compat
    "../../$venv/bin/ruff" format --check ../../compat
    "../../$venv/bin/mypy" ../../compat
)

# The servers, installed once per spec.
if [ "$(cat "$moto_venv/.spec" 2>/dev/null || true)" != "$moto_spec" ] || [ ! -x "$moto_venv/bin/moto_server" ]; then
    echo "== installing $moto_spec into $moto_venv" >&2
    rm -rf "$moto_venv"
    "$python" -m venv "$moto_venv"
    "$moto_venv/bin/python" -m pip install -q --disable-pip-version-check "$moto_spec"
    echo "$moto_spec" >"$moto_venv/.spec"
fi
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
    echo "== installing Node.js and npm (Debian packages) for s3rver" >&2
    apt-get update -qq && apt-get install -y -qq nodejs npm >/dev/null
fi
if [ "$(cat "$s3rver_dir/.spec" 2>/dev/null || true)" != "$s3rver_spec" ] || [ ! -f "$s3rver_dir/node_modules/s3rver/bin/s3rver.js" ]; then
    echo "== installing $s3rver_spec into $s3rver_dir (npm)" >&2
    rm -rf "$s3rver_dir"
    mkdir -p "$s3rver_dir"
    npm install --prefix "$s3rver_dir" --no-audit --no-fund --loglevel=error "$s3rver_spec" >&2
    echo "$s3rver_spec" >"$s3rver_dir/.spec"
fi
echo "== compat: $("$moto_venv/bin/python" -c 'import moto; print("moto", moto.__version__)'), s3rver $(node "$s3rver_dir/node_modules/s3rver/bin/s3rver.js" --version) on node $(node --version)" >&2

rm -rf "$run"
mkdir -p "$run"
pids=()
stop_servers() {
    local pid
    for pid in "${pids[@]}"; do
        kill "$pid" 2>/dev/null || true
    done
    for pid in "${pids[@]}"; do
        wait "$pid" 2>/dev/null || true
    done
}
trap stop_servers EXIT
trap 'exit 130' INT TERM

# start NAME SED_SCRIPT COMMAND...: starts a server with its stdout and stderr in
# $run/NAME.log, waits for the line SED_SCRIPT turns into its endpoint; sets $endpoint, $pid.
start() {
    local name=$1 pattern=$2
    shift 2
    "$@" >"$run/$name.log" 2>&1 &
    pid=$!
    pids+=("$pid")
    endpoint=
    for _ in $(seq 300); do
        endpoint=$(sed -n "$pattern" "$run/$name.log" | head -1)
        [ -n "$endpoint" ] && break
        if ! kill -0 "$pid" 2>/dev/null; then
            echo "compat: $name exited at start:" >&2
            cat "$run/$name.log" >&2
            exit 1
        fi
        sleep 0.1
    done
    [ -n "$endpoint" ] || { echo "compat: $name did not start in 30 s (log: $run/$name.log)" >&2; exit 1; }
    echo "== $name at $endpoint (pid $pid, log $run/$name.log)" >&2
}

start testkit 's/^endpoint=//p' target/debug/s3fetch-testkit serve --port 0 --data "$run/testkit-data"
servers=(--server testkit "$endpoint" s3fetch-test s3fetch-test-secret "$pid" "$run/testkit.log")
# moto keeps its objects in memory; any keys are accepted.
start moto 's|.*Running on \(http://127\.0\.0\.1:[0-9]*\).*|\1|p' \
    "$moto_venv/bin/moto_server" -H 127.0.0.1 -p 0
servers+=(--server moto "$endpoint" compat-access compat-secret "$pid" "$run/moto.log")
# s3rver keeps its objects in files; S3RVER/S3RVER is its one pair of keys. Its continuation
# tokens (any listing of over 1,000 keys) are DES-encrypted, which OpenSSL 3 (Node 17 and
# later) only has in its legacy provider: without it every second page is a 500.
mkdir -p "$run/s3rver-data"
start s3rver 's|.*S3rver listening on \(127\.0\.0\.1:[0-9]*\).*|http://\1|p' \
    env NODE_OPTIONS=--openssl-legacy-provider node "$s3rver_dir/node_modules/s3rver/bin/s3rver.js" -d "$run/s3rver-data" -a 127.0.0.1 -p 0
servers+=(--server s3rver "$endpoint" S3RVER S3RVER "$pid" "$run/s3rver.log")

status=0
"$venv/bin/python" compat/compat.py --work "$run/work" --s3fetch target/debug/s3fetch "${servers[@]}" || status=$?
echo "== compat suite: $((SECONDS - started)) s in all" >&2
exit $status
