#!/usr/bin/env bash
# Checks what scripts/dist.sh made, as a user without Rust would meet it:
# - the wheel: auditwheel's verdict for manylinux_2_17, no symbol of its module needing a glibc
#   newer than 2.17; installed from the file alone (no index, no sdist, no cargo or rustc on
#   PATH) into fresh venvs of Python 3.10, 3.11, 3.12 and 3.13, each importing it and running
#   its `s3fetch` command against the test kit; the pytest suite on the oldest and the newest;
# - the CLI tarball: its binary needs no glibc newer than 2.17, downloads the sample bucket
#   from the test kit, and its completions and man pages are what the binary generates;
# - SHA256SUMS matches.
# The test kit is the workspace's debug build (cargo builds it when missing).
#   DIST_DIR=dir            the artifacts (default dist)
#   DIST_PYTHONS="3.10 …"   the Python versions (default: 3.10 3.11 3.12 3.13, from pyenv)
#   DIST_SUITE="3.10 3.13"  the versions that run the pytest suite
set -euo pipefail
cd "$(dirname "$0")/.."

out=${DIST_DIR:-dist}
pythons=${DIST_PYTHONS:-3.10 3.11 3.12 3.13}
suite=${DIST_SUITE:-3.10 3.13}
tools=target/dist-tools
work=target/dist-check
rm -rf "$work" && mkdir -p "$work"
fail() { echo "dist-check: $*" >&2; exit 1; }

# The highest GLIBC_x.y symbol version a binary asks for (objdump -T: dynamic symbols).
glibc_needed() { objdump -T "$1" | grep -o 'GLIBC_[0-9][0-9.]*' | sed 's/GLIBC_//' | sort -V | tail -1; }
at_most_2_17() { [ "$(printf '%s\n2.17\n' "$1" | sort -V | tail -1)" = 2.17 ]; }

echo "== SHA256SUMS" >&2
(cd "$out" && sha256sum -c --quiet SHA256SUMS)

wheel=$(ls "$out"/s3fetch-*-cp310-abi3-*manylinux_2_17_x86_64*.whl 2>/dev/null | head -1)
[ -n "$wheel" ] || fail "no cp310-abi3 manylinux_2_17 wheel in $out: $(ls "$out")"
echo "== $wheel: auditwheel" >&2
"$tools/bin/auditwheel" show "$wheel" | tee "$work/auditwheel.txt" >&2
# (its lines are wrapped: joined first)
tr -s ' \n' ' ' <"$work/auditwheel.txt" | grep -q 'consistent with the following platform tag: "manylinux_2_17_x86_64"' \
    || fail "auditwheel does not find $wheel consistent with manylinux_2_17_x86_64"
mkdir -p "$work/wheel" && (cd "$work/wheel" && python3 -m zipfile -e "../../../$wheel" .)
module=$(ls "$work"/wheel/s3fetch/_s3fetch*.so)
needed=$(glibc_needed "$module")
at_most_2_17 "$needed" || fail "$module needs GLIBC_$needed (> 2.17)"
echo "the module needs GLIBC_$needed at most" >&2

# The test kit and a sample bucket, served on 127.0.0.1.
[ -x target/debug/s3fetch-testkit ] || cargo build -p s3fetch-testkit
testkit=$PWD/target/debug/s3fetch-testkit
expected=300
"$testkit" generate --data "$work/data" --objects $expected --folders 10 >/dev/null
"$testkit" serve --data "$work/data" --port 0 >"$work/endpoint" 2>"$work/server.log" &
server=$!
trap 'kill $server 2>/dev/null || true' EXIT
for _ in $(seq 100); do
    grep -q '^endpoint=' "$work/endpoint" 2>/dev/null && break
    sleep 0.1
done
endpoint=$(sed -n 's/^endpoint=//p' "$work/endpoint")
[ -n "$endpoint" ] || fail "the test kit did not start: $(cat "$work/server.log")"
export AWS_ACCESS_KEY_ID=s3fetch-test AWS_SECRET_ACCESS_KEY=s3fetch-test-secret

