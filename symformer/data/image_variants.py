"""Transformed MNIST variants: projective, rotated and cyclically shifted digits.

Every variant is generated vectorised in torch from a seed, once, and cached atomically under
``$SYMFORMER_CACHE/images`` (default ``~/.cache/symformer/images``) as uint8 images (values
rounded to integers in [0, 255]) with int64 labels.

Projective MNIST follows the Equivariant Transformer Networks paper (Tai, Bailis & Valiant,
2019): 10,000 training digits drawn without replacement from the MNIST training set (seed 1)
times 8 transformed copies, 5,000 further training digits as a validation set (one copy each),
and the 10,000 MNIST test digits times 8 copies. Each 28 x 28 digit is centred on a 64 x 64
canvas and warped by the homography (normalised canvas coordinates u in [-1, 1]^2, y up)::

    u' = M u / (w . u + 1),     M = R(theta) [[1, shear], [0, 1]] diag(s a, s / a),
    w = 0.8 (p, q) * canvas / 28

with theta ~ U(-pi, pi), shear ~ U(-1.5, 1.5), s = exp(U(0, ln 2)), a = exp(U(-ln 1.5, ln 1.5)),
p ~ U(-1, 1), q ~ U(-1, 1) (1 - |p|); bicubic resampling, values clamped to [0, 255]. Copy j of
digit i is row ``j * n_digits + i`` (copies stacked block by block).

Rotated MNIST rotates each digit by theta ~ U(0, 2 pi) (bilinear, 28 x 28). Shifted MNIST rolls
each digit cyclically by a uniform (rows, cols) shift. Their "train" split is the first 55,000
MNIST training digits, "valid" the last 5,000 (a tenth of the training set when it is smaller),
"test" the MNIST test set.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import torch
from torch import Tensor
from torch.nn import functional as F

from ..checkpoint import atomic_save
from .mnist import load_mnist

__all__ = ["VARIANTS", "projective_params", "projective_matrix", "warp_images",
           "rotate_images", "load_image_dataset", "cache_dir"]

VARIANTS = ("mnist", "fashion_mnist", "projective_mnist", "rotated_mnist", "shifted_mnist")
_SPLITS = ("train", "valid", "test")
_N_VALID_PLAIN = 5000
_CHUNK = 2048


def cache_dir() -> Path:
    """``$SYMFORMER_CACHE/images`` (default ``~/.cache/symformer/images``)."""
    base = os.environ.get("SYMFORMER_CACHE") or os.path.join(os.path.expanduser("~"), ".cache",
                                                             "symformer")
    return Path(base) / "images"


def projective_params(n: int, generator: torch.Generator) -> dict[str, Tensor]:
    """Draw ``n`` random projective poses (float64) as the module docstring says.

    Returns
    -------
    dict
        ``angle`` (n,), ``shear`` (n,), ``scale`` (n, 2) axis scales ``(s a, s / a)``,
        ``perspective`` (n, 2) ``0.8 (p, q)`` in units of the 28-pixel digit.
    """
    def u(lo, hi):
        return lo + (hi - lo) * torch.rand(n, generator=generator, dtype=torch.float64)
    p = u(-1.0, 1.0)
    q = u(-1.0, 1.0) * (1 - p.abs())
    s = torch.exp(u(0.0, math.log(2.0)))
    a = torch.exp(u(-math.log(1.5), math.log(1.5)))
    angle, shear = u(-math.pi, math.pi), u(-1.5, 1.5)
    return {"angle": angle, "shear": shear, "scale": torch.stack([s * a, s / a], -1),
            "perspective": 0.8 * torch.stack([p, q], -1)}


def projective_matrix(params: dict[str, Tensor], canvas: int = 64, digit: int = 28) -> Tensor:
    """Homographies ``(n, 3, 3)`` (float64) in normalised canvas coordinates (y up):
    ``[u'; 1] ~ H [u; 1]`` with ``H = [[M, 0], [w, 1]]`` (see the module docstring)."""
    c, s = torch.cos(params["angle"]), torch.sin(params["angle"])
    n = c.shape[0]
    R = torch.stack([torch.stack([c, -s], -1), torch.stack([s, c], -1)], -2)
    Sh = torch.eye(2, dtype=torch.float64).repeat(n, 1, 1)
    Sh[:, 0, 1] = params["shear"]
    M = R @ Sh @ torch.diag_embed(params["scale"])
    H = torch.zeros(n, 3, 3, dtype=torch.float64)
    H[:, :2, :2] = M
    H[:, 2, :2] = params["perspective"] * (canvas / digit)
    H[:, 2, 2] = 1.0
    return H


def _normalised_grid(size: int, dtype: torch.dtype) -> Tensor:
    """Pixel centres in normalised coordinates (x right, y up), shape (size, size, 2)."""
    t = (torch.arange(size, dtype=dtype) + 0.5) * (2.0 / size) - 1.0
    y, x = torch.meshgrid(-t, t, indexing="ij")
    return torch.stack([x, y], -1)


def warp_images(images: Tensor, H: Tensor, canvas: int, mode: str = "bicubic") -> Tensor:
    """Place ``images`` at the centre of a ``canvas`` square and warp them by homographies.

    Parameters
    ----------
    images : Tensor, shape (N, h, w), values in [0, 255] (any real or uint8 dtype)
    H : Tensor, shape (N, 3, 3)
        Forward maps of normalised canvas coordinates (y up): the pixel at ``u`` moves to
        ``H u``. Output pixels sample the source at ``H^{-1} u'``.

    Returns
    -------
    Tensor, shape (N, canvas, canvas), float32 clamped to [0, 255]
    """
    if images.ndim != 3 or H.shape != (images.shape[0], 3, 3):
        raise ValueError(f"images must be (N, h, w) and H (N, 3, 3); got {tuple(images.shape)} "
                         f"and {tuple(H.shape)}")
    h, w = images.shape[-2:]
    top, left = (canvas - h) // 2, (canvas - w) // 2
    src = F.pad(images.float(), (left, canvas - w - left, top, canvas - h - top))
    u = _normalised_grid(canvas, torch.float64).reshape(-1, 2)
    uh = torch.cat([u, torch.ones(len(u), 1, dtype=torch.float64)], -1)   # (P, 3)
    back = uh @ torch.linalg.inv(H.double()).transpose(-1, -2)            # (N, P, 3)
    xy = back[..., :2] / back[..., 2:]
    grid = torch.stack([xy[..., 0], -xy[..., 1]], -1).reshape(-1, canvas, canvas, 2)
    out = F.grid_sample(src[:, None], grid.float(), mode=mode, padding_mode="zeros",
                        align_corners=False)
    return out[:, 0].clamp(0.0, 255.0)


def rotate_images(images: Tensor, angles: Tensor) -> Tensor:
    """Rotate ``images`` (N, h, w) counter-clockwise by ``angles`` (N,) radians about the
    centre (bilinear, zeros outside); returns float32 (N, h, w) in [0, 255]."""
    c, s = torch.cos(angles.double()), torch.sin(angles.double())
    H = torch.zeros(len(angles), 3, 3, dtype=torch.float64)
    H[:, 0, 0], H[:, 0, 1], H[:, 1, 0], H[:, 1, 1], H[:, 2, 2] = c, -s, s, c, 1.0
    return warp_images(images, H, images.shape[-1], mode="bilinear")


def _chunked(fn, images: Tensor, *args: Tensor) -> Tensor:
    outs = [fn(images[i:i + _CHUNK], *(a[i:i + _CHUNK] for a in args))
            for i in range(0, len(images), _CHUNK)]
    return torch.cat(outs).round().to(torch.uint8)


def _projective(split: str, seed: int, copies: int, n_train: int, n_valid: int, root,
                dataset: str) -> dict[str, tuple[Tensor, Tensor]]:
    g = torch.Generator().manual_seed(seed)
    train_x, train_y = load_mnist("train", dataset=dataset, root=root)
    test_x, test_y = load_mnist("test", dataset=dataset, root=root)
    if n_train + n_valid > len(train_x):
        raise ValueError(f"n_train + n_valid = {n_train + n_valid} exceeds the "
                         f"{len(train_x)} training digits")
    idx = torch.randperm(len(train_x), generator=g)[:n_train + n_valid]
    parts = {"train": (train_x[idx[:n_train]], train_y[idx[:n_train]], copies),
             "valid": (train_x[idx[n_train:]], train_y[idx[n_train:]], 1),
             "test": (test_x, test_y, copies)}
    params = {k: projective_params(copies_ * len(x), g) for k, (x, _, copies_) in parts.items()}
    out = {}
    for k, (x, y, c) in parts.items():
        H = projective_matrix(params[k], 64, x.shape[-1])
        out[k] = (_chunked(lambda a, b: warp_images(a, b, 64), x.repeat(c, 1, 1), H),
                  y.repeat(c))
    return out


def _plain(variant: str, seed: int, root, dataset: str) -> dict[str, tuple[Tensor, Tensor]]:
    g = torch.Generator().manual_seed(seed)
    train_x, train_y = load_mnist("train", dataset=dataset, root=root)
    test_x, test_y = load_mnist("test", dataset=dataset, root=root)
    cut = len(train_x) - min(_N_VALID_PLAIN, len(train_x) // 10)
    parts = {"train": (train_x[:cut], train_y[:cut]), "valid": (train_x[cut:], train_y[cut:]),
             "test": (test_x, test_y)}
    out = {}
    for k, (x, y) in parts.items():
        if variant == "rotated_mnist":
            angles = torch.rand(len(x), generator=g, dtype=torch.float64) * (2 * math.pi)
            x = _chunked(rotate_images, x, angles)
        elif variant == "shifted_mnist":
            H, W = x.shape[-2:]
            rows = torch.randint(0, H, (len(x),), generator=g)
            cols = torch.randint(0, W, (len(x),), generator=g)
            # new[i, j] = old[(i - r) mod H, (j - c) mod W], vectorised with one gather
            i = (torch.arange(H)[None, :, None] - rows[:, None, None]) % H
            j = (torch.arange(W)[None, None, :] - cols[:, None, None]) % W
            x = x[torch.arange(len(x))[:, None, None], i, j]
        out[k] = (x, y)
    return out


def load_image_dataset(name: str, split: str = "train", *, seed: int = 1,
                       root: str | os.PathLike | None = None,
                       cache: str | os.PathLike | None = None, copies: int = 8,
                       n_train: int = 10000, n_valid: int = 5000) -> tuple[Tensor, Tensor]:
    """Images and labels of one split of an MNIST variant, generated once and cached.

    Parameters
    ----------
    name : str
        One of :data:`VARIANTS`; a ``fashion_`` prefix on the transformed variants (e.g.
        ``"fashion_projective_mnist"``) builds them from Fashion-MNIST.
    split : {"train", "valid", "test"}
    seed : int
        Generation seed (projective MNIST: 1 as in the paper).
    root : path, optional
        Folder of the idx files (see :func:`symformer.data.mnist.load_mnist`).
    cache : path, optional
        Cache folder (default :func:`cache_dir`).
    copies, n_train, n_valid : int
        Projective MNIST only: transformed copies per digit, training and validation digits
        (defaults as in the paper).

    Returns
    -------
    images : Tensor, shape (N, H, W), uint8
    labels : Tensor, shape (N,), int64
    """
    base = name.removeprefix("fashion_") if name != "fashion_mnist" else "mnist"
    dataset = "fashion_mnist" if name.startswith("fashion_") else "mnist"
    if base not in VARIANTS or base == "fashion_mnist":
        raise ValueError(f"name must be one of {VARIANTS} (optionally fashion_-prefixed), "
                         f"got {name!r}")
    if split not in _SPLITS:
        raise ValueError(f"split must be one of {_SPLITS}, got {split!r}")
    if base == "mnist":
        return _plain("mnist", seed, root, dataset)[split]
    folder = Path(cache) if cache is not None else cache_dir()
    tag = f"{name}_seed{seed}" + (f"_c{copies}_n{n_train}_v{n_valid}"
                                  if base == "projective_mnist" else "")
    path = folder / f"{tag}_{split}.pt"
    if not path.is_file():
        parts = (_projective(split, seed, copies, n_train, n_valid, root, dataset)
                 if base == "projective_mnist" else _plain(base, seed, root, dataset))
        for k, (x, y) in parts.items():
            atomic_save({"images": x.contiguous(), "labels": y.contiguous()},
                        folder / f"{tag}_{k}.pt")
    try:
        data = torch.load(path, weights_only=True)
    except Exception as e:
        raise ValueError(f"cached dataset {str(path)!r} could not be read ({e}); delete it to "
                         f"regenerate") from e
    return data["images"], data["labels"]
