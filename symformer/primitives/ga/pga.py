"""Projective geometric algebra G(3,0,1): named blades, join, versors and the E(3) action.

Multivectors are tensors ``[..., 16]`` in the ``clifford`` package's blade order of
``clifford.Cl(sig=[0, 1, 1, 1], firstIdx=0)`` (e0 squares to 0)::

    1, e0, e1, e2, e3, e01, e02, e03, e12, e13, e23, e012, e013, e023, e123, e0123

Layers refer to blades by name (``BLADE["e123"]``), never by bare index. Geometry (see
:mod:`.embedding`): the plane ``n . x + d = 0`` is the vector ``n_i e_i + d e0``; the point x is
the meet of the planes ``x_i = const``: ``e123 - x e023 + y e013 - z e012``.

The isometry ``x -> R x + t`` acts on multivectors as the algebra automorphism that maps the
plane ``(n, d)`` to ``(R n, d - (R n) . t)``; it equals the Pin(3,0,1) sandwich ``u x u^-1``
(even versors) or ``u x' u^-1`` (odd versors; ``x'`` the grade involution) with
``u = translator(t) rotor(R) [e123 if det R < 0]``.
"""

from __future__ import annotations

import torch
from torch import Tensor

from .algebra import Algebra
from .products import (geometric_product, grade_involution, regressive_product, reverse,
                       scalar_product)

__all__ = ["PGA", "BLADES", "BLADE", "GRADES", "E0_BLADES", "NON_E0_BLADES", "blade_index",
           "join", "equi_join", "invariant_inner", "sandwich", "translator", "rotor",
           "quaternion_from_matrix", "versor", "action_matrix"]

#: The projective algebra G(3,0,1) with generators e0 (null), e1, e2, e3.
PGA = Algebra((0, 1, 1, 1), first_index=0)
BLADES: tuple[str, ...] = PGA.names
BLADE: dict[str, int] = dict(PGA.index)
GRADES: tuple[int, ...] = PGA.grades
#: Blades containing e0 (they square to zero) and the others.
E0_BLADES: tuple[int, ...] = tuple(i for i, b in enumerate(PGA.blades) if 0 in b)
NON_E0_BLADES: tuple[int, ...] = tuple(i for i, b in enumerate(PGA.blades) if 0 not in b)


def blade_index(*names: str) -> list[int]:
    """Indices of blades given by name, e.g. ``blade_index("e01", "e02", "e03")``."""
    missing = [n for n in names if n not in BLADE]
    if missing:
        raise ValueError(f"names: unknown PGA blade(s) {missing}; blades are {BLADES}")
    return [BLADE[n] for n in names]


def join(x: Tensor, y: Tensor) -> Tensor:
    """Join (regressive product through the complement) ``x v y``; x, y : Tensor, shape
    (..., 16). The join of two points is the line through them. Equivariant under proper
    isometries; reflections flip its sign (see :func:`equi_join`)."""
    return regressive_product(x, y, PGA)


def equi_join(x: Tensor, y: Tensor, reference: Tensor) -> Tensor:
    """Pin(3,0,1)-equivariant join ``reference[e0123] * (x v y)``; x, y, reference : Tensor,
    shape (..., 16) (broadcast). The pseudoscalar of ``reference`` flips sign under
    reflections exactly as the join does, so the product is equivariant."""
    return reference[..., BLADE["e0123"]:BLADE["e0123"] + 1] * join(x, y)


def invariant_inner(x: Tensor, y: Tensor) -> Tensor:
    """E(3)-invariant inner product ``<~x y>_0`` (the 8 blades without e0); x, y : Tensor,
    shape (..., 16). Returns shape (...,)."""
    return scalar_product(x, y, PGA)


def sandwich(u: Tensor, x: Tensor) -> Tensor:
    """Pin action of the versor ``u`` on ``x``: ``u x u^-1`` (even ``u``) or ``u x' u^-1``
    (odd ``u``, ``x'`` the grade involution); u, x : Tensor, shape (..., 16) (broadcast).

    ``u`` must be even or odd and have an invertible Euclidean part (``<~u u>_0 != 0``).
    """
    odd_part = u * (PGA.table("involute", u.dtype, u.device) < 0).to(u.dtype)
    odd = odd_part.abs().sum(-1, keepdim=True) > (u - odd_part).abs().sum(-1, keepdim=True)
    x = torch.where(odd, grade_involution(x, PGA), x)
    norm = scalar_product(u, u, PGA)[..., None]  # <~u u>_0 = u u^~ for versors
    return geometric_product(geometric_product(u, x), reverse(u, PGA)) / norm


