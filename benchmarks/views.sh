#!/usr/bin/env bash
# A whole base-to-novel grid of one dataset (all six methods, SubPT at r in {1, 3, 5} x
# t_early in {5, 10}, each with and without NFL) run twice on the embedded Fashion-MNIST CLIP:
# with train-view sharing off (every cell encodes its own training images, as independent runs
# do) and on. Prints the image-encoder work (training images encoded, summed over the cells'
# result.json) and the wall time of each, and their ratios.
#
# benchmarks/views.sh BIN [WORK_DIR]     (BIN: a release build of subpt-bench)
set -euo pipefail
bin=$(realpath "$1")
work=${2:-$(mktemp -d)}
mkdir -p "$work"
export OMP_NUM_THREADS=1
weights=$work/fmnist-clip.safetensors
"$bin" pretrain --out "$weights" >/dev/null
"$bin" prepare fashion-mnist --out "$work/data" >/dev/null
cat > "$work/grid.yaml" <<YAML
name: views-bench
protocols: [base_to_novel]
datasets: [fashion_mnist]
seeds: [1]
methods: [zsclip, coop, coop_nfl, coop_sub, coop_sub_nfl, cocoop]
weights: fmnist-clip.safetensors
data_root: data
output_dir: runs
overrides:
  epochs: 20
  subpt.rank: [1, 3, 5]
  subpt.early_epochs: [5, 10]
YAML
sum() {
  python3 - "$1" <<'PY'
import json, pathlib, sys
enc = reu = cells = 0
for p in pathlib.Path(sys.argv[1]).glob("*/result.json"):
    v = json.loads(p.read_text()).get("train_views", {})
    enc += v.get("encoded", 0); reu += v.get("reused", 0); cells += 1
print(cells, enc, reu)
PY
}
for share in 0 1; do
  rm -rf "$work/runs" "$work/cache-$share"
  sed "s#^output_dir: runs#output_dir: runs\ncache_dir: cache-$share#" "$work/grid.yaml" > "$work/grid-$share.yaml"
  start=$(date +%s.%N)
  SUBPT_SHARE_VIEWS=$share "$bin" --grid "$work/grid-$share.yaml" --device cpu --progress plain >/dev/null 2>&1
  end=$(date +%s.%N)
  read -r cells enc reu < <(sum "$work/runs")
  wall=$(python3 -c "print(f'{$end - $start:.1f}')")
  echo "share=$share cells=$cells encoded=$enc reused=$reu wall_s=$wall"
  eval "enc_$share=$enc wall_$share=$wall"
done
python3 -c "print(f'image-encoder work shared/independent: {$enc_1}/{$enc_0} = {$enc_1/$enc_0:.3f}; wall time {$wall_1}/{$wall_0} = {$wall_1/$wall_0:.2f}')"
