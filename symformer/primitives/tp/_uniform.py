"""Recognise specs that the uniform-layout backends (so2, gaunt, grid, cp) can run.

Such a spec is channel-wise (``uuu``, or ``uvu`` with one copy of each degree of y) on
``irreps_in1 = Cx0e+Cx1o+...+CxL1``, ``irreps_in2`` = the same with ``C`` or 1 copies, and
``irreps_out = Cx0e+...+CxLout`` (natural parities, each degree once, in order), so that
``term index = degree``. Features are moved between e3nn's ``mul_ir`` layout and the uniform
layout ``[..., (L+1)^2, C]`` by :mod:`symformer.reps.layout`.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor

from ...reps import Irreps
from ...reps.layout import from_uniform, to_uniform
from .spec import TensorProductSpec

__all__ = ["UniformShape", "uniform_shape_of", "path_weights_uniform", "to_u", "from_u"]


class UniformShape(NamedTuple):
    L1: int
    L2: int
    Lout: int
    C: int
    C2: int  # channels of y: C (uuu) or 1 (uvu broadcast)


def _degrees(irreps: Irreps) -> tuple[int, int] | None:
    """``(L, mul)`` when ``irreps`` is ``mul x 0e + mul x 1o + ...`` in order, else None."""
    if len(irreps) == 0:
        return None
    mul = irreps[0].mul
    for l, (m, ir) in enumerate(irreps):
        if m != mul or ir.l != l or ir.p != (-1) ** l:
            return None
    return len(irreps) - 1, mul


def uniform_shape_of(spec: TensorProductSpec) -> UniformShape | None:
    """The uniform shape of a channel-wise natural-parity spec, or None."""
    a, b, o = _degrees(spec.irreps_in1), _degrees(spec.irreps_in2), _degrees(spec.irreps_out)
    if a is None or b is None or o is None or a[1] != o[1]:
        return None
    if spec.mode == "uuu" and b[1] == a[1]:
        return UniformShape(a[0], b[0], o[0], a[1], a[1])
    if spec.mode == "uvu" and b[1] == 1:
        return UniformShape(a[0], b[0], o[0], a[1], 1)
    return None


def path_weights_uniform(spec: TensorProductSpec, weights: Tensor | None, c: int,
                         like: Tensor) -> Tensor:
    """Per-path, per-channel weights ``(1 or N, P, C)`` (all ones where a path has none),
    each times its normalisation constant ``c_ins``. ``weights``: (W,) or (N, W).

    One reshape (no per-path slices: their backward would write a full-size gradient per path).
    """
    p = len(spec.instructions)
    coef = torch.tensor(spec.coefficients, dtype=like.dtype, device=like.device).view(p, 1)
    n_w = sum(1 for s in spec.path_shapes if s)
    if weights is None or n_w == 0:
        return (coef * like.new_ones(1, p, c))
    w = weights.reshape(-1, n_w, c)                                      # [1|N, P_w, C]
    if n_w < p:
        slot, k = [], 0
        for s in spec.path_shapes:
            slot.append(k if s else n_w)
            k += 1 if s else 0
        w = torch.cat([w, w.new_ones(w.shape[0], 1, c)], 1).index_select(
            1, torch.tensor(slot, device=w.device))
    return w * coef


def to_u(x: Tensor, L: int, c: int) -> Tensor:
    """``mul_ir`` (N, dim) -> uniform (N, (L+1)^2, c)."""
    return to_uniform(x, Irreps([(c, (l, (-1) ** l)) for l in range(L + 1)]))


def from_u(u: Tensor, L: int) -> Tensor:
    """uniform (N, (L+1)^2, c) -> ``mul_ir`` (N, dim)."""
    c = u.shape[-1]
    return from_uniform(u, Irreps([(c, (l, (-1) ** l)) for l in range(L + 1)]))
