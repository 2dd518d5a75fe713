#!/usr/bin/env bash
# s3fetch against the benchmark's data served by a store that lists differently from S3
# (BENCHMARKS.md, "Stores that list differently"). Needs the data of an earlier
# `bench/run.sh --scenarios needle,flat` (target/bench/data) and a release build.
#
#   bench/quirks.sh QUIRK BUCKET NAME[:FLAGS]...
#     QUIRK   the test kit's flag, e.g. "--ignore-start-after needle" (quoted: one argument)
#     BUCKET  the bucket listed (`needle` or `flat`; selection `\.json$`, 500 keys)
#     NAME    a directory under target/bench-bins/ holding an `s3fetch` binary; FLAGS are added
#             to its command line (`new:--list-concurrency 1`)
#
# Each run three times, at most 60 s each (a run that does not end is killed: rc 124).
# Prints: exit code, files written, warnings on stderr, wall time.
set -uo pipefail
cd "$(dirname "$0")/.."
quirk=$1
bucket=$2
shift 2
testkit=${TESTKIT:-target/release/s3fetch-testkit}
work=$(mktemp -d)
trap 'kill "$server" 2>/dev/null; wait "$server" 2>/dev/null; rm -rf "$work"' EXIT
# shellcheck disable=SC2086 # the quirk is a flag and its argument
"$testkit" serve --data target/bench/data --port 0 --get-latency-ms 20 --list-latency-ms 60 \
    $quirk >"$work/endpoint" 2>"$work/server.log" &
server=$!
for _ in $(seq 100); do
    grep -q endpoint= "$work/endpoint" 2>/dev/null && break
    sleep 0.1
done
endpoint=$(sed -n 's/^endpoint=//p' "$work/endpoint")
export AWS_ACCESS_KEY_ID=s3fetch-test AWS_SECRET_ACCESS_KEY=s3fetch-test-secret
export AWS_REGION=us-east-1 AWS_ENDPOINT_URL=$endpoint AWS_EC2_METADATA_DISABLED=true
for run in "$@"; do
    name=${run%%:*}
    flags=${run#"$name"}
    flags=${flags#:}
    for rep in 1 2 3; do
        dest=$(mktemp -d "$work/dest.XXXX")
        start=$(date +%s.%N)
        # shellcheck disable=SC2086 # flags are words
        timeout 60 "target/bench-bins/$name/s3fetch" "s3://$bucket/" --regex '\.json$' \
            --download-dir "$dest" -q $flags 2>"$work/stderr"
        rc=$?
        end=$(date +%s.%N)
        printf '%s %-4s %-24s rep %d: rc %3d, %4d files, %d warning, wall %.2f s\n' \
            "$quirk" "$name" "$flags" "$rep" "$rc" "$(find "$dest" -type f | wc -l)" \
            "$(grep -c '^warning: ' "$work/stderr")" "$(echo "$end - $start" | bc)"
        rm -rf "$dest"
    done
done
