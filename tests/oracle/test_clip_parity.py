"""Peer parity of `subpt-bench inspect` / `encode` with OpenAI's model code (clip-anytorch).

For every reference model (clip_models.SPECS) and every layout it is stored in, `inspect --json`
must report the architecture clip-anytorch's `build_model` infers, and `encode` must produce
the L2-normalised features of `CLIP.encode_text` / `CLIP.encode_image` computed from the same
stored values, in fp32 and (tiny models) in fp16 / bf16. Tests tagged `full` use RN50 /
ViT-B/16 sized models. Images: test_clip_images.py; malformed inputs: test_clip_errors.py.

Run: $SUBPT_PYTHON -m pytest tests/oracle/test_clip_*.py [-m 'not full']
"""
from __future__ import annotations

import json

import pytest
import torch

import clip_layouts
import clip_models as cm
from clip_harness import (DTYPES, LOWP_MIN_SHIFT, TEXTS, TOL_FP32, TOL_LOWP, artifact,
                          assert_close, encode, expect_error, longest_classname, model,
                          model_cases, model_format_cases, pixels_for, reference,
                          run, texts_for)

# ---------------------------------------------------------------------------------------------
# The reference itself (no binary needed)


@pytest.mark.parametrize("name", model_cases())
def test_reference_matches_spec(name):
    """The peer's own inference (`build_model`) sees the architecture the spec describes."""
    spec = cm.SPECS[name]
    exp = model(name)[1]["expected"]
    assert exp["embed_dim"] == spec.embed_dim
    assert exp["text"] == {"width": spec.transformer_width, "layers": spec.transformer_layers,
                           "heads": spec.transformer_width // 64,
                           "context_length": spec.context_length, "vocab_size": spec.vocab_size}
    v = exp["vision"]
    assert v["resolution"] == spec.image_resolution and v["width"] == spec.vision_width
    if spec.is_vit:
        assert (v["kind"], v["layers"], v["patch"], v["heads"]) == \
            ("vit", spec.vision_layers, spec.vision_patch_size, spec.vision_width // 64)
    else:
        assert (v["kind"], v["layers"], v["heads"]) == \
            ("resnet", list(spec.vision_layers), spec.vision_width * 32 // 64)
    oc = clip_layouts.open_clip_model(spec)
    assert sum(p.numel() for p in oc.parameters()) == exp["parameters"]


@pytest.mark.parametrize("name,fmt", list(model_format_cases()))
def test_artifact_loads_in_its_own_library(name, fmt):
    """Each stored file, read back by the library that owns the format, gives the reference."""
    path, info = artifact(name, fmt)
    spec = cm.SPECS[name]
    texts, pixels = texts_for(name), pixels_for(name)
    ref = reference(name, info["weights"], "fp32")
    tokens = cm.clip.tokenize(texts)
    if fmt in ("torchscript", "torch", "torch_legacy"):
        # clip.load always applies OpenAI's fp16 policy, so it is compared at fp16 weights.
        loaded = cm.clip.load(str(path), device="cpu", jit=False)[0]
        got, ref = cm.reference_features(loaded, texts, pixels), reference(name, "fp16", "fp32")
    elif fmt == "hf":
        from transformers import CLIPModel
        hf = CLIPModel.from_pretrained(str(path.parent)).eval()
        got = clip_layouts.hf_features(hf, tokens, pixels)
    else:  # OpenAI-keyed safetensors and open_clip files: open_clip's loader reads them all
        import open_clip
        oc = clip_layouts.open_clip_model(spec)
        open_clip.factory.load_checkpoint(oc, str(path))
        got = clip_layouts.open_clip_features(oc, tokens, pixels)
    for tower, g, r in zip(("text", "image"), got, ref):
        assert_close(f"{name}/{fmt} {tower}", g, r, 1e-5)


@pytest.mark.parametrize("name", [n for n, s in cm.SPECS.items() if not s.full])
def test_lowp_tolerance_is_meaningful(name):
    """TOL_LOWP covers twice clip-anytorch's own low-precision error and twice the spread
    between two implementations of the policy; LOWP_MIN_SHIFT is far below that error."""
    import open_clip
    mdir, _ = model(name)
    spec, sd = cm.SPECS[name], cm.stored_weights(mdir, "fp32")
    tokens, pixels = cm.clip.tokenize(texts_for(name)), pixels_for(name)
    f32 = reference(name, "fp32", "fp32")
    for prec, tol in TOL_LOWP.items():
        dtype = DTYPES[prec]
        oc = clip_layouts.open_clip_model(spec, cast_dtype=dtype)
        oc.load_state_dict(sd)
        open_clip.model.convert_weights_to_lp(oc, dtype=dtype)
        ours = reference(name, "fp32", prec)
        theirs = clip_layouts.open_clip_features(oc, tokens, pixels.to(dtype))
        for tower, o, t, f in zip(("text", "image"), ours, theirs, f32):
            spread = (o - t).abs().max().item()
            own = (o - f).abs().max().item()
            assert 2 * max(spread, own) <= tol and own >= 10 * LOWP_MIN_SHIFT, \
                (prec, tower, spread, own, tol)


# ---------------------------------------------------------------------------------------------
# inspect


def _inspect_problems(got: dict, info: dict, exp: dict) -> list[str]:
    problems = []

    def check(field, found, expected):
        if found != expected:
            problems.append(f"{field}: expected {expected!r}, found {found!r}")

    check("format", got.get("format"), info["format"])
    if got.get("layout") not in info["layouts"]:
        problems.append(f"layout: expected one of {info['layouts']}, found {got.get('layout')!r}")
    check("embed_dim", got.get("embed_dim"), exp["embed_dim"])
    check("parameters", got.get("parameters"), exp["parameters"])
    for tower in ("text", "vision"):
        sub = got.get(tower) or {}
        for k, v in exp[tower].items():
            check(f"{tower}.{k}", sub.get(k), v)
    if exp["vision"]["kind"] == "resnet" and (got.get("vision") or {}).get("patch") is not None:
        problems.append(f"vision.patch: expected absent/null, found {got['vision']['patch']!r}")
    # Optional extras: checked when reported.
    if "logit_scale" in got and not abs(got["logit_scale"] - exp["logit_scale"]) <= \
            1e-6 * exp["logit_scale"]:
        problems.append(f"logit_scale: expected exp(stored) = {exp['logit_scale']!r}, "
                        f"found {got['logit_scale']!r}")
    if "activation" in got:
        check("activation", got["activation"], "quick_gelu")
    return problems


@pytest.mark.parametrize("name,fmt", list(model_format_cases()))
def test_inspect(bench, name, fmt):
    path, info = artifact(name, fmt)
    p = run(bench, "inspect", "--weights", path, "--json")
    try:
        got = json.loads(p.stdout)
    except json.JSONDecodeError as e:
        pytest.fail(f"inspect --json printed no JSON ({e}): {p.stdout[:500]!r}")
    exp = dict(model(name)[1]["expected"])
    stored = cm.stored_weights(model(name)[0], info["weights"])["logit_scale"]
    exp["logit_scale"] = float(stored.float().exp())
    problems = _inspect_problems(got, info, exp)
    assert not problems, f"{name}/{fmt}: " + "; ".join(problems)


def test_hf_folder_as_weights(bench, pixel_files, tmp_path):
    """A save_pretrained folder is accepted as --weights, like the model file inside it."""
    path, info = artifact("tiny_vit", "hf")
    p = run(bench, "inspect", "--weights", path.parent, "--json")
    assert json.loads(p.stdout).get("layout") == "hf", p.stdout[:500]
    out = encode(bench, path.parent, tmp_path / "f.safetensors", texts=TEXTS[:3],
                 pixels=pixel_files("tiny_vit"))
    mdir, _ = model("tiny_vit")
    ref = cm.reference_features(cm.reference_model(cm.stored_weights(mdir, info["weights"])),
                                TEXTS[:3], pixels_for("tiny_vit"))
    assert_close("tiny_vit/hf folder text_features", out.get("text_features"), ref[0], TOL_FP32)
    assert_close("tiny_vit/hf folder image_features", out.get("image_features"), ref[1], TOL_FP32)


# ---------------------------------------------------------------------------------------------
# encode


@pytest.mark.parametrize("name,fmt", list(model_format_cases()))
def test_encode_fp32(bench, pixel_files, tmp_path, name, fmt):
    path, info = artifact(name, fmt)
    out = encode(bench, path, tmp_path / "f.safetensors", texts=texts_for(name),
                 pixels=pixel_files(name))
    ref_t, ref_i = reference(name, info["weights"], "fp32")
    assert_close(f"{name}/{fmt} text_features", out.get("text_features"), ref_t, TOL_FP32,
                 labels=texts_for(name))
    assert_close(f"{name}/{fmt} image_features", out.get("image_features"), ref_i, TOL_FP32)


LOWP_CASES = [pytest.param(n, f, p, id=f"{n}-{f}-{p}")
              for n in ("tiny_vit", "tiny_rn") for f, p in
              (("safetensors", "fp16"), ("safetensors", "bf16"), ("torchscript", "fp16"))]


@pytest.mark.parametrize("name,fmt,precision", LOWP_CASES)
def test_encode_low_precision(bench, pixel_files, tmp_path, name, fmt, precision):
    """Same dtype policy as OpenAI's fp16 mode (clip-anytorch's model in that dtype on CPU)."""
    path, info = artifact(name, fmt)
    out = encode(bench, path, tmp_path / "f.safetensors", texts=texts_for(name),
                 pixels=pixel_files(name), precision=precision)
    ref_t, ref_i = reference(name, info["weights"], precision)
    tol = TOL_LOWP[precision]
    what = f"{name}/{fmt}/{precision}"
    assert_close(f"{what} text_features", out.get("text_features"), ref_t, tol,
                 labels=texts_for(name))
    assert_close(f"{what} image_features", out.get("image_features"), ref_i, tol)
    for tower, got, f32 in zip(("text_features", "image_features"),
                               (out["text_features"], out["image_features"]),
                               reference(name, info["weights"], "fp32")):
        shift = (got - f32).abs().max().item()
        assert shift > LOWP_MIN_SHIFT, \
            f"{what} {tower}: only {shift:.3g} from fp32: --precision seems to be ignored"


def test_overlong_text(bench, tmp_path):
    """Over 77 tokens is an error (clip.tokenize's default); --truncate keeps 77 tokens with EOT
    last, as clip.tokenize(truncate=True) does."""
    path, info = artifact("tiny_vit", "safetensors")
    texts = [" ".join(["dog"] * 80), "a photo of a " + longest_classname() * 6]
    expect_error(bench, "encode", "--weights", path, "--text", texts[0], "--out",
                 tmp_path / "o.st", shapes=[(77,)])
    out = encode(bench, path, tmp_path / "f.safetensors", texts=texts, extra=["--truncate"])
    ref_model = cm.reference_model(cm.stored_weights(model("tiny_vit")[0], info["weights"]))
    with torch.no_grad():
        ref = torch.nn.functional.normalize(
            ref_model.encode_text(cm.clip.tokenize(texts, truncate=True)), dim=-1)
    assert_close("tiny_vit --truncate text_features", out.get("text_features"), ref, TOL_FP32)
