#!/usr/bin/env bash
# Checks on a CUDA machine (needs `make build` with a CUDA-enabled libtorch and >= 1 GPU):
#  1. a cell trains on the GPU and matches the CPU result;
#  2. `train --dp` over 2 ranks (NCCL with 2+ GPUs, else MPI) matches 1 rank;
#  3. a grid with `--dp 2` runs under mpirun with one GPU per local rank.
# Usage: scripts/gpu-check.sh [WORKDIR]
set -euo pipefail
bin=${SUBPT_BIN:-target/release/subpt-bench}
work=${1:-$(mktemp -d)}
py=${SUBPT_PYTHON:-.venv/bin/python}
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1
nvidia-smi -L
"$bin" prepare fashion-mnist --per-class 16 --val-per-class 4 --out "$work/data" >/dev/null
"$bin" prepare tiny-clip --out "$work/tiny.safetensors" >/dev/null
cell=(train --dataset fashion_mnist --root "$work/data" --method coop_sub --shots 8 --seed 1
      --weights "$work/tiny.safetensors" --epochs 4 --set /batch_size=16
      --set '/subpt={"rank":1,"early_epochs":2}' --set "/cache_dir=\"$work/cache\"")
"$bin" "${cell[@]}" --device cpu --out "$work/cpu"
"$bin" "${cell[@]}" --device cuda --out "$work/gpu1"
mpirun -n 2 "$bin" "${cell[@]}" --device cuda --dp --out "$work/gpu2" 2>&1 | tee "$work/dp.log"
# NCCL needs a GPU per rank; two ranks on one GPU reduce over MPI instead.
if [ "$(nvidia-smi -L | wc -l)" -ge 2 ]; then want=nccl; else want=mpi; fi
grep -q "all-reduced over $want" "$work/dp.log" || { echo "FAIL: the 2-rank group did not reduce over $want"; exit 1; }
"$py" - "$work" <<'PY'
import sys
from safetensors.numpy import load_file
import numpy as np
w = sys.argv[1]
ctx = {k: load_file(f"{w}/{k}/context.safetensors")["ctx"] for k in ("cpu", "gpu1", "gpu2")}
scale = np.abs(ctx["cpu"]).max()
for k in ("gpu1", "gpu2"):
    d = np.abs(ctx[k] - ctx["cpu"]).max() / scale
    print(f"{k} vs cpu: max relative difference {d:.2e}")
    assert d < 1e-4, k
d = np.abs(ctx["gpu2"] - ctx["gpu1"]).max() / scale
print(f"2 ranks vs 1 GPU: {d:.2e}")
assert d < 1e-5
PY
cat > "$work/grid.yaml" <<YAML
name: gpu
protocols: [few_shot]
datasets: [fashion_mnist]
shots: [1, 2]
seeds: [1, 2]
methods: [zsclip, coop, coop_sub]
weights: tiny.safetensors
data_root: data
output_dir: runs
cache_dir: cache
overrides:
  epochs: 3
  subpt.early_epochs: 2
  subpt.rank: 1
YAML
mpirun -n 2 "$bin" --grid "$work/grid.yaml" --device cuda --dp 2 | tail -3
echo "gpu check passed"
