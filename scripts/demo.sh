#!/usr/bin/env bash
# The main job on the built-in default data (README's first command): installs onnxruntime
# if missing, builds the release binaries and runs pipelines/demo.toml end to end (dataset
# build -> four experiments -> report) under out/demo, then prints where the report is.
# A rerun skips finished steps; an interrupted one resumes. Extra arguments go to `lt run`
# (e.g. --show-config, --set train.epochs=4).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-ort.sh
cargo build --release --locked --quiet -p lt-data -p lt-train -p lt-report -p lt-pipeline
bin="${CARGO_TARGET_DIR:-target}/release"
"$bin/lt" run pipelines/demo.toml "$@"
if [ -f out/demo/report/index.html ]; then
  echo "open out/demo/report/index.html (summary: out/demo/report/summary.md; explore the runs: notebooks/explore-runs.ipynb)"
fi
