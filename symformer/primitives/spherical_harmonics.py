"""Real spherical harmonics, identical to ``e3nn.o3.spherical_harmonics``.

Convention (see ``docs/conventions.md``): the polar axis is **y**. In the textbook real basis
with polar axis z' and azimuth measured from x', symformer (like e3nn) uses
``x' = z, y' = x, z' = y`` and no Condon-Shortley phase, so that

    Y^1(x, y, z) = sqrt(3) * (x, y, z)        ('component' normalisation, unit vector)

and degree ``l`` occupies entries ``l^2 .. (l+1)^2 - 1`` ordered ``m = -l .. l``.

The evaluation uses the stable upward recursion of the Cartesian associated-Legendre
polynomials ``Q_l^m(z', r^2) = r^(l-m) d^m P_l / dz^m (z'/r)`` together with
``C_m + i S_m = (x' + i y')^m``; every entry is a homogeneous polynomial of degree ``l``.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from symformer._cache import tensor_cache

__all__ = ["spherical_harmonics", "sh_dim", "NORMALIZATIONS"]

NORMALIZATIONS = ("component", "norm", "integral")


def sh_dim(lmax: int) -> int:
    """Number of real spherical-harmonic components up to degree ``lmax``: ``(lmax+1)^2``."""
    return (lmax + 1) ** 2


@tensor_cache
def _tables(lmax: int, normalization: str, dtype: torch.dtype, device: torch.device):
    """Constants of the recursion and of the final gather, cached per (dtype, device).

    Returns ``(q_index, cs_index, const, coeffs)``: ``Y[i] = const[i] * Q[q_index[i]] *
    CS[cs_index[i]]`` where ``Q`` stacks ``Q_l^m`` for ``l = 0..lmax, m = 0..l`` and
    ``CS = (S_lmax, ..., S_1, 1, C_1, ..., C_lmax)``; ``coeffs[l]`` holds the recursion
    factors ``((2l-1)/(l-m), (l+m-1)/(l-m))`` for ``m < l-1`` as (l-1, 1) columns.
    """
    q_index, cs_index, const = [], [], []
    for l in range(lmax + 1):
        scale = {"component": math.sqrt(2 * l + 1), "norm": 1.0,
                 "integral": math.sqrt((2 * l + 1) / (4 * math.pi))}[normalization]
        for m in range(-l, l + 1):
            am = abs(m)
            q_index.append(l * (l + 1) // 2 + am)
            cs_index.append(lmax + m)
            ratio = math.exp(math.lgamma(l - am + 1) - math.lgamma(l + am + 1))
            const.append(scale * math.sqrt(ratio * (2.0 if m != 0 else 1.0)))
    coeffs = []
    for l in range(lmax + 1):
        m = torch.arange(max(l - 1, 0), dtype=torch.float64)
        coeffs.append(tuple(c.to(dtype=dtype, device=device)[:, None]
                            for c in ((2 * l - 1) / (l - m), (l + m - 1) / (l - m))))
    long = dict(dtype=torch.long, device=device)
    return (torch.tensor(q_index, **long), torch.tensor(cs_index, **long),
            torch.tensor(const, dtype=torch.float64).to(dtype=dtype, device=device)[:, None],
            tuple(coeffs))


def _unit(v: Tensor) -> Tensor:
    """``v / |v|``; a zero vector stays zero (value and gradient finite, no 0/0)."""
    r2 = (v * v).sum(-1, keepdim=True)
    return v * torch.where(r2 > 0, r2, torch.ones_like(r2)).rsqrt()


def spherical_harmonics(lmax: int, vectors: Tensor, normalize: bool = True,
                        normalization: str = "component") -> Tensor:
    """Real spherical harmonics of all degrees ``0..lmax``.

    Parameters
    ----------
    lmax : int
        Maximum degree (>= 0).
    vectors : Tensor, shape (..., 3)
        Cartesian vectors ``(x, y, z)``.
    normalize : bool
        Project the vectors onto the unit sphere first. A zero vector stays the zero vector
        (so ``Y^0`` keeps its constant value and every ``l > 0`` entry is 0); values and
        gradients stay finite (the gradient there is that of the unnormalised polynomial).
    normalization : {'component', 'norm', 'integral'}
        On the unit sphere: 'component' gives ``|Y^l|^2 = 2l+1``, 'norm' gives ``|Y^l| = 1``,
        'integral' gives ``int_{S^2} (Y^l_m)^2 = 1`` (same as e3nn).

    Returns
    -------
    Tensor, shape (..., (lmax+1)^2)
        Degree ``l`` at entries ``l^2 .. (l+1)^2 - 1``, order ``m = -l .. l``. Without
        ``normalize`` each entry is a homogeneous polynomial of degree ``l`` (e3nn's values).
    """
    if not isinstance(lmax, int) or lmax < 0:
        raise ValueError(f"lmax must be a non-negative int, got {lmax!r}")
    if normalization not in NORMALIZATIONS:
        raise ValueError(f"normalization must be one of {NORMALIZATIONS}, got {normalization!r}")
    if not isinstance(vectors, Tensor) or vectors.shape[-1:] != (3,):
        raise ValueError(f"vectors must be a tensor of shape (..., 3), got "
                         f"{getattr(vectors, 'shape', type(vectors).__name__)}")
    if not vectors.is_floating_point():
        raise TypeError(f"vectors must be floating point, got {vectors.dtype}")
    v = _unit(vectors) if normalize else vectors
    batch = v.shape[:-1]
    # Components first, (3, N): every recursion step below is a contiguous row operation.
    # Textbook axes: x' = z, y' = x, polar z' = y.
    yp, zp, xp = v.reshape(-1, 3).T.contiguous()
    # Always homogeneous (r^2 kept even on the sphere): a zero vector gives Y^l = 0 for l > 0.
    r2 = xp * xp + yp * yp + zp * zp
    q_index, cs_index, const, coeffs = _tables(lmax, normalization, v.dtype, v.device)

    # Q_l^m, vectorised over m: list of (l+1, N).
    one = torch.ones_like(zp)[None]
    qs = [one]
    for l in range(1, lmax + 1):
        prev = qs[-1]
        top = prev[l - 1:l]                                      # Q_{l-1}^{l-1}
        parts = []
        if l >= 2:
            a, b = coeffs[l]
            parts.append(a * zp * prev[: l - 1] - b * r2 * qs[-2])
        parts.append((2 * l - 1) * zp * top)                     # m = l - 1
        parts.append((2 * l - 1) * top)                          # m = l
        qs.append(torch.cat(parts, dim=0))
    q = torch.cat(qs, dim=0)

    # C_m + i S_m = (x' + i y')^m.
    cs_c, cs_s = [one[0]], [torch.zeros_like(zp)]
    for _ in range(lmax):
        c, s = cs_c[-1], cs_s[-1]
        cs_c.append(xp * c - yp * s)
        cs_s.append(xp * s + yp * c)
    cs = torch.stack(cs_s[:0:-1] + cs_c, dim=0)

    y = const * q.index_select(0, q_index) * cs.index_select(0, cs_index)  # (dim, N)
    return y.T.reshape(*batch, y.shape[0])
