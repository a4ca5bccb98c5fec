"""Products and involutions of multivectors ``[..., D]`` (``D = 2^n`` blades of an algebra).

Every function takes an :class:`~symformer.primitives.ga.algebra.Algebra` (default: projective
GA G(3,0,1), :data:`~symformer.primitives.ga.pga.PGA`) and works on tensors with any leading
shape; the two operands of a product broadcast against each other.
"""

from __future__ import annotations

import torch
from torch import Tensor

from .algebra import Algebra

__all__ = ["bilinear", "geometric_product", "outer_product", "inner_product", "reverse",
           "grade_involution", "grade_project", "scalar_product", "complement", "uncomplement",
           "regressive_product"]


def _algebra(algebra: Algebra | None) -> Algebra:
    if algebra is None:
        from .pga import PGA

        return PGA
    if not isinstance(algebra, Algebra):
        raise TypeError(f"algebra: expected an Algebra, got {type(algebra).__name__}")
    return algebra


def _check(x: Tensor, algebra: Algebra, name: str) -> None:
    if not isinstance(x, Tensor):
        raise TypeError(f"{name}: expected a torch.Tensor, got {type(x).__name__}")
    if x.ndim == 0 or x.shape[-1] != algebra.dim:
        raise ValueError(f"{name}: expected shape (..., {algebra.dim}) for {algebra!r}, "
                         f"got {tuple(x.shape)}")


def bilinear(x: Tensor, y: Tensor, table: Tensor) -> Tensor:
    """``z_k = sum_ij x_i y_j T[i, j, k]``.

    x, y : Tensor, shape (..., D) (broadcast); table : Tensor, shape (D, D, D).
    Returns Tensor, shape (..., D).
    """
    x, y = torch.broadcast_tensors(x, y)
    D = table.shape[0]
    outer = (x[..., :, None] * y[..., None, :]).reshape(-1, D * D)  # [M, i j]
    return (outer @ table.reshape(D * D, D)).view(x.shape)  # one GEMM


def _product(name: str, x: Tensor, y: Tensor, algebra: Algebra | None) -> Tensor:
    a = _algebra(algebra)
    _check(x, a, "x")
    _check(y, a, "y")
    return bilinear(x, y, a.table(name, x.dtype, x.device))


def geometric_product(x: Tensor, y: Tensor, algebra: Algebra | None = None) -> Tensor:
    """Geometric product ``x y``; x, y : Tensor, shape (..., D). Returns shape (..., D)."""
    return _product("gp", x, y, algebra)


def outer_product(x: Tensor, y: Tensor, algebra: Algebra | None = None) -> Tensor:
    """Outer (wedge) product ``x ^ y``; x, y : Tensor, shape (..., D)."""
    return _product("op", x, y, algebra)


def inner_product(x: Tensor, y: Tensor, algebra: Algebra | None = None) -> Tensor:
    """Inner product ``x | y`` as in the ``clifford`` package (grade-|r-s| part of blade
    products, zero with scalars); x, y : Tensor, shape (..., D)."""
    return _product("ip", x, y, algebra)


def _signs(name: str, x: Tensor, algebra: Algebra | None) -> Tensor:
    a = _algebra(algebra)
    _check(x, a, "x")
    return x * a.table(name, x.dtype, x.device)


def reverse(x: Tensor, algebra: Algebra | None = None) -> Tensor:
    """Reversion ``~x``: grade k multiplied by ``(-1)^(k(k-1)/2)``; shape (..., D)."""
    return _signs("reverse", x, algebra)


def grade_involution(x: Tensor, algebra: Algebra | None = None) -> Tensor:
    """Grade involution: grade k multiplied by ``(-1)^k``; shape (..., D)."""
    return _signs("involute", x, algebra)


def grade_project(x: Tensor, grade: int, algebra: Algebra | None = None) -> Tensor:
    """The grade-``grade`` part of ``x`` (other blades zeroed); shape (..., D)."""
    a = _algebra(algebra)
    _check(x, a, "x")
    if isinstance(grade, bool) or not isinstance(grade, int) or not 0 <= grade <= a.n:
        raise ValueError(f"grade: expected an int in [0, {a.n}], got {grade!r}")
    return x * a.table("grade", x.dtype, x.device)[grade]


def scalar_product(x: Tensor, y: Tensor, algebra: Algebra | None = None) -> Tensor:
    """``<~x y>_0`` for diagonal metrics: ``sum_i x_i y_i <~e_i e_i>_0``; shape (...,).

    Invariant under the orthogonal (Pin) group; null blades do not contribute.
    """
    a = _algebra(algebra)
    _check(x, a, "x")
    _check(y, a, "y")
    gp, rev = a.table("gp", x.dtype, x.device), a.table("reverse", x.dtype, x.device)
    weights = torch.diagonal(gp[:, :, 0]) * rev  # (D,)
    return (x * y * weights).sum(-1)


def _complement_perm(a: Algebra) -> tuple[list[int], list[float]]:
    """Right complement: blade b -> s * e_{b^c} with ``b ^ (s e_{b^c}) = e_{1..n}``."""
    from .algebra import blade_product

    pos = {b: i for i, b in enumerate(a.blades)}
    full = tuple(range(a.n))
    idx, signs = [], []
    for b in a.blades:
        c = tuple(g for g in full if g not in b)
        sign, _ = blade_product(b, c, (1,) * a.n)
        idx.append(pos[c])
        signs.append(sign)
    return idx, signs


def complement(x: Tensor, algebra: Algebra | None = None) -> Tensor:
    """Right complement (the metric-free dual): ``e_b -> s e_{b^c}`` with
    ``e_b ^ s e_{b^c} = e_{1..n}``; shape (..., D). Works in degenerate metrics."""
    a = _algebra(algebra)
    _check(x, a, "x")
    idx, signs = _complement_perm(a)
    inv = [0] * len(idx)
    for b, k in enumerate(idx):
        inv[k] = b
    return (x * torch.tensor(signs, dtype=x.dtype, device=x.device))[..., inv]


def uncomplement(x: Tensor, algebra: Algebra | None = None) -> Tensor:
    """Inverse of :func:`complement`; shape (..., D)."""
    a = _algebra(algebra)
    _check(x, a, "x")
    idx, signs = _complement_perm(a)
    return x[..., idx] * torch.tensor(signs, dtype=x.dtype, device=x.device)


def regressive_product(x: Tensor, y: Tensor, algebra: Algebra | None = None) -> Tensor:
    """Regressive product (join in PGA) ``x v y = uncomplement(complement(x) ^ complement(y))``;
    x, y : Tensor, shape (..., D)."""
    a = _algebra(algebra)
    return uncomplement(outer_product(complement(x, a), complement(y, a), a), a)
