"""The 3D Euclidean family: SO(3), O(3), SE(3) and E(3).

Elements carry ``matrix`` (n, 3, 3) and, for SE(3) and E(3), ``translation`` (n, 3); the
element acts on points as ``x -> x @ R.T + t``.

Sampling (``sample(n, kind=...)``):

* ``"rotation"`` — Haar-uniform R in SO(3), no translation;
* ``"reflection"`` — improper ``-I @ R`` with R Haar-uniform (det = -1), no translation;
* ``"translation"`` — R = I, ``t ~ N(0, translation_scale^2 I)``;
* ``None`` — everything the group has at once: a Haar rotation, times ``-I`` with probability
  1/2 (O(3), E(3)), plus a Gaussian translation (SE(3), E(3)).

Actions (``ftype`` from :mod:`symformer.groups.types`):

===================  ===============================================================
``point``            ``[..., 3]``: ``x @ R.T + t``
``vector``           ``[..., 3]``: ``x @ R.T``
``pseudovector``     ``[..., 3]``: ``det(R) * x @ R.T``
irreps string        ``[..., dim]``: ``x @ D(R).T`` with ``symformer.reps.Irreps(s).D_from_matrix``
``uniform:L``        ``[..., (L+1)^2, C]``: degree l rows multiplied by ``det(R)^l D^l(R)``
``multivector``      ``[..., 16]`` PGA G(3,0,1) multivectors: the Pin(3,0,1) sandwich with the
                     versor of ``x -> R x + t`` (:func:`symformer.primitives.ga.action_matrix`)
``scalar``,          unchanged
``edge_index``
===================  ===============================================================
"""

from __future__ import annotations

import torch
from torch import Tensor

from ..primitives.wigner import random_rotation
from . import _random
from .base import Element, Group
from .types import FieldType

__all__ = ["SO3", "O3", "SE3", "E3"]


def _check_float(x: Tensor, ftype: FieldType) -> None:
    if not isinstance(x, Tensor):
        raise TypeError(f"expected a tensor for field type {str(ftype)!r}, got {type(x).__name__}")
    if not x.is_floating_point():
        raise TypeError(f"field of type {str(ftype)!r} must be floating point, got {x.dtype}")


def _check_last(x: Tensor, dim: int, ftype: FieldType, group: str) -> None:
    if x.ndim == 0 or x.shape[-1] != dim:
        raise ValueError(f"{group}: a {str(ftype)!r} field must have last dimension {dim}, "
                         f"got shape {tuple(x.shape)}")


def uniform_D(R: Tensor, lmax: int) -> Tensor:
    """Block-diagonal representation of the ``uniform:lmax`` layout, shape ((L+1)^2, (L+1)^2).

    Degree l carries ``det(R)^l * wigner_D(l, det(R) R)`` (parity (-1)^l).

    Parameters
    ----------
    R : Tensor, shape (3, 3)
        Orthogonal matrix (proper or improper).
    lmax : int
        Maximum degree L >= 0.
    """
    from symformer.primitives.wigner import rotation_part, wigner_D_blocks

    rot, det = rotation_part(R)
    blocks = [D * det ** l for l, D in enumerate(wigner_D_blocks(lmax, rot))]
    return torch.block_diag(*blocks)


