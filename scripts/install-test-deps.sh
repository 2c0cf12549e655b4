#!/usr/bin/env bash
# Python packages the tests use to check lt's outputs with other tools (onnx.checker,
# pyarrow, DuckDB, polars) and to execute notebooks/explore-runs.ipynb on a pipeline's outputs
# (nbconvert, nbclient, ipykernel, matplotlib). Installed into the project-local .venv-test (git-ignored) from
# PyPI; tests find it through LT_TEST_PYTHON, which scripts/test.sh exports.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
venv="$root/.venv-test"
stamp="$venv/.lt-deps-2"
if [ ! -f "$stamp" ]; then
  rm -rf "$venv"
  python3 -m venv "$venv"
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check \
    "onnx==1.*" "numpy<3" "pyarrow" "duckdb" "polars" \
    "nbconvert" "nbclient" "ipykernel" "matplotlib"
  touch "$stamp"
fi
