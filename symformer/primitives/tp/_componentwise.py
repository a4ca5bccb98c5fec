"""Channel-wise (``uuu``) products computed component-major.

Per input pair ``(a, b)`` the CG contraction is ``z = outer(x_a, y_b) @ T`` with ``T`` of shape
``[d1 d2, sum d3]``. With samples and channels as rows (``[N C, d1 d2] @ [d1 d2, S]``) that is a
matrix product with very few columns, which runs at a fraction of the machine's speed; with
components as rows (``[S, d1 d2] @ [d1 d2, N C]``) it is wide and 2-5x faster. So the terms are
transposed once to ``[d, N C]``, every group works on rows of that layout (the outer product's
backward then sums along contiguous rows too), and each output term is transposed back once.
Single-path pairs of degrees from :data:`LMIN_GRADED` on skip the dense table: the graded kernel of
:mod:`._graded` splits it into four blocks of a quarter of the work (and its backward runs the
same kernel); pairs above :data:`LMAX_COMPONENT_MAJOR` that it does not take keep the
samples-major product (measured faster there) and only their result is transposed. In float64,
pairs of degrees 2..4 with outputs no wider than the inputs run the chunked samples-major kernel
of :mod:`._chunked` instead (see :func:`takes_chunked`).
"""

from __future__ import annotations

import torch
from torch import Tensor

from symformer._cache import tensor_cache

from ._chunked import DenseTable, chunked_product
from ._eager import run_eagerly
from ._graded import GradedTable, grades, graded_product
from ._tables import group_tables
from .spec import TensorProductSpec

__all__ = ["componentwise_applies", "componentwise_tensor_product", "takes_chunked"]

#: Pairs with a degree above this run samples-major: their outer products are large enough for
#: a good matrix product either way, and the component-major backward loops grow with d.
LMAX_COMPONENT_MAJOR = 5

#: Pairs with both degrees from this on and outputs no wider than the inputs run the graded
#: kernel (measured faster than the dense table there, forward and backward, float32 and
#: float64; slower for smaller degrees and for many outputs per pair, see :func:`_takes_graded`).
LMIN_GRADED = 5

#: Smallest degree of a float64 pair that runs the chunked kernel (up to ``LMIN_GRADED - 1``;
#: at degree 2 it is 1.05-1.4x e3nn forward, the component-major kernel 0.8-1.4x).
LMIN_CHUNKED = 2


class _Outer(torch.autograd.Function):
    """``outer[i d2 + j, n] = x1[i, n] x2[j, n]`` for x1 (d1, M), x2 (d2, M).

    The backward sums with fused multiply-adds over rows (d2 of them for x1's gradient, d1 for
    x2's) instead of the reductions across a broadcast axis that autograd would run, which are
    several times slower on this layout. It is written with differentiable operations, so double
    backward works. A forward taking ``ctx`` (no ``setup_context``): ``apply`` skips a
    signature binding (~80 us)."""

    @staticmethod
    def forward(ctx, x1: Tensor, x2: Tensor) -> Tensor:
        ctx.save_for_backward(x1, x2)
        return (x1.unsqueeze(1) * x2.unsqueeze(0)).view(-1, x1.shape[-1])

    @staticmethod
    def backward(ctx, grad: Tensor):
        x1, x2 = ctx.saved_tensors
        g = grad.view(x1.shape[0], x2.shape[0], -1)                  # [d1, d2, M]
        g1 = g2 = None
        if ctx.needs_input_grad[0]:
            g1 = g[:, 0] * x2[0]
            for j in range(1, x2.shape[0]):
                g1 = torch.addcmul(g1, g[:, j], x2[j])
        if ctx.needs_input_grad[1]:
            g2 = g[0] * x1[0]
            for i in range(1, x1.shape[0]):
                g2 = torch.addcmul(g2, g[i], x1[i])
        return g1, g2


def _pair_sizes(spec: TensorProductSpec, a: int, b: int) -> tuple[int, int, int]:
    """Degrees of the input pair ``(a, b)`` and the summed width of the outputs it feeds."""
    d3 = sum(spec.irreps_out[t.i_out].ir.dim for t in spec.instructions
             if (t.i_in1, t.i_in2) == (a, b))
    return spec.irreps_in1[a].ir.l, spec.irreps_in2[b].ir.l, d3


def _takes_graded(spec: TensorProductSpec, a: int, b: int) -> bool:
    """Whether the input pair ``(a, b)`` runs the graded kernel: both degrees from
    :data:`LMIN_GRADED` on and outputs no wider than the inputs (its backward contracts the
    output with each input, which costs no more than the forward only then: single-path
    products, not single-in multi-out ones)."""
    l1, l2, d3 = _pair_sizes(spec, a, b)
    return min(l1, l2) >= LMIN_GRADED and d3 <= 2 * max(l1, l2) + 1


def takes_chunked(spec: TensorProductSpec, a: int, b: int, dtype: torch.dtype) -> bool:
    """Whether the input pair ``(a, b)`` runs the chunked kernel: float64, both degrees in
    ``LMIN_CHUNKED .. LMIN_GRADED - 1`` and outputs no wider than the inputs. In float64 the
    component-major product's unchunked outer product and its row-by-row backward cost more
    than the matrix products (measured slower than e3nn there); in float32 it stays faster."""
    l1, l2, d3 = _pair_sizes(spec, a, b)
    return (dtype == torch.float64 and LMIN_CHUNKED <= min(l1, l2)
            and max(l1, l2) < LMIN_GRADED and d3 <= 2 * max(l1, l2) + 1)


