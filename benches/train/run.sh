#!/usr/bin/env bash
# Interleaved CPU training-throughput comparison: `lt-train bench` vs PyTorch.
#
#   benches/train/run.sh [ROUNDS] [ARCH]        (defaults: 5 densenet-bc-40-k12)
#
# ARCH: densenet-bc-<depth>-k<growth> (40 or 100) or a CIFAR ResNet resnet20/32/44/56/110
# (option A, as LDAM-DRW).
#
# Each round runs both benches once (the order alternates between rounds, so
# neither side always goes first), with the same batch size, step counts and
# thread count. The machine is shared and neighbour load varies, so look at the
# medians and maxes of several rounds, not at one run.
#
# Environment: LT_TRAIN (default target/release/lt-train), TORCH_PYTHON (default
# .venv-torch/bin/python; see install-torch.sh), BATCH (64), STEPS (10),
# WARMUP (2), THREADS (2), OUT_DIR (default: a fresh temp dir; raw JSON and logs).
set -uo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"

ROUNDS="${1:-5}"
ARCH="${2:-densenet-bc-40-k12}"
LT_TRAIN="${LT_TRAIN:-target/release/lt-train}"
TORCH_PYTHON="${TORCH_PYTHON:-.venv-torch/bin/python}"
BATCH="${BATCH:-64}"
STEPS="${STEPS:-10}"
WARMUP="${WARMUP:-2}"
THREADS="${THREADS:-2}"

case "$ROUNDS" in ''|*[!0-9]*|0) echo "ROUNDS must be a positive integer (got '$ROUNDS')" >&2; exit 2;; esac
if [[ "$ARCH" =~ ^densenet-bc-([0-9]+)-k([0-9]+)$ ]]; then
    PT_ARCH=(--depth "${BASH_REMATCH[1]}" --growth "${BASH_REMATCH[2]}")
elif [[ "$ARCH" =~ ^resnet(20|32|44|56|110)$ ]]; then
    PT_ARCH=(--arch "$ARCH")
else
    echo "ARCH must look like densenet-bc-<depth>-k<growth> or resnet20/32/44/56/110 (got '$ARCH')" >&2
    exit 2
fi
[ -x "$LT_TRAIN" ] || { echo "no lt-train binary at $LT_TRAIN (set LT_TRAIN)" >&2; exit 2; }
"$TORCH_PYTHON" -c "import torch" 2>/dev/null \
    || { echo "no torch in $TORCH_PYTHON; run benches/train/install-torch.sh (or set TORCH_PYTHON)" >&2; exit 2; }

OUT_DIR="${OUT_DIR:-$(mktemp -d "${TMPDIR:-/tmp}/lt-train-bench.XXXXXX")}"
mkdir -p "$OUT_DIR"

LT_CMD=("$LT_TRAIN" bench --arch "$ARCH" --batch-size "$BATCH" --steps "$STEPS" --warmup "$WARMUP"
        --threads "$THREADS" --json)
PT_CMD=("$TORCH_PYTHON" benches/train/pytorch_step.py "${PT_ARCH[@]}"
        --batch-size "$BATCH" --steps "$STEPS" --warmup "$WARMUP" --threads "$THREADS" --json)

LOAD_BEFORE="$(uptime)"
echo "arch $ARCH, batch $BATCH, steps $STEPS (+$WARMUP warm-up), threads $THREADS, $ROUNDS rounds; raw output in $OUT_DIR" >&2

run_one() {  # name round cmd...
    local name="$1" round="$2"; shift 2
    local out="$OUT_DIR/$name.$round.json" err="$OUT_DIR/$name.$round.log"
    if ! "$@" >"$out" 2>"$err"; then
        echo "  round $round $name FAILED (exit $?); see $err" >&2
        tail -n 5 "$err" >&2
        : >"$out"
    else
        echo "  round $round $name done" >&2
    fi
}

for ((r = 1; r <= ROUNDS; r++)); do
    if ((r % 2)); then
        run_one lt "$r" "${LT_CMD[@]}"
        run_one pytorch "$r" "${PT_CMD[@]}"
    else
        run_one pytorch "$r" "${PT_CMD[@]}"
        run_one lt "$r" "${LT_CMD[@]}"
    fi
done

LOAD_AFTER="$(uptime)"

python3 - "$OUT_DIR" "$ROUNDS" "$LOAD_BEFORE" "$LOAD_AFTER" "${LT_CMD[*]}" "${PT_CMD[*]}" <<'PY'
import json, os, statistics, sys

out_dir, rounds, before, after, lt_cmd, pt_cmd = sys.argv[1:]
rounds = int(rounds)

def load(name, r):
    path = os.path.join(out_dir, f"{name}.{r}.json")
    try:
        text = open(path).read()
        return float(json.loads(text[text.index("{"):])["images_per_second"])
    except (OSError, ValueError, KeyError):
        return None

rows = {}
for name in ("lt", "pytorch"):
    rows[name] = [load(name, r) for r in range(1, rounds + 1)]

def la(s):
    return s.split("load average:")[-1].strip() if "load average:" in s else s.strip()

print(f"load average before: {la(before)}")
print(f"lt:      {lt_cmd}")
print(f"pytorch: {pt_cmd}")
print()
w = 9
head = "images/s  " + "".join(f"{'run ' + str(r):>{w}}" for r in range(1, rounds + 1)) + f"{'median':>{w}}{'max':>{w}}"
print(head)
stats = {}
for name, vals in rows.items():
    ok = [v for v in vals if v is not None]
    med = statistics.median(ok) if ok else None
    mx = max(ok) if ok else None
    stats[name] = (med, mx)
    cells = "".join(f"{v:>{w}.1f}" if v is not None else f"{'FAIL':>{w}}" for v in vals)
    fmt = lambda x: f"{x:>{w}.1f}" if x is not None else f"{'-':>{w}}"
    print(f"{name:<10}" + cells + fmt(med) + fmt(mx))
print()
def ratio(i):
    a, b = stats["lt"][i], stats["pytorch"][i]
    return f"{a / b:.2f}x" if a and b else "n/a"
print(f"lt/pytorch: median {ratio(0)}, max {ratio(1)}")
print(f"load average after:  {la(after)}")
sys.exit(0 if all(v is not None for vs in rows.values() for v in vs) else 1)
PY
