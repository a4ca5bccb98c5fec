"""SO(2)-reduced edge convolution (eSCN, Passaro & Zitnick 2023) on the uniform layout.

A CG tensor product of node features with the spherical harmonics of an edge direction is, in
a frame where the edge points along +y (the polar axis of symformer's harmonics), a linear map
that only couples orders of equal ``|m|``: the edge harmonics are nonzero only at ``m = 0``.
So the convolution is done as

1. rotate features into the edge frame, ``x' = D(R_e) x`` with ``R_e = rotation_to_y(e)``
   (:func:`symformer.primitives.edge_align_rotation`), O(L^3) per edge and channel;
2. for each ``0 <= m <= mmax`` a linear map mixing (degree, channel) (:func:`so2_linear`);
3. rotate back, ``y = D(R_e)^T y'``.

Index bookkeeping (real harmonics, polar axis y)
-----------------------------------------------
Degree ``l`` occupies rows ``l^2 .. (l+1)^2 - 1`` with orders ``m = -l .. l``, so order ``m``
of degree ``l`` is row ``l^2 + l + m`` (``m = 0`` at the centre of the block). For ``m >= 0``,
``Y_l^m ∝ P_l^m(y) Re (z + i x)^m`` and ``Y_l^{-m} ∝ P_l^m(y) Im (z + i x)^m``. A rotation by
``t`` about +y multiplies ``z + i x`` by a phase, so the pair ``(row +m, row -m)`` of every
degree turns like the complex number ``x_{+m} + i x_{-m}`` by ``e^{i m t}``; the mirrors
containing y conjugate it (``x_{-m} -> -x_{-m}``, for every degree: natural-parity features
transform like the harmonics themselves). The linear maps commuting with rotations about y are
therefore complex multiplications, per ``m > 0``::

    out_{+m} = x_{+m} W1 - x_{-m} W2
    out_{-m} = x_{+m} W2 + x_{-m} W1          i.e.  [[W1, -W2], [W2, W1]]

with ``W1, W2`` mixing the flattened ``(l, c)`` of degrees ``l = m .. L`` (index
``(l - m) * C + c``), and one real map ``W0`` on the ``m = 0`` rows of ``l = 0 .. L``. Those
that also commute with the mirrors have ``W2 = 0``: these are exactly the CG paths with
``l1 + l2 + l3`` even, the O(3)-equivariant ones on natural-parity features; ``W2`` carries
the parity-odd paths (e.g. the cross product). Pass ``None`` for ``W2`` to stay E(3)-equivariant.

"m-major" order lists the ``(l, |m|)`` coefficients as ``m = 0: l = 0..L``, then for each
``m = 1..mmax``: ``l = m..L`` (shared by ``+m`` and ``-m``); per-edge radial modulations use it.
"""

from __future__ import annotations

import math
from typing import Sequence

import torch
from torch import Tensor

from symformer._cache import tensor_cache

from .clebsch_gordan import clebsch_gordan
from .spherical_harmonics import spherical_harmonics
from .wigner import edge_align_rotation

__all__ = ["so2_rows", "m_major_rows", "so2_num_coefficients", "rotate_to_edge", "rotate_from_edge",
           "so2_linear", "so2_convolution", "cg_to_so2_weights"]

Weights = Sequence["Tensor | tuple[Tensor, Tensor | None]"]


def _check_degree(name: str, v: int) -> None:
    if isinstance(v, bool) or not isinstance(v, int) or v < 0:
        raise ValueError(f"{name} must be a non-negative int, got {v!r}")


@tensor_cache
def so2_rows(lmax: int, mmax: int) -> tuple[tuple[tuple[int, ...], tuple[int, ...]], ...]:
    """Uniform-layout rows of each order: entry ``m`` is ``(rows of +m, rows of -m)`` for
    degrees ``l = m .. lmax`` (for ``m = 0`` both are the ``m = 0`` rows ``l^2 + l``)."""
    _check_degree("lmax", lmax)
    _check_degree("mmax", mmax)
    if mmax > lmax:
        raise ValueError(f"mmax must be <= lmax, got mmax={mmax}, lmax={lmax}")
    return tuple((tuple(l * l + l + m for l in range(m, lmax + 1)),
                  tuple(l * l + l - m for l in range(m, lmax + 1))) for m in range(mmax + 1))


def so2_num_coefficients(lmax: int, mmax: int) -> int:
    """Number of ``(l, |m|)`` pairs with ``|m| <= min(l, mmax)``: the m-major length."""
    return sum(lmax - m + 1 for m in range(mmax + 1))


