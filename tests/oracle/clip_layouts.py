"""Peer layouts of the reference CLIP models: open_clip's CLIP class and transformers'
CLIPModel, built from OpenAI-keyed weights and checked against clip-anytorch when written."""
from __future__ import annotations

import re

import torch
import torch.nn.functional as F
from safetensors.torch import save_file
from torch import nn

from clip_models import ARTIFACTS, CLIP_MEAN, CLIP_STD, Spec, check_close


def _open_clip_cfg(spec: Spec) -> dict:
    if spec.is_vit:
        vision = {"layers": spec.vision_layers, "width": spec.vision_width,
                  "patch_size": spec.vision_patch_size, "image_size": spec.image_resolution,
                  "head_width": 64}
    else:
        vision = {"layers": list(spec.vision_layers), "width": spec.vision_width,
                  "image_size": spec.image_resolution, "head_width": 64}
    text = {"context_length": spec.context_length, "vocab_size": spec.vocab_size,
            "width": spec.transformer_width, "heads": spec.transformer_width // 64,
            "layers": spec.transformer_layers}
    return {"embed_dim": spec.embed_dim, "quick_gelu": True, "vision_cfg": vision,
            "text_cfg": text}


def open_clip_model(spec: Spec, cast_dtype=None) -> nn.Module:
    import open_clip

    cfg = _open_clip_cfg(spec)
    oc = open_clip.model.CLIP(cfg["embed_dim"], cfg["vision_cfg"], cfg["text_cfg"],
                              quick_gelu=True, cast_dtype=cast_dtype).eval()
    # open_clip.create_model sets these; its config writer reads them.
    oc.visual.image_mean, oc.visual.image_std = CLIP_MEAN, CLIP_STD
    return oc


@torch.no_grad()
def open_clip_features(oc, tokens, pixels):
    return (F.normalize(oc.encode_text(tokens).float(), dim=-1),
            F.normalize(oc.encode_image(pixels).float(), dim=-1))


def write_open_clip(spec, base, mdir, tokens, pixels, ref, checks):
    import open_clip
    from open_clip.push_to_hf_hub import save_config_for_hf

    oc = open_clip_model(spec)
    oc.load_state_dict(base, strict=True)
    sd = oc.state_dict()
    if set(sd) != set(base):
        raise AssertionError(f"open_clip keys differ from OpenAI's: {sorted(set(sd) ^ set(base))}")
    check_close("open_clip_vs_clip", open_clip_features(oc, tokens, pixels), ref, 1e-5, checks)
    d = mdir / "open_clip"
    d.mkdir()
    save_file({k: v.contiguous() for k, v in sd.items()}, str(d / "open_clip_model.safetensors"))
    save_config_for_hf(oc, d / "open_clip_config.json", model_config=_open_clip_cfg(spec))

    # A training checkpoint as open_clip's trainer writes it under DDP. AdamW with lr=0 fills
    # the optimizer state without moving the weights.
    opt = torch.optim.AdamW(oc.parameters(), lr=0.0, weight_decay=0.2)
    with torch.enable_grad():
        img, txt, scale = oc(pixels, tokens)[:3]
        (scale * img @ txt.t()).logsumexp(-1).sum().backward()
    opt.step()
    ckpt = {"epoch": 3, "name": f"{spec.name}-oracle",
            "state_dict": {"module." + k: v for k, v in oc.state_dict().items()},
            "optimizer": opt.state_dict()}
    path = mdir / ARTIFACTS["open_clip_ckpt"][0]
    torch.save(ckpt, path)
    fresh = open_clip_model(spec)
    open_clip.factory.load_checkpoint(fresh, str(path))
    check_close("open_clip_ckpt_reload", open_clip_features(fresh, tokens, pixels), ref, 1e-6,
                 checks)


