#!/usr/bin/env bash
# The claims' robustness across pretraining seeds: pretrain the shapes-world CLIP with each seed,
# run configs/claims.yaml on it, and tabulate every seed's claims.json (what `report` read off
# the grid). Two seeds run at once, one libtorch thread each.
#   benchmarks/claims_robustness.sh BIN OUT [SEED...]      (default seeds 0 1 2 3 4)
# Under scripts/kernels.sh default|avx2|avx512 it runs on another CPU kernel set.
# GRID=FILE runs another grid instead of configs/claims.yaml (the variants in
# benchmarks/levers/), into OUT/seedN/<its file stem>; a pretraining already in OUT with the
# same inputs is not remade, so variants compare on the very same models.
# RULE_KEY=KEY draws shapes_ruled with its base-side patterns keyed on KEY (prepare shapes
# --rule-key: colour, colour-plus-shape, shape-colour-parity) into OUT/data-KEY, and runs the
# grid on it into OUT/seedN/<stem>-KEY.
set -euo pipefail
bin=$(realpath "$1")
out=$2
shift 2
if [ $# -gt 0 ]; then seeds=("$@"); else seeds=(0 1 2 3 4); fi
here=$(cd "$(dirname "$0")/.." && pwd)
grid=$(realpath "${GRID:-$here/configs/claims.yaml}")
name=$(basename "$grid" .yaml)
mkdir -p "$out"
export OMP_NUM_THREADS=1
data=$out/data
if [ -n "${RULE_KEY:-}" ]; then
  data=$out/data-$RULE_KEY
  name=$name-$RULE_KEY
  "$bin" prepare shapes --out "$data" --dataset shapes_ruled --rule-key "$RULE_KEY"
else
  "$bin" prepare shapes --out "$data"
fi
one() {
  local s=$1 dir=$out/seed$1
  mkdir -p "$dir"
  "$bin" pretrain --seed "$s" --threads 1 --out "$dir/clip.safetensors.gz" >"$dir/pretrain.log" 2>&1
  "$bin" --grid "$grid" --device cpu --threads 1 --progress plain \
    --weights "$dir/clip.safetensors.gz" --data-root "$data" --cache "$dir/cache" \
    --out "$dir/$name" >"$dir/$name.log" 2>&1
  echo "seed $s: done"
}
jobs=${JOBS:-2}
for s in "${seeds[@]}"; do
  while [ "$(jobs -rp | wc -l)" -ge "$jobs" ]; do wait -n; done
  one "$s" &
done
wait
python3 "$here/benchmarks/claims_table.py" --grid "$name" "$out" "${seeds[@]}"
