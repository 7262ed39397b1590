"""Writes tiny PyTorch checkpoints plus the tensors a reader must find in them.

For every case NAME it writes NAME.pt, NAME.expected.safetensors (each expected tensor made
contiguous) and NAME.keys.json (the expected keys, in order). Key rules: TorchScript archives
give `module.state_dict()` keys; `torch.save` payloads give their nested dict keys / list indices
joined with '.'. It also writes corrupt/*: damaged files for the error-message tests.

Usage: make_torch_archives.py --out DIR
"""
import argparse
import collections
import io
import json
import os
import zipfile

import warnings

import torch
import torch.nn as nn
from safetensors.torch import save_file

with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # clip-anytorch imports the deprecated pkg_resources
    from clip.model import CLIP


def flatten(obj, prefix=""):
    """The (key, tensor) pairs the reader must report for a torch.save payload."""
    out = []
    if isinstance(obj, torch.Tensor):
        out.append((prefix, obj))
    elif isinstance(obj, dict):
        for k, v in obj.items():
            out += flatten(v, f"{prefix}.{k}" if prefix else str(k))
    elif isinstance(obj, (list, tuple)):
        for i, v in enumerate(obj):
            out += flatten(v, f"{prefix}.{i}" if prefix else str(i))
    return out


def write_expected(out, name, pairs):
    keys = [k for k, _ in pairs]
    assert len(set(keys)) == len(keys), keys
    save_file({k: t.detach().contiguous().clone() for k, t in pairs},
              os.path.join(out, f"{name}.expected.safetensors"))
    with open(os.path.join(out, f"{name}.keys.json"), "w") as f:
        json.dump(keys, f)


def state_dict_case():
    g = torch.Generator().manual_seed(0)
    base = torch.randn(3, 4, generator=g)
    wide = torch.randn(4, 6, generator=g)
    shared = torch.randn(10, generator=g)
    sd = collections.OrderedDict()
    sd["f32"] = torch.randn(3, 4, generator=g)
    sd["f16"] = torch.randn(2, 3, generator=g).half()
    sd["bf16"] = torch.randn(5, generator=g).bfloat16()
    sd["f64"] = torch.randn(2, 2, generator=g).double()
    sd["i64"] = torch.arange(-3, 3).reshape(2, 3)
    sd["i32"] = torch.tensor([-(2**31), 5, 2**31 - 1], dtype=torch.int32)
    sd["i16"] = torch.tensor([-300, 7], dtype=torch.int16)
    sd["i8"] = torch.tensor([-128, 127], dtype=torch.int8)
    sd["u8"] = torch.tensor([0, 200, 255], dtype=torch.uint8)
    sd["bool"] = torch.tensor([True, False, True])
    sd["transposed"] = base.t()
    sd["sliced"] = wide[1:, 2:5]
    sd["stepped"] = wide[::2, 1::3]
    sd["shared_a"] = shared[:6].view(2, 3)
    sd["shared_b"] = shared[4:]
    sd["scalar"] = torch.tensor(3.5)
    sd["scalar_i64"] = torch.tensor(7)
    sd["scalar_view"] = shared[7]
    sd["expanded"] = torch.randn(3, 1, generator=g).expand(3, 4)
    sd["empty"] = torch.zeros(0, 3)
    sd["param"] = nn.Parameter(torch.randn(2, generator=g))
    sd["permuted_f16"] = torch.randn(2, 3, 4, generator=g).half().permute(2, 0, 1)
    return sd


class Block(nn.Module):
    def __init__(self, c):
        super().__init__()
        # Buffer registered before the parameter: state_dict still lists parameters first.
        self.register_buffer("counter", torch.tensor([4, 5]))
        self.conv = nn.Conv2d(c, c, 3, padding=1, bias=False)
        self.bn = nn.BatchNorm2d(c)
        self.gain = nn.Parameter(torch.randn(c))
        self.plain = torch.ones(2)  # an attribute, not a buffer: not in state_dict

    def forward(self, x):
        return self.bn(self.conv(x)) * self.gain.view(1, -1, 1, 1) + self.plain.sum()


class Net(nn.Module):
    """CLIP-like layout: a parameter on the root, nested submodules, BatchNorm buffers."""

    def __init__(self):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(2, 4, 1), nn.BatchNorm2d(4), nn.ReLU())
        self.blocks = nn.ModuleList([Block(4), Block(4)])
        self.positional_embedding = nn.Parameter(torch.randn(3, 4))
        self.head = nn.Linear(4, 3)
        self.register_buffer("scale", torch.tensor(2.0))
        self.register_buffer("cache", torch.zeros(2), persistent=False)

    def forward(self, x):
        x = self.stem(x)
        for b in self.blocks:
            x = b(x)
        x = x.mean(dim=(2, 3)) + self.positional_embedding.sum(0)
        return self.head(x) * self.scale


def make_net(seed, half=False):
    torch.manual_seed(seed)
    net = Net()
    # Non-trivial running statistics, as in a trained model.
    net.train()
    with torch.no_grad():
        net(torch.randn(4, 2, 5, 5))
    net.eval()
    return net.half() if half else net


