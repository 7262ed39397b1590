"""Reference CLIP models for the peer-parity tests of `subpt-bench inspect` / `encode`.

Every model is a clip-anytorch `clip.model.CLIP` with random weights (fixed seeds), pushed away
from the init defaults where a default would hide a bug: LayerNorm affines, attention biases,
BatchNorm affines and running statistics (calibrated on smooth random images, then perturbed, so
eval-mode BN is really exercised and activations stay in a sane range).

Each model is written in the layouts a user may hand to `--weights` (see `Spec.formats`):
  torchscript     OpenAI-style TorchScript archive: traced module, OpenAI's fp16 weight policy
                  (`clip.model.convert_weights`), plus the extra `input_resolution`,
                  `context_length`, `vocab_size` entries OpenAI's archives carry.
  torch           `torch.save` of the OpenAI-keyed state dict. Tiny models: fp32 with some
                  tensors stored as strided views / slices of a larger storage. Full-size
                  models: the mixed fp16/fp32 dict `torch.jit.load(<openai>.pt).state_dict()`
                  gives, extras included.
  torch_legacy    the same tiny dict in torch.save's pre-1.6 (non-zip) serialisation.
  safetensors_bf16  every floating tensor stored as bfloat16, as many re-published checkpoints.
  safetensors     OpenAI keys, fp32 (also the "base" weights every reference starts from).
  open_clip       `open_clip.model.CLIP(quick_gelu=True)`'s own state dict, saved the way
                  open_clip publishes models (open_clip_model.safetensors + open_clip_config.json).
                  Its keys are identical to OpenAI's (checked at generation time).
  open_clip_ckpt  an open_clip training checkpoint: {"epoch", "name", "state_dict" with the
                  DistributedDataParallel "module." prefix, "optimizer" (AdamW state)}.
  hf              transformers `CLIPModel` (quick_gelu) save_pretrained dir; ViT only (HF has no
                  ModifiedResNet).
The reference for an artifact is clip-anytorch's model built (`build_model`, i.e. its own
architecture inference) from exactly the values stored in it, cast to fp32. At generation time
open_clip's and transformers' forward passes are checked against clip-anytorch's, and the
TorchScript / torch files are loaded back with `clip.load(path, jit=False)` and checked too.

Cache: $SUBPT_ORACLE_CACHE (default <repo>/target/oracle-cache)/<key>/<model>/, where key hashes
this file, clip_layouts.py and the peer library versions; when a new key is generated, other
keys' directories that no running process holds are removed (full-size models take ~1.5 GB).

CLI: python tests/oracle/clip_models.py [MODEL ...]   generate (if needed), print manifest paths.
"""
from __future__ import annotations

import contextlib
import copy
import fcntl
import functools
import hashlib
import json
import math
import os
import re
import shutil
import sys
import types
from dataclasses import asdict, dataclass
from importlib import metadata
from pathlib import Path

import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file
from torch import nn

REPO = Path(__file__).resolve().parents[2]
# Entries OpenAI's TorchScript archives carry in their state dict that are not weights.
JIT_EXTRAS = ("input_resolution", "context_length", "vocab_size")
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)


def import_clip():
    """clip-anytorch 2.6 reads `packaging` through `pkg_resources`, gone from setuptools >= 81."""
    try:
        import pkg_resources  # noqa: F401
    except ImportError:
        import packaging.version  # noqa: F401

        sys.modules["pkg_resources"] = types.SimpleNamespace(packaging=sys.modules["packaging"])
    import clip
    import clip.model

    return clip


clip = import_clip()


