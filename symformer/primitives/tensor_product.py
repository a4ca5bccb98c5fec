"""Basic dense Clebsch-Gordan tensor product on the uniform layout ``[..., (L+1)^2, C]``.

A *path* ``(l1, l2, l3)`` couples degree ``l1`` of ``x`` with degree ``l2`` of ``y`` into degree
``l3``, channel by channel:

    out_p[..., k, c] = sqrt(2 l3 + 1) * sum_ij CG[i, j, k] x[..., l1: i, c] y[..., l2: j, c]

with ``CG = clebsch_gordan(l1, l2, l3)`` (unit norm). The ``sqrt(2 l3 + 1)`` factor keeps
'component'-normalised inputs 'component'-normalised (e3nn's ``irrep_normalization=
'component'``). With natural-parity inputs (degree ``l`` has parity ``(-1)^l``), paths with
``l1 + l2 + l3`` even have natural-parity outputs; the others give pseudo-tensors and are left
out when ``parity=True``. This is the simple reference product; faster backends come elsewhere.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from symformer._cache import tensor_cache

from .clebsch_gordan import clebsch_gordan

__all__ = ["sh_path_list", "cg_tensor_product_paths", "cg_tensor_product"]

Path = tuple[int, int, int]


def sh_path_list(L1: int, L2: int, Lout: int, parity: bool = True) -> list[Path]:
    """All paths ``(l1, l2, l3)`` with ``l1 <= L1``, ``l2 <= L2``, ``l3 <= Lout`` and
    ``|l1-l2| <= l3 <= l1+l2``; with ``parity`` also ``l1 + l2 + l3`` even (O(3) on
    natural-parity features). Sorted by ``(l3, l1, l2)``."""
    for name, v in (("L1", L1), ("L2", L2), ("Lout", Lout)):
        if isinstance(v, bool) or not isinstance(v, int) or v < 0:
            raise ValueError(f"{name} must be a non-negative int, got {v!r}")
    return [(l1, l2, l3) for l3 in range(Lout + 1) for l1 in range(L1 + 1)
            for l2 in range(L2 + 1)
            if abs(l1 - l2) <= l3 <= l1 + l2 and (not parity or (l1 + l2 + l3) % 2 == 0)]


def _lmax_of(x: Tensor, name: str) -> int:
    if x.dim() < 2:
        raise ValueError(f"{name} must have shape (..., (L+1)^2, C), got {tuple(x.shape)}")
    L = math.isqrt(x.shape[-2]) - 1
    if (L + 1) ** 2 != x.shape[-2]:
        raise ValueError(f"{name}.shape[-2] must be a square (L+1)^2, got {x.shape[-2]}")
    return L


def _check_paths(paths: list[Path], L1: int, L2: int, Lout: int | None) -> None:
    for p in paths:
        if len(p) != 3:
            raise ValueError(f"paths must hold (l1, l2, l3) triples, got {p!r}")
        l1, l2, l3 = p
        if l1 > L1 or l2 > L2 or (Lout is not None and l3 > Lout):
            raise ValueError(f"path {p} needs degrees beyond x (L={L1}), y (L={L2}) or "
                             f"lout ({Lout})")
        if not abs(l1 - l2) <= l3 <= l1 + l2:
            raise ValueError(f"path {p} violates |l1-l2| <= l3 <= l1+l2")


@tensor_cache
def _pair_table(l1: int, l2: int, l3s: tuple[int, ...], dtype: torch.dtype,
                device: torch.device) -> tuple[Tensor, Tensor]:
    """``(T, Ty)``: ``T [d1 d2, S]`` (``S = sum d3``, each CG times ``sqrt(2 l3 + 1)``) and the
    same entries ordered ``Ty [d2, d1 S]`` for contracting ``y`` first."""
    t = torch.cat([clebsch_gordan(l1, l2, l3, torch.float64) * math.sqrt(2 * l3 + 1)
                   for l3 in l3s], -1)                                   # [d1, d2, S]
    ty = t.permute(1, 0, 2).reshape(2 * l2 + 1, -1)
    return (t.reshape(-1, t.shape[-1]).to(dtype=dtype, device=device),
            ty.to(dtype=dtype, device=device))


def cg_tensor_product_paths(x: Tensor, y: Tensor, paths: list[Path]) -> list[Tensor]:
    """Per-path outputs (see the module docstring).

    Parameters
    ----------
    x : Tensor, shape (..., (L1+1)^2, C)
    y : Tensor, shape (..., (L2+1)^2, C) or (..., (L2+1)^2, 1)
        Broadcast against ``x`` over the leading and channel axes.
    paths : list of (l1, l2, l3)

    Returns
    -------
    list of Tensor, shapes (..., 2 l3 + 1, C)
    """
    L1, L2 = _lmax_of(x, "x"), _lmax_of(y, "y")
    paths = [tuple(p) for p in paths]
    _check_paths(paths, L1, L2, None)
    batch = torch.broadcast_shapes(x.shape[:-2], y.shape[:-2])
    channels = torch.broadcast_shapes(x.shape[-1:], y.shape[-1:])
    x = x.expand(*batch, x.shape[-2], *channels)
    y_single = y.shape[-1] == 1 and channels[0] != 1
    y = y.expand(*batch, y.shape[-2], *(y.shape[-1:] if y_single else channels))
    groups: dict[tuple[int, int], list[int]] = {}
    for k, (l1, l2, _) in enumerate(paths):
        groups.setdefault((l1, l2), []).append(k)
    out: list[Tensor | None] = [None] * len(paths)
    for (l1, l2), ks in groups.items():
        l3s = tuple(paths[k][2] for k in ks)
        table, table_y = _pair_table(l1, l2, l3s, x.dtype, x.device)
        xa = x[..., l1 * l1:(l1 + 1) ** 2, :]                          # [..., d1, C]
        yb = y[..., l2 * l2:(l2 + 1) ** 2, :]                          # [..., d2, C or 1]
        if y_single:
            a = (yb[..., 0] @ table_y).unflatten(-1, (2 * l1 + 1, -1))  # [..., d1, S]
            z = a.transpose(-1, -2) @ xa                               # [..., S, C]
        else:
            outer = (xa.unsqueeze(-2) * yb.unsqueeze(-3)).flatten(-3, -2)  # [..., d1 d2, C]
            z = torch.matmul(table.T, outer)                           # [..., S, C]
        for k, part in zip(ks, z.split([2 * l3 + 1 for l3 in l3s], dim=-2)):
            out[k] = part
    return out


def cg_tensor_product(x: Tensor, y: Tensor, lout: int, paths: list[Path] | None = None,
                      weights: Tensor | None = None) -> Tensor:
    """Weighted sum of CG paths into the uniform layout.

    Parameters
    ----------
    x : Tensor, shape (..., (L1+1)^2, C)
    y : Tensor, shape (..., (L2+1)^2, C) or (..., (L2+1)^2, 1)
    lout : int
        Maximum output degree.
    paths : list of (l1, l2, l3), optional
        Defaults to ``sh_path_list(L1, L2, lout, parity=True)``.
    weights : Tensor, optional
        Shape (P,), (P, C) or (..., P, C) (per-sample, e.g. from a radial network), with
        ``P = len(paths)``; path ``p`` is scaled by ``weights[..., p, :]``. Default: all ones.

    Returns
    -------
    Tensor, shape (..., (lout+1)^2, C)
        Sum of the per-path outputs into their ``l3`` rows; degrees that no path reaches are 0.
    """
    if isinstance(lout, bool) or not isinstance(lout, int) or lout < 0:
        raise ValueError(f"lout must be a non-negative int, got {lout!r}")
    L1, L2 = _lmax_of(x, "x"), _lmax_of(y, "y")
    paths = sh_path_list(L1, L2, lout) if paths is None else [tuple(p) for p in paths]
    _check_paths(paths, L1, L2, lout)
    if weights is not None:
        if weights.dim() == 1:
            weights = weights[:, None]
        if weights.shape[-2] != len(paths):
            raise ValueError(f"weights must have {len(paths)} paths on axis -2 (or be (P,)), "
                             f"got shape {tuple(weights.shape)}")
    outs = cg_tensor_product_paths(x, y, paths)
    blocks: list[Tensor | None] = [None] * (lout + 1)
    for p, ((_, _, l3), o) in enumerate(zip(paths, outs)):
        if weights is not None:
            o = o * weights[..., p:p + 1, :]
        blocks[l3] = o if blocks[l3] is None else blocks[l3] + o
    ref = outs[0] if outs else x[..., :1, :]
    shape = torch.broadcast_shapes(ref.shape[:-2], *(() if weights is None else
                                                     (weights.shape[:-2],)))
    channels = ref.shape[-1] if weights is None else max(ref.shape[-1], weights.shape[-1])
    full = []
    for l3, b in enumerate(blocks):
        if b is None:
            b = x.new_zeros(*shape, 2 * l3 + 1, channels)
        full.append(b.expand(*shape, 2 * l3 + 1, channels))
    return torch.cat(full, dim=-2)
