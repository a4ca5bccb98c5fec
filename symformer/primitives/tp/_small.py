"""Closed forms for channel-wise products of degrees <= 1 (the commonest small-L messages).

When every path has ``l1, l2, l3 <= 1`` the CG tensor of each path is one of five patterns, and
each is a single elementwise operation on e3nn's ``mul_ir`` layout (no layout gathers, no
matrix products with mostly-zero tables):

=========  ==========================  ==============================
path       CG[i, j, k]                 operation on x (mul, d1), y
=========  ==========================  ==============================
0 x 0 -> 0  g                          ``x * y``
0 x 1 -> 1  g delta_jk                 ``x * y`` (scalar times vector)
1 x 0 -> 1  g delta_ik                 ``x * y`` (vector times scalar)
1 x 1 -> 0  g delta_ij                 ``(x * y).sum(-1)`` (dot product)
1 x 1 -> 1  g epsilon_ijk              ``cross(x, y)``
=========  ==========================  ==============================

The constant ``g`` is read from :func:`clebsch_gordan` and the pattern is checked against the
full table when the plan is built, so the closed forms cannot drift from the reference.
Applies to ``uuu`` specs and to ``uvu`` specs whose y terms have one copy (edge messages).
"""

from __future__ import annotations

import torch
from torch import Tensor

from symformer._cache import tensor_cache

from ._eager import run_eagerly
from ..clebsch_gordan import clebsch_gordan
from .spec import TensorProductSpec

__all__ = ["small_applies", "small_tensor_product"]


def small_applies(spec: TensorProductSpec) -> bool:
    if spec.mode not in ("uvu", "uuu") or not spec.instructions:
        return False
    if any(max(p) > 1 for p in spec.paths()):
        return False
    for t in spec.instructions:
        m1, m2 = spec.irreps_in1[t.i_in1].mul, spec.irreps_in2[t.i_in2].mul
        if m2 != (m1 if spec.mode == "uuu" else 1):
            return False
    return True


def _pattern(l1: int, l2: int, l3: int) -> tuple[str, Tensor]:
    """The operation name of a path and the tensor its CG table must equal up to ``g``."""
    eye = torch.eye(3, dtype=torch.float64)
    if (l1, l2, l3) == (0, 0, 0):
        return "mul", torch.ones(1, 1, 1, dtype=torch.float64)
    if (l1, l2, l3) == (0, 1, 1):
        return "mul", eye.unsqueeze(0)
    if (l1, l2, l3) == (1, 0, 1):
        return "mul", eye.unsqueeze(1)
    if (l1, l2, l3) == (1, 1, 0):
        return "dot", eye.unsqueeze(-1)
    eps = torch.zeros(3, 3, 3, dtype=torch.float64)
    for i, j, k in ((0, 1, 2), (1, 2, 0), (2, 0, 1)):
        eps[i, j, k], eps[j, i, k] = 1.0, -1.0
    return "cross", eps


@run_eagerly  # constant plan: built once, opaque to the compiler
@tensor_cache
def _plan(spec: TensorProductSpec) -> tuple[tuple[int, int, int, str, float, int | None], ...]:
    """Per instruction ``(i_in1, i_in2, i_out, op, constant, weight slot or None)``."""
    plan, slot = [], 0
    for k, (t, (l1, l2, l3)) in enumerate(zip(spec.instructions, spec.paths())):
        op, pattern = _pattern(l1, l2, l3)
        cg = clebsch_gordan(l1, l2, l3, torch.float64)
        g = float((cg * pattern).sum() / (pattern * pattern).sum())
        if not torch.allclose(cg, g * pattern, atol=1e-12):
            raise RuntimeError(f"CG table of path {(l1, l2, l3)} does not have the closed form "
                               f"{op!r}")
        plan.append((t.i_in1, t.i_in2, t.i_out, op, g * spec.coefficients[k],
                     slot if spec.path_shapes[k] else None))
        slot += 1 if spec.path_shapes[k] else 0
    return tuple(plan)


def small_tensor_product(x: Tensor, y: Tensor, spec: TensorProductSpec,
                         weights: Tensor | None) -> Tensor:
    """x : (N, dim1); y : (N, dim2); weights : (W,) or (N, W) or None. Returns (N, dim_out).

    ``split`` everywhere instead of slices: one concatenation in the backward, not a full-size
    zero gradient per slice.
    """
    n = x.shape[0]
    xs = [t.view(n, m, ir.dim) for t, (m, ir) in
          zip(x.split([m * ir.dim for m, ir in spec.irreps_in1], -1), spec.irreps_in1)]
    ys = [t.view(n, m, ir.dim) for t, (m, ir) in
          zip(y.split([m * ir.dim for m, ir in spec.irreps_in2], -1), spec.irreps_in2)]
    ws = None
    if weights is not None and spec.weight_numel:
        w2 = weights.reshape(-1, spec.weight_numel)
        ws = w2.split([spec.irreps_in1[t.i_in1].mul for t, s
                       in zip(spec.instructions, spec.path_shapes) if s], -1)
    acc: list[Tensor | None] = [None] * len(spec.irreps_out)
    for a, b, o, op, const, slot in _plan(spec):
        # The constant goes on y (one copy in edge messages: the smallest operand).
        xa, yb = xs[a], (ys[b] if const == 1.0 else ys[b] * const)
        w = None if slot is None else ws[slot].unsqueeze(-1)              # [N|1, mul, 1]
        if op == "mul":   # weight the factor with one component: fewer multiplies
            u, v = (xa, yb) if xa.shape[-1] == 1 else (yb, xa)
            u = u if w is None else u * w
        else:
            if op == "dot":   # three fused multiply-adds: a sum over a last axis of 3 is slow
                (x0, x1, x2), (y0, y1, y2) = xa.unbind(-1), yb.unbind(-1)
                u = torch.addcmul(torch.addcmul(x0 * y0, x1, y1), x2, y2).unsqueeze(-1)
            else:
                u = torch.linalg.cross(xa, yb.expand_as(xa))              # [N, mul, 3]
            v = w
        if v is None:
            acc[o] = u if acc[o] is None else acc[o] + u
        else:             # multiply and accumulate in one pass
            acc[o] = u * v if acc[o] is None else torch.addcmul(acc[o], u, v)
    blocks = [x.new_zeros(n, m * ir.dim) if t is None else t.reshape(n, -1)
              for t, (m, ir) in zip(acc, spec.irreps_out)]
    return torch.cat(blocks, -1)
