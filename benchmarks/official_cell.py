"""A whole CoOp cell, the official way against `subpt-bench train`, on the same data, weights,
few-shot subset and schedule, one thread each, each in a fresh process (cold: imports, model
load, data loading and test-set encoding all count).

The official formulation is CoOp's as Dassl runs it, written out here in PyTorch: a DataLoader
with worker processes decoding PNGs and applying torchvision's RandomResizedCrop (bicubic) and
RandomHorizontalFlip per item, the frozen image encoder on every step, full 77-token prompts
through the text transformer, SGD (lr 0.002, momentum 0.9, weight decay 5e-4) with a cosine
schedule after one constant warm-up epoch at 1e-5, then the test set through the image encoder.

    .venv/bin/python benchmarks/official_cell.py --bin target/release/subpt-bench \
        --data DATA --weights W.safetensors [--shots 16] [--epochs 50] [--rounds 2]

Prints each run's wall time and peak memory and the ratios.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

MEAN = (0.48145466, 0.4578275, 0.40821073)
STD = (0.26862954, 0.26130258, 0.27577711)


def official(a):
    import torch
    import torch.nn as nn
    import torch.nn.functional as F
    import clip
    from PIL import Image
    from safetensors.torch import load_file
    from torchvision import transforms as T

    torch.set_num_threads(1)
    torch.manual_seed(a.seed)
    model = clip.model.build_model(load_file(a.weights)).float().eval()
    for p in model.parameters():
        p.requires_grad_(False)
    res = model.visual.input_resolution
    root = Path(a.data) / "fashion_mnist" / "images"
    subset = json.loads(Path(a.fewshot).read_text())
    split = json.loads((Path(a.data) / "fashion_mnist" / "split_fashion_mnist.json").read_text())
    names = [None] * 10
    for _, label, name in split["test"]:
        names[label] = name

    class Items(torch.utils.data.Dataset):
        def __init__(self, items, tf):
            self.items, self.tf = items, tf

        def __len__(self):
            return len(self.items)

        def __getitem__(self, i):
            rel, label, _ = self.items[i]
            return self.tf(Image.open(root / rel).convert("RGB")), label

    bicubic = T.InterpolationMode.BICUBIC
    train_tf = T.Compose([T.RandomResizedCrop(res, scale=(0.08, 1.0), interpolation=bicubic),
                          T.RandomHorizontalFlip(), T.ToTensor(), T.Normalize(MEAN, STD)])
    test_tf = T.Compose([T.Resize(res, interpolation=bicubic), T.CenterCrop(res), T.ToTensor(),
                         T.Normalize(MEAN, STD)])
    train = subset["train"]
    loader = torch.utils.data.DataLoader(
        Items(train, train_tf), batch_size=32, shuffle=True, num_workers=a.workers,
        drop_last=len(train) >= 32)

    n_ctx, width = 16, model.ln_final.weight.shape[0]
    ctx = nn.Parameter(torch.empty(n_ctx, width).normal_(std=0.02))
    prompts = [" ".join(["X"] * n_ctx) + " " + n.replace("_", " ") + "." for n in names]
    ids = clip.tokenize(prompts)
    with torch.no_grad():
        emb = model.token_embedding(ids)
    prefix, suffix = emb[:, :1], emb[:, 1 + n_ctx:]

    def text_features():
        x = torch.cat([prefix, ctx.unsqueeze(0).expand(len(names), -1, -1), suffix], 1)
        x = x + model.positional_embedding
        x = model.transformer(x.permute(1, 0, 2)).permute(1, 0, 2)
        x = model.ln_final(x)
        return x[torch.arange(x.shape[0]), ids.argmax(-1)] @ model.text_projection

    opt = torch.optim.SGD([ctx], lr=0.002, momentum=0.9, weight_decay=5e-4)
    cosine = torch.optim.lr_scheduler.CosineAnnealingLR(opt, a.epochs)
    scale = model.logit_scale.exp()
    for epoch in range(a.epochs):
        # Dassl's ConstantWarmupScheduler: the first epoch at 1e-5, then the cosine.
        for g in opt.param_groups:
            g["lr"] = 1e-5 if epoch == 0 else cosine.get_last_lr()[0]
        for x, y in loader:
            with torch.no_grad():
                img = model.encode_image(x)
            img = img / img.norm(dim=-1, keepdim=True)
            txt = text_features()
            txt = txt / txt.norm(dim=-1, keepdim=True)
            loss = F.cross_entropy(scale * img @ txt.t(), y)
            opt.zero_grad()
            loss.backward()
            opt.step()
        if epoch > 0:
            cosine.step()
        elif a.epochs > 1:
            cosine.step()
    test = torch.utils.data.DataLoader(Items(split["test"], test_tf), batch_size=100,
                                       num_workers=a.workers)
    correct = total = 0
    with torch.no_grad():
        txt = text_features()
        txt = txt / txt.norm(dim=-1, keepdim=True)
        for x, y in test:
            img = model.encode_image(x)
            img = img / img.norm(dim=-1, keepdim=True)
            correct += (scale * img @ txt.t()).argmax(-1).eq(y).sum().item()
            total += len(y)
    print(json.dumps({"accuracy": 100.0 * correct / total}))


def timed(cmd, env):
    start = time.perf_counter()
    p = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    out = p.stdout.read()
    _, status, usage = os.wait4(p.pid, 0)
    wall = time.perf_counter() - start
    if status != 0:
        sys.exit(f"{cmd[0]} failed ({status})")
    return wall, usage.ru_maxrss / 1024, out.decode()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin")
    ap.add_argument("--data", required=True)
    ap.add_argument("--weights", required=True)
    ap.add_argument("--shots", type=int, default=16)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--epochs", type=int, default=50)
    ap.add_argument("--workers", type=int, default=4)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--official", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--fewshot", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.official:
        return official(a)
    env = dict(os.environ, OMP_NUM_THREADS="1")
    work = Path(tempfile.mkdtemp())
    fewshot = work / "fewshot.json"
    subprocess.run([a.bin, "prepare", "fewshot", "--dataset", "fashion_mnist", "--root", a.data,
                    "--shots", str(a.shots), "--seed", str(a.seed), "--out", str(fewshot)],
                   check=True, stdout=subprocess.DEVNULL)
    theirs = [sys.executable, __file__, "--official", "--data", a.data, "--weights", a.weights,
              "--fewshot", str(fewshot), "--seed", str(a.seed), "--epochs", str(a.epochs),
              "--workers", str(a.workers)]

    def ours(cache):
        return [a.bin, "train", "--dataset", "fashion_mnist", "--root", a.data, "--method",
                "coop", "--shots", str(a.shots), "--seed", str(a.seed), "--weights", a.weights,
                "--epochs", str(a.epochs), "--threads", "1", "--out", str(work / "ours"),
                "--set", f'/cache_dir="{cache}"']

    print(f"CoOp, fashion_mnist {a.shots} shots seed {a.seed}, {a.epochs} epochs, 1 thread, "
          f"{a.workers} loader workers for the official run; load average "
          f"{open('/proc/loadavg').read().split()[:3]}")
    rows = []
    for r in range(a.rounds):
        t_off, m_off, out = timed(theirs, env)
        acc_off = json.loads(out.strip().splitlines()[-1])["accuracy"]
        cache = work / f"cache-{r}"
        t_cold, m_cold, _ = timed(ours(cache), env)
        t_warm, m_warm, _ = timed(ours(cache), env)
        res = json.loads((work / "ours" / "result.json").read_text())
        rows.append((t_off, t_cold, t_warm))
        print(f"round {r + 1}: official {t_off:.2f} s ({m_off:.0f} MB, acc {acc_off:.2f}) | "
              f"subpt-bench cold {t_cold:.2f} s ({m_cold:.0f} MB), test features cached "
              f"{t_warm:.2f} s ({m_warm:.0f} MB), acc {res['accuracy']['all']:.2f} | "
              f"{t_off / t_cold:.1f}x cold, {t_off / t_warm:.1f}x cached")
    best = [min(c) for c in zip(*rows)]
    print(f"best of {a.rounds}: official {best[0]:.2f} s, cold {best[1]:.2f} s "
          f"({best[0] / best[1]:.1f}x), cached {best[2]:.2f} s ({best[0] / best[2]:.1f}x)")


if __name__ == "__main__":
    main()
