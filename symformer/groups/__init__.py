"""Symmetry groups and the field types they act on.

Every group samples batches of elements (:class:`Element`, plain tensors), composes and
inverts them, and acts on typed tensors (see :mod:`symformer.groups.types`)::

    G = E3() * Symmetric(5)
    g = G.sample(1, kind="reflection")
    pos2 = G.act(g, pos, "node:point")
"""

from .base import Element, Group, ProductGroup
from .euclidean import E3, O3, SE3, SO3
from .permutation import Symmetric
from .planar import O2, SO2, Cyclic, CyclicShift, Dihedral, Octic
from .scaling import Scaling
from .types import GEOMETRIC_KINDS, PERM_PREFIXES, FieldType, parse_type

__all__ = [
    "Element", "Group", "ProductGroup", "FieldType", "parse_type", "GEOMETRIC_KINDS",
    "PERM_PREFIXES", "SO3", "O3", "SE3", "E3", "SO2", "O2", "Cyclic", "Dihedral", "Octic",
    "CyclicShift", "Symmetric", "Scaling",
]
