"""`subpt-bench pretrain` writes a CLIP that OpenAI's own code loads: clip-anytorch's
`build_model` infers the same architecture from it and gives the same features as
`subpt-bench encode`; the same seed gives the same bytes; the model card says what was made."""
import json

import pytest
import torch
from safetensors.torch import load_file, save_file

import clip_harness as h
import clip_models as cm

TEXTS = ["a photo of a sneaker.", "a photo of a dark small ankle boot.", "X X X X bag."]


def pretrain(bench, out, seed=0, images=512):
    h.run(bench, "pretrain", "--out", out, "--seed", seed, "--images", images, "--epochs", 1)
    return out


@pytest.fixture(scope="module")
def made(bench, tmp_path_factory):
    d = tmp_path_factory.mktemp("pretrained")
    return d, pretrain(bench, d / "a.safetensors")


def test_clip_anytorch_loads_it_and_agrees(bench, made, tmp_path):
    d, weights = made
    sd = load_file(str(weights))
    ref = cm.reference_model(sd)
    assert ref.visual.conv1.weight.shape == (64, 3, 8, 8)
    assert ref.transformer.layers == 4 and ref.visual.transformer.layers == 4
    assert ref.visual.input_resolution == 32 and ref.context_length == 77
    pixels = cm.smooth_pixels(4, 32, 11)
    save_file({"pixels": pixels}, str(tmp_path / "px.safetensors"))
    got = h.encode(bench, weights, tmp_path / "f.safetensors", texts=TEXTS,
                   pixels=tmp_path / "px.safetensors")
    want_t, want_i = cm.reference_features(ref, TEXTS, pixels)
    h.assert_close("pretrained text_features", got["text_features"], want_t, h.TOL_FP32, TEXTS)
    h.assert_close("pretrained image_features", got["image_features"], want_i, h.TOL_FP32)
    # The tower really was trained: features differ from the random init's.
    assert (want_t[0] - want_t[1]).abs().max() > 1e-3


def test_same_seed_same_bytes_other_seed_other_model(bench, made, tmp_path):
    d, weights = made
    again = pretrain(bench, tmp_path / "b.safetensors")
    assert again.read_bytes() == weights.read_bytes()
    other = pretrain(bench, tmp_path / "c.safetensors", seed=1)
    a, c = load_file(str(weights)), load_file(str(other))
    assert a.keys() == c.keys()
    assert not torch.equal(a["visual.proj"], c["visual.proj"])


def test_model_card_describes_the_run(bench, made):
    d, weights = made
    card = json.loads((d / "a.card.json").read_text())
    assert card["config"]["images"] == 512 and card["config"]["seed"] == 0
    assert card["steps"] == 4 == card["loss_curve"][-1]["step"]
    assert card["data"]["pretrain"] == "train[0:512]"
    assert card["data"]["probe_train"] == "train[50000:60000]"
    assert card["data"]["test"] == "t10k[0:10000]"
    assert len(card["data"]["files"]) == 4
    q = card["quality"]
    assert q["test_images"] == 10000 and q["probe_train_images"] == 10000
    for k in ("zero_shot", "zero_shot_base", "zero_shot_novel", "linear_probe"):
        assert 0.0 <= q[k] <= 100.0, (k, q[k])
    assert card["parameters"] == sum(v.numel() for v in load_file(str(weights)).values())
    # Up to date: a rerun with the same inputs leaves the file alone.
    before = weights.stat().st_mtime_ns
    out = h.run(bench, "pretrain", "--out", weights, "--images", 512, "--epochs", 1)
    assert "up to date" in out.stderr and weights.stat().st_mtime_ns == before
