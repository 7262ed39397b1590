"""Shared harness of the CLIP parity tests: the binary, the reference models' inputs and
features, and comparisons.

Binary: $SUBPT_BENCH_BIN, else $CARGO_TARGET_DIR/debug/subpt-bench, else
<repo>/target/debug/subpt-bench. Tests that need it fail (not skip) when it is missing.
"""
from __future__ import annotations

import functools
import itertools
import os
import re
import subprocess
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

import clip_models as cm

# fp32: both sides run the same float32 math with a different op order (attention kernels,
# fused vs separate q/k/v): observed peer spreads are ~1e-7 on unit-norm features, at most
# 1.4e-6 (RN50 image features); the bound sits a few times above that, so a real mistake of
# 1e-5 fails.
TOL_FP32 = 5e-6
# Low precision: an fp16/bf16 run scatters around the fp32 result by roughly as much as
# clip-anytorch's own run in that mode does (open_clip, the same policy coded separately, lands
# about as far from clip-anytorch as either is from fp32). So the bound is twice clip-anytorch's
# own distance to fp32 (measured <= 1.5e-3 fp16, <= 1.1e-2 bf16 on the tiny models) and twice
# the open_clip spread; test_lowp_tolerance_is_meaningful keeps both true.
TOL_LOWP = {"fp16": 4e-3, "bf16": 2.5e-2}
# fp32 implementations agree to ~1e-7; every low-precision mode moves features by > 2.5e-4. A
# --precision run closer than this to the fp32 reference did not run in low precision.
LOWP_MIN_SHIFT = 2e-5
DTYPES = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}


def _tokens(text: str) -> int:
    return len(cm.clip.clip._tokenizer.encode(text))


def longest_classname() -> str:
    names = [line.strip() for f in sorted((cm.REPO / "assets").glob("classnames_nfl_*.txt"))
             for line in f.read_text(encoding="utf-8").splitlines() if line.strip()]
    return max(names, key=lambda n: (_tokens(n), n))


def _full_context_text() -> str:
    """A text of exactly 75 BPE tokens: SOT + 75 + EOT fill the 77 positions, EOT last."""
    words = itertools.cycle(["photo", "of", "a", "large", "red", "dog", "on", "the", "grass"])
    text = "a photo of"
    while _tokens(text) < 74:
        text += " " + next(words)
    text += "."
    assert _tokens(text) == 75, text
    return text


TEXTS = [
    "a photo of a dog.",
    "X X X X X X X X X X X X X X X X tabby cat.",  # CoOp's initial context words
    f"a photo of a {longest_classname()}, a type of car.",
    "a photo of a Boeing 737-800, a type of aircraft.",
    "itap of a jack-o'-lantern.",
    "a centered satellite photo of Annual Crop Land.",
    "a photo of a person doing Apply_Eye_Makeup.",
    "a photo of a crème brûlée, a type of food.",
    "  Multiple   SPACES,\ttabs\nand &amp;amp; HTML entities  ",
    "a photo of a 🐶 named Ünïcödé — “quoted”.",
    "一张狗的照片",
    "",
    # Special-token text is encoded as the special ids, so EOT also appears mid-sequence and the
    # model pools at the first maximal id.
    "<|startoftext|>a photo<|endoftext|> of a cat",
    _full_context_text(),
]
TEXTS_FULL = [TEXTS[i] for i in (0, 1, 2, 8, 9, 13)]


# ---------------------------------------------------------------------------------------------
# Harness


def bench_path() -> Path:
    if os.environ.get("SUBPT_BENCH_BIN"):
        return Path(os.environ["SUBPT_BENCH_BIN"])
    target = Path(os.environ.get("CARGO_TARGET_DIR") or "target")
    return (target if target.is_absolute() else cm.REPO / target) / "debug" / "subpt-bench"


def find_bench() -> Path:
    """The binary under test; fails (not skips) the calling test when it is missing."""
    p = bench_path()
    if not (p.is_file() and os.access(p, os.X_OK)):
        pytest.fail(f"subpt-bench binary not found at {p}: build it (`cargo build -p subpt-bench`)"
                    " or point SUBPT_BENCH_BIN at it", pytrace=False)
    return p


