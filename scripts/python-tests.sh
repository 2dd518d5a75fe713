#!/usr/bin/env bash
# The Python package's checks: build the wheel (maturin, through pip), install it into a fresh
# venv, lint and type-check the Python code, run the pytest suite (tests start the test
# kit's server, built here too). Extra arguments go to pytest.
#   S3FETCH_WHEEL_PROFILE=release   build the wheel in release mode (default: dev, which
#                                   reuses the workspace's debug build of the dependencies)
#   PYTHON=python3.12               the interpreter (3.10 or later)
set -euo pipefail
cd "$(dirname "$0")/.."

python=${PYTHON:-python3}
profile=${S3FETCH_WHEEL_PROFILE:-dev}
package=crates/s3fetch-python
wheels=target/wheels/$profile
venv=target/python-test-venv

cargo build -p s3fetch-testkit
rm -rf "$wheels" "$venv"
echo "== building the wheel ($profile)" >&2
MATURIN_PEP517_ARGS="--profile $profile" "$python" -m pip wheel --no-deps -q -w "$wheels" "./$package"
"$python" -m venv "$venv"
"$venv/bin/python" -m pip install -q --disable-pip-version-check "$wheels"/s3fetch-*.whl pytest boto3 ruff mypy pyyaml distributed tqdm "ray==2.60.0"
echo "== ruff, mypy" >&2
(
    cd "$package"
    "../../$venv/bin/ruff" check python tests ../../examples
    "../../$venv/bin/ruff" format --check python tests ../../examples
    "../../$venv/bin/mypy" python/s3fetch
)
echo "== pytest" >&2
# From the tests' directory, so that `import s3fetch` is the installed wheel, not the source.
cd "$package/tests"
S3FETCH_TESTKIT="$PWD/../../../target/debug/s3fetch-testkit" exec "../../../$venv/bin/python" -m pytest -q "$@"