# A PATH without Rust: the venv's bin and the system's.
bare_path() { echo "$PWD/$1/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"; }

for version in $pythons; do
    python=$(ls -d "$HOME"/.pyenv/versions/"$version".*/bin/python"$version" 2>/dev/null | sort -V | tail -1)
    [ -x "$python" ] || python=$(command -v "python$version" || true)
    [ -n "$python" ] || fail "no Python $version"
    venv=$work/venv-$version
    echo "== Python $version ($python): the wheel alone, no Rust on PATH" >&2
    "$python" -m venv "$venv"
    (
        export PATH; PATH=$(bare_path "$venv")
        if command -v cargo >/dev/null || command -v rustc >/dev/null; then fail "cargo or rustc on PATH"; fi
        python -m pip install -q --disable-pip-version-check --no-index --only-binary :all: "$wheel"
        python -c 'import s3fetch, s3fetch.exceptions; print("import s3fetch:", s3fetch.__file__)'
        s3fetch --version
        rm -rf "$work/down-$version" && mkdir -p "$work/down-$version"
        s3fetch s3://sample/ --endpoint-url "$endpoint" --download-dir "$work/down-$version" -q
        got=$(find "$work/down-$version" -type f | wc -l)
        [ "$got" = "$expected" ] || fail "Python $version: $got files of $expected"
        echo "Python $version: s3fetch downloaded $got files" >&2
    )
    case " $suite " in
    *" $version "*)
        echo "== Python $version: the pytest suite against the installed wheel" >&2
        # Test tools only (the Dask and Ray recipes run in scripts/python-tests.sh).
        "$venv/bin/python" -m pip install -q --disable-pip-version-check pytest boto3 pyyaml tqdm
        (
            export PATH; PATH=$(bare_path "$venv")
            cd crates/s3fetch-python/tests
            S3FETCH_TESTKIT=$testkit python -m pytest -q -p no:cacheprovider \
                -k "not dask_recipe and not ray_recipe"
        )
        ;;
    esac
done

tarball=$(ls "$out"/s3fetch-*-x86_64-unknown-linux-gnu.tar.gz 2>/dev/null | head -1)
[ -n "$tarball" ] || fail "no CLI tarball in $out"
echo "== $tarball" >&2
tar -xzf "$tarball" -C "$work"
dir=$work/$(basename "$tarball" .tar.gz)
for file in s3fetch README.md LICENSE-MIT LICENSE-APACHE completions/s3fetch.bash completions/_s3fetch \
    completions/s3fetch.fish man/s3fetch.1; do
    [ -s "$dir/$file" ] || fail "$file missing from $tarball"
done
needed=$(glibc_needed "$dir/s3fetch")
at_most_2_17 "$needed" || fail "the CLI needs GLIBC_$needed (> 2.17)"
echo "the CLI needs GLIBC_$needed at most" >&2
"$dir/s3fetch" --version
"$dir/s3fetch" completions bash | cmp - "$dir/completions/s3fetch.bash"
"$dir/s3fetch" completions zsh | cmp - "$dir/completions/_s3fetch"
"$dir/s3fetch" completions fish | cmp - "$dir/completions/s3fetch.fish"
mkdir -p "$work/man" && "$dir/s3fetch" man --dir "$work/man" && diff -r "$work/man" "$dir/man"
bash -n "$dir/completions/s3fetch.bash"
mkdir -p "$work/down-cli"
(
    export PATH; PATH=$(bare_path "$work/none")
    "$dir/s3fetch" s3://sample/ --endpoint-url "$endpoint" --download-dir "$work/down-cli" -q
)
got=$(find "$work/down-cli" -type f | wc -l)
[ "$got" = "$expected" ] || fail "the CLI: $got files of $expected"
echo "the CLI downloaded $got files" >&2
echo "dist-check passed" >&2