def run(bench: Path, *args, expect_ok: bool = True) -> subprocess.CompletedProcess:
    cmd = [str(bench), *map(str, args)]
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
    if expect_ok and p.returncode != 0:
        pytest.fail(f"`{' '.join(cmd[:4])} ...` exited {p.returncode}:\n{p.stderr[-3000:]}",
                    pytrace=False)
    return p


@functools.lru_cache(maxsize=None)
def model(name: str):
    return cm.ensure_model(name)


def artifact(name: str, fmt: str) -> tuple[Path, dict]:
    mdir, man = model(name)
    info = man["artifacts"][fmt]
    return mdir / info["path"], info


def texts_for(name: str) -> list[str]:
    return TEXTS_FULL if cm.SPECS[name].full else TEXTS


@functools.lru_cache(maxsize=None)
def pixels_for(name: str) -> torch.Tensor:
    spec = cm.SPECS[name]
    return cm.smooth_pixels(2 if spec.full else 4, spec.image_resolution, spec.seed + 4000)


@functools.lru_cache(maxsize=None)
def reference(name: str, weights: str, precision: str):
    mdir, _ = model(name)
    ref = cm.reference_model(cm.stored_weights(mdir, weights), DTYPES[precision])
    return cm.reference_features(ref, texts_for(name), pixels_for(name))


def pixel_file(d: Path, name: str) -> Path:
    """The model's test pixels as the safetensors file `encode --pixels` reads."""
    p = d / f"{name}.safetensors"
    if not p.exists():
        save_file({"pixels": pixels_for(name)}, str(p))
    return p


def encode(bench, weights: Path, out: Path, texts=(), pixels=None, images=(), precision="fp32",
           extra=()):
    args = ["encode", "--weights", weights, "--precision", precision, "--out", out, *extra]
    for t in texts:
        args += ["--text", t]
    if pixels is not None:
        args += ["--pixels", pixels]
    for i in images:
        args += ["--image", i]
    run(bench, *args)
    return load_file(str(out))


def assert_close(what: str, got: torch.Tensor, ref: torch.Tensor, tol: float, labels=None):
    assert got.dtype == torch.float32, f"{what}: dtype {got.dtype}, expected float32"
    assert tuple(got.shape) == tuple(ref.shape), \
        f"{what}: shape {list(got.shape)}, reference {list(ref.shape)}"
    diff = (got - ref).abs()
    worst = diff.max().item()
    if not worst <= tol:
        rows = diff.max(dim=1).values.tolist()
        bad = [f"{(labels[i][:40] + '...') if labels else i!r}: {d:.3g}"
               for i, d in enumerate(rows) if d > tol]
        raise AssertionError(f"{what}: max abs diff {worst:.3g} > {tol:g}; per row over tol: "
                             + "; ".join(bad))


def model_format_cases(tiny_only: bool = False):
    for name, spec in cm.SPECS.items():
        if tiny_only and spec.full:
            continue
        for fmt in spec.formats:
            marks = [pytest.mark.full] if spec.full else []
            yield pytest.param(name, fmt, id=f"{name}-{fmt}", marks=marks)


def model_cases():
    for name, spec in cm.SPECS.items():
        yield pytest.param(name, id=name, marks=[pytest.mark.full] if spec.full else [])


def _ints(text: str) -> list[int]:
    # Paths (temp dirs hold digits) are not shapes.
    return [int(x) for x in re.findall(r"\d+", re.sub(r"\S*/\S*", " ", text))]


def _has_shape(text: str, shape) -> bool:
    """Shape written in any style ([a, b], (a, b), axb): its numbers appear consecutively."""
    ints, n = _ints(text), len(shape)
    return any(ints[i:i + n] == list(shape) for i in range(len(ints) - n + 1))


def expect_error(bench, *args, must_name=(), shapes=()):
    p = run(bench, *args, expect_ok=False)
    msg = p.stderr + p.stdout
    assert p.returncode != 0, f"exit 0 for {args}; output: {msg[-800:]}"
    assert "panicked" not in msg and p.returncode != 101, f"panic instead of an error: {msg[-800:]}"
    for s in must_name:
        assert s in msg, f"message does not name {s!r}: {msg[-800:]}"
    for s in shapes:
        assert _has_shape(msg, s), f"message does not show shape {list(s)}: {msg[-800:]}"
