"""One CoOp / NFL training step computed with OpenAI's CLIP model code (clip-anytorch) and
PyTorch autograd: loss and context gradient. Usage: coop_step_oracle.py DIR
DIR holds weights.safetensors (OpenAI layout, fp32), inputs.safetensors and case.json written by
the Rust test; results go to DIR/expected.safetensors."""
import json
import sys
import types

import torch

try:
    import pkg_resources  # noqa: F401  (clip-anytorch imports it)
except ImportError:  # setuptools >= 81
    sys.modules["pkg_resources"] = types.SimpleNamespace(packaging=__import__("packaging"))
import clip
from clip.model import CLIP
from safetensors.torch import load_file, save_file


def build(sd):
    vit = "visual.proj" in sd
    width = sd["ln_final.weight"].shape[0]
    layers = len({k.split(".")[2] for k in sd if k.startswith("transformer.resblocks")})
    if vit:
        vw = sd["visual.conv1.weight"].shape[0]
        patch = sd["visual.conv1.weight"].shape[-1]
        grid = round((sd["visual.positional_embedding"].shape[0] - 1) ** 0.5)
        vl = len([k for k in sd if k.startswith("visual.") and k.endswith(".attn.in_proj_weight")])
        vision = dict(image_resolution=patch * grid, vision_layers=vl, vision_width=vw, vision_patch_size=patch)
    else:
        counts = tuple(len({k.split(".")[2] for k in sd if k.startswith(f"visual.layer{b}")}) for b in (1, 2, 3, 4))
        vw = sd["visual.layer1.0.conv1.weight"].shape[0]
        out_w = round((sd["visual.attnpool.positional_embedding"].shape[0] - 1) ** 0.5)
        vision = dict(image_resolution=out_w * 32, vision_layers=counts, vision_width=vw, vision_patch_size=None)
    m = CLIP(embed_dim=sd["text_projection"].shape[1], context_length=sd["positional_embedding"].shape[0],
             vocab_size=sd["token_embedding.weight"].shape[0], transformer_width=width,
             transformer_heads=width // 64, transformer_layers=layers, **vision)
    m.load_state_dict(sd, strict=True)
    return m.float().eval()


def encode_prompts(model, embeddings, ids):
    x = embeddings + model.positional_embedding
    x = model.transformer(x.permute(1, 0, 2)).permute(1, 0, 2)
    x = model.ln_final(x)
    return x[torch.arange(x.shape[0]), ids.argmax(dim=-1)] @ model.text_projection


def prompt_parts(model, names, n_ctx):
    """Frozen prefix/suffix embeddings and ids of "X .. X <name>." as CoOp builds them."""
    names = [n.replace("_", " ") for n in names]
    ids = clip.tokenize([" ".join(["X"] * n_ctx) + " " + n + "." for n in names])
    with torch.no_grad():
        emb = model.token_embedding(ids)
    name_lens = [len(clip.simple_tokenizer.SimpleTokenizer().encode(n)) for n in names]
    return emb[:, :1], emb[:, 1 + n_ctx:], ids, name_lens


def assemble(ctx, prefix, suffix, name_lens, position):
    n_cls = prefix.shape[0]
    if ctx.dim() == 2:
        ctx = ctx.unsqueeze(0).expand(n_cls, -1, -1)
    if position == "end":
        return torch.cat([prefix, ctx, suffix], dim=1)
    rows = []
    half = ctx.shape[1] // 2
    for i in range(n_cls):
        nl = name_lens[i]
        pre, cls, rest = prefix[i:i + 1], suffix[i:i + 1, :nl], suffix[i:i + 1, nl:]
        c = ctx[i:i + 1]
        if position == "middle":
            rows.append(torch.cat([pre, c[:, :half], cls, c[:, half:], rest], dim=1))
        else:
            rows.append(torch.cat([pre, cls, c, rest], dim=1))
    return torch.cat(rows, dim=0)


def main(d):
    case = json.load(open(f"{d}/case.json"))
    model = build(load_file(f"{d}/weights.safetensors"))
    inp = load_file(f"{d}/inputs.safetensors")
    out = {}
    for variant in case["variants"]:
        name = variant["name"]
        ctx = inp[f"{name}.ctx"].clone().requires_grad_(True)
        n_ctx = ctx.shape[-2]
        prefix, suffix, ids, lens = prompt_parts(model, case["classnames"], n_ctx)
        with torch.no_grad():
            img = model.encode_image(inp["pixels"])
        txt = encode_prompts(model, assemble(ctx, prefix, suffix, lens, variant["position"]), ids)
        img = img / img.norm(dim=-1, keepdim=True)
        txt = txt / txt.norm(dim=-1, keepdim=True)
        logits = model.logit_scale.exp() * img @ txt.t()
        loss = torch.nn.functional.cross_entropy(logits, inp["labels"])
        if variant.get("nfl"):
            p2, s2, ids2, lens2 = prompt_parts(model, case["nfl_names"], n_ctx)
            t = encode_prompts(model, assemble(ctx, p2, s2, lens2, "end"), ids2)
            t = t / t.norm(dim=-1, keepdim=True)
            crit = torch.nn.CosineEmbeddingLoss()
            loss = loss + case["lambda"] * crit(t, inp["nfl_targets"], torch.ones(t.shape[0]))
        loss.backward()
        out[f"{name}.loss"] = loss.detach().reshape(1)
        out[f"{name}.grad"] = ctx.grad.detach().contiguous()
        out[f"{name}.logits"] = logits.detach().contiguous()
    save_file(out, f"{d}/expected.safetensors")


if __name__ == "__main__":
    main(sys.argv[1])
