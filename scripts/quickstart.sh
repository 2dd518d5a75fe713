#!/usr/bin/env bash
# Quickstart: builds s3fetch and its test kit, generates a sample bucket (about 3,000 objects),
# serves it with the test kit's S3 server on 127.0.0.1 and downloads it with the real CLI.
# No AWS account needed. Extra arguments go to s3fetch (e.g. --regex '\.json$').
#   QUICKSTART_PROFILE=debug   use a debug build (faster to build, slower to run)
#   QUICKSTART_DIR=DIR         where the data and downloads go (default target/quickstart)
set -euo pipefail
cd "$(dirname "$0")/.."

profile=${QUICKSTART_PROFILE:-release}
if [ "$profile" = release ]; then
    cargo build --release -p s3fetch-cli -p s3fetch-testkit
else
    cargo build -p s3fetch-cli -p s3fetch-testkit
fi
bin=target/$profile
work=${QUICKSTART_DIR:-target/quickstart}
mkdir -p "$work"
rm -rf "$work/downloads" && mkdir -p "$work/downloads"

"$bin/s3fetch-testkit" generate --data "$work/data" >&2
"$bin/s3fetch-testkit" serve --data "$work/data" --port 0 >"$work/endpoint" 2>"$work/server.log" &
server=$!
trap 'kill $server 2>/dev/null || true' EXIT
for _ in $(seq 100); do
    grep -q '^endpoint=' "$work/endpoint" 2>/dev/null && break
    kill -0 $server 2>/dev/null || { cat "$work/server.log" >&2; exit 1; }
    sleep 0.1
done
endpoint=$(sed -n 's/^endpoint=//p' "$work/endpoint")
[ -n "$endpoint" ] || { echo "the test server did not start" >&2; exit 1; }
echo "test S3 server at $endpoint; downloading s3://sample/ into $work/downloads" >&2

export AWS_ACCESS_KEY_ID=s3fetch-test AWS_SECRET_ACCESS_KEY=s3fetch-test-secret
# A progress bar unless the caller chose an output mode.
progress=(--progress fancy)
for arg in "$@"; do
    case $arg in --progress* | -q | --quiet) progress=() ;; esac
done
set -x
"$bin/s3fetch" s3://sample/ --endpoint-url "$endpoint" --download-dir "$work/downloads" \
    "${progress[@]}" "$@"
