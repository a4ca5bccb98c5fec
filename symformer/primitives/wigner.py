"""Wigner D matrices from rotation matrices, random rotations, edge-aligning rotations.

``D^l(R)`` is defined by the equivariance of the real spherical harmonics (``Y(R x) = D(R)
Y(x)``). Since ``Y^l`` restricted to a set of generic unit points ``X`` (N >= 2l+1) has full
column rank, ``D^l(R)^T = pinv(Y^l(X)) Y^l(X R^T)``: one spherical-harmonics evaluation of the
rotated points and a small matmul per degree. ``Y`` is evaluated without normalisation, so
``D`` is a polynomial of degree ``l`` in the entries of ``R``: exact, batched, differentiable.
The pseudo-inverses are computed once in float64 per (lmax, dtype, device).

Values equal e3nn's ``Irrep(l, 1).D_from_matrix(R)`` (an improper ``R`` acts through its
rotation part ``det(R) R``). For ``l = 1``, ``D(R) = R``.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from symformer._cache import tensor_cache

from .spherical_harmonics import spherical_harmonics

__all__ = ["wigner_D", "wigner_D_blocks", "random_rotation", "rotation_to_y",
           "edge_align_rotation", "rotation_part"]


def _fibonacci_sphere(n: int) -> Tensor:
    i = torch.arange(n, dtype=torch.float64) + 0.5
    y = 1 - 2 * i / n
    r = (1 - y * y).sqrt()
    phi = math.pi * (3 - math.sqrt(5)) * i
    return torch.stack([r * torch.cos(phi), y, r * torch.sin(phi)], dim=-1)


@tensor_cache
def _frame(lmax: int, dtype: torch.dtype, device: torch.device) -> tuple[Tensor, tuple[Tensor, ...]]:
    """Points ``X`` (N, 3) and per-degree ``pinv(Y^l(X))^T`` (N, 2l+1); condition numbers < 5."""
    points = _fibonacci_sphere(max(6, 2 * (2 * lmax + 1)))
    y = spherical_harmonics(lmax, points, normalize=False)
    pinvs = tuple(torch.linalg.pinv(y[:, l * l:(l + 1) ** 2]).T.to(dtype=dtype, device=device)
                  for l in range(lmax + 1))
    return points.to(dtype=dtype, device=device), pinvs


def _check_R(R: Tensor) -> None:
    if not isinstance(R, Tensor) or R.shape[-2:] != (3, 3):
        raise ValueError(f"R must be a tensor of shape (..., 3, 3), got "
                         f"{getattr(R, 'shape', type(R).__name__)}")
    if not R.is_floating_point():
        raise TypeError(f"R must be floating point, got {R.dtype}")


def rotation_part(R: Tensor) -> tuple[Tensor, Tensor]:
    """Split orthogonal ``R`` (..., 3, 3) into ``(det(R) R, det(R))``; det is +-1, shape (...)."""
    _check_R(R)
    d = torch.linalg.det(R).sign().detach()
    return d[..., None, None] * R, d


def wigner_D_blocks(lmax: int, R: Tensor) -> list[Tensor]:
    """``[D^0(R), ..., D^lmax(R)]`` each of shape (..., 2l+1, 2l+1), for proper rotations.

    ``R`` must be a rotation (det +1); the result is a polynomial in ``R``. Use
    :func:`rotation_part` first for improper matrices.
    """
    _check_R(R)
    points, pinvs = _frame(lmax, R.dtype, R.device)
    y = spherical_harmonics(lmax, points @ R.transpose(-1, -2), normalize=False)  # (..., N, dim)
    return [y[..., l * l:(l + 1) ** 2].transpose(-1, -2) @ pinvs[l] for l in range(lmax + 1)]


def wigner_D(l: int, R: Tensor) -> Tensor:
    """Wigner D matrix of degree ``l``.

    Parameters
    ----------
    l : int
        Degree (>= 0).
    R : Tensor, shape (..., 3, 3)
        Orthogonal matrices; an improper one acts through ``det(R) R`` (like e3nn's
        ``Irrep(l, 1).D_from_matrix``).

    Returns
    -------
    Tensor, shape (..., 2l+1, 2l+1)
        ``D`` with ``Y^l(R x) = D Y^l(x)``, i.e. ``Y(x @ R.T) = Y(x) @ D.T``.
    """
    if not isinstance(l, int) or l < 0:
        raise ValueError(f"l must be a non-negative int, got {l!r}")
    rot, _ = rotation_part(R)
    return wigner_D_blocks(l, rot)[l]


def random_rotation(n: int = 1, generator: torch.Generator | None = None, *,
                    dtype: torch.dtype = torch.float32,
                    device: torch.device | str | None = None) -> Tensor:
    """Haar-uniform rotation matrices, shape (n, 3, 3), from normalised Gaussian quaternions."""
    if not isinstance(n, int) or n < 0:
        raise ValueError(f"n must be a non-negative int, got {n!r}")
    q = torch.randn(n, 4, generator=generator, dtype=torch.float64,
                    device=generator.device if generator is not None else device)
    q = q / q.norm(dim=-1, keepdim=True)
    w, x, y, z = q.unbind(-1)
    R = torch.stack([
        1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w),
        2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w),
        2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y),
    ], dim=-1).reshape(n, 3, 3)
    return R.to(dtype=dtype, device=device if device is not None else R.device)


def rotation_to_y(vec: Tensor) -> Tensor:
    """Rotations ``R`` with ``R v / |v| = (0, 1, 0)``.

    Built as the orthonormal frame of Duff et al. (2017, "Building an orthonormal basis,
    revisited") with y as the reference axis: branch-free, exact and smooth everywhere except
    across the plane ``v_y = 0`` (where the frame flips its azimuth, which SO(2)-equivariant
    operations around y do not see). Near ``+-y`` it is smooth and well conditioned. Zero vectors
    are treated as ``+y``; ``R(+y) = I`` and ``R(-y)`` is the half turn about z.
    Zero vectors get zero gradient.

    Parameters
    ----------
    vec : Tensor, shape (..., 3)

    Returns
    -------
    Tensor, shape (..., 3, 3)
        Proper rotations; rows are ``(b1, v, b2)`` with ``b2 = b1 x v``.
    """
    _check_vec(vec)
    r2 = (vec * vec).sum(-1, keepdim=True)
    nonzero = r2 > 0
    unit_y = torch.zeros_like(vec)
    unit_y[..., 1] = 1
    v = torch.where(nonzero, vec / torch.where(nonzero, r2, torch.ones_like(r2)).sqrt(), unit_y)
    x, y, z = v.unbind(-1)
    s = torch.where(y >= 0, torch.ones_like(y), -torch.ones_like(y))
    a = -1 / (s + y)
    # Duff's tangent for the normal n = (z, x, y) in textbook axes, mapped back to (x, y, z);
    # unit and orthogonal to v, and (1, 0, 0) at v = +y so that R(+y) = I.
    b1 = torch.stack([s + x * x * a, -x, x * z * a], dim=-1)
    b2 = torch.linalg.cross(b1, v, dim=-1)
    return torch.stack([b1, v, b2], dim=-2)


def edge_align_rotation(vec: Tensor, lmax: int | None = None) -> Tensor:
    """Edge-aligning rotation for SO(2)/eSCN convolutions.

    Returns :func:`rotation_to_y` ``(vec)`` when ``lmax`` is None, else the block-diagonal
    Wigner matrix of that rotation in the uniform layout, shape (..., (lmax+1)^2, (lmax+1)^2),
    which maps features so that the edge points along +y.
    """
    R = rotation_to_y(vec)
    if lmax is None:
        return R
    return _block_diag(wigner_D_blocks(lmax, R))


def _block_diag(blocks: list[Tensor]) -> Tensor:
    dim = sum(b.shape[-1] for b in blocks)
    out = blocks[0].new_zeros(*blocks[0].shape[:-2], dim, dim)
    start = 0
    for b in blocks:
        k = b.shape[-1]
        out[..., start:start + k, start:start + k] = b
        start += k
    return out


def _check_vec(vec: Tensor) -> None:
    if not isinstance(vec, Tensor) or vec.shape[-1:] != (3,):
        raise ValueError(f"vec must be a tensor of shape (..., 3), got "
                         f"{getattr(vec, 'shape', type(vec).__name__)}")
    if not vec.is_floating_point():
        raise TypeError(f"vec must be floating point, got {vec.dtype}")