def componentwise_applies(spec: TensorProductSpec) -> bool:
    """``uuu`` specs with at least one pair of degrees <= :data:`LMAX_COMPONENT_MAJOR` or one
    that the graded kernel takes."""
    return spec.mode == "uuu" and any(
        max(l1, l2) <= LMAX_COMPONENT_MAJOR or _takes_graded(spec, t.i_in1, t.i_in2)
        for t, (l1, l2, _) in zip(spec.instructions, spec.paths()))


@run_eagerly  # constant tables: built once, opaque to the compiler
@tensor_cache
def _transposed(spec: TensorProductSpec, dtype: torch.dtype, device: torch.device):
    """``group_tables`` with each table transposed to ``[sum d3, d1 d2]`` (contiguous)."""
    return tuple((a, b, ks, table.t().contiguous())
                 for a, b, ks, table, _ in group_tables(spec, dtype, device))


@run_eagerly  # constant tables: built once, opaque to the compiler
@tensor_cache
def _graded(spec: TensorProductSpec) -> tuple[GradedTable | None, ...]:
    """Per input pair of ``group_tables``: its graded table, or None where the dense one runs."""
    out = []
    for a, b, _, table, _ in group_tables(spec, torch.float64, torch.device("cpu")):
        l1, l2 = spec.irreps_in1[a].ir.l, spec.irreps_in2[b].ir.l
        out.append(GradedTable(table.view(2 * l1 + 1, 2 * l2 + 1, -1), grades(l1), grades(l2))
                   if _takes_graded(spec, a, b) else None)
    return tuple(out)


@run_eagerly  # constant tables: built once, opaque to the compiler
@tensor_cache
def _dense(spec: TensorProductSpec, dtype: torch.dtype) -> tuple[DenseTable | None, ...]:
    """Per input pair of ``group_tables``: its chunked-kernel table, or None."""
    out = []
    for a, b, _, table, _ in group_tables(spec, torch.float64, torch.device("cpu")):
        d1, d2 = spec.irreps_in1[a].ir.dim, spec.irreps_in2[b].ir.dim
        out.append(DenseTable(table.view(d1, d2, -1)) if takes_chunked(spec, a, b, dtype)
                   else None)
    return tuple(out)


def componentwise_tensor_product(x: Tensor, y: Tensor, spec: TensorProductSpec,
                                 weights: list[Tensor | None]) -> Tensor:
    """x : (N, dim1); y : (N, dim2); ``weights``: per instruction (1 or N, mul) or None.

    Returns (N, dim_out).
    """
    n = x.shape[0]

    xn = [t.view(n, m, ir.dim) for t, (m, ir) in            # [N, mul, d] views
          zip(x.split([m * ir.dim for m, ir in spec.irreps_in1], -1), spec.irreps_in1)]
    yn = [t.view(n, m, ir.dim) for t, (m, ir) in
          zip(y.split([m * ir.dim for m, ir in spec.irreps_in2], -1), spec.irreps_in2)]
    xs, ys = {}, {}                                              # [d, N mul], made on demand
    acc: list[Tensor | None] = [None] * len(spec.irreps_out)
    for (a, b, ks, table_t), graded, dense in zip(_transposed(spec, x.dtype, x.device),
                                                  _graded(spec), _dense(spec, x.dtype)):
        (m, ir1), ir2 = spec.irreps_in1[a], spec.irreps_in2[b].ir
        if dense is not None:                                     # [sum d3, N C] (a view)
            z = chunked_product(xn[a].reshape(n * m, ir1.dim), yn[b].reshape(n * m, ir2.dim),
                                dense).t()
        elif graded is None and max(ir1.l, ir2.l) > LMAX_COMPONENT_MAJOR:  # samples-major
            outer = (xn[a].unsqueeze(-1) * yn[b].unsqueeze(-2)).view(n * m, -1)
            z = (outer @ table_t.t()).t()                         # [sum d3, N C] (a view)
        else:
            if a not in xs:
                xs[a] = xn[a].permute(2, 0, 1).reshape(ir1.dim, n * m)
            if b not in ys:
                ys[b] = yn[b].permute(2, 0, 1).reshape(ir2.dim, n * m)
            z = table_t @ _Outer.apply(xs[a], ys[b]) if graded is None else \
                graded_product(xs[a], ys[b], graded)               # [sum d3, N C]
        dims = [spec.irreps_out[spec.instructions[k].i_out].ir.dim for k in ks]
        for k, o in zip(ks, z.split(dims, 0)):
            w = weights[k]
            if w is not None:
                o = o * w.expand(n, w.shape[-1]).reshape(1, -1)
            i = spec.instructions[k].i_out
            acc[i] = o if acc[i] is None else acc[i] + o
    blocks = [x.new_zeros(n, mul * ir.dim) if t is None else
              t.view(ir.dim, n, mul).permute(1, 2, 0).reshape(n, mul * ir.dim)
              for t, (mul, ir) in zip(acc, spec.irreps_out)]
    if len(blocks) == 1:
        return blocks[0]
    return torch.cat(blocks, -1) if blocks else x.new_zeros(n, 0)
