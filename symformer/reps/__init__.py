"""Immutable, data-free representation descriptors and feature layouts.

``Irrep`` / ``Irreps`` describe O(3) irreps (interoperable with e3nn); :mod:`.layout` converts
between e3nn's ``mul_ir`` layout and the uniform layout ``[..., (L+1)^2, C]``.
"""

from .irreps import Irrep, Irreps, MulIr

__all__ = ["Irrep", "Irreps", "MulIr"]
