#!/bin/bash
# What verifying by MD5 read-back costs: the `large` bucket (4 x 512 MiB, ranged downloads)
# served with full-object CRCs (combined from the parts, free) and without (`serve
# --no-checksums`: the MD5 ETag is checked by reading each finished file back).
# Prints "crc|md5 WALL_S USER_S SYS_S MAXRSS_KB" per run. Needs the bench data
# (bench/run.sh --scenarios large) and release binaries.
cd "$(dirname "$0")/.."
set -euo pipefail
run() { # flag
  target/release/s3fetch-testkit serve --data target/bench/data --get-latency-ms 20 --list-latency-ms 60 $1 > target/bench/readback-server.out 2>target/bench/readback-server.err &
  pid=$!
  for i in $(seq 50); do grep -q endpoint target/bench/readback-server.out && break; sleep 0.1; done
  ep=$(grep -o 'http://[0-9.:]*' target/bench/readback-server.out)
  rm -rf "${TMPDIR:-/tmp}/s3fetch-readback"; mkdir "${TMPDIR:-/tmp}/s3fetch-readback"
  /usr/bin/time -f "%e %U %S %M" env AWS_ACCESS_KEY_ID=s3fetch-test AWS_SECRET_ACCESS_KEY=s3fetch-test-secret target/release/s3fetch s3://large/ --download-dir "${TMPDIR:-/tmp}/s3fetch-readback" -q --endpoint-url $ep 2>&1 | tail -1
  kill -INT $pid; wait $pid 2>/dev/null || true
}
for r in 1 2 3; do
  echo "crc $(run '')"
  echo "md5 $(run --no-checksums)"
done
rm -rf "${TMPDIR:-/tmp}/s3fetch-readback"
