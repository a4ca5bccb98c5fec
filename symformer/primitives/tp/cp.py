"""CP-decomposed (low-rank) tensor product, after Tensor Decomposition Networks.

What it computes: an *approximation* of the CG product. Each path's CG tensor
``CG[i, j, k]`` (shape ``d1 x d2 x d3``) is replaced by a rank-``R`` CP decomposition
``sum_r a_r[i] b_r[j] c_r[k]`` (alternating least squares in float64, cached). ``rank=None``
(default) uses the exact rank bound ``min(d1 d2, d1 d3, d2 d3)`` with the trivial slice
decomposition (exact, still three dense steps); a smaller ``rank`` trades accuracy for
speed. The product becomes three dense steps for all paths at once: ``u = A^T x``,
``v = B^T y``, ``out = C^T (u * v * w)`` with the spec's per-path, per-channel weights ``w``
applied to the rank factors of their path (the factor matrices are shared by all channels and
samples).

Error: with ``E = sum_p ||CG_p - CP_p||_F^2`` the product error is at most
``sqrt(E) * |x| |y|`` times the largest path coefficient, and since the exact product is
equivariant, the equivariance error ``|T~(Dx, Dy) - D T~(x, y)|`` is at most twice that
bound (orthogonal ``D`` preserve norms). :func:`cp_residuals` reports each path's relative
residual; the measured errors are in ``benchmarks/results/tensor_product.md``.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from symformer._cache import tensor_cache

from ._eager import run_eagerly
from ..clebsch_gordan import clebsch_gordan
from ._uniform import from_u, path_weights_uniform, to_u, uniform_shape_of
from .spec import TensorProductSpec

__all__ = ["cp_available", "cp_decompose", "cp_residuals", "cp_tensor_product"]


def cp_available(spec: TensorProductSpec) -> bool:
    """Channel-wise spec on uniform layouts (see :mod:`._uniform`)."""
    return uniform_shape_of(spec) is not None


@tensor_cache
def cp_decompose(l1: int, l2: int, l3: int, rank: int) -> tuple[np.ndarray, ...]:
    """``(a [d1, R], b [d2, R], c [d3, R], relative residual)`` of ``clebsch_gordan(l1, l2,
    l3)`` (float64)."""
    t = clebsch_gordan(l1, l2, l3, torch.float64).numpy()
    d1, d2, d3 = t.shape
    exact = min(d1 * d2, d1 * d3, d2 * d3)
    if rank >= exact:  # slices along the largest axis: exact
        if d1 * d2 == exact:
            a = np.repeat(np.eye(d1), d2, 1)
            b = np.tile(np.eye(d2), (1, d1))
            c = t.reshape(d1 * d2, d3).T
        elif d1 * d3 == exact:
            a = np.repeat(np.eye(d1), d3, 1)
            c = np.tile(np.eye(d3), (1, d1))
            b = t.transpose(1, 0, 2).reshape(d2, d1 * d3)
        else:
            b = np.repeat(np.eye(d2), d3, 1)
            c = np.tile(np.eye(d3), (1, d2))
            a = t.reshape(d1, d2 * d3)
        return a, b, c, 0.0
    best = None
    ridge = 1e-10 * np.eye(rank)

    def solve(m: np.ndarray, g: np.ndarray) -> np.ndarray:
        return np.linalg.solve(g + ridge, m.T).T

    t1, t2, t3 = t.reshape(d1, -1), t.transpose(1, 0, 2).reshape(d2, -1), \
        t.transpose(2, 0, 1).reshape(d3, -1)
    for seed in range(2):
        rng = np.random.default_rng(seed)
        a, b, c = (rng.standard_normal((d, rank)) for d in (d1, d2, d3))
        for _ in range(150):  # ALS with Khatri-Rao products: mode-n unfolding times (x) of others
            a = solve(t1 @ (b[:, None, :] * c[None, :, :]).reshape(-1, rank), (b.T @ b) * (c.T @ c))
            b = solve(t2 @ (a[:, None, :] * c[None, :, :]).reshape(-1, rank), (a.T @ a) * (c.T @ c))
            c = solve(t3 @ (a[:, None, :] * b[None, :, :]).reshape(-1, rank), (a.T @ a) * (b.T @ b))
        res = float(np.linalg.norm(np.einsum("ir,jr,kr->ijk", a, b, c) - t))  # |t| = 1
        if best is None or res < best[3]:
            best = (a, b, c, res)
    return best


def _rank_of(l1: int, l2: int, l3: int, rank: int | None) -> int:
    d1, d2, d3 = 2 * l1 + 1, 2 * l2 + 1, 2 * l3 + 1
    exact = min(d1 * d2, d1 * d3, d2 * d3)
    return exact if rank is None else min(rank, exact)


def cp_residuals(paths, rank: int | None = None) -> list[float]:
    """Relative Frobenius residual of each path's CP decomposition."""
    return [cp_decompose(*p, _rank_of(*p, rank))[3] for p in paths]


@run_eagerly  # constant tables: built once, opaque to the compiler
@tensor_cache
def _factors(paths: tuple, L1: int, L2: int, Lout: int, rank: int | None, dtype, device):
    cols_a, cols_b, cols_c, owner = [], [], [], []
    for p, (l1, l2, l3) in enumerate(paths):
        a, b, c, _ = cp_decompose(l1, l2, l3, _rank_of(l1, l2, l3, rank))
        r = a.shape[1]
        for mat, cols, l, L in ((a, cols_a, l1, L1), (b, cols_b, l2, L2), (c, cols_c, l3, Lout)):
            full = np.zeros(((L + 1) ** 2, r))
            full[l * l:(l + 1) ** 2] = mat
            cols.append(full)
        owner += [p] * r
    conv = [torch.from_numpy(np.concatenate(c, 1)).to(dtype=dtype, device=device)
            for c in (cols_a, cols_b, cols_c)]
    return conv[0].T.contiguous(), conv[1].T.contiguous(), conv[2].contiguous(), \
        torch.tensor(owner, dtype=torch.long, device=device)


def cp_tensor_product(x: Tensor, y: Tensor, spec: TensorProductSpec,
                      weights: Tensor | None = None, rank: int | None = None) -> Tensor:
    """Approximate product of ``spec`` on ``mul_ir`` features.

    x : (N, dim1); y : (N, dim2); weights : (W,) or (N, W); rank : per-path CP rank.
    Returns (N, dim_out).
    """
    if rank is not None and (isinstance(rank, bool) or not isinstance(rank, int) or rank < 1):
        raise ValueError(f"rank must be a positive int or None, got {rank!r}")
    u = uniform_shape_of(spec)
    at, bt, c, owner = _factors(tuple(spec.paths()), u.L1, u.L2, u.Lout, rank, x.dtype, x.device)
    w = path_weights_uniform(spec, weights, u.C, x).index_select(-2, owner)  # [1|N, R, C]
    xu, yu = to_u(x, u.L1, u.C), to_u(y, u.L2, u.C2)
    t = torch.matmul(at, xu) * torch.matmul(bt, yu) * w                  # [N, R, C]
    return from_u(torch.matmul(c, t), u.Lout)                           # [N, K_out, C]
