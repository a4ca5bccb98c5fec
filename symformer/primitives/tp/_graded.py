"""Graded kernel for channel-wise CG contractions: four dense blocks instead of one sparse table.

The real CG tensor of degrees ``(l1, l2, l3)`` is invariant under the rotation by pi about the
polar (y) axis, which multiplies component ``m`` by ``(-1)^m``, and, up to a sign per degree,
under a mirror through a plane containing that axis, which flips the sign of the ``m < 0``
components. Give each component the grade ``g(m) = 2 [m < 0] + (|m| mod 2)`` in ``Z2 x Z2``;
then ``CG[i, j, k] != 0`` only if ``g(i) xor g(j)`` is the same for every pair feeding output
``k`` (its *class*). Sorting the outer product ``x_i y_j`` by class makes the ``[d1 d2, d3]``
table block-diagonal with four blocks, a quarter of the dense work:

    R[s, (p, u, v), n] = x[G_p[u], n] y[G_{p xor s}[v], n]     one broadcast multiply
    z[s, r, n] = sum_e T_s[r, e] R[s, e, n]                     one batched matrix product

with ``G_p`` the components of grade ``p`` (padded to a common size by reading row 0 against
zero table entries, or its surplus rows moved to a short gathered list of leftover pairs when
that is cheaper). Columns ``n`` (samples x channels, component-major layout) are processed in
chunks so that ``R`` stays in the cache; the leftover pairs run once over all columns. The
backward of a bilinear map is the same map with the table's axes permuted
(``grad_x = T^(k,j->i)(g, y)``, ``grad_y = T^(i,k->j)(x, g)``) and the grading survives the
permutation, so the backward runs this kernel too and double backward comes for free.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor

from symformer._cache import tensor_cache

from .._blocking import block_size
from ._bilinear import PermutedBilinear
from ._eager import run_eagerly

__all__ = ["grades", "GradedTable", "graded_product"]

#: Bytes of the outer-product chunk ``R`` (0.5-1 MiB measured best of 0.25 MiB to unchunked on
#: a 2-core CPU with 512 KiB L2 per core and 8 MiB L3).
CHUNK_BYTES = 1 << 19

#: Cost of a leftover pair relative to a core one (two row gathers and an unchunked product).
LEFTOVER_COST = 3


def grades(l: int) -> list[int]:
    """Grade of each real-harmonic component ``m = -l..l`` of degree ``l`` (0..3)."""
    return [2 * int(m < 0) + abs(m) % 2 for m in range(-l, l + 1)]


class _Plan(NamedTuple):
    n1: int                 # core rows per grade of the first input
    n2: int                 # core rows per grade of the second input
    ia: Tensor              # [4 n1] rows of the first input (padding: row 0, zero table)
    ib: Tensor              # [16 n2] rows of the second input, class-major then grade
    la: Tensor              # [4 E] leftover pairs: rows of the first input
    lb: Tensor              # [4 E] leftover pairs: rows of the second input
    core: Tensor            # [4, n_out, 4 n1 n2] table of the core pairs of each class
    left: Tensor            # [4, n_out, E] table of the leftover pairs
    inv: Tensor             # [d3] row of the class-major result (4 n_out: the zero row)
    zero_row: bool          # whether ``inv`` reads the appended zero row


def _groups(g: list[int], n: int, pad: int) -> tuple[list[list[int]], list[int]]:
    """Per grade its first ``n`` rows (padded with ``pad``) and the rows left over."""
    core, rest = [], []
    for p in range(4):
        rows = [i for i, x in enumerate(g) if x == p]
        core.append((rows + [pad] * n)[:n])
        rest += rows[n:]
    return core, rest


def _build(t: Tensor, g1: list[int], g2: list[int], dtype, device) -> _Plan:
    """Plan of ``out[k] = sum_ij t[i, j, k] a[i] b[j]``; ``t`` float64 obeys the grading."""
    d1, d2, d3 = t.shape
    sizes1 = [g1.count(p) for p in range(4)]
    sizes2 = [g2.count(p) for p in range(4)]
    best = None
    for n1 in sorted({min(sizes1), max(sizes1)}):
        for n2 in sorted({min(sizes2), max(sizes2)}):
            c1, r1 = _groups(g1, n1, d1)
            c2, r2 = _groups(g2, n2, d2)
            left = [[(i, j) for i in range(d1) for j in range(d2) if g1[i] ^ g2[j] == s
                     and (i in r1 or j in r2)] for s in range(4)]
            e = max(len(x) for x in left)
            cost = 16 * n1 * n2 + 4 * LEFTOVER_COST * e
            if best is None or cost < best[0]:
                best = (cost, n1, n2, c1, c2, left, e)
    _, n1, n2, c1, c2, left, e = best
    cls = [{g1[i] ^ g2[j] for i, j in zip(*torch.nonzero(t[:, :, k], as_tuple=True))} for k in
           range(d3)]
    outs = [[k for k in range(d3) if cls[k] == {s}] for s in range(4)]
    n_out = max(len(o) for o in outs)
    ext = torch.zeros(d1 + 1, d2 + 1, d3 + 1, dtype=torch.float64)
    ext[:d1, :d2, :d3] = t
    table = torch.zeros(4, n_out, 4 * n1 * n2 + e, dtype=torch.float64)
    for s in range(4):
        pairs = [(i, j) for p in range(4) for i in c1[p] for j in c2[p ^ s]]
        pairs += left[s] + [(d1, d2)] * (e - len(left[s]))
        ii, jj = torch.tensor(pairs).unbind(1)
        ko = torch.tensor((outs[s] + [d3] * n_out)[:n_out])
        table[s] = ext[ii, jj][:, ko].t()
    # Padding rows read row 0 (their table entries are zero); outputs no pair feeds read a
    # padding row of the result (zero) or, when there is none, an appended zero row.
    spare = [s * n_out + r for s in range(4) for r in range(len(outs[s]), n_out)]
    inv = torch.full((d3,), spare[0] if spare else 4 * n_out, dtype=torch.long)
    for s in range(4):
        for r, k in enumerate(outs[s]):
            inv[k] = s * n_out + r
    pad = [(d1, d2)] * e
    la = [i for s in range(4) for i, _ in (left[s] + pad)[:e]]
    lb = [j for s in range(4) for _, j in (left[s] + pad)[:e]]
    ib = [j for s in range(4) for p in range(4) for j in c2[p ^ s]]

    def rows(idx, d):
        return torch.tensor([0 if i == d else i for i in idx], dtype=torch.long, device=device)
    table = table.to(dtype=dtype, device=device)
    core = 4 * n1 * n2
    return _Plan(n1, n2, rows(sum(c1, []), d1), rows(ib, d2), rows(la, d1), rows(lb, d2),
                 table[..., :core].contiguous(), table[..., core:].contiguous(), inv.to(device),
                 bool((inv == 4 * n_out).any()))


class GradedTable:
    """A CG table ``[d1, d2, d3]`` (float64) with the grades of its three axes; builds and
    caches the plan of each axis permutation (forward and backward) per dtype and device.

    Raises ValueError if an entry above ``1e-12`` of the table's largest breaks the grading.
    """

    def __init__(self, table: Tensor, g1: list[int], g2: list[int]):
        t = torch.where(table.abs() > 1e-12 * table.abs().max(), table, 0.0)
        g3 = []
        for k in range(t.shape[2]):
            cls = {g1[i] ^ g2[j] for i, j in zip(*torch.nonzero(t[:, :, k], as_tuple=True))}
            if len(cls) > 1:
                raise ValueError("table does not obey the Z2 x Z2 grading of real harmonics")
            g3.append(cls.pop() if cls else 0)
        self.table, self.grades = t, (list(g1), list(g2), g3)

    @run_eagerly  # constant plans: built once, opaque to the compiler
    @tensor_cache
    def plan(self, perm: tuple[int, int, int], dtype: torch.dtype, device: torch.device) -> _Plan:
        return _build(self.table.permute(*perm).contiguous(), self.grades[perm[0]],
                      self.grades[perm[1]], dtype, device)

    def contract(self, a: Tensor, b: Tensor, perm: tuple[int, int, int]) -> Tensor:
        """``T.permute(*perm)`` contracted with a (d1, ...) and b (d2, ...): (d3, M)."""
        return _contract(self.plan(perm, a.dtype, a.device), a, b)


def _contract(p: _Plan, a: Tensor, b: Tensor) -> Tensor:
    """a : (d1, ...); b : (d2, ...) with the same trailing shape (M elements; contiguous is
    fastest: the row gathers then copy whole rows). Returns (d3, M)."""
    m = a[0].numel()
    xa = a.index_select(0, p.ia).view(1, 4, p.n1, 1, m)
    xb = b.index_select(0, p.ib).view(4, 4, 1, p.n2, m)
    core, e = p.core.shape[2], p.left.shape[2]
    step = max(256, block_size(CHUNK_BYTES, a.device) // (4 * core * a.element_size())
               // 256 * 256)
    z = torch.cat([torch.bmm(p.core, (u * v).view(4, core, -1))     # [4, n_out, w]
                   for u, v in zip(xa.split(step, -1), xb.split(step, -1))], -1)
    if e:   # few leftover pairs: one product over all columns
        ya = a.index_select(0, p.la).view(4, e, m)
        z = torch.baddbmm(z, p.left, ya * b.index_select(0, p.lb).view(4, e, m))
    z = z.view(-1, m)
    if p.zero_row:
        z = torch.cat([z, z.new_zeros(1, m)])
    return z.index_select(0, p.inv)


def graded_product(a: Tensor, b: Tensor, table: GradedTable) -> Tensor:
    """``out[k, n] = sum_ij T[i, j, k] a[i, n] b[j, n]``.

    Parameters
    ----------
    a : Tensor, shape (d1, ...)
    b : Tensor, shape (d2, ...)
        Same trailing shape as ``a`` (M elements).
    table : GradedTable

    Returns
    -------
    Tensor, shape (d3, M)
    """
    # Row gathers of contiguous rows are memory copies; from a transposed view they are strided
    # reads that cost several times the transpose (the Function saves the copies for backward).
    return PermutedBilinear.apply(a.contiguous(), b.contiguous(), table, (0, 1, 2))