class _Euclidean3(Group):
    """Shared implementation; the subclasses only choose which parts the group contains."""

    has_reflection = False
    has_translation = False

    def __init__(self, *, translation_scale: float = 1.0):
        if not translation_scale > 0:
            raise ValueError(f"translation_scale must be positive, got {translation_scale!r}")
        self.translation_scale = float(translation_scale)
        kinds = ["rotation"]
        kinds += ["reflection"] if self.has_reflection else []
        kinds += ["translation"] if self.has_translation else []
        self.kinds = tuple(kinds)

    # -- group law -------------------------------------------------------------------------
    def _pack(self, R: Tensor, t: Tensor, kind: str) -> Element:
        data = {"matrix": R}
        if self.has_translation:
            data["translation"] = t
        return Element(data, kind)

    def sample(self, n=1, generator=None, *, dtype=torch.float32, device=None, kind=None):
        n = _random.check_n(n)
        if kind is not None and kind not in self.kinds and kind != "general":
            raise ValueError(f"{self.name} has no transformation kind {kind!r}; kinds: {self.kinds}")
        R = random_rotation(n, generator, dtype=torch.float64, device=device)  # Haar
        t = torch.zeros(n, 3, dtype=torch.float64, device=R.device)
        if kind == "reflection":
            R = -R
        elif kind == "translation":
            R = torch.eye(3, dtype=torch.float64, device=R.device).expand(n, 3, 3).clone()
        if kind in (None, "general") and self.has_reflection:
            sign = torch.where(_random.rand((n,), generator, torch.float64, device) < 0.5, -1.0, 1.0)
            R = R * sign.to(R.device)[:, None, None]
        if kind in (None, "general", "translation") and self.has_translation:
            t = _random.randn((n, 3), generator, torch.float64, device) * self.translation_scale
        return self._pack(R.to(dtype), t.to(dtype), kind or "general")

    def identity(self, n=1, *, dtype=torch.float32, device=None):
        n = _random.check_n(n)
        R = torch.eye(3, dtype=dtype, device=device).expand(n, 3, 3).clone()
        return self._pack(R, torch.zeros(n, 3, dtype=dtype, device=device), "identity")

    def compose(self, g: Element, h: Element) -> Element:
        R = g.matrix @ h.matrix
        t = None
        if self.has_translation:
            t = torch.einsum("nij,nj->ni", g.matrix, h.translation) + g.translation
        return self._pack(R, t, g.kind if g.kind == h.kind else "general")

    def inverse(self, g: Element) -> Element:
        Rt = g.matrix.transpose(-1, -2)
        t = -torch.einsum("nij,nj->ni", Rt, g.translation) if self.has_translation else None
        return self._pack(Rt, t, g.kind)

    # -- action ----------------------------------------------------------------------------
    def _act_tensor(self, g: Element, x: Tensor, ftype: FieldType) -> Tensor:
        geom = ftype.geom
        if geom in ("scalar", "edge_index"):
            return x
        if geom == "image":
            raise ValueError(f"{self.name} does not act on 'image' fields; use a planar group")
        _check_float(x, ftype)
        R = g.matrix[0].to(dtype=x.dtype, device=x.device)
        if geom == "multivector":
            from symformer.primitives.ga import action_matrix

            _check_last(x, 16, ftype, self.name)
            t = g.translation[0] if self.has_translation else torch.zeros(3, dtype=R.dtype)
            # The versor sandwich in float64, applied in the field's dtype.
            M = action_matrix(R.to(torch.float64), t.to(dtype=torch.float64, device=R.device))
            return x @ M.to(x.dtype).T
        if geom in ("point", "vector", "pseudovector"):
            _check_last(x, 3, ftype, self.name)
            y = x @ R.T
            if geom == "pseudovector":
                y = y * torch.det(R)
            if geom == "point" and self.has_translation:
                y = y + g.translation[0].to(dtype=x.dtype, device=x.device)
            return y
        if geom == "irreps":
            from symformer.reps import Irreps

            # Wigner matrices from angles lose accuracy in float32: build them in float64.
            D = Irreps(ftype.irreps).D_from_matrix(R.to(torch.float64)).to(x.dtype)
            _check_last(x, D.shape[-1], ftype, self.name)
            return x @ D.T
        if geom == "uniform":
            dim = (ftype.lmax + 1) ** 2
            if x.ndim < 2 or x.shape[-2] != dim:
                raise ValueError(f"{self.name}: a {str(ftype)!r} field must have shape "
                                 f"[..., {dim}, C], got {tuple(x.shape)}")
            D = uniform_D(R.to(torch.float64), ftype.lmax).to(x.dtype)
            return torch.einsum("ij,...jc->...ic", D, x)
        raise ValueError(f"{self.name} does not know how to act on field type {str(ftype)!r}")


class SO3(_Euclidean3):
    """Rotations of 3D space. Kinds: ``("rotation",)``."""

    name = "SO(3)"

    def __init__(self):
        super().__init__()


class O3(_Euclidean3):
    """Rotations and reflections (parity) of 3D space. Kinds: ``("rotation", "reflection")``."""

    name = "O(3)"
    has_reflection = True

    def __init__(self):
        super().__init__()


class SE3(_Euclidean3):
    """Rigid motions (rotations and translations).

    Parameters
    ----------
    translation_scale : float
        Standard deviation of each component of sampled translations (default 1.0).
    """

    name = "SE(3)"
    has_translation = True


class E3(_Euclidean3):
    """Isometries of 3D space: rotations, reflections and translations.

    Parameters
    ----------
    translation_scale : float
        Standard deviation of each component of sampled translations (default 1.0).
    """

    name = "E(3)"
    has_reflection = True
    has_translation = True
