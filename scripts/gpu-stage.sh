#!/usr/bin/env bash
# Prepares, HERE, what scripts/gpu-check.sh needs on the GPU machine (which has no Rust and
# reaches no registry): a stripped release lt-train in .gpu-bin/ and onnxruntime-gpu pruned
# to sm_90 in .gpu-ort/ (../shared/gpu/stage-ort-gpu.sh). Both folders are git-ignored and
# go to the device with `carry: [".gpu-ort", ".gpu-bin"]`; together they must stay < 64 MiB.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
stage=${GPU_STAGE_SCRIPT:-$root/../shared/gpu/stage-ort-gpu.sh}
[ -x "$stage" ] || [ -f "$stage" ] || { echo "error: no $stage (set GPU_STAGE_SCRIPT)" >&2; exit 1; }
cargo build --release --locked -p lt-train
mkdir -p .gpu-bin
strip -o .gpu-bin/lt-train target/release/lt-train
bash "$stage" "$root/.gpu-ort"
du -sh .gpu-bin .gpu-ort
total=$(du -sm .gpu-bin .gpu-ort | awk '{s+=$1} END {print s}')
echo "carried set: ${total} MiB (limit 64)"
[ "$total" -lt 64 ] || { echo "error: the carried set is over 64 MiB" >&2; exit 1; }