@tensor_cache
def m_major_rows(lmax: int, mmax: int) -> tuple[int, ...]:
    """Uniform rows in m-major order ``[m=0 | +1 | -1 | +2 | -2 | ...]``, degrees ascending
    within each part; rows with ``|m| > mmax`` are left out."""
    out: list[int] = []
    for m, (plus, minus) in enumerate(so2_rows(lmax, mmax)):
        out += plus if m == 0 else plus + minus
    return tuple(out)


@tensor_cache
def _gather_back(lmax: int, mmax: int) -> tuple[int, ...]:
    """For each uniform row its m-major position, or that of an appended zero row."""
    pos = {r: k for k, r in enumerate(m_major_rows(lmax, mmax))}
    return tuple(pos.get(r, len(pos)) for r in range((lmax + 1) ** 2))


@tensor_cache
def _radial_rows(lmax: int, mmax: int) -> tuple[int, ...]:
    """Index of the (l, |m|) coefficient of each m-major row (shared by +m and -m)."""
    out, start = [], 0
    for m in range(mmax + 1):
        n = lmax - m + 1
        out += list(range(start, start + n)) * (1 if m == 0 else 2)
        start += n
    return tuple(out)


def _apply(x: Tensor, w: Tensor) -> Tensor:
    """x [..., n] times w [n, k] (shared) or [..., n, k] (per sample) -> [..., k]."""
    if w.dim() == 2:
        return x @ w
    return torch.matmul(x.unsqueeze(-2), w).squeeze(-2)


def _matmul_rows(x: Tensor, w: Tensor) -> Tensor:
    """x [..., r, n] times w [n, k] (shared) or [..., n, k] (per sample) -> [..., r, k].

    Shared weights: one matrix product over all rows. ``torch.matmul`` on a strided x (a split
    of the features) would otherwise broadcast w to every sample and run a batched product."""
    if w.dim() == 2:
        return (x.reshape(-1, x.shape[-1]) @ w).view(*x.shape[:-1], w.shape[-1])
    return torch.matmul(x, w)


@tensor_cache(maxsize=256)
def _index(rows: tuple[int, ...], device: torch.device) -> Tensor:
    """``rows`` as an index tensor on ``device``, made once: on a GPU each new one is a copy
    from the host that waits for the device. Callers only read it."""
    return torch.tensor(rows, dtype=torch.long, device=device)


def rotate_to_edge(x: Tensor, wigner: Tensor, mmax: int | None = None) -> Tensor:
    """``D x``: features x [E, (L+1)^2, C] into the edge frames.

    ``wigner`` is the block-diagonal [E, K, K] of :func:`edge_align_rotation` with
    ``K >= (L+1)^2`` (its leading ``(L+1)^2`` block is that of degree ``L``). With ``mmax``
    the result is in m-major order, [E, so2_rows_count, C] (the rows of ``D`` are permuted,
    not the features: no extra gather).
    """
    k = x.shape[-2]
    d = wigner[..., :k, :k]
    if mmax is not None:
        d = d.index_select(-2, _index(m_major_rows(math.isqrt(k) - 1, mmax), x.device))
    return d @ x


def rotate_from_edge(y: Tensor, wigner: Tensor, lmax: int | None = None,
                     mmax: int | None = None) -> Tensor:
    """``D^T y``: edge-frame features back to the global frame.

    ``y`` is [E, (L+1)^2, C] in the uniform layout, or in m-major order (from
    :func:`so2_linear` with ``m_major=True``) when ``lmax = L`` and ``mmax`` are given;
    returns [E, (L+1)^2, C].
    """
    if lmax is None or mmax is None:
        k = y.shape[-2]
        return wigner[..., :k, :k].transpose(-1, -2) @ y
    k = (lmax + 1) ** 2
    d = wigner[..., :k, :k].index_select(-2, _index(m_major_rows(lmax, mmax), y.device))
    return d.transpose(-1, -2) @ y


