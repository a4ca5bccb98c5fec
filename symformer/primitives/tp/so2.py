"""SO(2)-reduced (eSCN) backend: the channel-wise product of features with edge harmonics.

What it computes: exactly the CG product of the spec with ``y = spherical_harmonics(L2,
edge_vec)`` ('component', unit direction), i.e. the NequIP/MACE edge message. In the frame
where the edge points along +y the harmonics are nonzero only at ``m = 0`` (value
``sqrt(2 l2 + 1)``), so path ``(l1, l2, l3)`` becomes the matrix
``A[m1, m3] = c_ins CG[m1, 0, m3] sqrt(2 l2 + 1)``, which couples only ``|m1| = |m3|``.

Steps, per chunk of edges (chunks keep the intermediates near the cache):
1. rotate x into the edge frame (the frame ``rotation_to_y`` of
   :mod:`symformer.primitives.so2`'s eSCN convolution), degree by degree with
   ``wigner_D_blocks``: ``sum_l (2l+1)^2`` multiply-adds per channel instead of ``(L+1)^4``;
2. per degree pair ``(l1, l3)``, the weights of that pair's paths (different ``l2``) are
   combined into one weight per coupled row pair ``(l1, m) -> (l3, +-m)`` by one small matrix
   product (a dense ``rows x paths`` product over all pairs at once would cost 30x more at
   ``L = 6``: almost every entry is zero);
3. gathered rows times those weights, summed into the output rows; rotate back.
Cost per edge and channel O(L^3).

``y`` is not an independent input here: only its degree-1 block (``sqrt(3) e/|e|``) is read
to recover the edge direction when ``edge_vec`` is not given.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from symformer._cache import tensor_cache

from .._blocking import block_size
from ._eager import run_eagerly
from ..clebsch_gordan import clebsch_gordan
from ..wigner import rotation_to_y, wigner_D_blocks
from ._uniform import from_u, path_weights_uniform, to_u, uniform_shape_of
from .spec import TensorProductSpec

__all__ = ["so2_available", "so2_tensor_product", "so2_edge_message", "edge_wigner_blocks"]

#: Edges per chunk on the CPU (larger on a GPU, see :mod:`symformer.primitives._blocking`): at
#: L = 4 and 32 channels a chunk's largest intermediate is about 20 MB.
EDGE_CHUNK = 2048


def so2_available(spec: TensorProductSpec) -> bool:
    """Channel-wise (``uvu``) spec with ``irreps_in2 = 1x0e+1x1o+...`` (edge harmonics, L2>=1)."""
    u = uniform_shape_of(spec)
    return u is not None and u.C2 == 1 and u.L2 >= 1 and spec.mode == "uvu"


@run_eagerly  # constant tables: built once, opaque to the compiler
@tensor_cache
def _pair_tables(paths: tuple[tuple[int, int, int], ...], coefs: tuple[float, ...],
                 dtype: torch.dtype, device: torch.device):
    """The edge-frame map grouped by degree pair ``(l1, l3)``.

    Returns ``(blocks, perm, row_in [T], row_out [T])``: ``perm`` orders the paths pair by
    pair; ``blocks`` holds per pair ``(k, A [R, k])``, its ``k`` paths and ``R`` coupled row
    pairs, ``A[r, j] = coefs[p_j] sqrt(2 l2 + 1) CG[m1, l2 (m2 = 0), m3]``; the rows of all
    pairs, in order, are ``row_in -> row_out`` (uniform rows ``l^2 + l + m``). Both
    ``m3 = m1`` and ``m3 = -m1`` (antisymmetric paths) are kept where nonzero.
    """
    pairs: dict[tuple[int, int], list[int]] = {}
    for p, (l1, _, l3) in enumerate(paths):
        pairs.setdefault((l1, l3), []).append(p)
    blocks, rin, rout = [], [], []
    for (l1, l3), ps in pairs.items():
        mu = min(l1, l3)
        cg = [clebsch_gordan(l1, paths[p][1], l3, torch.float64)[:, paths[p][1], :]
              * math.sqrt(2 * paths[p][1] + 1) * coefs[p] for p in ps]
        rows = []
        for sign in (1, -1):
            for m in range(-mu, mu + 1):
                if sign == -1 and m == 0:
                    continue
                r = torch.stack([c[l1 + sign * m, l3 + m] for c in cg])
                if r.abs().max() > 1e-14:
                    rows.append(r)
                    rin.append(l1 * l1 + l1 + sign * m)
                    rout.append(l3 * l3 + l3 + m)
        if rows:
            blocks.append((len(ps), torch.stack(rows).to(dtype=dtype, device=device)))
        else:                                  # a pair whose paths all vanish on edges
            blocks.append((len(ps), None))
    idx = dict(dtype=torch.long, device=device)
    perm = [p for ps in pairs.values() for p in ps]
    return (tuple(blocks), torch.tensor(perm, **idx), torch.tensor(rin, **idx),
            torch.tensor(rout, **idx))


@run_eagerly  # run eagerly: tracing the cached Wigner frames costs tens of seconds
def edge_wigner_blocks(edge_vec: Tensor, lmax: int) -> list[Tensor]:
    """``[D^0, ..., D^lmax]`` (each (E, 2l+1, 2l+1)) of the rotations taking each edge to +y."""
    return wigner_D_blocks(lmax, rotation_to_y(edge_vec))


def _rotate(x: Tensor, blocks: list[Tensor], back: bool) -> Tensor:
    """Degree by degree ``D x`` (or ``D^T x`` with ``back``): x (E, (L+1)^2, C).

    ``split`` rather than slices: its backward is one concatenation, where each slice's
    backward would write a full-size zero gradient."""
    parts = x.split([2 * l + 1 for l in range(math.isqrt(x.shape[1]))], 1)
    out = [parts[0]]                                     # D^0 = 1 (proper rotations)
    for l in range(1, len(parts)):
        d = blocks[l].transpose(-1, -2) if back else blocks[l]
        if l == 1:   # batched 3x3 products are slow: three broadcast multiply-adds instead
            (d0, d1, d2), (x0, x1, x2) = (t.unsqueeze(-1) for t in d.unbind(-1)), \
                (t.unsqueeze(1) for t in parts[1].unbind(1))
            out.append(torch.addcmul(torch.addcmul(d0 * x0, d1, x1), d2, x2))
        else:
            out.append(torch.bmm(d, parts[l]))
    return torch.cat(out, 1)


def _edge_frame_map(xe: Tensor, paths, coefs, w: Tensor, lmax_out: int) -> Tensor:
    """xe (E, K_in, C) in the edge frame; w (P, C) or (E, P, C). Returns (E, K_out, C)."""
    n, k_in, c = xe.shape
    blocks, perm, rin, rout = _pair_tables(paths, coefs, xe.dtype, xe.device)
    shared = w.dim() == 2
    wt = w.index_select(0, perm) if shared else \
        w.transpose(0, 1).index_select(0, perm).reshape(w.shape[1], n * c)  # [P, (E) C]
    pieces = wt.split([k for k, _ in blocks])
    we = torch.cat([a @ piece for (_, a), piece in zip(blocks, pieces) if a is not None])
    xt = xe.transpose(0, 1).reshape(k_in, n, c)                           # [K_in, E, C]
    prod = xt.index_select(0, rin) * (we.unsqueeze(1) if shared else we.view(-1, n, c))
    yt = prod.new_zeros((lmax_out + 1) ** 2, n, c).index_add(0, rout, prod)
    return yt.transpose(0, 1)                                             # [E, K_out, C]


def _so2_message(x: Tensor, edge_vec: Tensor, paths, coefs, w: Tensor, lmax_out: int,
                 wigner: list[Tensor] | None) -> Tensor:
    """:func:`so2_edge_message` with per-path constants ``coefs`` folded into the tables."""
    L1 = math.isqrt(x.shape[-2]) - 1
    lmax = max(L1, lmax_out)
    n, size = x.shape[0], block_size(EDGE_CHUNK, x.device)
    chunks = max(1, math.ceil(n / size))
    xs, vs = x.split(size), edge_vec.split(size)
    ws = [w] * chunks if w.dim() == 2 else w.split(size)
    ds = [None] * chunks if wigner is None else \
        list(zip(*[d.split(size) for d in wigner[:lmax + 1]]))
    outs = []
    for xc, vc, wc, dc in zip(xs, vs, ws, ds):
        dc = edge_wigner_blocks(vc, lmax) if dc is None else list(dc)
        ye = _edge_frame_map(_rotate(xc, dc, back=False), paths, coefs, wc, lmax_out)
        outs.append(_rotate(ye, dc, back=True))
    return outs[0] if len(outs) == 1 else torch.cat(outs)


def so2_edge_message(x: Tensor, edge_vec: Tensor, paths: list[tuple[int, int, int]],
                     path_weights: Tensor, lmax_out: int,
                     wigner: list[Tensor] | None = None) -> Tensor:
    """Uniform-layout edge message ``sum_p w_p (x (x) Y(edge))_p`` by SO(2) reduction.

    Parameters
    ----------
    x : Tensor, shape (E, (L1+1)^2, C)
    edge_vec : Tensor, shape (E, 3)
    paths : list of (l1, l2, l3)
    path_weights : Tensor, shape (P, C) or (E, P, C)
        Coefficient of each path and channel (normalisation included).
    lmax_out : int
    wigner : list of Tensor, optional
        ``edge_wigner_blocks(edge_vec, max(L1, lmax_out))``, to reuse across layers.

    Returns
    -------
    Tensor, shape (E, (lmax_out+1)^2, C)
    """
    paths = tuple(map(tuple, paths))
    return _so2_message(x, edge_vec, paths, (1.0,) * len(paths), path_weights, lmax_out, wigner)


def so2_tensor_product(x: Tensor, y: Tensor | None, spec: TensorProductSpec,
                       weights: Tensor | None = None, edge_vec: Tensor | None = None) -> Tensor:
    """The spec's product on ``mul_ir`` features, with ``y`` the edge harmonics.

    x : (E, irreps_in1.dim); y : (E, irreps_in2.dim) or None when ``edge_vec`` (E, 3) is given;
    weights : (weight_numel,) or (E, weight_numel). Returns (E, irreps_out.dim).
    """
    u = uniform_shape_of(spec)
    if edge_vec is None:
        if y is None:
            raise ValueError("so2 backend needs y (edge harmonics) or edge_vec")
        edge_vec = y[..., 1:4]                       # sqrt(3) e/|e|: the direction suffices
    paths = tuple(map(tuple, spec.paths()))
    if weights is not None and all(spec.path_shapes):   # every path weighted: fold c_ins in
        w, coefs = weights.reshape(-1, len(paths), u.C), tuple(spec.coefficients)
    else:
        w, coefs = path_weights_uniform(spec, weights, u.C, x), (1.0,) * len(paths)
    out = _so2_message(to_u(x, u.L1, u.C), edge_vec, paths, coefs,
                       w if w.shape[0] > 1 else w[0], u.Lout, None)
    return from_u(out, u.Lout)