def openai_to_hf(sd: dict) -> dict:
    """OpenAI CLIP (ViT) keys -> transformers CLIPModel keys."""
    out = {}

    def blocks(src: str, dst: str):
        for k, v in sd.items():
            m = re.fullmatch(re.escape(src) + r"\.(\d+)\.(.+)", k)
            if not m:
                continue
            i, rest = m.groups()
            p = f"{dst}.{i}."
            if rest.startswith("attn.in_proj_"):
                kind = rest.rsplit("_", 1)[1]  # weight | bias
                for name, part in zip("qkv", v.chunk(3, dim=0)):
                    out[f"{p}self_attn.{name}_proj.{kind}"] = part.clone()
                continue
            for a, b in (("ln_1.", "layer_norm1."), ("ln_2.", "layer_norm2."),
                         ("attn.out_proj.", "self_attn.out_proj."), ("mlp.c_fc.", "mlp.fc1."),
                         ("mlp.c_proj.", "mlp.fc2.")):
                if rest.startswith(a):
                    out[p + b + rest[len(a):]] = v
                    break
            else:
                raise KeyError(k)

    t, vm = "text_model.", "vision_model."
    out[t + "embeddings.token_embedding.weight"] = sd["token_embedding.weight"]
    out[t + "embeddings.position_embedding.weight"] = sd["positional_embedding"]
    blocks("transformer.resblocks", t + "encoder.layers")
    for s in ("weight", "bias"):
        out[f"{t}final_layer_norm.{s}"] = sd[f"ln_final.{s}"]
        out[f"{vm}pre_layrnorm.{s}"] = sd[f"visual.ln_pre.{s}"]
        out[f"{vm}post_layernorm.{s}"] = sd[f"visual.ln_post.{s}"]
    out["text_projection.weight"] = sd["text_projection"].t().contiguous()
    out[vm + "embeddings.class_embedding"] = sd["visual.class_embedding"]
    out[vm + "embeddings.patch_embedding.weight"] = sd["visual.conv1.weight"]
    out[vm + "embeddings.position_embedding.weight"] = sd["visual.positional_embedding"]
    blocks("visual.transformer.resblocks", vm + "encoder.layers")
    out["visual_projection.weight"] = sd["visual.proj"].t().contiguous()
    out["logit_scale"] = sd["logit_scale"]
    return out


def hf_model(spec: Spec):
    from transformers import CLIPConfig, CLIPModel

    tw, vw = spec.transformer_width, spec.vision_width
    cfg = CLIPConfig(
        text_config={"vocab_size": spec.vocab_size, "hidden_size": tw, "intermediate_size": 4 * tw,
                     "num_hidden_layers": spec.transformer_layers, "num_attention_heads": tw // 64,
                     "max_position_embeddings": spec.context_length, "hidden_act": "quick_gelu",
                     "layer_norm_eps": 1e-5, "bos_token_id": 49406, "eos_token_id": 49407,
                     "pad_token_id": 0, "projection_dim": spec.embed_dim},
        vision_config={"hidden_size": vw, "intermediate_size": 4 * vw,
                       "num_hidden_layers": spec.vision_layers, "num_attention_heads": vw // 64,
                       "image_size": spec.image_resolution, "patch_size": spec.vision_patch_size,
                       "hidden_act": "quick_gelu", "layer_norm_eps": 1e-5,
                       "projection_dim": spec.embed_dim},
        projection_dim=spec.embed_dim)
    return CLIPModel(cfg).eval()


@torch.no_grad()
def hf_features(hf, tokens, pixels):
    def pooled(o):
        return o if isinstance(o, torch.Tensor) else o.pooler_output

    return (F.normalize(pooled(hf.get_text_features(input_ids=tokens)), dim=-1),
            F.normalize(pooled(hf.get_image_features(pixel_values=pixels)), dim=-1))


def write_hf(spec, base, mdir, tokens, pixels, ref, checks):
    from transformers import CLIPModel

    hf = hf_model(spec)
    res = hf.load_state_dict(openai_to_hf(base), strict=False)
    if res.unexpected_keys or any("position_ids" not in k for k in res.missing_keys):
        raise AssertionError(f"HF conversion: {res}")
    check_close("hf_vs_clip", hf_features(hf, tokens, pixels), ref, 1e-5, checks)
    nparams = sum(p.numel() for p in hf.parameters())
    hf.save_pretrained(str(mdir / "hf"))
    back = CLIPModel.from_pretrained(str(mdir / "hf")).eval()
    check_close("hf_reload", hf_features(back, tokens, pixels), ref, 1e-5, checks)
    return nparams
