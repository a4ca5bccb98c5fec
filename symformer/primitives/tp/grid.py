"""Spherical-grid product ("The Price of Freedom"): evaluate on S^2, multiply, project back.

What it computes: with ``f = sum_i x_i Y_i`` and ``g = sum_j y_j Y_j`` ('component' harmonics),

    out_k = (1 / 4 pi) * integral_{S^2} f g Y_k

for every ``k`` up to ``Lout``, channel by channel. This is the *Gaunt* product: the CG
product restricted to the symmetric paths (``l1 + l2 + l3`` even) with the fixed path weights
``gaunt_path_weight(l1, l2, l3)`` (``(1/4 pi) integral Y Y Y = weight * CG``, unit-norm CG).
It has no antisymmetric paths (no cross product: ``1 x 1 -> 1`` is unreachable) and no
learnable per-path weights; :func:`gaunt_spec` is the spec it implements, which the ``cg``
backend computes exactly too.

The quadrature is exact: Gauss-Legendre in ``cos(theta)`` (polar axis y) times uniform
azimuths, ``n_theta = D // 2 + 1`` and ``n_phi = D + 1`` points for the integrand's degree
``D = L1 + L2 + Lout``. Three dense matrix products per call: O(L^4) multiply-adds per
channel, run at matrix-multiply speed.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import Tensor

from symformer._cache import tensor_cache

from ._eager import run_eagerly
from ..clebsch_gordan import clebsch_gordan
from ..spherical_harmonics import spherical_harmonics
from ._uniform import from_u, to_u, uniform_shape_of
from .spec import TensorProductSpec

__all__ = ["sphere_grid", "gaunt_path_weight", "gaunt_paths", "gaunt_spec", "grid_available",
           "grid_product", "grid_tensor_product"]


@tensor_cache
def _grid64(degree: int) -> tuple[Tensor, Tensor]:
    n_t, n_p = degree // 2 + 1, degree + 1
    t, wt = np.polynomial.legendre.leggauss(n_t)
    phi = 2 * np.pi * np.arange(n_p) / n_p
    s = np.sqrt(1 - t * t)
    pts = np.stack([np.outer(s, np.sin(phi)), np.repeat(t[:, None], n_p, 1),
                    np.outer(s, np.cos(phi))], -1).reshape(-1, 3)
    w = np.repeat(wt[:, None] * (2 * np.pi / n_p), n_p, 1).reshape(-1)
    return torch.from_numpy(pts), torch.from_numpy(w)


def sphere_grid(degree: int) -> tuple[Tensor, Tensor]:
    """``(points [G, 3], weights [G])`` integrating polynomials of degree <= ``degree`` on S^2
    exactly (weights sum to 4 pi); float64."""
    if isinstance(degree, bool) or not isinstance(degree, int) or degree < 0:
        raise ValueError(f"degree must be a non-negative int, got {degree!r}")
    return _grid64(degree)


@tensor_cache
def gaunt_path_weight(l1: int, l2: int, l3: int) -> float:
    """``w`` with ``(1/4 pi) integral Y^l1_i Y^l2_j Y^l3_k = w * CG[i, j, k]`` (0 when
    ``l1 + l2 + l3`` is odd)."""
    if (l1 + l2 + l3) % 2:
        return 0.0
    pts, w = sphere_grid(l1 + l2 + l3)
    lmax = max(l1, l2, l3)
    y = spherical_harmonics(lmax, pts)
    b = [y[:, l * l:(l + 1) ** 2] for l in (l1, l2, l3)]
    g = torch.einsum("g,gi,gj,gk->ijk", w / (4 * math.pi), *b)
    return float((g * clebsch_gordan(l1, l2, l3, torch.float64)).sum())


def gaunt_paths(L1: int, L2: int, Lout: int) -> list[tuple[int, int, int]]:
    """Symmetric paths ``(l1, l2, l3)`` (``l1 + l2 + l3`` even, triangle), sorted by
    ``(l1, l2, l3)``."""
    return [(a, b, c) for a in range(L1 + 1) for b in range(L2 + 1) for c in range(Lout + 1)
            if abs(a - b) <= c <= a + b and (a + b + c) % 2 == 0]


def _uniform_irreps(L: int, c: int) -> str:
    return "+".join(f"{c}x{l}{'e' if l % 2 == 0 else 'o'}" for l in range(L + 1))


def gaunt_spec(L1: int, L2: int, Lout: int, channels: int, *,
               channels_y: int | None = None) -> TensorProductSpec:
    """The spec of the Gaunt product on uniform features: ``uuu`` (``channels_y = channels``,
    default) or ``uvu`` with one copy of y (``channels_y = 1``); no weights,
    ``normalization='none'``, path weights :func:`gaunt_path_weight`."""
    c2 = channels if channels_y is None else channels_y
    if c2 not in (1, channels):
        raise ValueError(f"channels_y must be 1 or channels={channels}, got {channels_y!r}")
    ins = [(a, b, c, False, gaunt_path_weight(a, b, c)) for a, b, c in gaunt_paths(L1, L2, Lout)]
    return TensorProductSpec(_uniform_irreps(L1, channels), _uniform_irreps(L2, c2),
                             _uniform_irreps(Lout, channels), ins,
                             mode="uuu" if c2 == channels else "uvu", normalization="none")


def grid_available(spec: TensorProductSpec) -> bool:
    """Whether ``spec`` is a Gaunt spec (see :func:`gaunt_spec`)."""
    u = uniform_shape_of(spec)
    if u is None or spec.normalization != "none" or spec.weight_numel:
        return False
    want = gaunt_paths(u.L1, u.L2, u.Lout)
    have = sorted(spec.paths())
    if have != want:
        return False
    return all(math.isclose(t.path_weight, gaunt_path_weight(*p), rel_tol=1e-9, abs_tol=1e-12)
               for t, p in zip(spec.instructions, spec.paths()))


@run_eagerly  # constant tables: built once, opaque to the compiler
@tensor_cache
def _tables(L1: int, L2: int, Lout: int, dtype: torch.dtype,
            device: torch.device) -> tuple[Tensor, Tensor, Tensor]:
    pts, w = sphere_grid(L1 + L2 + Lout)
    y = spherical_harmonics(max(L1, L2, Lout), pts)                       # [G, K]
    proj = (y[:, :(Lout + 1) ** 2] * (w / (4 * math.pi))[:, None]).T      # [K_out, G]
    return tuple(t.contiguous().to(dtype=dtype, device=device)
                 for t in (y[:, :(L1 + 1) ** 2], y[:, :(L2 + 1) ** 2], proj))


def grid_product(x: Tensor, y: Tensor, lmax_out: int) -> Tensor:
    """Gaunt product of uniform features by quadrature.

    x : (..., (L1+1)^2, C); y : (..., (L2+1)^2, C or 1). Returns (..., (lmax_out+1)^2, C).
    """
    L1, L2 = math.isqrt(x.shape[-2]) - 1, math.isqrt(y.shape[-2]) - 1
    e1, e2, proj = _tables(L1, L2, lmax_out, x.dtype, x.device)
    return torch.matmul(proj, torch.matmul(e1, x) * torch.matmul(e2, y))  # [..., K_out, C]


def grid_tensor_product(x: Tensor, y: Tensor, spec: TensorProductSpec,
                        weights: Tensor | None = None) -> Tensor:
    """The Gaunt spec's product on ``mul_ir`` features: (N, dim1), (N, dim2) -> (N, dim_out)."""
    u = uniform_shape_of(spec)
    return from_u(grid_product(to_u(x, u.L1, u.C), to_u(y, u.L2, u.C2), u.Lout), u.Lout)
