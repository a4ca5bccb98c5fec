"""Immutable, data-free representation descriptors and feature layouts.

``Irrep`` / ``Irreps`` describe O(3) irreps (interoperable with e3nn); :mod:`.layout` converts
between e3nn's ``mul_ir`` layout ``[..., dim]`` and the uniform layout ``[..., (L+1)^2, C]``.
"""

from .irreps import Irrep, Irreps, MulIr
from .layout import from_uniform, to_uniform, uniform_irreps, uniform_shape

__all__ = ["Irrep", "Irreps", "MulIr", "uniform_irreps", "uniform_shape", "to_uniform",
           "from_uniform"]