def so2_linear(x: Tensor, weights: Weights, lmax_out: int, radial: Tensor | None = None,
               m_major: bool = False) -> Tensor:
    """The SO(2) linear map of the module docstring, in the edge frame.

    Parameters
    ----------
    x : Tensor, shape (..., (L+1)^2, C_in)
        Features in the edge frame; with ``m_major`` shape (..., len(m_major_rows(L, mmax)),
        C_in) in m-major order instead.
    weights : sequence, one entry per ``m = 0 .. mmax``
        ``weights[0]``: W0 of shape ((L+1) C_in, (L_out+1) C_out), or with leading batch axes
        (..., ., .) for per-edge weights. ``weights[m]``, ``m >= 1``: ``(W1, W2)`` of shape
        ((L-m+1) C_in, (L_out-m+1) C_out) (same leading axes allowed); ``W2`` may be None
        (O(3)-equivariant).
    lmax_out : int
        Output degree L_out; ``mmax <= min(L, L_out)``.
    radial : Tensor, shape (..., so2_num_coefficients(L, mmax), C_in), optional
        Per-edge scale of each (l, |m|, channel) of the input, in m-major order.
    m_major : bool
        Input and output in m-major order (no gathers: use with the m-major rotations).

    Returns
    -------
    Tensor, shape (..., (L_out+1)^2, C_out) with zero rows for ``|m| > mmax``; with
    ``m_major`` shape (..., len(m_major_rows(L_out, mmax)), C_out).
    """
    mmax = len(weights) - 1
    if x.dim() < 2:
        raise ValueError(f"x must have shape (..., rows, C), got {tuple(x.shape)}")
    if m_major:
        L = next((l for l in range(mmax, x.shape[-2] + 1)
                  if len(m_major_rows(l, mmax)) == x.shape[-2]), None) if mmax >= 0 else None
        if L is None:
            raise ValueError(f"x has {x.shape[-2]} rows: not an m-major layout for mmax={mmax}")
    else:
        L = math.isqrt(x.shape[-2]) - 1
        if (L + 1) ** 2 != x.shape[-2]:
            raise ValueError(f"x must have shape (..., (L+1)^2, C), got {tuple(x.shape)}")
    if mmax < 0 or mmax > min(L, lmax_out):
        raise ValueError(f"weights must have 1 .. min(L, lmax_out) + 1 = {min(L, lmax_out) + 1} "
                         f"entries (one per m), got {len(weights)}")
    w0 = weights[0]
    c_in = x.shape[-1]
    if w0.shape[-2] != (L + 1) * c_in or w0.shape[-1] % (lmax_out + 1):
        raise ValueError(f"weights[0] must have shape ({(L + 1) * c_in}, (lmax_out+1) * C_out), "
                         f"got {tuple(w0.shape)}")
    c_out = w0.shape[-1] // (lmax_out + 1)
    if not m_major:
        x = x.index_select(-2, _index(m_major_rows(L, mmax), x.device))
    if radial is not None:
        if radial.shape[-2:] != (so2_num_coefficients(L, mmax), c_in):
            raise ValueError(f"radial must have shape (..., {so2_num_coefficients(L, mmax)}, "
                             f"{c_in}), got {tuple(radial.shape)}")
        x = x * radial.index_select(-2, _index(_radial_rows(L, mmax), x.device))
    sizes = [L + 1] + [2 * (L - m + 1) for m in range(1, mmax + 1)]
    parts = []
    for m, xm in enumerate(x.split(sizes, dim=-2)):
        if m == 0:
            parts.append(_apply(xm.flatten(-2), w0))                # [..., (L_out+1) C_out]
            continue
        x2 = xm.unflatten(-2, (2, -1)).flatten(-2)                  # [..., 2 (+m, -m), n C_in]
        w1, w2 = weights[m]
        if w2 is None:
            parts.append(_matmul_rows(x2, w1).flatten(-2))          # [..., 2 n_out C_out]
            continue
        # [xp | xn] @ [W1 | W2]: out_+ = xp W1 - xn W2, out_- = xp W2 + xn W1.
        y = _matmul_rows(x2, torch.cat([w1, w2], dim=-1))
        (p1, p2), (n1, n2) = (t.chunk(2, dim=-1) for t in y.unbind(-2))
        parts += [p1 - n2, p2 + n1]
    out = torch.cat(parts, dim=-1).unflatten(-1, (-1, c_out))       # [..., m-major, C_out]
    if m_major:
        return out
    out = torch.cat([out, out.new_zeros(*out.shape[:-2], 1, c_out)], dim=-2)
    return out.index_select(-2, _index(_gather_back(lmax_out, mmax), x.device))


