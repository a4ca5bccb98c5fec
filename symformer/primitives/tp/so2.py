"""SO(2)-reduced (eSCN) backend: the channel-wise product of features with edge harmonics.

What it computes: exactly the CG product of the spec with ``y = spherical_harmonics(L2,
edge_vec)`` ('component', unit direction), i.e. the NequIP/MACE edge message. In the frame
where the edge points along +y the harmonics are nonzero only at ``m = 0`` (value
``sqrt(2 l2 + 1)``), so path ``(l1, l2, l3)`` becomes the matrix
``A[m1, m3] = c_ins CG[m1, 0, m3] sqrt(2 l2 + 1)``, which couples only ``|m1| = |m3|``.
Steps: rotate x into the edge frame (the frame ``rotation_to_y`` of
:mod:`symformer.primitives.so2`'s eSCN convolution, applied degree by degree with
``wigner_D_blocks``: ``sum_l (2l+1)^2`` instead of ``(L+1)^4`` multiply-adds per channel); per
edge and channel, one sparse
``(l1, m) -> (l3, m)`` map whose ``T`` nonzero entries (row pairs) each sum the few paths
(different ``l2``) that couple them, ``sum_p A_p[m1, m3] w[p, c]``; gathered rows times entries,
summed into the output rows; rotate back with the transposed blocks.
Cost per edge and channel O(L^3) for the map plus the two rotations.

``y`` is not an independent input here: only its degree-1 block (``sqrt(3) e/|e|``) is read
to recover the edge direction when ``edge_vec`` is not given.
"""

from __future__ import annotations

import functools
import math

import torch
from torch import Tensor

from ._eager import run_eagerly
from ..clebsch_gordan import clebsch_gordan
from ..wigner import rotation_to_y, wigner_D_blocks
from ._uniform import from_u, path_weights_uniform, to_u, uniform_shape_of
from .spec import TensorProductSpec

__all__ = ["so2_available", "so2_tensor_product", "so2_edge_message", "edge_wigner_blocks"]


def so2_available(spec: TensorProductSpec) -> bool:
    """Channel-wise (``uvu``) spec with ``irreps_in2 = 1x0e+1x1o+...`` (edge harmonics, L2>=1)."""
    u = uniform_shape_of(spec)
    return u is not None and u.C2 == 1 and u.L2 >= 1 and spec.mode == "uvu"


@run_eagerly  # constant tables: built once, opaque to the compiler
@functools.lru_cache(maxsize=None)
def _entries(paths: tuple[tuple[int, int, int], ...], L1: int, Lout: int, dtype: torch.dtype,
             device: torch.device) -> tuple[Tensor, Tensor, Tensor]:
    """The edge-frame map as ``T`` entries ``(row_in [T], row_out [T], G [T, P])`` (uniform
    rows): entry ``t`` is ``sum_p G[t, p] w[p]``, summing the few paths (different ``l2``) that
    couple the same two rows. ``G`` is stored dense: one matrix product beat per-path gathers,
    scatter-adds and a block-diagonal einsum in the benchmark."""
    entries: dict[tuple[int, int], list[tuple[int, float]]] = {}
    for p, (l1, l2, l3) in enumerate(paths):
        a = clebsch_gordan(l1, l2, l3, torch.float64)[:, l2, :] * math.sqrt(2 * l2 + 1)
        for m1 in range(-min(l1, l3), min(l1, l3) + 1):
            for m3 in (m1, -m1) if m1 else (0,):
                v = float(a[l1 + m1, l3 + m3])
                if abs(v) > 1e-14:
                    key = (l1 * l1 + l1 + m1, l3 * l3 + l3 + m3)
                    entries.setdefault(key, []).append((p, v))
    keys = list(entries)
    g = torch.zeros(len(keys), len(paths), dtype=torch.float64)
    for t, key in enumerate(keys):
        for p, v in entries[key]:
            g[t, p] += v
    idx = dict(dtype=torch.long, device=device)
    return (torch.tensor([k[0] for k in keys], **idx), torch.tensor([k[1] for k in keys], **idx),
            g.to(dtype=dtype, device=device))


@run_eagerly  # run eagerly: tracing the cached Wigner frames costs tens of seconds
def edge_wigner_blocks(edge_vec: Tensor, lmax: int) -> list[Tensor]:
    """``[D^0, ..., D^lmax]`` (each (E, 2l+1, 2l+1)) of the rotations taking each edge to +y."""
    return wigner_D_blocks(lmax, rotation_to_y(edge_vec))


def _rotate(x: Tensor, blocks: list[Tensor], back: bool) -> Tensor:
    """Degree by degree ``D x`` (or ``D^T x`` with ``back``): x (E, (L+1)^2, C)."""
    parts = [x[:, :1]]                                   # D^0 = 1 (proper rotations)
    for l in range(1, math.isqrt(x.shape[1])):
        d = blocks[l].transpose(-1, -2) if back else blocks[l]
        parts.append(torch.bmm(d, x[:, l * l:(l + 1) ** 2]))
    return torch.cat(parts, 1)


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
    L1 = math.isqrt(x.shape[-2]) - 1
    if wigner is None:
        wigner = edge_wigner_blocks(edge_vec, max(L1, lmax_out))
    rin, rout, g = _entries(tuple(map(tuple, paths)), L1, lmax_out, x.dtype, x.device)
    xe = _rotate(x, wigner, back=False)                                   # [E, K_in, C]
    we = torch.matmul(g, path_weights)                                    # [(E,) T, C]
    prod = xe.index_select(-2, rin) * we                                  # [E, T, C]
    ye = prod.new_zeros(prod.shape[0], (lmax_out + 1) ** 2, prod.shape[-1]).index_add(-2, rout,
                                                                                      prod)
    return _rotate(ye, wigner, back=True)                                 # [E, K_out, C]


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
    w = path_weights_uniform(spec, weights, u.C, x)                       # [1 or E, P, C]
    xu = to_u(x, u.L1, u.C)
    out = so2_edge_message(xu, edge_vec, spec.paths(), w if w.shape[0] > 1 else w[0], u.Lout)
    return from_u(out, u.Lout)
