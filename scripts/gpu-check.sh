#!/usr/bin/env bash
# Checks on a CUDA machine (needs `make venv build` with a CUDA-enabled libtorch and >= 1 GPU):
#  1. a cell trains on the GPU and matches the CPU result;
#  2. `train --dp` over 2 ranks (NCCL with 2+ GPUs, else MPI) matches 1 rank;
#  3. a grid with `--dp 2` runs under mpirun with one GPU per local rank;
#  4. the whole-cell benchmark's cell (CoOp, 16 shots, 50 epochs, full held-out Fashion-MNIST test
#     set) timed on the CPU (fp32, one thread), on the GPU with fp32 towers and with fp16 towers,
#     cold and with the cache filled, on the embedded CLIP's shape (random weights: timing only).
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

echo "== timing: one CoOp cell, 16 shots, 50 epochs, 10,000 test images"
"$bin" prepare fashion-mnist --out "$work/full" >/dev/null
"$py" - "$work/demo-shape.safetensors" <<'PY'
import sys, torch
from safetensors.torch import save_file
# The embedded CLIP's shape (ViT 4 x 64 at 32 px, patch 8; text 4 x 64; embed 64), random.
g = torch.Generator().manual_seed(0)
w, e, vocab = 64, 64, 49408
t = {"positional_embedding": torch.randn(77, w, generator=g) * 0.01,
     "token_embedding.weight": torch.randn(vocab, w, generator=g) * 0.02,
     "ln_final.weight": torch.ones(w), "ln_final.bias": torch.zeros(w),
     "text_projection": torch.randn(w, e, generator=g) * w ** -0.5,
     "logit_scale": torch.tensor(4.6052),
     "visual.conv1.weight": torch.randn(w, 3, 8, 8, generator=g) * 0.02,
     "visual.class_embedding": torch.randn(w, generator=g) * w ** -0.5,
     "visual.positional_embedding": torch.randn(17, w, generator=g) * w ** -0.5,
     "visual.ln_pre.weight": torch.ones(w), "visual.ln_pre.bias": torch.zeros(w),
     "visual.ln_post.weight": torch.ones(w), "visual.ln_post.bias": torch.zeros(w),
     "visual.proj": torch.randn(w, e, generator=g) * w ** -0.5}
for pre in ("transformer", "visual.transformer"):
    for i in range(4):
        b = f"{pre}.resblocks.{i}"
        t[f"{b}.attn.in_proj_weight"] = torch.randn(3 * w, w, generator=g) * w ** -0.5
        t[f"{b}.attn.in_proj_bias"] = torch.zeros(3 * w)
        t[f"{b}.attn.out_proj.weight"] = torch.randn(w, w, generator=g) * w ** -0.5
        t[f"{b}.attn.out_proj.bias"] = torch.zeros(w)
        for ln in ("ln_1", "ln_2"):
            t[f"{b}.{ln}.weight"] = torch.ones(w); t[f"{b}.{ln}.bias"] = torch.zeros(w)
        t[f"{b}.mlp.c_fc.weight"] = torch.randn(4 * w, w, generator=g) * w ** -0.5
        t[f"{b}.mlp.c_fc.bias"] = torch.zeros(4 * w)
        t[f"{b}.mlp.c_proj.weight"] = torch.randn(w, 4 * w, generator=g) * (4 * w) ** -0.5
        t[f"{b}.mlp.c_proj.bias"] = torch.zeros(w)
save_file(t, sys.argv[1])
PY
timed_cell() { # name device precision cache
  local start end
  start=$(date +%s.%N)
  "$bin" train --dataset fashion_mnist --root "$work/full" --method coop --shots 16 --seed 1 \
    --weights "$work/demo-shape.safetensors" --epochs 50 --device "$2" --threads 1 \
    --set "/precision=\"$3\"" --set "/cache_dir=\"$4\"" --out "$work/t-$1" >/dev/null 2>&1
  end=$(date +%s.%N)
  echo "$1: $(echo "$end - $start" | bc) s"
}
timed_cell cpu-fp32-cold cpu fp32 "$work/tc-cpu"
timed_cell cpu-fp32-cached cpu fp32 "$work/tc-cpu"
timed_cell gpu-fp32-cold cuda fp32 "$work/tc-g32"
timed_cell gpu-fp32-cached cuda fp32 "$work/tc-g32"
timed_cell gpu-fp16-cold cuda fp16 "$work/tc-g16"
timed_cell gpu-fp16-cached cuda fp16 "$work/tc-g16"
echo "gpu check passed"
