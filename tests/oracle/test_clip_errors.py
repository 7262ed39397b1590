"""Malformed inputs to `subpt-bench`: a non-zero exit, no panic, and a message naming the
key, the shapes or the file."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

from clip_harness import artifact, expect_error, pixels_for, run

# ---------------------------------------------------------------------------------------------
# Malformed inputs: non-zero exit, no panic, a message naming the key / shapes / file


def _rewrite(src: Path, fmt: str, dst: Path, edit) -> Path:
    if fmt == "safetensors":
        sd = load_file(str(src))
        edit(sd)
        save_file(sd, str(dst))
    else:
        sd = torch.load(src, weights_only=True)
        edit(sd)
        torch.save(sd, dst)
    return dst


MISSING = [("tiny_vit", "safetensors", "transformer.resblocks.1.mlp.c_fc.bias"),
           ("tiny_vit", "torch", "visual.ln_post.bias"),
           ("tiny_rn", "safetensors", "visual.layer2.1.bn2.running_var"),
           ("tiny_rn", "torch", "visual.attnpool.k_proj.bias")]


@pytest.mark.parametrize("name,fmt,key", MISSING, ids=[f"{n}-{f}" for n, f, _ in MISSING])
def test_missing_key(bench, tmp_path, name, fmt, key):
    src, _ = artifact(name, fmt)
    bad = _rewrite(src, fmt, tmp_path / f"missing{src.suffix}", lambda sd: sd.pop(key))
    expect_error(bench, "encode", "--weights", bad, "--text", "a dog", "--out",
                 tmp_path / "o.safetensors", must_name=[key])


MISSHAPEN = [("tiny_vit", "safetensors", "visual.transformer.resblocks.0.attn.out_proj.weight",
              (192, 191)),
             ("tiny_vit", "torch", "transformer.resblocks.2.mlp.c_proj.weight", (128, 500)),
             ("tiny_rn", "safetensors", "visual.attnpool.c_proj.weight", (96, 500)),
             ("tiny_rn", "torch", "visual.layer3.0.bn1.running_mean", (63,))]


@pytest.mark.parametrize("name,fmt,key,shape", MISSHAPEN,
                         ids=[f"{n}-{f}" for n, f, _, _ in MISSHAPEN])
def test_misshapen_key(bench, tmp_path, name, fmt, key, shape):
    src, _ = artifact(name, fmt)
    expected = []

    def edit(sd):
        expected.append(tuple(sd[key].shape))
        sd[key] = torch.randn(shape)

    bad = _rewrite(src, fmt, tmp_path / f"misshapen{src.suffix}", edit)
    expect_error(bench, "encode", "--weights", bad, "--text", "a dog", "--pixels",
                 _pixels_file(tmp_path, name), "--out", tmp_path / "o.safetensors",
                 must_name=[key], shapes=[expected[0], shape])


def _pixels_file(tmp_path: Path, name: str) -> Path:
    p = tmp_path / "px.safetensors"
    save_file({"pixels": pixels_for(name)[:1].contiguous()}, str(p))
    return p


@pytest.mark.parametrize("fmt", ["safetensors", "torch", "torchscript"])
def test_truncated_file(bench, tmp_path, fmt):
    src, _ = artifact("tiny_vit", fmt)
    bad = tmp_path / f"truncated_{src.name}"
    data = src.read_bytes()
    bad.write_bytes(data[: int(len(data) * 0.6)])
    expect_error(bench, "encode", "--weights", bad, "--text", "a dog", "--out",
                 tmp_path / "o.safetensors", must_name=[bad.name])


@pytest.mark.parametrize("kind", ["text", "png", "missing"])
def test_not_a_weights_file(bench, tmp_path, kind):
    bad = tmp_path / f"not_weights.{kind}"
    if kind == "text":
        bad.write_text("these are not the weights you are looking for\n")
    elif kind == "png":
        from PIL import Image
        Image.new("RGB", (8, 8), (1, 2, 3)).save(bad, format="PNG")
    for cmd in (["inspect", "--weights", bad, "--json"],
                ["encode", "--weights", bad, "--text", "a dog", "--out", tmp_path / "o.st"]):
        expect_error(bench, *cmd, must_name=[bad.name])


def test_safetensors_without_clip_keys(bench, tmp_path):
    bad = tmp_path / "pixels_only.safetensors"
    save_file({"pixels": torch.zeros(1, 3, 32, 32)}, str(bad))
    p = run(bench, "encode", "--weights", bad, "--text", "a dog", "--out", tmp_path / "o.st",
            expect_ok=False)
    msg = p.stderr + p.stdout
    assert p.returncode not in (0, 101) and "panicked" not in msg, msg[-800:]
    keys = set(load_file(str(artifact("tiny_vit", "safetensors")[0])))
    assert bad.name in msg or any(k in msg for k in keys), \
        f"message names neither the file nor a missing key: {msg[-800:]}"


def test_pixels_of_wrong_resolution(bench, tmp_path):
    path, _ = artifact("tiny_vit", "safetensors")
    px = tmp_path / "px48.safetensors"
    save_file({"pixels": torch.zeros(2, 3, 48, 48)}, str(px))
    expect_error(bench, "encode", "--weights", path, "--pixels", px, "--out", tmp_path / "o.st",
                 shapes=[(2, 3, 48, 48), (32, 32)])
