#!/usr/bin/env bash
# Reliability soak: 10,000 objects and a large-object variant, with 1 % of every fault kind
# the test kit can inject, through the engine. Writes the figures to RELIABILITY.md's
# "Latest soak" section (and prints them). The short variants run in CI as ordinary tests.
#   bench/soak.sh
set -euo pipefail
cd "$(dirname "$0")/.."
out=target/soak.txt
cargo test --release -p s3fetch --test soak -- --ignored --nocapture --test-threads 1 2>&1 | tee "$out"
grep -q "test result: ok" "$out"
{
    echo "## Latest soak"
    echo
    echo "Command: \`bench/soak.sh\` (\`cargo test --release -p s3fetch --test soak -- --ignored --nocapture\`), $(date -u +%Y-%m-%d), $(nproc) cores."
    echo
    grep -E '^(## soak|\|)' "$out" | sed 's/^## soak/### soak/'
} >target/soak.md
python3 - <<'PY'
import re, pathlib
doc = pathlib.Path("RELIABILITY.md")
text = doc.read_text() if doc.exists() else ""
new = pathlib.Path("target/soak.md").read_text()
text = re.sub(r"## Latest soak.*", "", text, flags=re.S).rstrip() + "\n\n" + new
doc.write_text(text)
PY
echo "RELIABILITY.md updated" >&2
