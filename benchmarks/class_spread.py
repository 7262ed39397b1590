#!/usr/bin/env python3
"""How far apart a model's zero-shot text features hold a dataset's classes, per side of
base-to-novel: the angle from each class to its nearest neighbour on the same side, and the mean
cosine between the side's classes. NFL's penalty, 1 - cos, grows with the square of the angle a
class's features move, so the closer the novel classes sit, the less it costs a context to
reorder them (README, "What sets NFL's share": it tracks NFL's share within one pretraining
recipe, not across recipes).

    python3 benchmarks/class_spread.py BIN DATA_DIR DATASET MODEL [MODEL ...]

DATA_DIR is a `prepare shapes` output; each MODEL a weights file. Features come from
`BIN encode` with the dataset's single template, "a photo of a {}.".
"""
import json
import math
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
from safetensors.numpy import load_file

# The shapes datasets' template (trainer/src/data/catalog.rs, PHOTO).
SHAPES_TEMPLATE = "a photo of a {}."


def class_names(data: Path, dataset: str) -> list[str]:
    (path,) = (data / dataset).glob("split_*.json")
    split = json.loads(path.read_text())
    names = {}
    for items in split.values():
        for _path, label, name in items:
            names[label] = name
    return [names[k] for k in sorted(names)]


def text_features(bin_: str, weights: str, texts: list[str]) -> np.ndarray:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "f.safetensors"
        cmd = [bin_, "encode", "--weights", weights, "--device", "cpu", "--out", str(out)]
        for t in texts:
            cmd += ["--text", t]
        subprocess.run(cmd, check=True, capture_output=True)
        return load_file(str(out))["text_features"]


def side(feats: np.ndarray) -> tuple[float, float]:
    """Mean nearest-neighbour angle (degrees) and mean off-diagonal cosine."""
    c = feats @ feats.T
    k = len(c)
    off = c[~np.eye(k, dtype=bool)].reshape(k, k - 1)
    nn = np.degrees(np.arccos(np.clip(off.max(1), -1, 1)))
    return float(nn.mean()), float(off.mean())


def main() -> None:
    if len(sys.argv) < 5:
        sys.exit(__doc__)
    bin_, data, dataset, models = sys.argv[1], Path(sys.argv[2]), sys.argv[3], sys.argv[4:]
    names = class_names(data, dataset)
    half = math.ceil(len(names) / 2)
    print("| model | base: nearest-neighbour angle / mean cos | novel: nearest-neighbour angle / mean cos |")
    print("|---|---|---|")
    for m in models:
        f = text_features(bin_, m, [SHAPES_TEMPLATE.format(n) for n in names])
        b, n = side(f[:half]), side(f[half:])
        print(f"| {m} | {b[0]:.1f}° / {b[1]:.3f} | {n[0]:.1f}° / {n[1]:.3f} |")


if __name__ == "__main__":
    main()
