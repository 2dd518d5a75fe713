#!/usr/bin/env bash
# The release artifacts, into dist/, on a Linux x86_64 machine with Rust and Python ≥ 3.10
# (no Docker: zig links against glibc 2.17, from PyPI's `ziglang`):
#   s3fetch-VERSION-cp310-abi3-manylinux_2_17_x86_64.whl   the Python package, `s3fetch` command inside
#   s3fetch-VERSION.tar.gz                                  the sdist (pip builds it where Rust is)
#   s3fetch-VERSION-x86_64-unknown-linux-gnu.tar.gz         the CLI for glibc ≥ 2.17, with shell
#                                                           completions, man pages, README, licences
#   SHA256SUMS
# The build tools (maturin, ziglang, cargo-zigbuild, pinned) go into a venv under target/.
# scripts/dist-check.sh checks what this makes; .ci/run calls both.
#   DIST_DIR=dir   where the artifacts go (default dist)
set -euo pipefail
cd "$(dirname "$0")/.."

out=${DIST_DIR:-dist}
tools=target/dist-tools
target=x86_64-unknown-linux-gnu
version=$(sed -n 's/^version = "\(.*\)"$/\1/p' Cargo.toml | head -1)
# The commit goes into `s3fetch --version` (build.rs asks git, which the sdist has not).
S3FETCH_COMMIT=${S3FETCH_COMMIT:-$(git rev-parse --short=9 HEAD 2>/dev/null || true)}
export S3FETCH_COMMIT
# Reproducible archives: file times from the commit.
SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct 2>/dev/null || date +%s)}
export SOURCE_DATE_EPOCH

if [ ! -x "$tools/bin/cargo-zigbuild" ]; then
    echo "== build tools into $tools" >&2
    python3 -m venv "$tools"
    # zig 0.16's `ar` cannot build aws-lc (aws-lc-rs #993): 0.15.2.
    "$tools/bin/python" -m pip install -q --disable-pip-version-check \
        maturin==1.16.0 ziglang==0.15.2 cargo-zigbuild==0.24.1 auditwheel==6.8.2
fi
export PATH="$PWD/$tools/bin:$PATH"

rm -rf "$out" && mkdir -p "$out"

echo "== the wheel (abi3, manylinux2014 = glibc 2.17)" >&2
maturin build --profile dist --zig --compatibility manylinux2014 --target "$target" \
    -m crates/s3fetch-python/Cargo.toml -i "$tools/bin/python" --out "$out" --quiet

echo "== the sdist" >&2
maturin sdist -m crates/s3fetch-python/Cargo.toml --out "$out"

echo "== the CLI (glibc 2.17)" >&2
cargo zigbuild --profile dist -p s3fetch-cli --target "$target.2.17"
bin=target/$target/dist/s3fetch
name=s3fetch-$version-$target
stage=target/dist-stage/$name
rm -rf "$stage" && mkdir -p "$stage/completions" "$stage/man"
cp "$bin" "$stage/s3fetch"
"$stage/s3fetch" completions bash >"$stage/completions/s3fetch.bash"
"$stage/s3fetch" completions zsh >"$stage/completions/_s3fetch"
"$stage/s3fetch" completions fish >"$stage/completions/s3fetch.fish"
"$stage/s3fetch" man --dir "$stage/man"
cp README.md LICENSE-MIT LICENSE-APACHE "$stage/"
tar --sort=name --owner=0 --group=0 --numeric-owner --mtime="@$SOURCE_DATE_EPOCH" \
    -C target/dist-stage -cf - "$name" | gzip -n >"$out/$name.tar.gz"

(cd "$out" && sha256sum -- *.whl *.tar.gz >SHA256SUMS)
echo "== $out:" >&2
ls -l "$out" >&2
