"""CoCoOp training steps computed with OpenAI's CLIP model code (clip-anytorch), torch.nn and
PyTorch autograd / torch.optim.SGD, laid out as the reference trainer computes them: the
meta-net reads the normalised image feature, its output shifts every context token, and each
image's class prompts go through the text tower on their own.
Also the reference's seeded initial draws (random context, then the meta-net's nn.Linear layers).
Usage: cocoop_step_oracle.py DIR
DIR holds weights.safetensors (OpenAI layout, fp32), inputs.safetensors (image features, labels,
initial ctx and meta-net tensors per case) and case.json written by the Rust test; results go to
DIR/expected.safetensors."""
import json
import sys
from collections import OrderedDict

import torch
from torch import nn

from coop_step_oracle import build, encode_prompts  # (also installs the clip-anytorch shim)
import clip
from safetensors.torch import load_file, save_file

META_KEYS = ["linear1.weight", "linear1.bias", "linear2.weight", "linear2.bias"]


def meta_net(vis_dim, ctx_dim):
    return nn.Sequential(OrderedDict([
        ("linear1", nn.Linear(vis_dim, vis_dim // 16)),
        ("relu", nn.ReLU(inplace=True)),
        ("linear2", nn.Linear(vis_dim // 16, ctx_dim)),
    ]))


class Learner(nn.Module):
    def __init__(self, model, classnames, words, ctx, meta_state):
        super().__init__()
        n_ctx = ctx.shape[0]
        prefix = words if words else " ".join(["X"] * n_ctx)
        names = [n.replace("_", " ") for n in classnames]
        self.ids = clip.tokenize([prefix + " " + n + "." for n in names])
        with torch.no_grad():
            emb = model.token_embedding(self.ids)
        self.prefix, self.suffix = emb[:, :1], emb[:, 1 + n_ctx:]
        self.ctx = nn.Parameter(ctx.clone())
        self.meta_net = meta_net(model.visual.output_dim, model.ln_final.weight.shape[0])
        self.meta_net.load_state_dict(meta_state)

    def logits(self, model, image_features):
        img = image_features / image_features.norm(dim=-1, keepdim=True)
        shifted = self.ctx.unsqueeze(0) + self.meta_net(img).unsqueeze(1)
        n_cls = self.prefix.shape[0]
        rows = []
        for ctx_i, img_i in zip(shifted, img):
            prompts = torch.cat([self.prefix, ctx_i.unsqueeze(0).expand(n_cls, -1, -1), self.suffix], dim=1)
            txt = encode_prompts(model, prompts, self.ids)
            txt = txt / txt.norm(dim=-1, keepdim=True)
            rows.append(model.logit_scale.exp() * img_i @ txt.t())
        return torch.stack(rows)


def init_draws(model, seed, n_ctx, words):
    """The reference's initial prompt learner: the context from the words' token embeddings,
    or (no words) drawn from the CPU generator, then the meta-net's two nn.Linear layers."""
    torch.manual_seed(seed)
    out = {}
    if words:
        words = words.replace("_", " ")
        with torch.no_grad():
            emb = model.token_embedding(clip.tokenize(words))
        out["ctx"] = emb[0, 1:1 + len(words.split(" "))].clone()
    else:
        ctx = torch.empty(n_ctx, model.ln_final.weight.shape[0])
        nn.init.normal_(ctx, std=0.02)
        out["ctx"] = ctx
    net = meta_net(model.visual.output_dim, model.ln_final.weight.shape[0])
    for k in META_KEYS:
        out[f"meta_net.{k}"] = net.state_dict()[k].clone()
    return out


def main(d):
    case = json.load(open(f"{d}/case.json"))
    model = build(load_file(f"{d}/weights.safetensors"))
    for p in model.parameters():
        p.requires_grad_(False)
    inp = load_file(f"{d}/inputs.safetensors")
    out = {}
    for init in case["inits"]:
        for k, v in init_draws(model, init["seed"], init["n_ctx"], init["words"]).items():
            out[f"init.{init['name']}.{k}"] = v.contiguous()
    for c in case["cases"]:
        name = c["name"]
        labels = inp[f"{name}.labels"]
        meta_state = {k: inp[f"{name}.meta_net.{k}"] for k in META_KEYS}
        learner = Learner(model, case["classnames"], c["words"], inp[f"{name}.ctx"], meta_state)
        params = [learner.ctx] + [dict(learner.meta_net.named_parameters())[k] for k in META_KEYS]
        optim = torch.optim.SGD(params, lr=c["lr"], momentum=0.9, weight_decay=5e-4)
        img = inp[f"{name}.features"]
        for step in range(c["steps"]):
            logits = learner.logits(model, img)
            loss = nn.functional.cross_entropy(logits, labels)
            optim.zero_grad()
            loss.backward()
            out[f"{name}.{step}.loss"] = loss.detach().reshape(1)
            out[f"{name}.{step}.logits"] = logits.detach().contiguous()
            out[f"{name}.{step}.grad.ctx"] = learner.ctx.grad.detach().clone()
            for k, p in zip(META_KEYS, params[1:]):
                out[f"{name}.{step}.grad.meta_net.{k}"] = p.grad.detach().clone()
            optim.step()
            for k, p in zip(["ctx"] + [f"meta_net.{k}" for k in META_KEYS], params):
                out[f"{name}.{step}.buf.{k}"] = optim.state[p]["momentum_buffer"].clone()
        out[f"{name}.final.ctx"] = learner.ctx.detach().clone()
        for k, p in zip(META_KEYS, params[1:]):
            out[f"{name}.final.meta_net.{k}"] = p.detach().clone()
    save_file(out, f"{d}/expected.safetensors")


if __name__ == "__main__":
    main(sys.argv[1])