@dataclass(frozen=True)
class Spec:
    name: str
    seed: int
    embed_dim: int
    image_resolution: int
    vision_layers: object  # int (ViT) or 4-tuple (ModifiedResNet)
    vision_width: int
    vision_patch_size: int | None
    transformer_width: int
    transformer_layers: int
    full: bool = False
    context_length: int = 77
    vocab_size: int = 49408

    @property
    def is_vit(self) -> bool:
        return self.vision_patch_size is not None

    @property
    def formats(self) -> list[str]:
        if self.full:
            return ["torch", "safetensors"]
        fmts = ["torchscript", "torch", "torch_legacy", "safetensors", "safetensors_bf16",
                "open_clip", "open_clip_ckpt"]
        return fmts + (["hf"] if self.is_vit else [])

    def clip_args(self):
        return (self.embed_dim, self.image_resolution, self.vision_layers, self.vision_width,
                self.vision_patch_size, self.context_length, self.vocab_size,
                self.transformer_width, self.transformer_width // 64, self.transformer_layers)


# Widths are multiples of 64 (clip-anytorch derives heads as width/64) and all dims differ from
# each other so a transposed or swapped tensor cannot pass a shape check by accident. Text widths
# of 128 give 2 heads, the ViT 3, the tiny ResNet's attention pool 8. tiny_rn's layer2 has two
# blocks so a stage's non-first (no-shortcut) block is covered.
SPECS = {s.name: s for s in [
    Spec("tiny_vit", 11, 96, 32, 2, 192, 8, 128, 3),
    Spec("tiny_rn", 12, 96, 64, (1, 2, 1, 1), 16, None, 128, 2),
    Spec("rn50", 13, 1024, 224, (3, 4, 6, 3), 64, None, 512, 12, full=True),
    Spec("vit_b16", 14, 512, 224, 12, 768, 16, 512, 12, full=True),
]}

# (file under the model dir, inspect "format", accepted inspect "layout"s, stored weights).
# open_clip's keys equal OpenAI's, so a bare open_clip file cannot be told apart: either
# layout is accepted there; the training checkpoint's wrapper and prefix are distinctive.
ARTIFACTS = {
    "torchscript": ("openai_jit.pt", "torchscript", ["openai"], "fp16"),
    "torch": ("openai_state_dict.pt", "torch", ["openai"], None),  # fp32 tiny, fp16 full
    "torch_legacy": ("openai_state_dict_legacy.pt", "torch", ["openai"], "fp32"),
    "safetensors": ("openai.safetensors", "safetensors", ["openai"], "fp32"),
    "safetensors_bf16": ("openai_bf16.safetensors", "safetensors", ["openai"], "bf16"),
    "open_clip": ("open_clip/open_clip_model.safetensors", "safetensors",
                  ["open_clip", "openai"], "fp32"),
    "open_clip_ckpt": ("open_clip_epoch_3.pt", "torch", ["open_clip"], "fp32"),
    "hf": ("hf/model.safetensors", "safetensors", ["hf"], "fp32"),
}


def artifact_info(spec: Spec, fmt: str) -> dict:
    rel, form, layouts, weights = ARTIFACTS[fmt]
    if weights is None:
        weights = "fp16" if spec.full else "fp32"
    return {"path": rel, "format": form, "layouts": layouts, "weights": weights}


# ---------------------------------------------------------------------------------------------
# Inputs shared by generation checks and tests


def smooth_pixels(n: int, res: int, seed: int) -> torch.Tensor:
    """Image-like normalised inputs: low-frequency colour fields plus fine texture."""
    g = torch.Generator().manual_seed(seed)
    low = torch.randn(n, 3, max(res // 8, 2), max(res // 8, 2), generator=g)
    x = F.interpolate(low, size=(res, res), mode="bicubic", align_corners=False)
    return (x + 0.35 * torch.randn(n, 3, res, res, generator=g)).contiguous()


CHECK_TEXTS = ["a photo of a dog.", "X X X X X X X X X X X X X X X X tabby cat.", ""]


# ---------------------------------------------------------------------------------------------
# Reference models (clip-anytorch)


def lowp_names(spec: Spec) -> set[str]:
    """State-dict keys that OpenAI's fp16 policy (`convert_weights`) stores in low precision."""
    m = clip.model.CLIP(*spec.clip_args())
    clip.model.convert_weights(m)
    return {k for k, v in m.state_dict().items() if v.dtype == torch.float16}


def round_fp16(spec: Spec, sd: dict) -> dict:
    names = lowp_names(spec)
    return {k: (v.half() if k in names else v) for k, v in sd.items()}


def reference_model(sd: dict, dtype: torch.dtype = torch.float32) -> nn.Module:
    """clip-anytorch's model for the given weights, computing in `dtype`.

    `build_model` infers the architecture but loads the values into fp16 parameters, so the
    fp32 values are loaded again after `.float()`. fp16 is OpenAI's own mixed policy; bf16
    applies the same policy with bfloat16.
    """
    sd = {k: v for k, v in sd.items() if k not in JIT_EXTRAS}
    model = clip.model.build_model(dict(sd))
    model.float()
    model.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in sd.items()})
    if dtype == torch.float16:
        clip.model.convert_weights(model)
    elif dtype == torch.bfloat16:
        low = copy.deepcopy(model)
        clip.model.convert_weights(low)
        lowp = {n for n, p in low.named_parameters() if p.dtype == torch.float16}
        for n, p in model.named_parameters():
            if n in lowp:
                p.data = p.data.to(torch.bfloat16)
    elif dtype != torch.float32:
        raise ValueError(dtype)
    return model.eval()


@torch.no_grad()
def reference_features(model: nn.Module, texts: list[str] | None, pixels: torch.Tensor | None):
    """L2-normalised fp32 (text_features, image_features) from clip-anytorch."""
    t = i = None
    if texts is not None:
        t = F.normalize(model.encode_text(clip.tokenize(texts)).float(), dim=-1)
    if pixels is not None:
        i = F.normalize(model.encode_image(pixels).float(), dim=-1)
    return t, i


def expected_inspect(model: nn.Module) -> dict:
    """The architecture fields `inspect --json` must report, read off clip-anytorch's model."""
    v = model.visual
    text = {
        "width": model.ln_final.weight.shape[0],
        "layers": len(model.transformer.resblocks),
        "heads": model.transformer.resblocks[0].attn.num_heads,
        "context_length": model.positional_embedding.shape[0],
        "vocab_size": model.token_embedding.weight.shape[0],
    }
    if isinstance(v, clip.model.VisionTransformer):
        vision = {"kind": "vit", "width": v.conv1.weight.shape[0],
                  "layers": len(v.transformer.resblocks),
                  "heads": v.transformer.resblocks[0].attn.num_heads,
                  "patch": v.conv1.weight.shape[-1], "resolution": v.input_resolution}
    else:
        vision = {"kind": "resnet", "width": v.layer1[0].conv1.weight.shape[0],
                  "layers": [len(getattr(v, f"layer{b}")) for b in (1, 2, 3, 4)],
                  "heads": v.attnpool.num_heads, "resolution": v.input_resolution}
    return {"embed_dim": model.text_projection.shape[1], "text": text, "vision": vision,
            # Learnable parameters only: BN running stats / num_batches_tracked, OpenAI's JIT
            # extras and HF's position_ids are buffers and are not counted, in every layout.
            "parameters": sum(p.numel() for p in model.parameters())}


# ---------------------------------------------------------------------------------------------
# Generation


def _randomise(model: nn.Module, spec: Spec) -> None:
    g = torch.Generator().manual_seed(spec.seed + 1000)

    def rand(t, scale):
        return scale * torch.randn(t.shape, generator=g)

    with torch.no_grad():
        for mod in model.modules():
            if isinstance(mod, nn.LayerNorm):
                mod.weight.copy_(1 + rand(mod.weight, 0.2))
                mod.bias.copy_(rand(mod.bias, 0.05))
            elif isinstance(mod, nn.MultiheadAttention):
                mod.in_proj_bias.copy_(rand(mod.in_proj_bias, 0.02))
                mod.out_proj.bias.copy_(rand(mod.out_proj.bias, 0.02))
            elif isinstance(mod, nn.BatchNorm2d):
                # clip-anytorch zero-inits every bn3.weight: that would silence residual branches.
                mod.weight.copy_(0.5 + torch.rand(mod.weight.shape, generator=g))
                mod.bias.copy_(rand(mod.bias, 0.1))
        model.logit_scale.fill_(math.log(1 / 0.07))
        if spec.is_vit:
            # At init the class token attends almost uniformly, so image features hardly
            # depend on the image (mean cosine ~0.96); sharper q.k makes them input-specific.
            for blk in model.visual.transformer.resblocks:
                blk.attn.in_proj_weight[: 2 * spec.vision_width] *= 3
        if not spec.is_vit:
            _calibrate_bn(model.visual, spec, g)


@torch.no_grad()
def _calibrate_bn(visual: nn.Module, spec: Spec, g: torch.Generator) -> None:
    bns = [m for m in visual.modules() if isinstance(m, nn.BatchNorm2d)]
    for bn in bns:
        bn.reset_running_stats()
        bn.momentum = None  # cumulative average: running stats = this batch's statistics
    visual.train()
    visual(smooth_pixels(4 if spec.full else 8, spec.image_resolution, spec.seed + 2000))
    visual.eval()
    for bn in bns:
        bn.momentum = 0.1
        std = bn.running_var.sqrt()
        bn.running_mean.add_(0.2 * std * torch.randn(std.shape, generator=g))
        bn.running_var.mul_(torch.exp(0.3 * torch.randn(std.shape, generator=g)))


def _max_diff(a, b) -> float:
    return max((x - y).abs().max().item() for x, y in zip(a, b))


def check_close(what: str, got, ref, tol: float, checks: dict) -> None:
    d = _max_diff(got, ref)
    checks[what] = d
    if not d <= tol:
        raise AssertionError(f"{what}: max abs diff {d:.3g} > {tol:g}")


def _save_torchscript(model, spec, path, pixels, tokens):
    jm = copy.deepcopy(model)
    clip.model.convert_weights(jm)
    # OpenAI's archives carry these as tensors in the state dict (build_model deletes them).
    del jm.context_length, jm.vocab_size
    jm.register_buffer("input_resolution", torch.tensor(spec.image_resolution))
    jm.register_buffer("context_length", torch.tensor(spec.context_length))
    jm.register_buffer("vocab_size", torch.tensor(spec.vocab_size))
    with torch.no_grad():
        traced = torch.jit.trace(jm, (pixels, tokens), check_trace=False)
    torch.jit.save(traced, str(path))


def _strided_state_dict(sd: dict) -> dict:
    """Same values, but some tensors are views: transposed strides and offsets into a storage
    shared with other data, as `torch.save` keeps them."""
    out = dict(sd)
    tp = sd["text_projection"]
    out["text_projection"] = tp.t().contiguous().t()
    pe = sd["positional_embedding"]
    big = torch.cat([torch.zeros(3, pe.shape[1]), pe, torch.ones(2, pe.shape[1])])
    out["positional_embedding"] = big[3:3 + pe.shape[0]]
    assert not out["text_projection"].is_contiguous()
    assert out["positional_embedding"].storage_offset() > 0
    return out


def generate(spec: Spec, mdir: Path) -> dict:
    torch.manual_seed(spec.seed)
    model = clip.model.CLIP(*spec.clip_args())
    _randomise(model, spec)
    model.eval()
    base = {k: v.detach().clone().contiguous() for k, v in model.state_dict().items()}
    tokens = clip.tokenize(CHECK_TEXTS)
    pixels = smooth_pixels(2, spec.image_resolution, spec.seed + 3000)
    checks: dict = {}

    ref_model = reference_model(base)
    ref = reference_features(ref_model, CHECK_TEXTS, pixels)
    check_close("reference_vs_generator", reference_features(model, CHECK_TEXTS, pixels), ref,
                 0.0, checks)
    # A model whose outputs barely depend on the input would make parity vacuous.
    for name, f in zip(("text", "image"), ref):
        cos = (f @ f.t() - torch.eye(len(f))).max().item()
        checks[f"{name}_max_cosine_between_inputs"] = cos
        if cos > 0.98:
            raise AssertionError(f"{spec.name}: {name} features nearly input-independent ({cos})")

    save_file(base, str(mdir / ARTIFACTS["safetensors"][0]))
    base16 = round_fp16(spec, base)
    ref16 = reference_features(reference_model(base16), CHECK_TEXTS, pixels)
    info = {f: artifact_info(spec, f) for f in spec.formats}

    torch_path = mdir / ARTIFACTS["torch"][0]
    if spec.full:
        extras = {"input_resolution": torch.tensor(spec.image_resolution),
                  "context_length": torch.tensor(spec.context_length),
                  "vocab_size": torch.tensor(spec.vocab_size)}
        torch.save({**base16, **extras}, torch_path)
    else:
        torch.save(_strided_state_dict(base), torch_path)
    # clip.load always passes weights through OpenAI's fp16 policy, whatever the file holds.
    loaded, _ = clip.load(str(torch_path), device="cpu", jit=False)
    check_close("clip_load_torch", reference_features(loaded, CHECK_TEXTS, pixels), ref16, 0.0,
                 checks)
    back = reference_model(torch.load(torch_path, weights_only=True))
    check_close("torch_reload", reference_features(back, CHECK_TEXTS, pixels),
                 ref16 if spec.full else ref, 0.0, checks)

    if "torch_legacy" in spec.formats:
        path = mdir / ARTIFACTS["torch_legacy"][0]
        torch.save(_strided_state_dict(base), path, _use_new_zipfile_serialization=False)
        back = reference_model(torch.load(path, weights_only=True))
        check_close("torch_legacy_reload", reference_features(back, CHECK_TEXTS, pixels), ref,
                     0.0, checks)
    if "safetensors_bf16" in spec.formats:
        save_file(round_bf16(base), str(mdir / ARTIFACTS["safetensors_bf16"][0]))
    if "torchscript" in spec.formats:
        path = mdir / ARTIFACTS["torchscript"][0]
        _save_torchscript(model, spec, path, pixels, tokens)
        jsd = torch.jit.load(str(path)).state_dict()
        if set(jsd) != set(base) | set(JIT_EXTRAS):
            raise AssertionError(f"TorchScript keys: {sorted(set(jsd) ^ set(base))}")
        loaded, _ = clip.load(str(path), device="cpu", jit=False)
        check_close("clip_load_torchscript", reference_features(loaded, CHECK_TEXTS, pixels),
                     ref16, 0.0, checks)
    import clip_layouts  # imports this module: only once it is loaded

    if "open_clip" in spec.formats:
        clip_layouts.write_open_clip(spec, base, mdir, tokens, pixels, ref, checks)
    expected = expected_inspect(ref_model)
    if "hf" in spec.formats:
        n = clip_layouts.write_hf(spec, base, mdir, tokens, pixels, ref, checks)
        if n != expected["parameters"]:
            raise AssertionError(f"HF parameter count {n} != {expected['parameters']}")
    manifest = {"name": spec.name, "spec": asdict(spec), "expected": expected,
                "artifacts": info, "checks": checks}
    (mdir / "manifest.json").write_text(json.dumps(manifest, indent=1))
    return manifest


# ---------------------------------------------------------------------------------------------
# Cache


@functools.lru_cache(maxsize=None)
def cache_key() -> str:
    """Taken once per process (see the call at import), so it names the code actually loaded
    even if the files change on disk meanwhile."""
    h = hashlib.sha256()
    for f in ("clip_models.py", "clip_layouts.py"):
        h.update((Path(__file__).parent / f).read_bytes())
    for dist in ("torch", "clip-anytorch", "open_clip_torch", "transformers", "safetensors"):
        with contextlib.suppress(metadata.PackageNotFoundError):
            h.update(f"{dist}={metadata.version(dist)}".encode())
    return h.hexdigest()[:16]


cache_key()


def cache_root() -> Path:
    return Path(os.environ.get("SUBPT_ORACLE_CACHE") or REPO / "target" / "oracle-cache")


# Open ".inuse" files, held with a shared lock for the life of the process: a key directory
# is only pruned when nobody holds it.
_IN_USE: dict = {}


def _hold(kdir: Path) -> None:
    if kdir not in _IN_USE:
        f = open(kdir / ".inuse", "w")
        fcntl.flock(f, fcntl.LOCK_SH)
        _IN_USE[kdir] = f


def _prune_other_keys(root: Path, keep: Path) -> None:
    for old in root.iterdir():
        if old == keep or not (old.is_dir() and re.fullmatch(r"[0-9a-f]{16}", old.name)):
            continue
        with open(old / ".inuse", "w") as f:
            try:
                fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                continue  # another process still reads it
            shutil.rmtree(old, ignore_errors=True)


def ensure_model(name: str) -> tuple[Path, dict]:
    """Directory and manifest of a generated model, generating it on first use."""
    spec = SPECS[name]
    root = cache_root()
    kdir = root / cache_key()
    kdir.mkdir(parents=True, exist_ok=True)
    _hold(kdir)
    mdir = kdir / name
    with open(kdir / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (mdir / "manifest.json").exists():
            _prune_other_keys(root, kdir)
            tmp = kdir / f".{name}.tmp{os.getpid()}"
            shutil.rmtree(tmp, ignore_errors=True)
            tmp.mkdir()
            generate(spec, tmp)
            shutil.rmtree(mdir, ignore_errors=True)
            tmp.rename(mdir)
    return mdir, json.loads((mdir / "manifest.json").read_text())


def round_bf16(sd: dict) -> dict:
    return {k: (v.to(torch.bfloat16) if v.is_floating_point() else v) for k, v in sd.items()}


def stored_weights(mdir: Path, weights: str) -> dict:
    """The values an artifact stores (before casting to the compute dtype)."""
    base = load_file(str(mdir / ARTIFACTS["safetensors"][0]))
    if weights == "fp16":
        return round_fp16(SPECS[mdir.name], base)
    return round_bf16(base) if weights == "bf16" else base


def main(argv: list[str]) -> int:
    names = argv or list(SPECS)
    for n in names:
        mdir, man = ensure_model(n)
        print(mdir / "manifest.json")
        for k, v in man["checks"].items():
            print(f"  {k}: {v:.3g}")
    return 0


if __name__ == "__main__":
    # Run through the importable module so clip_layouts and this script share one instance.
    import clip_models

    sys.exit(clip_models.main(sys.argv[1:]))
