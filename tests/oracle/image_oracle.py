"""Reference values for the image pipeline, computed with PIL and torchvision.

Usage: image_oracle.py OUTDIR

Writes into OUTDIR:
  images/       test images: scikit-learn's two sample photographs and files derived from them
                (crops of many shapes, JPEG subsamplings, progressive, greyscale, CMYK, YCCK,
                PNG with alpha, palette, 1/2/4/16-bit PNG) plus broken files for error paths
  cases.json    what each file is and which checks apply to it
  expected.safetensors
                decoded.<name>   uint8 [H,W,3]  Image.open(p).convert("RGB")
                resized.<name>   uint8 [h,w,3]  Resize(224, BICUBIC) of that
                test<S>.<name>   f32 [3,S,S]    Resize(S)+CenterCrop(S)+ToTensor+Normalize(CLIP)
                sweep.<k>        uint8          Image.resize(size, BICUBIC, box) on decoded pixels
                rrc.<k>.draws    f64 [n,4]      every random draw: (kind 0=uniform 1=randint, lo, hi, value)
                rrc.<k>.box      i64 [4]        RandomResizedCrop.get_params -> (top, left, h, w)
                rrc.<k>.resized  uint8 [S,S,3]  F.resized_crop(BICUBIC) with that box
                rrc.<k>.train    f32 [3,S,S]    the full train transform (crop, flip, normalise)
                cmyk.in / cmyk.out              PIL's CMYK -> RGB conversion on a 256x256 grid
"""

import json
import os
import shutil
import struct
import sys
import zlib

import numpy as np
import sklearn.datasets
import torch
import torchvision.transforms as T
import torchvision.transforms.functional as F
from PIL import Image
from safetensors.numpy import save_file

BICUBIC = T.InterpolationMode.BICUBIC
MEAN = (0.48145466, 0.4578275, 0.40821073)
STD = (0.26862954, 0.26130258, 0.27577711)


def write_png(path, width, height, bit_depth, color_type, rows, palette=None, trns=None):
    """Minimal PNG writer (filter 0 on every row) for layouts PIL cannot save (16-bit RGB, LA)."""

    def chunk(kind, data):
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body) & 0xFFFFFFFF)

    raw = b"".join(b"\x00" + row for row in rows)
    out = b"\x89PNG\r\n\x1a\n"
    out += chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, bit_depth, color_type, 0, 0, 0))
    if palette is not None:
        out += chunk(b"PLTE", palette)
    if trns is not None:
        out += chunk(b"tRNS", trns)
    out += chunk(b"IDAT", zlib.compress(raw, 9))
    out += chunk(b"IEND", b"")
    with open(path, "wb") as f:
        f.write(out)


def pack_bits(values, bits):
    """Pack a row of small integers MSB-first, as PNG stores sub-byte samples."""
    per = 8 // bits
    out = bytearray()
    for start in range(0, len(values), per):
        byte = 0
        group = values[start : start + per]
        for k, v in enumerate(group):
            byte |= int(v) << (8 - bits * (k + 1))
        out.append(byte)
    return bytes(out)