def write_zip_copy(src, dst, change):
    """Copies a zip archive record by record; `change(name, data)` may alter or drop records."""
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w", zipfile.ZIP_STORED) as zout:
        for info in zin.infolist():
            data = change(info.filename, zin.read(info.filename))
            if data is not None:
                zout.writestr(info.filename, data)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    out = ap.parse_args().out
    os.makedirs(os.path.join(out, "corrupt"), exist_ok=True)
    p = lambda *n: os.path.join(out, *n)

    sd = state_dict_case()
    torch.save(sd, p("state.pt"))
    write_expected(out, "state", flatten(sd))

    torch.save(sd, p("legacy.pt"), _use_new_zipfile_serialization=False)
    write_expected(out, "legacy", flatten(sd))

    net = make_net(1)
    inner = collections.OrderedDict(("module." + k, v) for k, v in net.state_dict().items())
    ckpt = {
        "state_dict": inner,
        "epoch": 3,
        "optimizer": {"state": {0: {"momentum_buffer": torch.randn(3)}},
                      "param_groups": [{"lr": 0.1, "params": [0]}]},
        "history": [torch.tensor([1.0, 2.0]), "note", (torch.tensor([3], dtype=torch.int64),)],
    }
    torch.save(ckpt, p("nested.pt"))
    write_expected(out, "nested", flatten(ckpt))

    torch.save(make_net(2), p("module.pt"))
    write_expected(out, "module", list(make_net(2).state_dict().items()))

    scripted = torch.jit.script(make_net(3, half=True))
    torch.jit.save(scripted, p("script.pt"))
    write_expected(out, "script", list(scripted.state_dict().items()))

    traced = torch.jit.trace(make_net(4), torch.randn(1, 2, 5, 5))
    torch.jit.save(traced, p("trace.pt"))
    write_expected(out, "trace", list(traced.state_dict().items()))

    # OpenAI's CLIP architectures (clip-anytorch), tiny, traced and cast to fp16 like the
    # released archives.
    for name, args in [("clip_rn", (64, 64, (1, 1, 1, 1), 8, None, 8, 50, 16, 2, 1)),
                       ("clip_vit", (16, 32, 1, 64, 16, 8, 50, 16, 2, 1))]:
        torch.manual_seed(5)
        model = CLIP(*args).eval()
        res = model.visual.input_resolution
        image, text = torch.randn(1, 3, res, res), torch.randint(0, 50, (1, 8))
        traced = torch.jit.trace(model, (image, text)).half()
        torch.jit.save(traced, p(f"{name}.pt"))
        write_expected(out, name, list(traced.state_dict().items()))

    # Big-endian archive: float32 storages stored byte-swapped, flagged by the byteorder record.
    big = {"a": torch.randn(2, 3), "b": torch.randn(5)[1:]}
    torch.save(big, p("corrupt", "little.pt"))
    write_zip_copy(p("corrupt", "little.pt"), p("big.pt"), lambda n, d: (
        b"big" if n.endswith("/byteorder") else
        bytes(b for i in range(0, len(d), 4) for b in d[i:i + 4][::-1]) if "/data/" in n else d))
    write_expected(out, "big", flatten(big))
    os.remove(p("corrupt", "little.pt"))

    # Damaged files, all derived from state.pt.
    src = p("state.pt")
    write_zip_copy(src, p("corrupt", "truncated_storage.pt"),
                   lambda n, d: d[:-3] if n.endswith("/data/0") else d)
    write_zip_copy(src, p("corrupt", "unknown_storage.pt"),
                   lambda n, d: d.replace(b"\nHalfStorage\n", b"\nComplexFloatStorage\n")
                   if n.endswith("data.pkl") else d)
    write_zip_copy(src, p("corrupt", "bad_pickle.pt"),
                   lambda n, d: d[: len(d) // 2] if n.endswith("data.pkl") else d)
    write_zip_copy(src, p("corrupt", "missing_storage.pt"),
                   lambda n, d: None if n.endswith("/data/1") else d)
    write_zip_copy(src, p("corrupt", "no_data_pkl.pt"),
                   lambda n, d: None if n.endswith("data.pkl") else d)
    with open(src, "rb") as f:
        whole = f.read()
    with open(p("corrupt", "truncated_zip.pt"), "wb") as f:
        f.write(whole[: len(whole) // 2])
    with open(p("legacy.pt"), "rb") as f:
        legacy = f.read()
    with open(p("corrupt", "truncated_legacy.pt"), "wb") as f:
        f.write(legacy[:-10])
    with open(p("corrupt", "garbage.pt"), "wb") as f:
        f.write(b"this is not a checkpoint\n" * 4)
    buf = io.BytesIO()
    import pickle
    pickle.dump({"a": 1}, buf, protocol=2)
    with open(p("corrupt", "plain_pickle.pt"), "wb") as f:
        f.write(buf.getvalue())


if __name__ == "__main__":
    main()
