#!/usr/bin/env bash
# The demo, with nothing downloaded: a small CLIP pretrained by subpt-bench on Fashion-MNIST
# train[0:50000] (cached: remade only when its inputs change), the held-out images and shifted
# copies of them in CoOp's layout, then configs/demo.yaml (the paper's protocols: few-shot,
# base-to-novel, domain generalisation; all six methods; 3 seeds) and configs/claims.yaml (long
# training: CoOp overfitting, SubPT and NFL mitigating it), and their tables.
set -euo pipefail
bin=$1
out=$2
here=$(cd "$(dirname "$0")/.." && pwd)
mkdir -p "$out"
# One libtorch thread per process: faster for this model size, and the grids use one process
# per core.
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
echo "== Pretraining the embedded CLIP (skipped when up to date)"
"$bin" pretrain --out "$out/fmnist-clip.safetensors"
"$bin" inspect --weights "$out/fmnist-clip.safetensors"
echo "== Downstream data: held-out Fashion-MNIST and its shifted copies (skipped when up to date)"
"$bin" prepare fashion-mnist --out "$out/data" --corruption all
ranks=$(getconf _NPROCESSORS_ONLN)
run_grid() {
  if command -v mpirun >/dev/null && [ "$ranks" -gt 1 ]; then
    mpirun -n "$ranks" --oversubscribe "$bin" --grid "$1" --device cpu
  else
    "$bin" --grid "$1" --device cpu
  fi
}
for grid in demo claims; do
  echo "== configs/$grid.yaml"
  "$bin" --grid "$here/configs/$grid.yaml" --dry-run | tail -n 2
  run_grid "$here/configs/$grid.yaml"
done
show() {
  echo
  echo "== $2 ($1.md)"
  sed -n '/^|/p' "$1.md"
}
show "$out/claims/report/base_to_novel" "Base-to-novel, 200 epochs (configs/claims.yaml)"
show "$out/claims/report/fewshot" "1-shot, 200 epochs (configs/claims.yaml)"
show "$out/runs/report/base_to_novel" "Base-to-novel, the paper's schedule (configs/demo.yaml)"
show "$out/runs/report/fewshot" "Few-shot (configs/demo.yaml)"
show "$out/runs/report/domain_generalisation" "Domain generalisation (configs/demo.yaml)"
echo
echo "model card: $out/fmnist-clip.card.json"
echo "plots:      $out/claims/report/plots/ and $out/runs/report/plots/"
echo "            (curves_compare_*: test accuracy over epochs per method; fewshot_*: accuracy vs shots)"
