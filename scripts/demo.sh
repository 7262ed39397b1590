#!/usr/bin/env bash
# The most complete job that runs without downloads: Fashion-MNIST (Debian package) converted to
# CoOp's layout, verified, a Dassl-exact 4-shot draw, then zero-shot scores from a *random-init
# tiny CLIP*. The scores show the pipeline working end to end; they carry no meaning, because no
# pretrained CLIP can be fetched here (pass your own with WEIGHTS=~/.cache/clip/ViT-B-16.pt).
set -euo pipefail
bin=$1
out=$2
mkdir -p "$out"
echo "== Fashion-MNIST in CoOp layout (20 images per class per split)"
"$bin" prepare fashion-mnist --out "$out/data" --per-class 20 --val-per-class 10
"$bin" prepare verify --dataset fashion_mnist --root "$out/data"
echo "== Dassl-exact 4-shot subset, seed 1"
"$bin" prepare fewshot --dataset fashion_mnist --root "$out/data" --shots 4 --seed 1 --out "$out/fewshot-4shot-seed1.json"
weights=${WEIGHTS:-}
if [ -z "$weights" ]; then
  weights="$out/tiny-clip-random-init.safetensors"
  echo "== Generating a RANDOM-INIT tiny CLIP (not pretrained: scores below are meaningless)"
  "$bin" prepare tiny-clip --vision vit --seed 0 --out "$weights"
fi
"$bin" inspect --weights "$weights"
classes=("t-shirt/top" trouser pullover dress coat sandal shirt sneaker bag "ankle boot")
texts=()
for c in "${classes[@]}"; do texts+=(--text "a photo of a $c."); done
images=()
for c in t-shirt_top trouser sneaker; do
  images+=(--image "$(ls "$out/data/fashion_mnist/images/$c"/test_* | head -1)")
done
echo "== Zero-shot probabilities over the 10 class prompts (rows: a t-shirt, a trouser, a sneaker)"
"$bin" encode --weights "$weights" "${texts[@]}" "${images[@]}" --out "$out/features.safetensors"
echo "features written to $out/features.safetensors"
echo "== Training cells on the 4-shot subset (tiny random-init CLIP: accuracies show the pipeline, not CLIP)"
for method in coop coop_sub; do
  "$bin" train --dataset fashion_mnist --root "$out/data" --method "$method" --shots 4 --seed 1 \
    --weights "$weights" --epochs 10 --set /eval_every=5 --set "/cache_dir=\"$out/cache\"" \
    --set '/subpt={"rank":3,"early_epochs":4}' --out "$out/runs/$method" 2>/dev/null
done
echo "results: $out/runs/*/result.json"
