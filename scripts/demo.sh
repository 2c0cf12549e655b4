#!/usr/bin/env bash
# The main job on the built-in default data (README's first command). Installs onnxruntime
# if missing, builds the release binaries and runs the demo end to end.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-ort.sh
cargo build --release --locked --quiet -p lt-train
./target/release/lt-train doctor
