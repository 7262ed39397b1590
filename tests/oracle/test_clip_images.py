"""`encode --image`: decoding plus CLIP's test transform, against clip's `preprocess`
(torchvision Resize(R, bicubic) + CenterCrop + ToTensor + Normalize on PIL's decode) fed to
clip-anytorch's model."""
from __future__ import annotations

import functools
from pathlib import Path

import pytest
import torch

import clip_models as cm
from clip_harness import TOL_FP32, artifact, encode, model

# ---------------------------------------------------------------------------------------------
# --image: decoding + clip's preprocess


def _write_images(d: Path) -> list[Path]:
    """Images covering modes, sizes and both JPEG chroma layouts. The content mixes gradients,
    hard edges and texture, so a resampling or colour error shows."""
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(7)

    def content(w, h):
        y, x = np.mgrid[0:h, 0:w].astype(np.float32)
        img = np.stack([255 * x / max(w - 1, 1), 255 * y / max(h - 1, 1),
                        128 + 100 * np.sin(x / 3.0) * np.cos(y / 5.0)], axis=-1)
        img[(x - w / 2) ** 2 + (y - h / 3) ** 2 < (min(w, h) / 4) ** 2] = (250, 20, 60)
        img += rng.normal(0, 12, img.shape)
        return np.clip(img, 0, 255).astype(np.uint8)

    rgba = np.concatenate([content(80, 60), rng.integers(0, 256, (60, 80, 1), np.uint8)], -1)
    images = {
        "landscape.png": Image.fromarray(content(97, 61)),
        "portrait.png": Image.fromarray(content(50, 130)),
        "large.png": Image.fromarray(content(300, 200)),  # strong (antialiased) downscale
        "small.png": Image.fromarray(content(23, 19)),  # upscale
        "gray.png": Image.fromarray(content(70, 70)[..., 1]),
        "palette.png": Image.fromarray(content(64, 80)).quantize(64),
        "alpha.png": Image.fromarray(rgba),  # 4 channels: RGBA
        "photo444.jpg": (Image.fromarray(content(320, 240)), {"quality": 92, "subsampling": 0}),
        "photo420.jpg": (Image.fromarray(content(301, 227)), {"quality": 85, "subsampling": 2}),
        "gray.jpg": (Image.fromarray(content(150, 200)[..., 0]), {"quality": 90}),
    }
    paths = []
    for name, im in images.items():
        im, kw = im if isinstance(im, tuple) else (im, {})
        im.save(d / name, **kw)
        paths.append(d / name)
    return paths


def image_reference_pixels(images, res: int) -> torch.Tensor:
    """clip's preprocess on decoded images (paths or RGB uint8 arrays). Images are converted to
    RGB first, as Dassl's read_image does (spec section 2); clip's own preprocess resizes before
    converting, which differs only for palette and semi-transparent images."""
    import numpy as np
    from PIL import Image
    tf = cm.clip.clip._transform(res)
    return torch.stack([tf(Image.fromarray(i) if isinstance(i, np.ndarray)
                           else Image.open(i).convert("RGB")) for i in images])


@functools.lru_cache(maxsize=None)
def image_reference(name: str, paths: tuple[Path, ...]):
    mdir, _ = model(name)
    ref_model = cm.reference_model(cm.stored_weights(mdir, "fp32"))
    res = cm.SPECS[name].image_resolution
    return ref_model, cm.reference_features(ref_model, None, image_reference_pixels(paths, res))[1]


def image_tolerance(name: str, paths: tuple[Path, ...], index: int) -> float:
    """PNG and JPEG decoding are both PIL's exactly (JPEGs through libjpeg-turbo with PIL's
    settings), and the port of PIL's bicubic is exact in 8 bits, so only fp32 noise is left."""
    return TOL_FP32


@pytest.fixture(scope="session")
def image_files(tmp_path_factory):
    return tuple(_write_images(tmp_path_factory.mktemp("images")))


@pytest.mark.parametrize("name", ["tiny_vit", "tiny_rn"])
def test_encode_images(bench, image_files, tmp_path, name):
    path, info = artifact(name, "safetensors")
    assert info["weights"] == "fp32"
    out = encode(bench, path, tmp_path / "f.safetensors", images=image_files)
    _, ref = image_reference(name, image_files)
    got = out.get("image_features")
    assert got is not None and tuple(got.shape) == tuple(ref.shape), \
        f"{name}: image_features {None if got is None else list(got.shape)}, ref {list(ref.shape)}"
    problems = []
    for i, p in enumerate(image_files):
        d, tol = (got[i] - ref[i]).abs().max().item(), image_tolerance(name, image_files, i)
        if not d <= tol:
            problems.append(f"{p.name}: max abs diff {d:.3g} > {tol:.3g}")
    assert not problems, f"{name}: " + "; ".join(problems)


@pytest.mark.parametrize("name", ["tiny_vit", "tiny_rn"])
def test_image_tolerance_is_meaningful(image_files, name):
    """Preprocessing mistakes (bilinear instead of bicubic, centre crop one pixel off) fail
    test_encode_images: every resampled PNG and at least one JPEG goes beyond its tolerance."""
    import numpy as np
    from PIL import Image
    res = cm.SPECS[name].image_resolution
    ref_model, ref = image_reference(name, image_files)
    tf = cm.clip.clip._transform(res)
    bilinear = [Image.open(p).convert("RGB").resize(
        _resized_size(Image.open(p).size, res), Image.BILINEAR) for p in image_files]
    shifted = []
    for p in image_files:
        im = Image.open(p).convert("RGB")
        im = im.resize(_resized_size(im.size, res), Image.BICUBIC)
        a = np.asarray(im)
        top, left = round((a.shape[0] - res) / 2), round((a.shape[1] - res) / 2)
        a = np.pad(a, ((0, 1), (0, 1), (0, 0)), mode="edge")
        shifted.append(a[top + 1:top + 1 + res, left + 1:left + 1 + res])
    for label, wrong in (("bilinear", bilinear), ("crop+1", shifted)):
        pix = torch.stack([tf(Image.fromarray(np.asarray(w))) for w in wrong])
        _, f = cm.reference_features(ref_model, None, pix)
        jpeg_ratios = []
        for i, p in enumerate(image_files):
            ratio = (f[i] - ref[i]).abs().max().item() / image_tolerance(name, image_files, i)
            if p.suffix == ".jpg":
                jpeg_ratios.append(ratio)
            elif not (label == "bilinear" and min(Image.open(p).size) == res):  # resampled
                assert ratio > 1, (label, p.name, ratio)
        assert max(jpeg_ratios) > 1.5, (label, jpeg_ratios)


def _resized_size(size, res):
    w, h = size
    return (res, int(res * h / w)) if w <= h else (int(res * w / h), res)
