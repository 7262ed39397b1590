#!/usr/bin/env bash
# Data-parallel training on CPU: one SubPT cell trained by 1 rank and by `mpirun -n 2 --dp`
# (one libtorch thread per rank), on a mid-size random-init CLIP (64 M parameters; written with
# clip-anytorch's model class) and 16-shot Fashion-MNIST. Prints each run's training seconds
# and the largest difference between the two context trajectories.
# Usage: benchmarks/dp_scaling.sh [RANKS] (default 2); run after `make venv build` (it reads results with the test peers' numpy).
set -euo pipefail
ranks=${1:-2}
bin=${SUBPT_BIN:-target/debug/subpt-bench}
py=${SUBPT_PYTHON:-.venv/bin/python}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1
"$py" - "$work/mid.pt" <<'PY' 2>/dev/null
import sys, torch
from clip.model import CLIP
torch.manual_seed(0)
m = CLIP(embed_dim=512, image_resolution=96, vision_layers=6, vision_width=512,
         vision_patch_size=16, context_length=77, vocab_size=49408, transformer_width=512,
         transformer_heads=8, transformer_layers=6)
torch.save(m.state_dict(), sys.argv[1])
PY
"$bin" prepare fashion-mnist --per-class 20 --val-per-class 4 --out "$work/data" >/dev/null 2>&1
args=(train --dataset fashion_mnist --root "$work/data" --method coop_sub --shots 16 --seed 1
      --weights "$work/mid.pt" --epochs 4 --device cpu --set '/subpt={"rank":1,"early_epochs":2}'
      --set "/cache_dir=\"$work/cache\"")
# Test features are encoded once, untimed, so both runs read them from the cache.
"$bin" "${args[@]}" --out "$work/warm" >/dev/null 2>&1
OMP_NUM_THREADS=1 "$bin" "${args[@]}" --out "$work/one" >/dev/null 2>&1
mpirun -n "$ranks" -x OMP_NUM_THREADS=1 "$bin" "${args[@]}" --dp --out "$work/dp" >/dev/null 2>&1
"$py" - "$work" "$ranks" <<'PY'
import json, sys
import numpy as np
from safetensors.numpy import load_file
w, ranks = sys.argv[1], sys.argv[2]
t = {k: json.load(open(f"{w}/{k}/result.json"))["timings"]["train_s"] for k in ("one", "dp")}
a, b = (load_file(f"{w}/{k}/trajectory.safetensors") for k in ("one", "dp"))
diff = max(float(np.abs(a[k] - b[k]).max() / np.abs(a[k]).max()) for k in a)
print(f"1 rank: {t['one']:.2f} s; {ranks} ranks --dp: {t['dp']:.2f} s "
      f"({t['one'] / t['dp']:.2f}x); trajectories differ by {diff:.1e} (relative)")
PY
