"""Canonical coordinates of planar transformation groups, and image sampling on them.

After "Equivariant Transformer Networks" (Tai, Bailis & Valiant, 2019): for a one-parameter
group of image transformations ``T_t`` there are coordinates ``(u, v)`` in which ``T_t`` is a
translation ``u -> u + t`` (``v`` is invariant). Sampling an image on a regular ``(u, v)`` grid
turns the transformation into a shift, which a translation-equivariant CNN can estimate.

Points live in normalised image coordinates (x to the right, y up, the image spanning
[-1, 1]^2 with pixel centres at ``(2 i + 1) / n - 1``, as ``grid_sample(align_corners=False)``).

=================  ==========================  ==================================  =========
kind               T_t (homography on x, y)    canonical (u, v) -> (x, y)          u domain
=================  ==========================  ==================================  =========
``rotation``       rotation by t               polar: (r cos u, r sin u), v = r    periodic
``scale``          dilation by e^t             log-polar: (e^u cos v, e^u sin v)   interval
``shear``          x -> x + t y                (u v, v)                            interval
``hyperbolic``     (e^t x, e^-t y)             (v e^u, v e^-u)                     interval
``perspective``    (x, y) / (1 + t x)          (1 / u, v / u)                      interval
=================  ==========================  ==================================  =========

Shear, hyperbolic and perspective coordinates cover only part of the plane (the parts where
the coordinates are defined); samples outside the image read zeros.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor
from torch.nn import functional as F

__all__ = ["KINDS", "PERIODIC", "to_cartesian", "canonical_grid", "transform_matrix",
           "apply_homography", "sample_image", "warp_sample", "pixel_grid"]

KINDS = ("rotation", "scale", "shear", "hyperbolic", "perspective")
PERIODIC = {"rotation": True, "scale": False, "shear": False, "hyperbolic": False,
            "perspective": False}
# (u range, v range) of the default grids; u ranges are centred so that E[u] = 0 is "no change".
_RANGES = {
    "rotation": ((-math.pi, math.pi), (0.0, 1.0)),
    "scale": ((-2.5, 0.25), (-math.pi, math.pi)),
    "shear": ((-2.0, 2.0), (-1.0, 1.0)),
    "hyperbolic": ((-1.0, 1.0), (-1.0, 1.0)),
    "perspective": ((1.0, 4.0), (-2.0, 2.0)),
}


def _check_kind(kind: str) -> None:
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")


def _axis(lo: float, hi: float, n: int, periodic: bool, device) -> Tensor:
    """n float64 points on [lo, hi]; periodic axes leave out hi (= lo on the circle), so that a
    shift by n / 4 points is a quarter turn."""
    if n == 1:
        return torch.full((1,), (lo + hi) / 2, dtype=torch.float64, device=device)
    step = (hi - lo) / n if periodic else (hi - lo) / (n - 1)
    return lo + step * torch.arange(n, dtype=torch.float64, device=device)


def canonical_grid(kind: str, size: tuple[int, int], *, dtype: torch.dtype = torch.float32,
                   device: torch.device | str | None = None) -> tuple[Tensor, Tensor]:
    """Cartesian points of a regular ``(u, v)`` grid.

    Parameters
    ----------
    kind : str
        One of :data:`KINDS`.
    size : (int, int)
        Grid points along u and v.

    Returns
    -------
    points : Tensor, shape (U, V, 2)
        (x, y) of grid point (i, j).
    u : Tensor, shape (U,)
        The u value of each row.
    """
    _check_kind(kind)
    U, V = size
    (u0, u1), (v0, v1) = _RANGES[kind]
    u = _axis(u0, u1, U, PERIODIC[kind], device)
    if kind == "rotation":
        # radii at the centres of V equal rings (r = 0 would repeat one pixel U times)
        v = (torch.arange(V, dtype=torch.float64, device=device) + 0.5) * (v1 / V)
    else:
        v = _axis(v0, v1, V, False, device)
    uu, vv = torch.meshgrid(u, v, indexing="ij")
    return to_cartesian(kind, uu, vv).to(dtype), u.to(dtype)


def to_cartesian(kind: str, u: Tensor, v: Tensor) -> Tensor:
    """(x, y) of canonical coordinates ``u``, ``v`` (same shape), shape ``(*u.shape, 2)``."""
    _check_kind(kind)
    if kind == "rotation":
        x, y = v * torch.cos(u), v * torch.sin(u)
    elif kind == "scale":
        x, y = torch.exp(u) * torch.cos(v), torch.exp(u) * torch.sin(v)
    elif kind == "shear":
        x, y = u * v, v
    elif kind == "hyperbolic":
        x, y = v * torch.exp(u), v * torch.exp(-u)
    else:
        x, y = 1.0 / u, v / u
    return torch.stack([x, y], -1)


def transform_matrix(kind: str, t: Tensor) -> Tensor:
    """Homographies ``T_t`` (B, 3, 3) for parameters ``t`` (B,) (same dtype and device)."""
    _check_kind(kind)
    o, z = torch.ones_like(t), torch.zeros_like(t)
    if kind == "rotation":
        c, s = torch.cos(t), torch.sin(t)
        rows = [[c, -s, z], [s, c, z], [z, z, o]]
    elif kind == "scale":
        e = torch.exp(t)
        rows = [[e, z, z], [z, e, z], [z, z, o]]
    elif kind == "shear":
        rows = [[o, t, z], [z, o, z], [z, z, o]]
    elif kind == "hyperbolic":
        rows = [[torch.exp(t), z, z], [z, torch.exp(-t), z], [z, z, o]]
    else:
        rows = [[o, z, z], [z, o, z], [t, z, o]]
    return torch.stack([torch.stack(r, -1) for r in rows], -2)


def apply_homography(H: Tensor, points: Tensor) -> Tensor:
    """Map points ``(..., 2)`` (batch axis first, matching ``H`` (B, 3, 3)) by homographies:
    ``(x, y) -> (H [x, y, 1])_{xy} / (H [x, y, 1])_z``."""
    B = H.shape[0]
    p = points.reshape(B, -1, 2)
    ph = torch.cat([p, torch.ones_like(p[..., :1])], -1) @ H.transpose(-1, -2)
    return (ph[..., :2] / ph[..., 2:]).reshape(points.shape)


def pixel_grid(size: int, *, dtype: torch.dtype = torch.float32,
               device: torch.device | str | None = None) -> Tensor:
    """Pixel centres of a ``size x size`` image as (x, y) points, shape (size, size, 2)."""
    t = ((torch.arange(size, dtype=torch.float64) + 0.5) * (2.0 / size) - 1.0).to(device)
    y, x = torch.meshgrid(-t, t, indexing="ij")
    return torch.stack([x, y], -1).to(dtype)


def sample_image(image: Tensor, points: Tensor, mode: str = "bilinear") -> Tensor:
    """Read ``image`` at points (zeros outside).

    Parameters
    ----------
    image : Tensor, shape (B, C, H, W)
    points : Tensor, shape (B, P, Q, 2)
        (x, y) in normalised coordinates (y up).

    Returns
    -------
    Tensor, shape (B, C, P, Q)
    """
    grid = torch.stack([points[..., 0], -points[..., 1]], -1).to(image.dtype)
    return F.grid_sample(image, grid, mode=mode, padding_mode="zeros", align_corners=False)


def warp_sample(image: Tensor, H: Tensor, points: Tensor, mode: str = "bilinear") -> Tensor:
    """Read each image at its homography of shared points: the same values as
    ``sample_image(image, apply_homography(H, points.expand(B, ...)))``, computed with one
    matrix product and no per-image copies of ``points`` (the ET layers' hot path).

    Parameters
    ----------
    image : Tensor, shape (B, C, H, W)
    H : Tensor, shape (B, 3, 3)
        Homographies (the geometry is computed in ``H.dtype``; use float64 for exactness).
    points : Tensor, shape (P, Q, 2)
        (x, y) in normalised coordinates (y up), shared by the batch.

    Returns
    -------
    Tensor, shape (B, C, P, Q)
    """
    B = H.shape[0]
    P, Q = points.shape[:2]
    # (B, 3, 2) @ (2, PQ) is a single (3B, 2) @ (2, PQ) product; the image y axis points down
    ph = H[:, :, :2] @ points.reshape(-1, 2).to(H.dtype).T + H[:, :, 2:]     # (B, 3, PQ)
    grid = torch.stack([ph[:, 0] / ph[:, 2], ph[:, 1].neg() / ph[:, 2]], -1)  # (B, PQ, 2)
    grid = grid.to(image.dtype).reshape(B, P, Q, 2)
    return F.grid_sample(image, grid, mode=mode, padding_mode="zeros", align_corners=False)