def translator(t: Tensor) -> Tensor:
    """Versor translating by ``t``: ``1 - (t_1 e01 + t_2 e02 + t_3 e03) / 2``; t : Tensor,
    shape (..., 3). Returns shape (..., 16)."""
    out = t.new_zeros(*t.shape[:-1], 16)
    out[..., BLADE["1"]] = 1
    out[..., blade_index("e01", "e02", "e03")] = -0.5 * t
    return out


def rotor(q: Tensor) -> Tensor:
    """Versor of the rotation of the unit quaternion ``q = (w, x, y, z)`` (Hamilton
    convention): ``w - x e23 + y e13 - z e12``; q : Tensor, shape (..., 4). Returns (..., 16)."""
    out = q.new_zeros(*q.shape[:-1], 16)
    out[..., BLADE["1"]] = q[..., 0]
    out[..., blade_index("e23", "e13", "e12")] = q[..., 1:] * q.new_tensor([-1.0, 1.0, -1.0])
    return out


def quaternion_from_matrix(R: Tensor) -> Tensor:
    """Unit quaternion ``(w, x, y, z)`` of a rotation matrix (Shepperd's method: the largest
    of the four squared components sets the branch, so it is stable everywhere); R : Tensor,
    shape (..., 3, 3). Returns shape (..., 4)."""
    m = R
    tr = m[..., 0, 0] + m[..., 1, 1] + m[..., 2, 2]
    cands = torch.stack([
        torch.stack([1 + tr, m[..., 2, 1] - m[..., 1, 2], m[..., 0, 2] - m[..., 2, 0],
                     m[..., 1, 0] - m[..., 0, 1]], -1),
        torch.stack([m[..., 2, 1] - m[..., 1, 2], 1 + 2 * m[..., 0, 0] - tr,
                     m[..., 0, 1] + m[..., 1, 0], m[..., 0, 2] + m[..., 2, 0]], -1),
        torch.stack([m[..., 0, 2] - m[..., 2, 0], m[..., 0, 1] + m[..., 1, 0],
                     1 + 2 * m[..., 1, 1] - tr, m[..., 1, 2] + m[..., 2, 1]], -1),
        torch.stack([m[..., 1, 0] - m[..., 0, 1], m[..., 0, 2] + m[..., 2, 0],
                     m[..., 1, 2] + m[..., 2, 1], 1 + 2 * m[..., 2, 2] - tr], -1),
    ], -2)  # (..., 4 branches, 4); branch b has component b equal to 4 q_b^2
    diag = torch.diagonal(cands, dim1=-2, dim2=-1)  # (..., 4)
    best = diag.argmax(-1, keepdim=True)
    chosen = torch.gather(cands, -2, best[..., None].expand(*best.shape, 4)).squeeze(-2)
    return chosen / chosen.norm(dim=-1, keepdim=True)


def versor(R: Tensor, t: Tensor | None = None) -> Tensor:
    """Versor of the isometry ``x -> R x + t`` (R orthogonal, proper or improper): a translator
    times a rotor, times ``e123`` (the point reflection) when ``det R < 0``.

    R : Tensor, shape (..., 3, 3); t : Tensor, shape (..., 3) or None. Returns (..., 16).
    """
    det = torch.linalg.det(R)
    proper = R * torch.where(det < 0, -1.0, 1.0).to(R.dtype)[..., None, None]
    u = rotor(quaternion_from_matrix(proper))
    inversion = torch.zeros_like(u)
    inversion[..., BLADE["e123"]] = 1
    u = torch.where((det < 0)[..., None], geometric_product(u, inversion), u)
    if t is not None:
        u = geometric_product(translator(t), u)
    return u


def action_matrix(R: Tensor, t: Tensor | None = None) -> Tensor:
    """Matrix (..., 16, 16) of the isometry ``x -> R x + t`` acting on multivectors
    (``x_new = M @ x``), computed by the sandwich with :func:`versor` on the 16 blades.

    R : Tensor, shape (..., 3, 3); t : Tensor, shape (..., 3) or None.
    """
    u = versor(R, t)[..., None, :]  # (..., 1, 16)
    eye = torch.eye(16, dtype=R.dtype, device=R.device)
    return sandwich(u, eye).transpose(-1, -2)  # columns are the images of the blades
