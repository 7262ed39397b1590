"""One KgCoOp step and one ProGrad step as their official trainers compute them, written
from their formulations with OpenAI's CLIP model code (clip-anytorch) and PyTorch autograd:
KgCoOp's prompt learner ("a photo of a" context) and its loss CE + W * (1 - mean cosine to
the template's zero-shot features); ProGrad's prompt learner (its template's words in the last
of n_ctx zero slots, counted as words, copied as tokens), its soft-target KL term against the
zero-shot teacher and its gradient rule (KL backward, CE backward, per tensor: remove
lambda * the component along the KL gradient when the two conflict).
Usage: remedies_step_oracle.py DIR (weights.safetensors, inputs.safetensors, case.json in
DIR; results to DIR/expected.safetensors)."""
import json
import sys

import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file

from coop_step_oracle import build, encode_prompts
import clip


def tokens_and_embeddings(model, texts):
    ids = clip.tokenize(texts)
    with torch.no_grad():
        return ids, model.token_embedding(ids)


def zero_shot(model, template, names):
    texts = [template.format(n.replace("_", " ")) for n in names]
    with torch.no_grad():
        f = model.encode_text(clip.tokenize(texts))
    return f / f.norm(dim=-1, keepdim=True)


def logits_of(model, img, txt):
    img = img / img.norm(dim=-1, keepdim=True)
    txt = txt / txt.norm(dim=-1, keepdim=True)
    return model.logit_scale.exp() * img @ txt.t()


def kgcoop(model, case, inp, img):
    names = [n.replace("_", " ") for n in case["classnames"]]
    init = "a photo of a"
    n_ctx = len(init.split(" "))
    _, emb = tokens_and_embeddings(model, [init])
    ctx = emb[0, 1:1 + n_ctx].clone().requires_grad_(True)
    ids, emb = tokens_and_embeddings(model, [init + " " + n + "." for n in names])
    prefix, suffix = emb[:, :1], emb[:, 1 + n_ctx:]
    prompts = torch.cat([prefix, ctx.unsqueeze(0).expand(len(names), -1, -1), suffix], dim=1)
    txt = encode_prompts(model, prompts, ids)
    txt = txt / txt.norm(dim=-1, keepdim=True)
    old = zero_shot(model, case["kg_template"], case["classnames"])
    logits = logits_of(model, img, txt)
    cos = torch.nn.CosineSimilarity(dim=1, eps=1e-07)
    score = 1.0 - torch.mean(cos(txt, old))
    loss = F.cross_entropy(logits, inp["labels"]) + case["kg_weight"] * score
    loss.backward()
    return {"kg.ctx0": ctx.detach().clone(), "kg.loss": loss.detach().reshape(1),
            "kg.grad": ctx.grad.detach().contiguous(), "kg.logits": logits.detach()}


def prograd_parts(model, case):
    names = [n.replace("_", " ") for n in case["classnames"]]
    n_ctx = case["pg_n_ctx"]
    init = case["pg_template"].replace(" {}.", "")
    words = len(init.split(" "))
    _, emb = tokens_and_embeddings(model, [init])
    ctx0 = torch.zeros(n_ctx, emb.shape[-1])
    ctx0[n_ctx - words:, :] = emb[0, 1:1 + words, :]
    prefix_text = " ".join(["X"] * (n_ctx - words)) + " " + init
    ids, emb = tokens_and_embeddings(model, [prefix_text + " " + n + "." for n in names])
    return ctx0, emb[:, :1], emb[:, 1 + n_ctx:], ids


def prograd(model, case, inp, img, labels, lam, tag):
    ctx0, prefix, suffix, ids = prograd_parts(model, case)
    ctx = ctx0.clone().requires_grad_(True)
    n = prefix.shape[0]
    txt = encode_prompts(model, torch.cat([prefix, ctx.unsqueeze(0).expand(n, -1, -1), suffix], 1), ids)
    student = logits_of(model, img, txt)
    teacher_txt = zero_shot(model, case["pg_template"], case["classnames"])
    with torch.no_grad():
        teacher = logits_of(model, img, teacher_txt)
    T = case["pg_temperature"]
    xe = F.cross_entropy(student, labels)
    kl = (-F.softmax(teacher / T, dim=-1) * F.log_softmax(student / T, -1) * T * T).sum(1).mean()
    kl.backward(retain_graph=True)
    b = ctx.grad.clone()
    ctx.grad = None
    xe.backward()
    a = ctx.grad.clone()
    b_hat = b / torch.linalg.norm(b)
    a_hat = a / torch.linalg.norm(a)
    cos = torch.dot(a_hat.flatten(), b_hat.flatten())
    grad = a - lam * torch.dot(a.flatten(), b_hat.flatten()) * b_hat if cos < 0 else a
    return {f"{tag}.ctx0": ctx0, f"{tag}.ce": xe.detach().reshape(1), f"{tag}.kl": kl.detach().reshape(1),
            f"{tag}.cos": cos.detach().reshape(1), f"{tag}.grad": grad.detach().contiguous(),
            f"{tag}.teacher": teacher.detach().contiguous()}


def main(d):
    case = json.load(open(f"{d}/case.json"))
    model = build(load_file(f"{d}/weights.safetensors"))
    inp = load_file(f"{d}/inputs.safetensors")
    with torch.no_grad():
        img = model.encode_image(inp["pixels"])
    out = kgcoop(model, case, inp, img)
    for tag in case["pg_cases"]:
        out.update(prograd(model, case, inp, img, inp[f"{tag}.labels"], case["pg_lambda"], tag))
    save_file({k: v.contiguous() for k, v in out.items()}, f"{d}/expected.safetensors")


if __name__ == "__main__":
    main(sys.argv[1])
