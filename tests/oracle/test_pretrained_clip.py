"""`subpt-bench pretrain` writes a CLIP that OpenAI's own code loads: clip-anytorch's
`build_model` infers the same architecture from it and gives the same features as
`subpt-bench encode`; the same seed gives the same bytes; token rows no caption used are zeros;
the model card says what was made."""
import json

import pytest
import torch
from safetensors.torch import load_file, save_file

import clip
import clip_harness as h
import clip_models as cm

TEXTS = ["a photo of a red circle.", "striped, on a dark background: a photo of a star.",
         "X X X X heart."]
STEPS = 4


def short_config(out):
    """The default pretraining (the shipped card's config) with a warm-up short enough for
    STEPS steps."""
    cfg = json.loads((cm.REPO / "assets" / "shapes-clip.card.json").read_text())["config"]
    cfg["warmup_steps"] = 2
    path = out.with_name(out.name + ".config.json")
    path.write_text(json.dumps(cfg))
    return path


def pretrain(bench, out, seed=0):
    h.run(bench, "pretrain", "--out", out, "--seed", seed, "--steps", STEPS,
          "--config", short_config(out))
    return out


@pytest.fixture(scope="module")
def made(bench, tmp_path_factory):
    d = tmp_path_factory.mktemp("pretrained")
    return d, pretrain(bench, d / "a.safetensors")


def test_clip_anytorch_loads_it_and_agrees(bench, made, tmp_path):
    d, weights = made
    sd = load_file(str(weights))
    ref = cm.reference_model(sd)
    # A ModifiedResNet of width 16 (the paper's backbone family), one bottleneck per stage,
    # reading the world's 32-pixel images at 64.
    assert ref.visual.conv3.weight.shape == (16, 8, 3, 3)
    assert [len(getattr(ref.visual, f"layer{i}")) for i in range(1, 5)] == [1, 1, 1, 1]
    assert ref.transformer.layers == 4
    assert ref.visual.input_resolution == 64 and ref.context_length == 77
    pixels = cm.smooth_pixels(4, 64, 11)
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
    assert not torch.equal(a["text_projection"], c["text_projection"])


def test_unused_token_rows_are_zeros(bench, made):
    d, weights = made
    table = load_file(str(weights))["token_embedding.weight"]
    card = json.loads((d / "a.card.json").read_text())
    live = (table.abs().sum(1) > 0).nonzero().flatten().tolist()
    assert len(live) == card["tokens_used"] and 100 < len(live) < 2000
    # The world's words are live, and so are the start and end tokens.
    ids = clip.tokenize(["a photo of a striped red circle."])[0]
    assert all(int(t) in live for t in ids if t != 0)


def test_model_card_describes_the_run(bench, made):
    d, weights = made
    card = json.loads((d / "a.card.json").read_text())
    assert card["config"]["steps"] == STEPS and card["config"]["seed"] == 0
    assert card["steps"] == STEPS == card["loss_curve"][-1]["step"]
    assert card["data"].startswith(f"{STEPS * 128} objects drawn from the shapes world")
    q = {x["dataset"]: x for x in card["quality"]}
    assert set(q) == {"shapes", "shapes_faded", "shapes_tinted", "shapes_blocky",
                      "shapes_rotated", "shapes_styled", "shapes_ruled", "patterns"}
    assert q["shapes"]["classes"] == 100 and q["patterns"]["test_images"] == 50 * 40
    for x in q.values():
        for k in ("zero_shot", "zero_shot_base", "zero_shot_novel", "linear_probe_16"):
            assert 0.0 <= x[k] <= 100.0, (x["dataset"], k, x[k])
    # Parameters, not BatchNorm's running statistics (which the file also holds).
    buffers = ("running_mean", "running_var", "num_batches_tracked")
    assert card["parameters"] == sum(v.numel() for k, v in load_file(str(weights)).items()
                                     if not k.endswith(buffers))
    # Up to date: a rerun with the same inputs leaves the file alone.
    before = weights.stat().st_mtime_ns
    out = h.run(bench, "pretrain", "--out", weights, "--steps", STEPS,
                "--config", short_config(weights))
    assert "up to date" in out.stderr and weights.stat().st_mtime_ns == before
