#!/usr/bin/env python3
"""How far each trained context moves the text features of a base-to-novel grid's classes away
from zero-shot CLIP's, beside the novel accuracy it ends with: NFL's own loss, mean 1 - cos
against the prompt-ensemble features (the 80 ImageNet templates and the shapes datasets'
"a photo of a {}."), measured for every method on both halves, and whether a remedy's
leftover drift of the novel features points the way CoOp's does (seed by seed).

    .venv/bin/python benchmarks/prompt_drift.py WEIGHTS GRID_OUT [GRID_OUT ...]

WEIGHTS is the model the grids ran on (OpenAI layout, safetensors, gzipped or not); each
GRID_OUT a grid's output directory (its cells' result.json and context.safetensors). The text
tower is clip-anytorch's, the peer tests/oracle checks our CLIP against, fed CoOp's prompt
layout ("X .. X <name>." with the context in the X slots) as tests/oracle/coop_step_oracle.py
builds it. README, "What sets NFL's share", reads its output.
"""
import gzip
import json
import statistics
import sys
from collections import defaultdict
from pathlib import Path

import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "oracle"))
from class_spread import SHAPES_TEMPLATE, class_names  # noqa: E402
from clip_models import clip, reference_model  # noqa: E402
from coop_step_oracle import assemble, encode_prompts, prompt_parts  # noqa: E402
from safetensors.torch import load, load_file  # noqa: E402


@torch.no_grad()
def ensemble(model, names: list[str]) -> torch.Tensor:
    templates = (ROOT / "assets" / "imagenet_templates_80.txt").read_text().splitlines()
    templates = [t for t in templates if t.strip()] + [SHAPES_TEMPLATE]
    total = 0
    for t in templates:
        ids = clip.tokenize([t.replace("{}", n) for n in names])
        total = total + F.normalize(model.encode_text(ids).float(), dim=-1)
    return F.normalize(total / len(templates), dim=-1)


@torch.no_grad()
def drift(model, ctx: torch.Tensor, names: list[str], targets: torch.Tensor):
    """NFL's loss under `ctx` and the displacement of the features from `targets`."""
    prefix, suffix, ids, lens = prompt_parts(model, names, ctx.shape[0])
    feats = F.normalize(encode_prompts(model, assemble(ctx, prefix, suffix, lens, "end"), ids), dim=-1)
    return (1 - (feats * targets).sum(-1)).mean().item(), feats - targets


def main() -> None:
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    torch.set_num_threads(1)
    raw = Path(sys.argv[1]).read_bytes()
    model = reference_model(load(gzip.decompress(raw) if raw[:2] == b"\x1f\x8b" else raw))
    rows = defaultdict(list)
    moves = {}
    targets = {}
    for grid in sys.argv[2:]:
        for result in sorted(Path(grid).glob("*/result.json")):
            r = json.loads(result.read_text())
            spec, ctx_file = r["spec"], result.parent / "context.safetensors"
            # CoCoOp's prompts also depend on the image, and ProGrad's frozen text keeps a
            # template word after the context: neither is CoOp's layout.
            other_layout = spec["method"].startswith(("cocoop", "prograd"))
            if spec.get("protocol") != "base_to_novel" or not ctx_file.exists() or other_layout:
                continue
            key = (spec["root"], spec["dataset"])
            if key not in targets:
                names = class_names(Path(spec["root"]), spec["dataset"])
                half = (len(names) + 1) // 2
                targets[key] = (names[:half], names[half:], ensemble(model, names))
            base, novel, z = targets[key]
            ctx = load_file(str(ctx_file))["ctx"].float()
            d_base, _ = drift(model, ctx, base, z[: len(base)])
            d_novel, move = drift(model, ctx, novel, z[len(base):])
            cell = (Path(grid).name, spec["dataset"], spec["method"])
            rows[cell].append((d_base, d_novel, r["accuracy"]["new"]))
            moves[cell + (spec["seed"],)] = move.flatten()
    # Whether a remedy's leftover drift points the way CoOp's does: the cosine between the two
    # displacements of all novel features, CoOp's of the same grid and seed.
    along = defaultdict(list)
    for (grid, dataset, method, seed), move in moves.items():
        coop = moves.get((grid, dataset, "coop", seed))
        if coop is not None and method != "coop":
            cos = F.cosine_similarity(move, coop, dim=0).item()
            along[(grid, dataset, method)].append((seed, cos))
    print("| grid | dataset | method | seeds | 1 - cos, base | 1 - cos, novel | novel accuracy "
          "| novel drift's cosine with CoOp's, seed by seed |")
    print("|---|---|---|---|---|---|---|---|")
    for (grid, dataset, method), v in sorted(rows.items()):
        mean = [statistics.mean(x) for x in zip(*v)]
        cos = " / ".join(f"{c:.2f}" for _, c in sorted(along.get((grid, dataset, method), [])))
        print(f"| {grid} | {dataset} | {method} | {len(v)} | {mean[0]:.3f} | {mean[1]:.3f} "
              f"| {mean[2]:.2f} | {cos or '–'} |")


if __name__ == "__main__":
    main()
