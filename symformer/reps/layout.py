"""Uniform spherical layout ``[..., (L+1)^2, C]`` and converters to/from e3nn's ``mul_ir``.

In the uniform layout, degree ``l`` occupies rows ``l^2 .. (l+1)^2 - 1`` (order ``m = -l..l``),
has parity ``(-1)^l`` and the same number ``C`` of channels as every other degree. A rotation
``R`` acts on rows: ``x -> D @ x`` with ``D = uniform_irreps(L, 1).D_from_matrix(R)``.

Irreps accepted by :func:`to_uniform` / :func:`from_uniform`: any sequence of terms with
natural parity ``(-1)^l`` whose multiplicities add up to the same ``C`` for every
``l = 0..L`` (e.g. ``"Cx0e+Cx1o+Cx2e"``, or ``"1x0e+2x1o+1x0e+2x1o"`` with ``C = 2``, or
terms in any order). Channel ``c`` of degree ``l`` is the ``c``-th copy of ``l`` in the order the
irreps list them. Anything else (odd parity, unequal multiplicities, a missing degree) raises.
"""

from __future__ import annotations

import torch
from torch import Tensor

from symformer._cache import tensor_cache

from .irreps import Irreps

__all__ = ["uniform_irreps", "uniform_shape", "to_uniform", "from_uniform"]


def uniform_irreps(lmax: int, channels: int) -> Irreps:
    """``Cx0e + Cx1o + Cx2e + ...`` up to degree ``lmax`` (natural parities)."""
    if not isinstance(lmax, int) or lmax < 0:
        raise ValueError(f"lmax must be a non-negative int, got {lmax!r}")
    if not isinstance(channels, int) or channels < 1:
        raise ValueError(f"channels must be a positive int, got {channels!r}")
    return Irreps([(channels, (l, (-1) ** l)) for l in range(lmax + 1)])


def uniform_shape(irreps) -> tuple[int, int]:
    """``(L, C)`` of irreps accepted by :func:`to_uniform`; raises ValueError otherwise."""
    irreps = Irreps(irreps)
    mults: dict[int, int] = {}
    for mul, ir in irreps:
        if mul == 0:
            continue
        if ir.p != (-1) ** ir.l:
            raise ValueError(f"irreps {irreps} have {ir} whose parity is not (-1)^l; the uniform "
                             "layout holds natural parities only")
        mults[ir.l] = mults.get(ir.l, 0) + mul
    if not mults:
        raise ValueError("irreps must not be empty for the uniform layout")
    lmax = max(mults)
    counts = {mults.get(l, 0) for l in range(lmax + 1)}
    if len(counts) != 1:
        raise ValueError(f"irreps {irreps} need the same multiplicity for every l = 0..{lmax} "
                         f"(got {[mults.get(l, 0) for l in range(lmax + 1)]})")
    return lmax, counts.pop()


@tensor_cache
def _gather_index(irreps: Irreps, device: torch.device) -> tuple[Tensor, Tensor]:
    """``(idx, inv)``: ``uniform.flatten()[k] = x[idx[k]]`` and ``x[j] = uniform.flatten()[inv[j]]``."""
    lmax, channels = uniform_shape(irreps)
    idx = torch.empty((lmax + 1) ** 2, channels, dtype=torch.long)
    seen = [0] * (lmax + 1)
    for (mul, ir), s in zip(irreps, irreps.slices()):
        if mul == 0:
            continue
        l, d = ir.l, ir.dim
        positions = torch.arange(s.start, s.stop).reshape(mul, d)      # mul_ir: [u, m]
        idx[l * l:(l + 1) ** 2, seen[l]:seen[l] + mul] = positions.T
        seen[l] += mul
    idx = idx.reshape(-1)
    return idx.to(device), torch.argsort(idx).to(device)


def to_uniform(x: Tensor, irreps) -> Tensor:
    """``mul_ir`` features to the uniform layout.

    Parameters
    ----------
    x : Tensor, shape (..., irreps.dim)
    irreps : Irreps or str
        See the module docstring for what is accepted.

    Returns
    -------
    Tensor, shape (..., (L+1)^2, C)
    """
    irreps = Irreps(irreps)
    lmax, channels = uniform_shape(irreps)
    if x.shape[-1] != irreps.dim:
        raise ValueError(f"x must have last dimension irreps.dim = {irreps.dim} for {irreps}, "
                         f"got shape {tuple(x.shape)}")
    idx, _ = _gather_index(irreps, x.device)
    return x.index_select(-1, idx).reshape(*x.shape[:-1], (lmax + 1) ** 2, channels)


def from_uniform(x: Tensor, irreps) -> Tensor:
    """Uniform-layout features ``(..., (L+1)^2, C)`` to ``mul_ir`` features ``(..., dim)``."""
    irreps = Irreps(irreps)
    lmax, channels = uniform_shape(irreps)
    if x.shape[-2:] != ((lmax + 1) ** 2, channels):
        raise ValueError(f"x must have shape (..., {(lmax + 1) ** 2}, {channels}) for {irreps}, "
                         f"got {tuple(x.shape)}")
    _, inv = _gather_index(irreps, x.device)
    return x.reshape(*x.shape[:-2], -1).index_select(-1, inv)