def make_images(img_dir):
    src = os.path.join(os.path.dirname(sklearn.datasets.__file__), "images")
    china_path = os.path.join(img_dir, "china.jpg")
    flower_path = os.path.join(img_dir, "flower.jpg")
    shutil.copy(os.path.join(src, "china.jpg"), china_path)
    shutil.copy(os.path.join(src, "flower.jpg"), flower_path)
    china = Image.open(china_path).convert("RGB")
    flower = Image.open(flower_path).convert("RGB")

    cases = [
        {"name": "china", "file": "china.jpg", "format": "jpeg", "test_sizes": [224, 336]},
        {"name": "flower", "file": "flower.jpg", "format": "jpeg", "test_sizes": [224, 288]},
    ]

    def add(name, img, fmt, test_sizes=(224,), **save_kw):
        ext = {"jpeg": "jpg", "png": "png"}[fmt]
        fname = f"{name}.{ext}"
        img.save(os.path.join(img_dir, fname), format=fmt.upper(), **save_kw)
        cases.append({"name": name, "file": fname, "format": fmt, "test_sizes": list(test_sizes)})

    # Shapes: tall, wide, smaller than 224 (upscaling), short side already 224, already 224x224,
    # and sizes whose centre-crop offset lands on x.5 (Python's round goes to even).
    add("tall_420", china.crop((10, 0, 190, 427)), "jpeg", quality=90)  # 4:2:0
    add("wide_444", flower.crop((0, 140, 640, 290)), "jpeg", quality=95, subsampling=0)
    add("small_422", china.crop((300, 200, 397, 331)), "jpeg", (224, 336), quality=92, subsampling=1)
    add("progressive", flower.crop((50, 20, 550, 400)), "jpeg", quality=85, progressive=True)
    add("tiny", flower.crop((300, 200, 305, 203)), "png")
    add("short224", china.crop((100, 0, 324, 350)), "png")
    add("square224", flower.crop((200, 100, 424, 324)), "png")
    add("odd_round_even", china.crop((0, 0, 225, 299)), "png")  # offset 36.5 -> 36
    add("odd_round_up", china.crop((0, 0, 299, 224)), "png")  # offset 37.5 -> 38
    add("grey", china.crop((150, 60, 450, 320)).convert("L"), "jpeg", quality=90)
    add("cmyk", flower.crop((100, 50, 360, 350)).convert("CMYK"), "jpeg", quality=90)
    rgba = flower.crop((0, 0, 300, 250)).convert("RGBA")
    alpha = np.tile(np.linspace(0, 255, 300).astype(np.uint8), (250, 1))
    rgba.putalpha(Image.fromarray(alpha))
    add("rgba", rgba, "png")
    la = china.crop((200, 100, 440, 380)).convert("LA")
    add("grey_alpha", la, "png")
    add("palette", flower.crop((100, 100, 400, 330)).convert("P", palette=Image.ADAPTIVE, colors=200), "png")
    pal_t = china.crop((0, 100, 260, 330)).convert("P", palette=Image.ADAPTIVE, colors=16)
    add("palette_trns", pal_t, "png", transparency=3, bits=4)
    add("bilevel", china.crop((0, 0, 250, 240)).convert("1"), "png")

    # EXIF orientation is not applied by Image.open, so the pixels must come back unrotated.
    exif = Image.Exif()
    exif[0x0112] = 6
    add("exif_rotated", flower.crop((0, 0, 260, 230)), "jpeg", quality=90, exif=exif.tobytes())

    # A PNG behind a .jpg name: the decoder must sniff the content, as PIL does.
    shutil.copy(os.path.join(img_dir, "tiny.png"), os.path.join(img_dir, "png_named.jpg"))
    cases.append({"name": "png_named", "file": "png_named.jpg", "format": "png", "test_sizes": [224]})

    # YCCK: a 4-component JPEG whose Adobe marker says transform 2 (libjpeg converts YCC->RGB
    # before the CMYK maths). PIL cannot write one, so flip the transform byte of the CMYK file.
    data = bytearray(open(os.path.join(img_dir, "cmyk.jpg"), "rb").read())
    at = data.find(b"Adobe")
    assert at > 0, "PIL's CMYK JPEG has no Adobe marker"
    assert data[at + 11] == 0, "expected Adobe transform 0 (CMYK)"
    data[at + 11] = 2
    with open(os.path.join(img_dir, "ycck.jpg"), "wb") as f:
        f.write(bytes(data))
    cases.append({"name": "ycck", "file": "ycck.jpg", "format": "jpeg", "test_sizes": [224]})

    # PNG layouts PIL does not write: 16-bit RGB / RGBA / LA, 16-bit grey, 2- and 4-bit grey.
    rng = np.random.default_rng(0)
    base = np.asarray(flower.crop((200, 150, 440, 390)), dtype=np.uint16)  # 240x240
    noise = rng.integers(0, 256, base.shape, dtype=np.uint16)
    rgb16 = (base << 8) | noise
    write_png(os.path.join(img_dir, "rgb16.png"), 240, 240, 16, 2, [r.astype(">u2").tobytes() for r in rgb16])
    cases.append({"name": "rgb16", "file": "rgb16.png", "format": "png", "test_sizes": [224]})
    a16 = rng.integers(0, 65536, (240, 240, 1), dtype=np.uint16)
    rgba16 = np.concatenate([rgb16, a16], axis=2)
    write_png(os.path.join(img_dir, "rgba16.png"), 240, 240, 16, 6, [r.astype(">u2").tobytes() for r in rgba16])
    cases.append({"name": "rgba16", "file": "rgba16.png", "format": "png", "test_sizes": [224]})
    grey16 = rgb16[:, :, 1:2]
    la16 = np.concatenate([grey16, a16], axis=2)
    write_png(os.path.join(img_dir, "grey_alpha16.png"), 240, 240, 16, 4, [r.astype(">u2").tobytes() for r in la16])
    cases.append({"name": "grey_alpha16", "file": "grey_alpha16.png", "format": "png", "test_sizes": [224]})
    # PIL opens 16-bit grey as I;16 and clamps it to 255 in convert("RGB"): keep small values
    # too, so both sides of the clamp are exercised.
    g16 = (np.asarray(china.convert("L").crop((0, 0, 230, 260)), dtype=np.uint16) * 3).astype(np.uint16)
    g16[::7] *= 211
    write_png(os.path.join(img_dir, "grey16.png"), 230, 260, 16, 0, [r.astype(">u2").tobytes() for r in g16])
    cases.append({"name": "grey16", "file": "grey16.png", "format": "png", "test_sizes": [224]})
    for bits in (2, 4):
        g = (np.asarray(flower.convert("L").crop((0, 0, 233, 229)), dtype=np.int64) >> (8 - bits))
        write_png(os.path.join(img_dir, f"grey{bits}bit.png"), 233, 229, bits, 0, [pack_bits(r, bits) for r in g])
        cases.append({"name": f"grey{bits}bit", "file": f"grey{bits}bit.png", "format": "png", "test_sizes": [224]})

    errors = []
    whole = open(china_path, "rb").read()
    with open(os.path.join(img_dir, "truncated.jpg"), "wb") as f:
        f.write(whole[: len(whole) // 2])
    errors.append({"file": "truncated.jpg", "kind": "corrupt"})
    with open(os.path.join(img_dir, "no_eoi.jpg"), "wb") as f:
        f.write(whole[:-2])
    errors.append({"file": "no_eoi.jpg", "kind": "corrupt"})
    with open(os.path.join(img_dir, "garbage.jpg"), "wb") as f:
        f.write(b"\xff\xd8\xff\xe0" + bytes(rng.integers(0, 256, 4000, dtype=np.uint8)))
    errors.append({"file": "garbage.jpg", "kind": "corrupt"})
    with open(os.path.join(img_dir, "text.jpg"), "wb") as f:
        f.write(b"this is not an image\n" * 10)
    errors.append({"file": "text.jpg", "kind": "unsupported"})
    flower.crop((0, 0, 40, 30)).save(os.path.join(img_dir, "anim.gif"))
    errors.append({"file": "anim.gif", "kind": "unsupported"})
    errors.append({"file": "does_not_exist.jpg", "kind": "unreadable"})
    for e in errors:
        if e["kind"] != "unreadable":
            # PIL must refuse these too, or the test would demand stricter behaviour than the peer.
            try:
                Image.open(os.path.join(img_dir, e["file"])).convert("RGB")
                e["pil_accepts"] = True
            except Exception:
                e["pil_accepts"] = False
    return cases, errors


def record_draws():
    """Patch torch's samplers so every draw made by the transforms is logged."""
    log = []
    orig_uniform = torch.Tensor.uniform_
    orig_randint = torch.randint
    orig_rand = torch.rand

    def uniform_(self, a=0.0, b=1.0, **kw):
        out = orig_uniform(self, a, b, **kw)
        log.append((0.0, float(a), float(b), float(out.item())))
        return out

    def randint(low, high, *args, **kw):
        out = orig_randint(low, high, *args, **kw)
        log.append((1.0, float(low), float(high - 1), float(out.item())))
        return out

    def rand(*args, **kw):
        out = orig_rand(*args, **kw)
        log.append((0.0, 0.0, 1.0, float(out.item())))
        return out

    torch.Tensor.uniform_ = uniform_
    torch.randint = randint
    torch.rand = rand

    def restore():
        torch.Tensor.uniform_ = orig_uniform
        torch.randint = orig_randint
        torch.rand = orig_rand

    return log, restore


def main():
    out_dir = sys.argv[1]
    img_dir = os.path.join(out_dir, "images")
    os.makedirs(img_dir, exist_ok=True)
    cases, errors = make_images(img_dir)

    tensors = {}
    decoded = {}
    for c in cases:
        im = Image.open(os.path.join(img_dir, c["file"]))
        c["pil_mode"] = im.mode
        rgb = im.convert("RGB")
        decoded[c["name"]] = rgb
        tensors[f"decoded.{c['name']}"] = np.ascontiguousarray(np.asarray(rgb, dtype=np.uint8))
        tensors[f"resized.{c['name']}"] = np.ascontiguousarray(
            np.asarray(T.Resize(224, interpolation=BICUBIC)(rgb), dtype=np.uint8)
        )
        for s in c["test_sizes"]:
            tf = T.Compose(
                [T.Resize(s, interpolation=BICUBIC), T.CenterCrop(s), T.ToTensor(), T.Normalize(MEAN, STD)]
            )
            tensors[f"test{s}.{c['name']}"] = tf(rgb).numpy()

    # Image.resize with explicit sizes and boxes, upscaling and downscaling, each axis alone.
    sweep = [
        ("china", (224, 150), None),
        ("china", (640, 300), None),
        ("china", (300, 427), None),
        ("china", (1000, 700), None),
        ("flower", (97, 333), (13, 7, 611, 420)),
        ("flower", (224, 224), (100, 50, 300, 250)),
        ("small_422", (224, 224), None),
        ("small_422", (50, 400), None),
        ("tiny", (224, 224), None),
        ("tiny", (2, 1), None),
        ("tall_420", (31, 500), (3, 17, 150, 400)),
    ]
    sweep_meta = []
    for k, (name, size, box) in enumerate(sweep):
        out = decoded[name].resize(size, Image.BICUBIC, box=box)
        tensors[f"sweep.{k}"] = np.ascontiguousarray(np.asarray(out, dtype=np.uint8))
        sweep_meta.append({"id": k, "image": name, "size": list(size), "box": list(box) if box else None})

    # RandomResizedCrop + flip with logged draws; shapes chosen so that some tries fail and an
    # extreme aspect ratio always takes the fallback.
    extreme = decoded["wide_444"].crop((0, 0, 640, 40))
    decoded["extreme"] = extreme
    tensors["decoded.extreme"] = np.ascontiguousarray(np.asarray(extreme, dtype=np.uint8))
    rrc_meta = []
    runs = [("china", s) for s in range(4)] + [("wide_444", s) for s in range(6)]
    runs += [("tall_420", s) for s in range(4)] + [("extreme", 0), ("extreme", 1), ("tiny", 3)]
    runs += [("small_422", s) for s in range(3)]
    for k, (name, seed) in enumerate(runs):
        img = decoded[name]
        torch.manual_seed(1000 + seed)
        log, restore = record_draws()
        try:
            i, j, h, w = T.RandomResizedCrop.get_params(img, [0.08, 1.0], [3.0 / 4.0, 4.0 / 3.0])
            crop = F.resized_crop(img, i, j, h, w, [224, 224], BICUBIC)
            flipped = T.RandomHorizontalFlip()(crop)
        finally:
            restore()
        train = T.Normalize(MEAN, STD)(T.ToTensor()(flipped))
        tensors[f"rrc.{k}.draws"] = np.array(log, dtype=np.float64).reshape(-1, 4)
        tensors[f"rrc.{k}.box"] = np.array([i, j, h, w], dtype=np.int64)
        tensors[f"rrc.{k}.resized"] = np.ascontiguousarray(np.asarray(crop, dtype=np.uint8))
        tensors[f"rrc.{k}.train"] = train.numpy()
        rrc_meta.append({"id": k, "image": name, "draws": len(log)})

    # CMYK -> RGB on a grid covering every (C, K) pair, other channels varied.
    x = np.arange(256, dtype=np.uint16)
    c, k = np.meshgrid(x, x)
    grid = np.stack([c, (255 - c), (c * 7 + k) % 256, k], axis=2).astype(np.uint8)
    tensors["cmyk.in"] = grid
    tensors["cmyk.out"] = np.asarray(Image.frombytes("CMYK", (256, 256), grid.tobytes()).convert("RGB"), dtype=np.uint8)

    save_file(tensors, os.path.join(out_dir, "expected.safetensors"))
    with open(os.path.join(out_dir, "cases.json"), "w") as f:
        json.dump(
            {"images": cases, "errors": errors, "sweep": sweep_meta, "rrc": rrc_meta, "mean": MEAN, "std": STD},
            f,
            indent=1,
        )


if __name__ == "__main__":
    main()
