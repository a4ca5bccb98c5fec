"""The octic group D_4 as tables: elements, image action, irreps and the regular basis.

Element ``e = 2 k + f`` (k = 0..3 quarter turns, f = 0/1 flip) is the planar matrix
``R(k pi / 2) F^f`` with ``F = diag(-1, 1)``; on images it acts as
``torch.rot90(flip(x) if f else x, k, dims=(-2, -1))``, the action of
:class:`symformer.groups.Octic` (elements carry ``rot90`` = k and ``flip`` = f).

Features in the *irreps layout* have a last axis of 8 coordinates per copy::

    (A1, A2, B1, B2, E[:, 0], E[:, 1])     ->  indices 0, 1, 2, 3, (4, 5), (6, 7)

i.e. the coefficients ``sqrt(d / 8) sum_g phi(g) rho(g)`` of a function ``phi`` on the group
(regular representation), flattened column by column for the 2-dimensional irrep E; each column
of E transforms as a 2-vector. ``regular_basis()`` is the orthogonal 8 x 8 change of basis: in
the regular basis the group permutes the 8 coordinates, so pointwise nonlinearities commute
with it.
"""

from __future__ import annotations

import torch
from torch import Tensor

from symformer._cache import tensor_cache

__all__ = ["ORDER", "elements", "act_image", "matrices", "irreps_matrices", "regular_basis",
           "cayley_table", "inverse_table"]

ORDER = 8


def elements() -> list[tuple[int, int]]:
    """``[(k, f)]`` for ``e = 2 k + f``."""
    return [(e // 2, e % 2) for e in range(ORDER)]


def act_image(x: Tensor, e: int) -> Tensor:
    """Action of element ``e`` on ``x`` of shape ``(..., H, W)`` (flip first, then rotate)."""
    k, f = e // 2, e % 2
    if f:
        x = torch.flip(x, dims=(-1,))
    return torch.rot90(x, k, dims=(-2, -1))


@tensor_cache
def _matrices64() -> Tensor:
    out = []
    for k, f in elements():
        c, s = [(1, 0), (0, 1), (-1, 0), (0, -1)][k]
        R = torch.tensor([[c, -s], [s, c]], dtype=torch.float64)
        out.append(R @ torch.diag(torch.tensor([-1.0 if f else 1.0, 1.0], dtype=torch.float64)))
    return torch.stack(out)


def matrices(dtype: torch.dtype = torch.float64) -> Tensor:
    """Planar matrices of the 8 elements, shape (8, 2, 2)."""
    return _matrices64().to(dtype)


@tensor_cache
def _irreps64() -> Tensor:
    M = _matrices64()
    out = torch.zeros(ORDER, 8, 8, dtype=torch.float64)
    for e, (k, f) in enumerate(elements()):
        out[e, 0, 0] = 1.0
        out[e, 1, 1] = (-1.0) ** f          # A2: determinant
        out[e, 2, 2] = (-1.0) ** k          # B1
        out[e, 3, 3] = (-1.0) ** (k + f)    # B2
        out[e, 4:6, 4:6] = M[e]             # E, first column
        out[e, 6:8, 6:8] = M[e]             # E, second column
    return out


def irreps_matrices(dtype: torch.dtype = torch.float64,
                    device: torch.device | str | None = None) -> Tensor:
    """Orthogonal matrices ``D(e)`` (8, 8, 8) acting on the irreps layout of one copy."""
    return _irreps64().to(dtype=dtype, device=device)


@tensor_cache
def _regular64() -> Tensor:
    M = _matrices64()
    Q = torch.zeros(8, ORDER, dtype=torch.float64)
    for e, (k, f) in enumerate(elements()):
        Q[0, e] = 1.0
        Q[1, e] = (-1.0) ** f
        Q[2, e] = (-1.0) ** k
        Q[3, e] = (-1.0) ** (k + f)
        # column j of E is rows 4 + 2 j + i, entry rho(e)[i, j]; sqrt(2) = sqrt(d_E)
        Q[4:8, e] = M[e].T.reshape(4) * 2 ** 0.5
    return Q / ORDER ** 0.5


def regular_basis(dtype: torch.dtype = torch.float64,
                  device: torch.device | str | None = None) -> Tensor:
    """Orthogonal ``Q`` (8 irreps coordinates, 8 group elements): ``x_irreps = Q @ phi``."""
    return _regular64().to(dtype=dtype, device=device)


@tensor_cache
def cayley_table() -> tuple[tuple[int, ...], ...]:
    """``table[a][b]`` = index of the product ``a b`` (apply b first)."""
    M = _matrices64()
    prods = torch.einsum("aij,bjk->abik", M, M)
    return tuple(tuple(int((M - prods[a, b]).abs().flatten(1).sum(1).argmin())
                       for b in range(ORDER)) for a in range(ORDER))


@tensor_cache
def inverse_table() -> tuple[int, ...]:
    """``inv[a]`` = index of ``a^{-1}``."""
    t = cayley_table()
    return tuple(next(b for b in range(ORDER) if t[a][b] == 0) for a in range(ORDER))