def so2_convolution(x: Tensor, edge_vec: Tensor, weights: Weights, lmax_out: int,
                    radial: Tensor | None = None, wigner: Tensor | None = None) -> Tensor:
    """Rotate into the edge frame, :func:`so2_linear`, rotate back.

    Parameters
    ----------
    x : Tensor, shape (E, (L+1)^2, C_in)
        Per-edge input features (e.g. gathered source features).
    edge_vec : Tensor, shape (E, 3)
    weights, lmax_out, radial : see :func:`so2_linear`.
    wigner : Tensor, shape (E, K, K), optional
        ``edge_align_rotation(edge_vec, lmax)`` with ``K >= (max(L, L_out)+1)^2``, to reuse.

    Returns
    -------
    Tensor, shape (E, (L_out+1)^2, C_out)
    """
    L = math.isqrt(x.shape[-2]) - 1
    if wigner is None:
        wigner = edge_align_rotation(edge_vec, max(L, lmax_out))
    mmax = len(weights) - 1
    y = so2_linear(rotate_to_edge(x, wigner, mmax), weights, lmax_out, radial, m_major=True)
    return rotate_from_edge(y, wigner, lmax_out, mmax)


def cg_to_so2_weights(paths: Sequence[tuple[int, int, int]], path_weights: Tensor,
                      lmax_in: int, lmax_out: int) -> list:
    """SO(2) weights reproducing a channel-wise CG product with the edge harmonics.

    ``so2_convolution(x, e, cg_to_so2_weights(paths, w, L, L_out), L_out)`` equals
    ``cg_tensor_product(x, spherical_harmonics(L_sh, e)[..., None], L_out, paths, w)`` with
    'component' harmonics of the unit edge direction: in the edge frame path ``(l1, l2, l3)``
    is the matrix ``A[m1, m3] = sqrt(2 l3 + 1) CG[m1, 0, m3] Y^{l2}_0(+y)``, which only
    couples ``|m1| = |m3|`` (W1 from ``m3 = m1``, W2 from ``m3 = -m1``).

    Parameters
    ----------
    paths : list of (l1, l2, l3) with l1 <= lmax_in, l3 <= lmax_out
    path_weights : Tensor, shape (..., P, C)
        Per-path, per-channel weights (leading axes: e.g. one set per edge).

    Returns
    -------
    list with ``mmax = min(lmax_in, lmax_out)``: channel-diagonal W0 (..., (L+1) C,
    (L_out+1) C) and ``(W1, W2)`` pairs, in the format of :func:`so2_linear`.
    """
    _check_degree("lmax_in", lmax_in)
    _check_degree("lmax_out", lmax_out)
    if path_weights.dim() < 2 or path_weights.shape[-2] != len(paths):
        raise ValueError(f"path_weights must have shape (..., {len(paths)}, C), got "
                         f"{tuple(path_weights.shape)}")
    dtype, device = path_weights.dtype, path_weights.device
    lsh = max([p[1] for p in paths], default=0)
    y0 = spherical_harmonics(lsh, torch.tensor([0.0, 1.0, 0.0], dtype=torch.float64))
    mmax, c = min(lmax_in, lmax_out), path_weights.shape[-1]
    lead = path_weights.shape[:-2]
    # coef[m][k][l1 - m, l3 - m, p]: coefficient of path p in W0 (k=0), W1 (k=0) or W2 (k=1).
    coef = [torch.zeros(2, lmax_in - m + 1, lmax_out - m + 1, len(paths), dtype=torch.float64)
            for m in range(mmax + 1)]
    for p, (l1, l2, l3) in enumerate(paths):
        if l1 > lmax_in or l3 > lmax_out:
            raise ValueError(f"path {(l1, l2, l3)} exceeds lmax_in={lmax_in}/lmax_out={lmax_out}")
        a = (clebsch_gordan(l1, l2, l3, torch.float64)[:, l2, :] * math.sqrt(2 * l3 + 1)
             * y0[l2 * l2 + l2])                                    # [2l1+1, 2l3+1]
        for m in range(min(l1, l3) + 1):
            coef[m][0, l1 - m, l3 - m, p] = a[l1 + m, l3 + m]
            if m > 0:
                coef[m][1, l1 - m, l3 - m, p] = a[l1 + m, l3 - m]
    eye = torch.eye(c, dtype=dtype, device=device)
    out = []
    for m in range(mmax + 1):
        w = torch.einsum("kabp,...pc->...kacb", coef[m].to(dtype=dtype, device=device),
                         path_weights)                              # [..., 2, a, c, b]
        w = w.unsqueeze(-1) * eye.view(c, 1, c)                     # [..., 2, a, c, b, c]
        w = w.reshape(*lead, 2, (lmax_in - m + 1) * c, (lmax_out - m + 1) * c)
        out.append(w[..., 0, :, :] if m == 0 else (w[..., 0, :, :], w[..., 1, :, :]))
    return out
