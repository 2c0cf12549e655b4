#!/usr/bin/env bash
# Prepares, HERE, what scripts/gpu-check.sh needs on the GPU machine (which has no Rust and
# reaches no registry): a stripped, xz-compressed release lt-train in .gpu-bin/ and onnxruntime-gpu pruned
# to sm_90 in .gpu-ort/ (../shared/gpu/stage-ort-gpu.sh). Both folders are git-ignored and
# go to the device with `carry: [".gpu-ort", ".gpu-bin"]`; together they must stay < 64 MiB.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
stage=${GPU_STAGE_SCRIPT:-$root/../shared/gpu/stage-ort-gpu.sh}
[ -x "$stage" ] || [ -f "$stage" ] || { echo "error: no $stage (set GPU_STAGE_SCRIPT)" >&2; exit 1; }
cargo build --release --locked -p lt-train -p lt-data
rm -rf .gpu-bin && mkdir -p .gpu-bin
# xz: the stripped binary (~12 MB) does not fit beside the 58 MB of .gpu-ort otherwise.
strip -o .gpu-bin/lt-train target/release/lt-train
xz -T0 -9 .gpu-bin/lt-train
# A tiny long-tailed dataset (216 training images) for a short end-to-end run on CUDA and CPU.
tmp=$(mktemp -d)
target/release/lt-data build -q --source synthetic:40 --test-per-class 10 --profile exp --imbalance 4 \
  --resample instance --seed 0 --out "$tmp/gpu-data"
tar -cJf .gpu-bin/data.tar.xz -C "$tmp" gpu-data
rm -rf "$tmp"
bash "$stage" "$root/.gpu-ort"
# The tracked files travel too.
total=$(( $(cat .gpu-bin/* .gpu-ort/* | wc -c) + $(git ls-files -z | xargs -0 cat | wc -c) ))
echo "carried set with the tracked files: $total bytes (limit $((64 * 1024 * 1024)))"
[ "$total" -lt $((64 * 1024 * 1024)) ] || { echo "error: the carried set is over 64 MiB" >&2; exit 1; }
