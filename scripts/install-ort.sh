#!/usr/bin/env bash
# Installs onnxruntime 1.31.1 from PyPI into the project-local .ort/ folder (git-ignored).
#   bash scripts/install-ort.sh          CPU wheel        -> .ort/cpu
#   bash scripts/install-ort.sh --gpu    onnxruntime-gpu with its CUDA/cuDNN wheels -> .ort/gpu
# lt-train finds the library there at run time (after ORT_DYLIB_PATH). Nothing else is
# downloaded: the wheel is the only source of the library.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
version=1.31.1
flavor=cpu
[ "${1:-}" = "--gpu" ] && flavor=gpu
dest="$root/.ort/$flavor"
lib="$dest/onnxruntime/capi/libonnxruntime.so.$version"
if [ -f "$lib" ]; then
  echo "onnxruntime $version ($flavor) already installed: $lib"
  exit 0
fi
python=${PYTHON:-python3}
command -v "$python" >/dev/null || { echo "error: $python not found; install Python 3 with pip (apt-get install python3-pip)" >&2; exit 1; }
rm -rf "$dest.partial"
if [ "$flavor" = cpu ]; then
  # --no-deps: lt only needs the shared library, not numpy/protobuf.
  "$python" -m pip install --quiet --disable-pip-version-check --no-deps --target "$dest.partial" "onnxruntime==$version"
else
  # The [cuda,cudnn] extras bring the nvidia-* wheels whose libraries lt-train preloads.
  "$python" -m pip install --quiet --disable-pip-version-check --target "$dest.partial" "onnxruntime-gpu[cuda,cudnn]==$version"
fi
test -f "$dest.partial/onnxruntime/capi/libonnxruntime.so.$version" || { echo "error: the wheel did not contain libonnxruntime.so.$version" >&2; exit 1; }
rm -rf "$dest"
mv "$dest.partial" "$dest"
echo "installed onnxruntime $version ($flavor): $lib"
