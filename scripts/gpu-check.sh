#!/usr/bin/env bash
# The GPU check, run ON the GPU machine in one command (nothing is built there):
#   source .gpu-ort/activate.sh && bash scripts/gpu-check.sh
# after `bash scripts/gpu-stage.sh` here. Prints: onnxruntime/CUDA status, the CUDA-vs-CPU
# loss agreement for 20 steps of densenet-bc-40-k12 (fp32 and TF32), and a table of training
# images/s (CUDA graphs on/off) and evaluation images/s for the issue's configurations.
# Budget: under 4 minutes on an H200. Raw JSON goes to ${OUT:-/tmp}/gpu-check/.
set -uo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
bin=${LT_TRAIN:-/tmp/lt-gpu-bin/lt-train}
if [ -z "${LT_TRAIN:-}" ]; then
  mkdir -p /tmp/lt-gpu-bin
  xz -dc "$root/.gpu-bin/lt-train.xz" > "$bin" && chmod +x "$bin" || { echo "no .gpu-bin/lt-train.xz: run scripts/gpu-stage.sh first" >&2; exit 1; }
fi
out=${OUT:-/tmp}/gpu-check
mkdir -p "$out"
fail=0
"$bin" doctor --gpu || { echo "doctor failed: no usable CUDA provider" >&2; exit 1; }

echo "== CUDA vs CPU loss agreement (densenet-bc-40-k12, batch 64, 20 steps)"
"$bin" agree --ep cuda --arch densenet-bc-40-k12 --batch-size 64 --steps 20 --tolerance 1e-3 --json \
  > "$out/agree-fp32.json" || fail=1
"$bin" agree --ep cuda --tf32 --arch densenet-bc-40-k12 --batch-size 64 --steps 20 --tolerance 3e-2 --json \
  > "$out/agree-tf32.json" || fail=1

echo "== training / evaluation throughput"
run() { # name, args...
  local name=$1; shift
  timeout 120 "$bin" bench --ep cuda --json "$@" > "$out/$name.json" 2> "$out/$name.err" || { echo "$name failed: $(tail -3 "$out/$name.err")"; fail=1; }
}
run bc100-tf32-graph   --arch densenet-bc-100-k12 --batch-size 128 --tf32 --steps 50 --warmup 5 --eval-batch-size 256
run bc100-tf32-plain   --arch densenet-bc-100-k12 --batch-size 128 --tf32 --steps 50 --warmup 5 --no-cuda-graph
run bc100-fp32-graph   --arch densenet-bc-100-k12 --batch-size 128 --steps 50 --warmup 5
run d161-tf32-graph    --arch densenet161 --batch-size 128 --tf32 --steps 30 --warmup 5

python3 - "$out" <<'PY'
import json, sys, os
out = sys.argv[1]
def load(n):
    p = os.path.join(out, n + ".json")
    try:
        return json.load(open(p))
    except Exception:
        return None
for n in ("agree-fp32", "agree-tf32"):
    r = load(n)
    print(f"{n:18s}", "missing" if r is None else f"max relative loss difference {r['max_relative_difference']:.2e} over {len(r['losses'][0])} steps")
anchors = {"bc100": "PyTorch eager TF32 4039, compile+graphs 7369", "d161": "PyTorch eager TF32 1902"}
print(f"{'configuration':18s} {'train img/s':>12s} {'ms/step':>8s} {'nodes':>6s} {'session s':>9s} {'cuda graph':>12s} {'eval img/s':>10s}  anchor")
for n in ("bc100-tf32-graph", "bc100-tf32-plain", "bc100-fp32-graph", "d161-tf32-graph"):
    r = load(n)
    if r is None:
        print(f"{n:18s} failed"); continue
    cg = r["cuda_graph"] if isinstance(r["cuda_graph"], str) else "fallback"
    ev = r.get("eval_images_per_second")
    print(f"{n:18s} {r['images_per_second']:12.1f} {r['ms_per_step']:8.2f} {r['graph_nodes']:6d} {r['session_seconds']:9.1f} {cg:>12s} {('%.0f' % ev) if ev else '-':>10s}  {anchors[n.split('-')[0]]}")
    if cg == "fallback":
        print("   fallback reason:", r["cuda_graph"])
PY
exit $fail
