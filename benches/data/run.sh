#!/usr/bin/env bash
# lt-data bench: a 50,000-image CIFAR-10-format source (+10,000 test) of random bytes ->
# samples + subset + three manifests as Parquet, whole process, lt-data vs the same steps in
# numpy + pyarrow (reference.py). Wall time with hyperfine, peak memory with /usr/bin/time -v.
# Usage: benches/data/run.sh [RUNS]   (needs hyperfine, .venv-test with numpy + pyarrow)
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
runs=${1:-10}
py=${LT_TEST_PYTHON:-$root/.venv-test/bin/python}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$root/target-data}
work=$CARGO_TARGET_DIR/bench
src=$work/src
[ -f "$src/test_batch.bin" ] || "$py" benches/data/make_source.py "$src" 0
cargo build --release -p lt-data --bin lt-data --quiet
bin=$CARGO_TARGET_DIR/release/lt-data
lt="$bin build -q --source cifar10:$src --profile exp --imbalance 100 --resample instance,class-balanced,random-over --epochs 1 --seed 0 --out $work/lt --force"
ref="$py benches/data/reference.py $src $work/ref 100 0 1"
echo "source: $(du -sb "$src" | cut -f1) bytes"
hyperfine --warmup 1 --runs "$runs" -N --export-markdown "$work/hyperfine.md" -n lt-data "$lt" -n numpy+pyarrow "$ref"
for name in lt ref; do
  cmd=$lt; [ $name = ref ] && cmd=$ref
  /usr/bin/time -v $cmd 2> "$work/time-$name.txt" >/dev/null
  echo "$name peak RSS: $(awk -F': ' '/Maximum resident/ {print $2}' "$work/time-$name.txt") KiB"
done
cat "$work/hyperfine.md"
