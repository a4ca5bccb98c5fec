"""Group interface shared by every symmetry in symformer.

A batch of group elements is an :class:`Element`: a small container of *plain* tensors with a
leading batch axis ``n``. The keys are a contract between groups, the verification oracle
(:mod:`symformer.testing`) and models, so that the oracle can transform data without calling the
group code under test:

=================  ============  =============================================================
key                shape         meaning
=================  ============  =============================================================
``matrix``         (n, d, d)     orthogonal matrix acting on points/vectors (d = 2 or 3)
``translation``    (n, d)        translation of points: x -> R x + t
``scale``          (n,)          positive scale factor: x -> s x (points, images: integer s)
``perm``           (n, N) long   permutation: new[i] = old[perm[i]] along node axes
``rot90``          (n,) long     k quarter turns counter-clockwise of images (torch.rot90 sense)
``flip``           (n,) bool     mirror images along the last (width) axis, applied *before*
                                 the rotation
``shift``          (n, 2) long   cyclic shift of images (rows, cols) as torch.roll
=================  ============  =============================================================

Images: a pixel at row i, column j has coordinates (x, y) = (j, -i); a quarter turn
counter-clockwise is then the matrix [[0, -1], [1, 0]], consistent with ``matrix`` for the
planar groups.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, Mapping

import torch
from torch import Tensor

from .types import FieldType, TypeLike, parse_type

__all__ = ["Element", "Group", "ProductGroup"]


@dataclass(frozen=True)
class Element:
    """A batch of ``n`` group elements stored as plain tensors (see module docstring)."""

    data: Mapping[str, Tensor]
    kind: str = "general"

    def __len__(self) -> int:
        return next(iter(self.data.values())).shape[0] if self.data else 1

    def __getitem__(self, idx: int | slice) -> "Element":
        if isinstance(idx, int):
            idx = slice(idx, idx + 1) if idx != -1 else slice(-1, None)
        return Element({k: v[idx] for k, v in self.data.items()}, self.kind)

    def __getattr__(self, name: str) -> Tensor:
        # Convenient read access: g.matrix, g.perm, ...
        data = object.__getattribute__(self, "data")
        if name in data:
            return data[name]
        raise AttributeError(f"group element has no field {name!r}; it has {sorted(data)}")

    def to(self, *args: Any, **kwargs: Any) -> "Element":
        out = {}
        for k, v in self.data.items():
            out[k] = v.to(*args, **kwargs) if v.is_floating_point() else v.to(
                device=kwargs.get("device", v.device))
        return Element(out, self.kind)


class Group(ABC):
    """Base class. Subclasses implement sampling, the group law and their actions.

    Attributes
    ----------
    name : str
        Human-readable name such as ``"E(3)"``.
    kinds : tuple of str
        Transformation kinds reported separately by the verification harness, e.g.
        ``("rotation", "reflection", "translation")``. ``sample(kind=...)`` draws from each.
    """

    name: str = "group"
    kinds: tuple[str, ...] = ()

    # -- group law -------------------------------------------------------------------------
    @abstractmethod
    def sample(self, n: int = 1, generator: torch.Generator | None = None, *,
               dtype: torch.dtype = torch.float32, device: torch.device | str | None = None,
               kind: str | None = None) -> Element:
        """Draw ``n`` elements (Haar-uniform where the group is compact); ``kind`` restricts
        the draw to one of :attr:`kinds`."""

    @abstractmethod
    def identity(self, n: int = 1, *, dtype: torch.dtype = torch.float32,
                 device: torch.device | str | None = None) -> Element:
        """``n`` copies of the identity."""

    @abstractmethod
    def compose(self, g: Element, h: Element) -> Element:
        """The element ``g h``: apply ``h`` first, then ``g``."""

    @abstractmethod
    def inverse(self, g: Element) -> Element:
        """Elementwise inverse."""

    def matrix(self, g: Element) -> Tensor | None:
        """Matrix form (n, d, d) where one exists, else ``None``."""
        return g.data.get("matrix")

    # -- actions ---------------------------------------------------------------------------
    def act(self, g: Element, x: Any, ftype: TypeLike) -> Any:
        """Transform ``x`` of type ``ftype`` by a single element ``g`` (``len(g) == 1``).

        ``x`` may be a tensor, or a dict / list / tuple of tensors with a matching structure of
        types. Types this group does not act on are returned unchanged.
        """
        if isinstance(x, Mapping):
            types = ftype if isinstance(ftype, Mapping) else {k: ftype for k in x}
            return {k: self.act(g, v, types[k]) for k, v in x.items()}
        if isinstance(x, (list, tuple)):
            types = ftype if isinstance(ftype, (list, tuple)) else [ftype] * len(x)
            return type(x)(self.act(g, v, t) for v, t in zip(x, types))
        if len(g) != 1:
            raise ValueError(f"act expects a single group element, got a batch of {len(g)}")
        return self._act_tensor(g, x, parse_type(ftype))

    @abstractmethod
    def _act_tensor(self, g: Element, x: Tensor, ftype: FieldType) -> Tensor:
        """Action of a single element on one tensor of a parsed type."""

    def __mul__(self, other: "Group") -> "ProductGroup":
        return ProductGroup(self, other)

    def __repr__(self) -> str:
        return self.name


class ProductGroup(Group):
    """Direct product of groups acting on disjoint aspects (e.g. ``E3() * Symmetric(5)``).

    Element fields of the factors must not overlap. Kinds are the union of the factors' kinds
    plus ``"combined"`` (all factors at once).
    """

    def __init__(self, *groups: Group):
        flat: list[Group] = []
        for g in groups:
            flat.extend(g.groups if isinstance(g, ProductGroup) else (g,))
        self.groups = tuple(flat)
        self.name = " x ".join(g.name for g in self.groups)
        kinds: list[str] = []
        for g in self.groups:
            kinds.extend(k for k in g.kinds if k not in kinds)
        self.kinds = tuple(kinds) + ("combined",)

    def _merge(self, parts: list[Element], kind: str) -> Element:
        data: dict[str, Tensor] = {}
        for p in parts:
            overlap = set(data) & set(p.data)
            if overlap:
                raise ValueError(f"product factors share element fields {sorted(overlap)}")
            data.update(p.data)
        return Element(data, kind)

    def _split(self, g: Element) -> list[Element]:
        parts, keys = [], list(g.data)
        for grp, ident in zip(self.groups, self.identity(1, dtype=torch.float64, split=True)):
            parts.append(Element({k: g.data[k] for k in ident.data if k in keys}, g.kind))
        return parts

    def sample(self, n=1, generator=None, *, dtype=torch.float32, device=None, kind=None):
        parts = []
        for grp in self.groups:
            if kind in (None, "combined", "general"):
                parts.append(grp.sample(n, generator, dtype=dtype, device=device))
            elif kind in grp.kinds:
                parts.append(grp.sample(n, generator, dtype=dtype, device=device, kind=kind))
            else:
                parts.append(grp.identity(n, dtype=dtype, device=device))
        if kind is not None and kind not in self.kinds and kind != "general":
            raise ValueError(f"{self.name} has no transformation kind {kind!r}; kinds: {self.kinds}")
        return self._merge(parts, kind or "combined")

    def identity(self, n=1, *, dtype=torch.float32, device=None, split: bool = False):
        parts = [g.identity(n, dtype=dtype, device=device) for g in self.groups]
        return parts if split else self._merge(parts, "identity")

    def compose(self, g, h):
        return self._merge([grp.compose(a, b) for grp, a, b in
                            zip(self.groups, self._split(g), self._split(h))], g.kind)

    def inverse(self, g):
        return self._merge([grp.inverse(a) for grp, a in zip(self.groups, self._split(g))], g.kind)

    def matrix(self, g):
        return g.data.get("matrix")

    def _act_tensor(self, g, x, ftype):
        for grp, part in zip(self.groups, self._split(g)):
            x = grp._act_tensor(part, x, ftype)
        return x
