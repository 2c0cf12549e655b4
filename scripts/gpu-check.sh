#!/usr/bin/env bash
# The GPU check, run ON the GPU machine in one command (nothing is built there):
#   source .gpu-ort/activate.sh && bash scripts/gpu-check.sh
# after `bash scripts/gpu-stage.sh` here. Prints: onnxruntime/CUDA status, the CUDA-vs-CPU
# loss agreement for 20 steps of densenet-bc-40-k12 (fp32 and TF32), and a table of training
# images/s (CUDA graphs on/off) and evaluation images/s for the issue's configurations, and
# ResNet-32's full, SAM and head-only steps.
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

echo "== end to end: 3 epochs of densenet-tiny on a tiny dataset, CUDA and CPU"
data=/tmp/lt-gpu-data
rm -rf "$data" /tmp/lt-gpu-run && mkdir -p "$data"
tar -xJf "$root/.gpu-bin/data.tar.xz" -C "$data" --no-same-owner
for ep in cuda cpu; do
  timeout 120 "$bin" --data "$data/gpu-data" --arch densenet-tiny --epochs 3 --batch-size 32 --no-augment \
    --seed 1 --ep "$ep" --quiet --out "/tmp/lt-gpu-run/$ep" 2> "$out/run-$ep.err" || { echo "run on $ep failed: $(tail -3 "$out/run-$ep.err")"; fail=1; }
done

echo "== training / evaluation throughput"
run() { # name, args...
  local name=$1; shift
  timeout 120 "$bin" bench --ep cuda --json "$@" > "$out/$name.json" 2> "$out/$name.err" || { echo "$name failed: $(tail -3 "$out/$name.err")"; fail=1; }
}
run bc100-tf32-graph   --arch densenet-bc-100-k12 --batch-size 128 --tf32 --steps 50 --warmup 5 --eval-batch-size 256
run bc100-tf32-plain   --arch densenet-bc-100-k12 --batch-size 128 --tf32 --steps 50 --warmup 5 --no-cuda-graph
run bc100-fp32-graph   --arch densenet-bc-100-k12 --batch-size 128 --steps 50 --warmup 5
run d161-tf32-graph    --arch densenet161 --batch-size 128 --tf32 --steps 30 --warmup 5
# The literature's backbone and the recipes' steps: full, SAM (two passes), head-only (cRT).
run r32-tf32-graph     --arch resnet32 --batch-size 128 --tf32 --steps 50 --warmup 5 --eval-batch-size 256
run r32-sam-tf32       --arch resnet32 --batch-size 128 --tf32 --steps 30 --warmup 5 --sam 0.05
run r32-head-tf32      --arch resnet32 --batch-size 128 --tf32 --steps 30 --warmup 5 --head-only

python3 - "$out" <<'PY'
import json, sys, os
out = sys.argv[1]
def load(n):
    p = os.path.join(out, n + ".json")
    try:
        return json.load(open(p))
    except Exception:
        return None
runs = {}
for ep in ("cuda", "cpu"):
    try:
        runs[ep] = json.load(open(f"/tmp/lt-gpu-run/{ep}/run.json"))
    except Exception:
        runs[ep] = None
if all(runs.values()):
    c, p = runs["cuda"]["final"], runs["cpu"]["final"]
    rel = abs(c["loss"] - p["loss"]) / max(abs(p["loss"]), 1e-9)
    print(f"end to end: test loss cuda {c['loss']:.5f} cpu {p['loss']:.5f} (relative {rel:.1e}); "
          f"balanced accuracy cuda {c['balanced']:.3f} cpu {p['balanced']:.3f}; cuda_graph {runs['cuda']['graph']['cuda_graph']}")
else:
    print("end to end: a run is missing", {k: v is not None for k, v in runs.items()})
for n in ("agree-fp32", "agree-tf32"):
    r = load(n)
    print(f"{n:18s}", "missing" if r is None else f"max relative loss difference {r['max_relative_difference']:.2e} over {len(r['losses'][0])} steps")
anchors = {"bc100": "PyTorch eager TF32 4039, compile+graphs 7369", "d161": "PyTorch eager TF32 1902",
           "r32": "no PyTorch anchor yet"}
print(f"{'configuration':18s} {'train img/s':>12s} {'ms/step':>8s} {'nodes':>6s} {'session s':>9s} {'cuda graph':>12s} {'eval img/s':>10s}  anchor")
for n in ("bc100-tf32-graph", "bc100-tf32-plain", "bc100-fp32-graph", "d161-tf32-graph",
          "r32-tf32-graph", "r32-sam-tf32", "r32-head-tf32"):
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
