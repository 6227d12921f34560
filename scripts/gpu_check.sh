#!/usr/bin/env bash
# The checks that need a CUDA GPU (< 8 minutes on one GPU): the CUDA unit tests (tests_gpu/), an
# evaluation of metartt and metartt-prune on the val split, a few meta-training episodes on CUDA, and
# the same under torchrun with NCCL. Every output line is prefixed with the GPU's name.
#   usage: bash scripts/gpu_check.sh            (PY=python, OUT=outputs/gpu_check, data: $METARTT_DATA)
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-python}
OUT=${OUT:-outputs/gpu_check}

if ! $PY -c "import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)" 2>/dev/null; then
  echo "gpu_check: no CUDA device visible to torch ($($PY -c 'import torch; print("torch", torch.__version__, "CUDA build", torch.version.cuda)' 2>&1)); nothing checked" >&2
  exit 1
fi
GPU=$($PY -c "import torch; print(torch.cuda.get_device_name(0))")
command -v nvidia-smi >/dev/null && nvidia-smi -L | sed "s/^/[$GPU] /" || true

run() {  # run "$@", each line prefixed with the GPU name, then its wall time
  local t0=$SECONDS
  echo "[$GPU] \$ $*"
  "$@" 2>&1 | sed -u "s/^/[$GPU] /"
  echo "[$GPU] ($(( SECONDS - t0 )) s)"
}
numbers() {  # the meta-training numbers from meta.json
  $PY -c "import json, sys; m = json.load(open(sys.argv[1])); print(f\"[$GPU] {sys.argv[1]}: device {m['device']}, world {m['world_size']}, final meta-loss {m['final_meta_loss']:.4f}, {m['episodes_per_s']:.2f} episodes/s\")" "$1"
}

run $PY -m pytest -q -p no:cacheprovider tests_gpu
run $PY -m metartt_lite evaluate --split val --seeds 0 --trackers metartt,metartt-prune --device cuda -q \
    --out "$OUT/eval"
run $PY -m metartt_lite meta-train --episodes 8 --device cuda --out "$OUT/meta"
numbers "$OUT/meta/meta.json"
run $PY -m torch.distributed.run --standalone --nproc_per_node=1 -m metartt_lite meta-train --episodes 4 --device cuda \
    --out "$OUT/meta_torchrun"
numbers "$OUT/meta_torchrun/meta.json"
echo "[$GPU] gpu_check: all passed"
