"""Fused CG kernel for channel-wise products with a single-copy ``y`` (the edge message).

Applies to ``uvu``/``uuu`` specs where every term of ``irreps_in2`` has multiplicity 1 and every
term of ``irreps_in1`` the same multiplicity ``C`` (so ``mul_out = C``). Per term ``a`` of x
(degree l1), over all instructions reading it:

    A[n, s, i] = sum_j y[n, j] T_a[j, s, i]      one GEMM over all of y (no channel factor)
    z[n, s, c] = sum_i A[n, s, i] x_a[n, c, i]   broadcast multiply-adds (d1 <= 3) or one
                                                 batched matmul (x_a: a view of x's term)
    acc[n, out(s), c] += z[n, s, c] w[n, inst(s), c]   one row gather, multiply, in-place
                                                       index_add

with ``s`` running over the output components of those instructions and the normalisation
constants folded into ``T_a``. A few large operations per input degree replace several small
ones per path.
"""

from __future__ import annotations

import torch
from torch import Tensor

from symformer._cache import tensor_cache

from ._eager import run_eagerly
from ..clebsch_gordan import clebsch_gordan
from .spec import TensorProductSpec

__all__ = ["fused_applies", "fused_tensor_product"]


def fused_applies(spec: TensorProductSpec) -> bool:
    muls1 = {m for m, _ in spec.irreps_in1}
    return (spec.mode in ("uvu", "uuu") and len(muls1) == 1 and len(spec.instructions) > 0
            and all(m == 1 for m, _ in spec.irreps_in2))


@run_eagerly  # constant tables: built once, opaque to the compiler
@tensor_cache
def _tables(spec: TensorProductSpec, dtype: torch.dtype, device: torch.device):
    """``(C, D_out, n_weighted, groups, idx_out)`` with ``groups`` one ``(a, T_a [K2, S_a d1],
    weight slot [S_a], output column [S_a])`` per term of x that some instruction reads."""
    s2, so = spec.irreps_in2.slices(), spec.irreps_out.slices()
    k2 = spec.irreps_in2.dim
    out_dims = [ir.dim for _, ir in spec.irreps_out]
    out_start = [sum(out_dims[:o]) for o in range(len(out_dims))]
    d_out = sum(out_dims)
    n_weighted = sum(1 for sh in spec.path_shapes if sh)
    w_index, running = [], 0
    for sh in spec.path_shapes:
        w_index.append(running if sh else n_weighted)
        running += 1 if sh else 0
    conv = dict(dtype=dtype, device=device)
    groups = []
    for a, (_, ir1) in enumerate(spec.irreps_in1):
        ks = [k for k, t in enumerate(spec.instructions) if t.i_in1 == a]
        if not ks:
            continue
        s_a = sum(spec.irreps_out[spec.instructions[k].i_out].ir.dim for k in ks)
        table = torch.zeros(k2, s_a, ir1.dim, dtype=torch.float64)
        slot, outcol, col = [], [], 0
        for k in ks:
            t, (l1, l2, l3) = spec.instructions[k], spec.paths()[k]
            d3 = 2 * l3 + 1
            cg = clebsch_gordan(l1, l2, l3, torch.float64) * spec.coefficients[k]
            table[s2[t.i_in2], col:col + d3, :] = cg.permute(1, 2, 0)
            slot += [w_index[k]] * d3
            outcol += range(out_start[t.i_out], out_start[t.i_out] + d3)
            col += d3
        groups.append((a, table.reshape(k2, -1).to(**conv), torch.tensor(slot, device=device),
                       torch.tensor(outcol, device=device)))
    # Output gather: out[n, start_o + c d_o + m] = acc[n, out_start_o + m, c].
    idx_out = torch.empty(spec.irreps_out.dim, dtype=torch.long)
    for o, (mul, ir) in enumerate(spec.irreps_out):
        for c in range(mul):
            idx_out[so[o].start + c * ir.dim:so[o].start + (c + 1) * ir.dim] = \
                (out_start[o] + torch.arange(ir.dim)) * mul + c
    C = spec.irreps_in1[0].mul
    return C, d_out, n_weighted, tuple(groups), idx_out.to(device)


def fused_tensor_product(x: Tensor, y: Tensor, spec: TensorProductSpec,
                         weights: Tensor | None) -> Tensor:
    """x : (N, dim1); y : (N, dim2); weights : (W,) or (N, W) or None. Returns (N, dim_out)."""
    C, d_out, n_w, groups, idx_out = _tables(spec, x.dtype, x.device)
    n = x.shape[0]
    # Terms of x as views of the mul_ir layout, [N, C, d1] (no gather of the whole input).
    xs = [t.view(n, C, ir.dim) for t, (_, ir) in
          zip(x.split([C * ir.dim for _, ir in spec.irreps_in1], -1), spec.irreps_in1)]
    w = None
    if n_w:
        w = weights.reshape(-1, n_w, C)                                  # [N|1, P_w, C]
        if n_w < len(spec.instructions):
            w = torch.cat([w, w.new_ones(w.shape[0], 1, C)], 1)
    acc = x.new_zeros(n, d_out, C)
    for a, table, slot, outcol in groups:
        d1 = spec.irreps_in1[a].ir.dim
        xa = xs[a]                                                       # [N, C, d1]
        am = (y @ table).view(n, -1, d1)                                 # [N, S_a, d1]
        if d1 == 1:     # batched matmuls with an inner size of 1 or 3 are slow: broadcast
            z = am * xa.view(n, 1, C)                                    # [N, S_a, C]
        else:
            xt = xa.transpose(1, 2).contiguous()                         # [N, d1, C]
            if d1 == 3:     # unbind, not slices: one stack in the backward
                (a0, a1, a2), (x0, x1, x2) = (t.unsqueeze(-1) for t in am.unbind(-1)), \
                    (t.unsqueeze(1) for t in xt.unbind(1))
                z = torch.addcmul(torch.addcmul(a0 * x0, a1, x1), a2, x2)
            else:
                z = torch.bmm(am, xt)                                    # [N, S_a, C]
        if w is not None:
            z = z * w.index_select(1, slot)
        acc.index_add_(1, outcol, z)   # in place: no copy of acc per input term
    return acc.reshape(n, -1).index_select(-1, idx_out)                  # [N, dim_out]
