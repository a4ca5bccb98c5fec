"""Planar groups: SO(2), O(2), C_n, D_n (octic = D_4) and cyclic image shifts.

Elements carry ``matrix`` (n, 2, 2) acting on 2D points and vectors ``[..., 2]`` as
``x @ M.T``. Reflections are ``M = R(theta) @ F`` with ``F = diag(-1, 1)``: mirror the x axis
first (for images: along the width), then rotate.

Images ``[..., H, W]`` (pixel (i, j) sits at (x, y) = (j, -i), see :mod:`symformer.groups.base`)
are only transformed *exactly*:

* C_n and D_n with ``4 % n == 0`` (C_1, C_2, C_4, D_1, D_2, D_4) carry ``rot90`` (n,) long
  and, for D_n, ``flip`` (n,) bool; the action is ``torch.rot90(flip(x), rot90, (-2, -1))``;
* :class:`CyclicShift` carries ``shift`` (n, 2) long; the action is ``torch.roll``.

SO(2), O(2) and C_n / D_n with other n raise ``ValueError`` on images: no pixel-exact action
exists.

Sampling: ``kind=None`` is uniform (Haar) on the group; ``kind="rotation"`` /
``"reflection"`` / ``"shift"`` draw uniformly among the *non-identity* elements of that kind
(so that a few samples of a small group always test something).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from . import _random
from .base import Element, Group
from .types import FieldType

__all__ = ["SO2", "O2", "Cyclic", "Dihedral", "Octic", "CyclicShift"]

_F = ((-1.0, 0.0), (0.0, 1.0))


def _flip_matrix(dtype, device) -> Tensor:
    return torch.tensor(_F, dtype=dtype, device=device)


class _Planar(Group):
    """Shared group law (matrix product) and 2D point/vector action."""

    def _check_kind(self, kind):
        if kind is not None and kind not in self.kinds and kind != "general":
            raise ValueError(f"{self.name} has no transformation kind {kind!r}; kinds: {self.kinds}")

    def _act_image(self, g: Element, x: Tensor) -> Tensor:
        raise ValueError(f"{self.name} has no exact action on images (pixel grids are only "
                         f"invariant under quarter turns and flips); use Cyclic(4), Dihedral(4) "
                         f"or CyclicShift")

    def _act_tensor(self, g: Element, x: Tensor, ftype: FieldType) -> Tensor:
        geom = ftype.geom
        if geom in ("scalar", "edge_index"):
            return x
        if geom == "image":
            if x.ndim < 2:
                raise ValueError(f"{self.name}: an 'image' field must have shape [..., H, W], "
                                 f"got {tuple(x.shape)}")
            return self._act_image(g, x)
        if geom in ("point", "vector"):
            if not x.is_floating_point():
                raise TypeError(f"a {str(ftype)!r} field must be floating point, got {x.dtype}")
            if x.ndim == 0 or x.shape[-1] != 2:
                raise ValueError(f"{self.name}: a {str(ftype)!r} field must have last "
                                 f"dimension 2, got shape {tuple(x.shape)}")
            return x @ g.matrix[0].to(dtype=x.dtype, device=x.device).T
        raise ValueError(f"{self.name} does not act on {str(ftype)!r} fields (planar groups act "
                         f"on 2D points/vectors and images)")


class SO2(_Planar):
    """Rotations of the plane. Element: ``matrix`` (n, 2, 2). Kinds: ``("rotation",)``."""

    name = "SO(2)"
    kinds = ("rotation",)
    has_reflection = False

    def sample(self, n=1, generator=None, *, dtype=torch.float32, device=None, kind=None):
        n = _random.check_n(n)
        self._check_kind(kind)
        theta = _random.rand((n,), generator, torch.float64, device) * (2 * math.pi)
        M = _random.rotation_2d(theta)
        if self.has_reflection:
            if kind == "reflection":
                flip = torch.ones(n, dtype=torch.bool, device=M.device)
            elif kind == "rotation":
                flip = torch.zeros(n, dtype=torch.bool, device=M.device)
            else:
                flip = _random.rand((n,), generator, torch.float64, device) < 0.5
            M = torch.where(flip[:, None, None], M @ _flip_matrix(M.dtype, M.device), M)
        return Element({"matrix": M.to(dtype)}, kind or "general")

    def identity(self, n=1, *, dtype=torch.float32, device=None):
        n = _random.check_n(n)
        return Element({"matrix": torch.eye(2, dtype=dtype, device=device).expand(n, 2, 2)
                        .clone()}, "identity")

    def compose(self, g, h):
        return Element({"matrix": g.matrix @ h.matrix}, g.kind if g.kind == h.kind else "general")

    def inverse(self, g):
        return Element({"matrix": g.matrix.transpose(-1, -2)}, g.kind)


class O2(SO2):
    """Rotations and reflections of the plane. Kinds: ``("rotation", "reflection")``."""

    name = "O(2)"
    kinds = ("rotation", "reflection")
    has_reflection = True


class Cyclic(_Planar):
    """The cyclic group C_n of rotations by multiples of 2 pi / n.

    Elements: ``matrix`` (n, 2, 2), plus ``rot90`` (n,) long when ``4 % n == 0`` (exact image
    action). Kinds: ``("rotation",)``.
    """

    has_reflection = False

    def __init__(self, n: int):
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise ValueError(f"n must be a positive int, got {n!r}")
        self.order = n
        self.name = f"C_{n}"
        self.kinds = ("rotation",)

    @property
    def image_exact(self) -> bool:
        """Whether images are transformed exactly (``4 % n == 0``)."""
        return 4 % self.order == 0

    # Canonical form: (k, f) <-> R(2 pi k / n) @ F^f.
    def _from_index(self, k: Tensor, f: Tensor, dtype, device, kind: str) -> Element:
        k = k.to(device=device) % self.order
        theta = k.to(torch.float64) * (2 * math.pi / self.order)
        M = _random.rotation_2d(theta)
        if self.image_exact:
            M = M.round() + 0.0  # exactly 0 or +-1: drop cos(pi/2) ~ 6e-17 and -0
        f = f.to(device=device, dtype=torch.bool)
        M = torch.where(f[:, None, None], M @ _flip_matrix(M.dtype, M.device), M)
        data = {"matrix": M.to(dtype)}
        if self.image_exact:
            data["rot90"] = k * (4 // self.order)
        if self.has_reflection:
            data["flip"] = f
        return Element(data, kind)

    def _index(self, g: Element) -> tuple[Tensor, Tensor]:
        M = g.matrix.to(torch.float64)
        f = g.data["flip"] if self.has_reflection else torch.zeros(len(M), dtype=torch.bool,
                                                                    device=M.device)
        proper = torch.where(f[:, None, None], M @ _flip_matrix(M.dtype, M.device), M)
        theta = torch.atan2(proper[:, 1, 0], proper[:, 0, 0])
        k = torch.round(theta * (self.order / (2 * math.pi))).long() % self.order
        return k, f.to(torch.bool)

    def sample(self, n=1, generator=None, *, dtype=torch.float32, device=None, kind=None):
        n = _random.check_n(n)
        self._check_kind(kind)
        if kind == "rotation" and self.order > 1:
            k = _random.randint(1, self.order, (n,), generator, device)
        else:
            k = _random.randint(0, self.order, (n,), generator, device)
        if not self.has_reflection or kind == "rotation":
            f = torch.zeros(n, dtype=torch.bool, device=k.device)
        elif kind == "reflection":
            f = torch.ones(n, dtype=torch.bool, device=k.device)
        else:
            f = _random.randint(0, 2, (n,), generator, device).bool()
        return self._from_index(k, f, dtype, device, kind or "general")

    def identity(self, n=1, *, dtype=torch.float32, device=None):
        n = _random.check_n(n)
        z = torch.zeros(n, dtype=torch.long, device=device)
        return self._from_index(z, z.bool(), dtype, device, "identity")

    def compose(self, g, h):
        kg, fg = self._index(g)
        kh, fh = self._index(h)
        # F R(a) F = R(-a): a flip in g reverses the sense of h's rotation.
        k = kg + torch.where(fg, -kh, kh)
        return self._from_index(k, fg ^ fh, g.matrix.dtype, g.matrix.device,
                                g.kind if g.kind == h.kind else "general")

    def inverse(self, g):
        k, f = self._index(g)
        # Reflections are involutions; rotations invert to -k.
        return self._from_index(torch.where(f, k, -k), f, g.matrix.dtype, g.matrix.device, g.kind)

    def _act_image(self, g, x):
        if not self.image_exact:
            return super()._act_image(g, x)
        if self.has_reflection and bool(g.flip[0]):
            x = torch.flip(x, dims=(-1,))
        return torch.rot90(x, int(g.rot90[0]), dims=(-2, -1))


class Dihedral(Cyclic):
    """The dihedral group D_n: C_n plus reflections ``R @ F`` (flip along the width first).

    Elements: ``matrix`` (n, 2, 2), ``flip`` (n,) bool, plus ``rot90`` (n,) long when
    ``4 % n == 0``. Kinds: ``("rotation", "reflection")``.
    """

    has_reflection = True

    def __init__(self, n: int):
        super().__init__(n)
        self.name = f"D_{n}"
        self.kinds = ("rotation", "reflection")


class Octic(Dihedral):
    """The octic group D_4: quarter turns and mirror images of square pixel grids."""

    def __init__(self):
        super().__init__(4)


class CyclicShift(Group):
    """Cyclic translations of ``H x W`` images. Element: ``shift`` (n, 2) long (rows, cols).

    Acts on images ``[..., H, W]`` as ``torch.roll(x, shift, dims=(-2, -1))``; scalars and
    ``edge_index`` are unchanged; other types raise ``ValueError``. Kinds: ``("shift",)``.
    """

    kinds = ("shift",)

    def __init__(self, H: int, W: int):
        for name, v in (("H", H), ("W", W)):
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ValueError(f"{name} must be a positive int, got {v!r}")
        self.H, self.W = H, W
        self.name = f"Shift({H}x{W})"

    def _wrap(self, s: Tensor, kind: str) -> Element:
        size = torch.tensor([self.H, self.W], dtype=torch.long, device=s.device)
        return Element({"shift": s % size}, kind)

    def sample(self, n=1, generator=None, *, dtype=torch.float32, device=None, kind=None):
        n = _random.check_n(n)
        if kind is not None and kind not in self.kinds and kind != "general":
            raise ValueError(f"{self.name} has no transformation kind {kind!r}; kinds: {self.kinds}")
        if kind == "shift" and self.H * self.W > 1:
            # Uniform over the non-zero shifts: offset a uniform flat index past zero.
            flat = _random.randint(1, self.H * self.W, (n,), generator, device)
        else:
            flat = _random.randint(0, self.H * self.W, (n,), generator, device)
        return self._wrap(torch.stack([flat // self.W, flat % self.W], dim=-1), kind or "general")

    def identity(self, n=1, *, dtype=torch.float32, device=None):
        n = _random.check_n(n)
        return self._wrap(torch.zeros(n, 2, dtype=torch.long, device=device), "identity")

    def compose(self, g, h):
        return self._wrap(g.shift + h.shift, g.kind if g.kind == h.kind else "general")

    def inverse(self, g):
        return self._wrap(-g.shift, g.kind)

    def matrix(self, g):
        return None

    def _act_tensor(self, g, x, ftype):
        if ftype.geom in ("scalar", "edge_index"):
            return x
        if ftype.geom != "image":
            raise ValueError(f"{self.name} acts only on images, not on {str(ftype)!r} fields")
        if x.ndim < 2 or tuple(x.shape[-2:]) != (self.H, self.W):
            raise ValueError(f"{self.name}: an 'image' field must have shape [..., {self.H}, "
                             f"{self.W}], got {tuple(x.shape)}")
        s = g.shift[0]
        return torch.roll(x, shifts=(int(s[0]), int(s[1])), dims=(-2, -1))
