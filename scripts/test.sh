#!/usr/bin/env bash
# The test command (README, .ci/run): installs what the tests need from the package
# registries if missing, then runs formatting, lints (warnings are errors) and every test.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-ort.sh
bash scripts/install-test-deps.sh
cargo fmt --all --check
cargo clippy --workspace --all-targets --locked --quiet -- -D warnings
export LT_TEST_PYTHON="$PWD/.venv-test/bin/python"
log="${CARGO_TARGET_DIR:-target}/test-output.txt"
mkdir -p "$(dirname "$log")"
cargo test --workspace --locked --no-fail-fast 2>&1 | tee "$log"
# One closing line for the whole workspace (cargo prints one `test result` per binary).
awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($(i+1) ~ /^passed/) p += $i; if ($(i+1) ~ /^failed/) f += $i; if ($(i+1) ~ /^ignored/) s += $i } }
     END { printf "\n%d passed, %d failed, %d skipped\n", p, f, s }' "$log"
