"""Field types: what a tensor *is*, so that groups know how to act on it.

A field type has a geometric part (how rotations, reflections, translations, scalings and image
transformations act) and a permutation part (which axes are relabelled by S_n). Types are written
as short strings and parsed once:

=====================  ==========================================================================
string                 meaning (shape)
=====================  ==========================================================================
``scalar``             invariant under every geometric transformation (any shape)
``point``              position ``[..., d]``: rotated, reflected, translated, scaled
``vector``             displacement / velocity ``[..., d]``: rotated and reflected, not translated
``pseudovector``       axial vector ``[..., 3]``: rotated, no sign flip under inversion
``16x0e+8x1o``         O(3) irreps features in e3nn's ``mul_ir`` layout ``[..., dim]``
``uniform:L``          spherical features ``[..., (L+1)^2, C]``, degree l has parity (-1)^l
``image``              image or feature map ``[..., H, W]``
``edge_index``         ``[2, E]`` integer node indices; relabelled by permutations
=====================  ==========================================================================

Permutation prefixes, joined with ``:``:

* ``node:`` — axis 0 is a (flat) node axis ``[N, ...]``;
* ``set:`` — axis 1 is a node axis in a dense batch ``[B, N, ...]``;
* ``pair:`` — axes 1 and 2 are both node axes ``[B, N, N, ...]``;
* ``nodepair:`` — axes 0 and 1 are both node axes ``[N, N, ...]``.

Examples: ``"node:point"``, ``"set:vector"``, ``"node:8x0e+4x1o"``, ``"pair:scalar"``.
A type without a prefix is not touched by permutations (graph-level outputs).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Union

__all__ = ["FieldType", "parse_type", "GEOMETRIC_KINDS", "PERM_PREFIXES"]

GEOMETRIC_KINDS = ("scalar", "point", "vector", "pseudovector", "image", "edge_index", "multivector")
PERM_PREFIXES = {"node": (0,), "set": (1,), "pair": (1, 2), "nodepair": (0, 1)}


@dataclass(frozen=True)
class FieldType:
    """Parsed field type.

    Attributes
    ----------
    geom : str
        One of :data:`GEOMETRIC_KINDS`, ``"irreps"`` or ``"uniform"``.
    perm_axes : tuple of int
        Axes relabelled by permutations (empty when not permuted).
    irreps : str or None
        The irreps string when ``geom == "irreps"``.
    lmax : int or None
        The maximum degree when ``geom == "uniform"``.
    """

    geom: str
    perm_axes: tuple[int, ...] = ()
    irreps: str | None = None
    lmax: int | None = None

    def __str__(self) -> str:
        prefix = {v: k for k, v in PERM_PREFIXES.items()}.get(self.perm_axes)
        body = {"irreps": self.irreps, "uniform": f"uniform:{self.lmax}"}.get(self.geom, self.geom)
        return f"{prefix}:{body}" if prefix else str(body)


TypeLike = Union[str, FieldType]


def parse_type(t: TypeLike) -> FieldType:
    """Parse a type string (see the module docstring) into a :class:`FieldType`."""
    if isinstance(t, FieldType):
        return t
    if not isinstance(t, str):
        # Allow descriptor objects with an irreps string form (e.g. symformer.reps.Irreps).
        if hasattr(t, "dim") and hasattr(t, "__str__"):
            return FieldType("irreps", (), irreps=str(t))
        raise TypeError(f"field type must be a string or FieldType, got {type(t).__name__}")
    s = t.strip()
    perm_axes: tuple[int, ...] = ()
    head, _, rest = s.partition(":")
    if head in PERM_PREFIXES and rest:
        perm_axes, s = PERM_PREFIXES[head], rest
    if s in ("scalar", "invariant"):
        return FieldType("scalar", perm_axes)
    if s in GEOMETRIC_KINDS:
        return FieldType(s, perm_axes)
    if s.startswith("uniform:"):
        try:
            lmax = int(s.split(":", 1)[1])
        except ValueError:
            raise ValueError(f"bad uniform type {t!r}: expected 'uniform:L' with integer L") from None
        return FieldType("uniform", perm_axes, lmax=lmax)
    if any(c.isdigit() for c in s) and (s[-1] in "eoy"):
        return FieldType("irreps", perm_axes, irreps=s)
    raise ValueError(
        f"unknown field type {t!r}; expected one of {GEOMETRIC_KINDS}, an irreps string like "
        f"'8x0e+4x1o' or 'uniform:L', optionally prefixed by one of {tuple(PERM_PREFIXES)}"
    )
