#!/usr/bin/env bash
# Interleaved `lt-train bench` of several lt-train binaries (e.g. before/after a graph change):
#   benches/train/ab.sh ROUNDS BIN...        (env: ARCH densenet-bc-40-k12, BATCH 64, STEPS 10)
# Prints each binary's images/s per round, sorted, and the median. On a shared machine the
# same binary varies by ±15% between runs; interleaving gives both the same conditions.
set -euo pipefail
rounds=${1:?usage: ab.sh ROUNDS BIN...}; shift
[ $# -ge 1 ] || { echo "usage: ab.sh ROUNDS BIN..." >&2; exit 2; }
for _ in $(seq "$rounds"); do
  for b in "$@"; do
    v=$("$b" bench --arch "${ARCH:-densenet-bc-40-k12}" --batch-size "${BATCH:-64}" --steps "${STEPS:-10}" --threads 2 --json \
        | python3 -c 'import json,sys; print(round(json.load(sys.stdin)["images_per_second"], 1))')
    echo "$b $v"
  done
done | python3 -c '
import sys, statistics, collections
runs = collections.OrderedDict()
for line in sys.stdin:
    b, v = line.split(); runs.setdefault(b, []).append(float(v))
for b, vs in runs.items():
    print(f"{b}: " + " ".join(f"{v:.1f}" for v in sorted(vs)) + f"  median {statistics.median(vs):.1f}")
'
