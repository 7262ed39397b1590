#!/usr/bin/env bash
# The demo, with nothing downloaded: the shipped shapes-world CLIP (assets/, its digest checked
# against its card), datasets drawn by `prepare shapes` in CoOp's layout, then the named grids
# and their tables:
#   claims  configs/claims.yaml: base-to-novel on shapes_ruled, long training: CoOp
#           overfitting, SubPT and NFL mitigating it, the claims read off the results
#           (`make demo`)
#   demo    configs/demo.yaml: the paper's few-shot and domain-generalisation protocols on a
#           shifted look (`make demo-protocols`)
#   scripts/demo.sh BIN OUT GRID...
set -euo pipefail
bin=$1
out=$2
shift 2
grids=("$@")
[ ${#grids[@]} -gt 0 ] || grids=(claims demo)
here=$(cd "$(dirname "$0")/.." && pwd)
mkdir -p "$out"
# One libtorch thread per process: faster for this model size, and the grids use one process
# per core.
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
weights=$here/assets/shapes-clip.safetensors.gz
card=$here/assets/shapes-clip.card.json
echo "== The shipped CLIP"
want=$(sed -n 's/.*"weights_sha256": "\([0-9a-f]*\)".*/\1/p' "$card")
got=$(sha256sum "$weights" | cut -d' ' -f1)
if [ "$want" != "$got" ]; then
  echo "error: $weights has SHA-256 $got, its card says $want" >&2
  exit 1
fi
"$bin" inspect --weights "$weights"
echo "== Datasets: the shapes world's eight (skipped when up to date)"
"$bin" prepare shapes --out "$out/data"
ranks=$(getconf _NPROCESSORS_ONLN)
run_grid() {
  if command -v mpirun >/dev/null && [ "$ranks" -gt 1 ]; then
    mpirun -n "$ranks" --oversubscribe "$bin" --grid "$1" --device cpu
  else
    "$bin" --grid "$1" --device cpu
  fi
}
for grid in "${grids[@]}"; do
  echo "== configs/$grid.yaml"
  "$bin" --grid "$here/configs/$grid.yaml" --dry-run | tail -n 2
  run_grid "$here/configs/$grid.yaml"
done
show() {
  echo
  echo "== $2 ($1.md)"
  sed -n '/^|/p' "$1.md"
}
plots=()
for grid in "${grids[@]}"; do
  case $grid in
    claims)
      show "$out/claims/report/claims" "The paper's claims, 200 epochs (configs/claims.yaml)"
      show "$out/claims/report/base_to_novel" "Base-to-novel, 200 epochs (configs/claims.yaml)"
      plots+=("$out/claims/report/plots/ (curves_*: base and novel test accuracy over epochs)")
      ;;
    demo)
      show "$out/runs/report/fewshot" "Few-shot on faded shapes (configs/demo.yaml)"
      show "$out/runs/report/domain_generalisation" "Domain generalisation (configs/demo.yaml)"
      plots+=("$out/runs/report/plots/ (fewshot_*: accuracy against shots)")
      ;;
  esac
done
echo
echo "model card: $card"
for p in "${plots[@]}"; do echo "plots:      $p"; done
