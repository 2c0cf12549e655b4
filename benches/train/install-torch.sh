#!/usr/bin/env bash
# Install a CPU PyTorch environment into <repo>/.venv-torch (gitignored).
# Idempotent: does nothing when torch already imports there.
# Only PyPI is assumed reachable (not download.pytorch.org), so the default
# PyPI torch wheel is used; it pulls large nvidia-* wheels but runs fine on CPU.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
VENV="$ROOT/.venv-torch"
if [ -x "$VENV/bin/python" ] && "$VENV/bin/python" -c "import torch" >/dev/null 2>&1; then
    echo "torch already installed in $VENV: $("$VENV/bin/python" -c 'import torch; print(torch.__version__)')"
    exit 0
fi
start=$(date +%s)
[ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
"$VENV/bin/pip" install --upgrade pip >/dev/null
"$VENV/bin/pip" install torch numpy
"$VENV/bin/python" -c "import torch; print('torch', torch.__version__, 'threads', torch.get_num_threads())"
echo "install took $(( $(date +%s) - start )) s"
