"""Dense Clebsch-Gordan backend: the reference, exact for every spec.

Channel-wise products whose paths all have degrees <= 1 run the closed forms of
:mod:`._small`; other channel-wise products with a single-copy ``y`` (edge messages) run the
fused kernel of :mod:`._fused`, and other ``uuu`` products the component-major kernel of
:mod:`._componentwise`. Otherwise instructions are grouped by their input pair ``(i_in1, i_in2)``;
per group the CG tensors of all its instructions (each times its normalisation constant
``c_ins``) are concatenated into one table ``[d1 d2, sum d3]``, so that a group costs one outer
product and one matrix multiply (``uuu``), whatever its number of output degrees. Other channel
patterns contract the weights first (``uvu``) or use one einsum per instruction (``uvw``).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from symformer._cache import tensor_cache

from ._fused import fused_applies, fused_tensor_product
from ._componentwise import componentwise_applies, componentwise_tensor_product
from ._small import small_applies, small_tensor_product
from ._tables import group_tables
from .spec import TensorProductSpec

__all__ = ["cg_tensor_product_spec", "group_tables", "broadcast_lead", "flatten_lead"]


def broadcast_lead(shapes: list) -> torch.Size:
    """``torch.broadcast_shapes`` with a fast path for the common case of equal shapes (the
    general function costs about 50 us a call, a large share of a small product)."""
    first = shapes[0]
    if all(s == first for s in shapes[1:]):
        return torch.Size(first)
    return torch.broadcast_shapes(*shapes)


def flatten_lead(t: Tensor, batch: torch.Size) -> Tensor:
    """``t`` (..., d) broadcast to ``batch`` and flattened to (prod(batch), d); no copy when it
    already has that shape."""
    if t.shape[:-1] != batch:
        t = t.expand(*batch, t.shape[-1])
    return t.reshape(-1, t.shape[-1])


@tensor_cache
def _kernel(spec: TensorProductSpec) -> str:
    """Which kernel runs ``spec`` (decided once per spec, not on every call)."""
    if small_applies(spec):
        return "small"
    if fused_applies(spec):
        return "fused"
    return "componentwise" if componentwise_applies(spec) else "groups"


def _split_weights(weights: Tensor | None, spec: TensorProductSpec) -> list[Tensor | None]:
    """Weight of each instruction as (1 or N, *path_shape), or None when it has none.

    One ``split`` (its backward is one concatenation, not a full-size gradient per path)."""
    if weights is None:
        return [None] * len(spec.instructions)
    sizes = [math.prod(s) for s in spec.path_shapes if s]
    parts = iter(weights.split(sizes, -1)) if sizes else iter(())
    n = weights.shape[0] if weights.dim() > 1 else 1
    return [next(parts).reshape(n, *s) if s else None for s in spec.path_shapes]


def cg_tensor_product_spec(x: Tensor, y: Tensor, spec: TensorProductSpec,
                           weights: Tensor | None = None) -> Tensor:
    """Exact product of ``spec`` (e3nn semantics).

    Parameters
    ----------
    x : Tensor, shape (..., irreps_in1.dim)
    y : Tensor, shape (..., irreps_in2.dim)
    weights : Tensor, shape (weight_numel,) or (..., weight_numel), optional
        Required when ``spec.weight_numel > 0``.

    Returns
    -------
    Tensor, shape (..., irreps_out.dim)
    """
    lead = [x.shape[:-1], y.shape[:-1]]
    if weights is not None and weights.dim() > 1:
        lead.append(weights.shape[:-1])
    batch = broadcast_lead(lead)
    x, y = flatten_lead(x, batch), flatten_lead(y, batch)
    if weights is not None and weights.dim() > 1:
        weights = flatten_lead(weights, batch)
    n = x.shape[0]
    kernel = _kernel(spec)
    if kernel == "small":
        out = small_tensor_product(x, y, spec, weights)
    elif kernel == "fused":
        out = fused_tensor_product(x, y, spec, weights)
    elif kernel == "componentwise":
        out = componentwise_tensor_product(x, y, spec, _split_weights(weights, spec))
    if kernel != "groups":
        return out.reshape(*batch, spec.irreps_out.dim)
    # split, not slices: the backward is one concatenation instead of a full-size zero gradient
    # per slice
    xs = x.split([mul * ir.dim for mul, ir in spec.irreps_in1], -1)
    ys = y.split([mul * ir.dim for mul, ir in spec.irreps_in2], -1)
    ws = _split_weights(weights, spec)
    acc: list[Tensor | None] = [None] * len(spec.irreps_out)
    for a, b, ks, table, table_y in group_tables(spec, x.dtype, x.device):
        (m1, r1), (m2, r2) = spec.irreps_in1[a], spec.irreps_in2[b]
        x1 = xs[a].reshape(n, m1, r1.dim)                             # [N, u, i]
        x2 = ys[b].reshape(n, m2, r2.dim)                             # [N, v, j]
        if spec.mode == "uuu" or (spec.mode == "uvu" and m2 == 1):
            if m2 == 1:  # contract y with the table first: no channel factor in that step
                a_y = (x2[:, 0] @ table_y).reshape(n, r1.dim, -1)     # [N, i, sum d3]
                z = x1 @ a_y                                          # [N, u, sum d3]
            else:
                z = (x1.unsqueeze(-1) * x2.unsqueeze(-2)).reshape(n, m1, -1) @ table
            parts = z.split([spec.irreps_out[spec.instructions[k].i_out].ir.dim for k in ks], -1)
            outs = []
            for k, o in zip(ks, parts):
                w = ws[k]
                outs.append(o if w is None else o * w.reshape(w.shape[0], m1, 1))
        elif spec.mode == "uvu":
            outs = []
            off = 0
            for k in ks:
                d3 = spec.irreps_out[spec.instructions[k].i_out].ir.dim
                c = table[:, off:off + d3]
                off += d3
                w = ws[k]
                x2w = x2.sum(1, keepdim=True).expand(n, m1, r2.dim) if w is None else \
                    torch.matmul(w, x2)                                   # [N, u, j]
                outs.append((x1.unsqueeze(-1) * x2w.unsqueeze(-2)).reshape(n, m1, -1) @ c)
        else:  # uvw
            outs = []
            off = 0
            t3 = table.reshape(r1.dim, r2.dim, -1)
            for k in ks:
                mo, r3 = spec.irreps_out[spec.instructions[k].i_out]
                c = t3[:, :, off:off + r3.dim]
                off += r3.dim
                w = ws[k]
                if w is None:
                    w = x.new_ones(1, m1, m2, mo)
                eq = "nui,nvj,ijk,uvw->nwk" if w.shape[0] == 1 else "nui,nvj,ijk,nuvw->nwk"
                outs.append(torch.einsum(eq, x1, x2, c, w[0] if w.shape[0] == 1 else w))
        for k, o in zip(ks, outs):
            i = spec.instructions[k].i_out
            acc[i] = o if acc[i] is None else acc[i] + o
    blocks = [x.new_zeros(n, mul * ir.dim) if o is None else o.reshape(n, -1)
              for o, (mul, ir) in zip(acc, spec.irreps_out)]
    out = torch.cat(blocks, -1) if blocks else x.new_zeros(n, 0)
    return out.reshape(*batch, spec.irreps_out.dim)
