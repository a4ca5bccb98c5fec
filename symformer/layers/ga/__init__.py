"""Geometric-algebra layers: GATr (PGA G(3,0,1)) and Clifford-group networks over Cl(p,q,r).

GATr: :class:`EquiLinear`, :class:`GeometricBilinear`, :class:`ScalarGatedGELU`,
:class:`EquiLayerNorm`, :class:`GAAttention`, :class:`GATrBlock`, :class:`GATrNet`.
Clifford-group equivariant networks (CGENN, Ruhe et al.) and their parameter-light variant
(GLGENN): :class:`CliffordLinear`, :class:`CliffordGeometricProduct`, :class:`CliffordSiLU`,
:class:`CliffordLayerNorm`, :class:`CliffordBlock` (``subspaces="grade"`` or ``"quaternion"``).
"""

from .attention import GAAttention, distance_features
from .clifford import (CliffordBlock, CliffordGeometricProduct, CliffordLayerNorm, CliffordLinear,
                       CliffordSiLU, subspace_index)
from .equi_linear import EquiLinear, basis_maps
from .gatr import GATrBlock, GATrNet
from .ops import EquiLayerNorm, GeometricBilinear, ScalarGatedGELU, reference_multivector

__all__ = ["EquiLinear", "basis_maps", "GeometricBilinear", "ScalarGatedGELU", "EquiLayerNorm",
           "reference_multivector", "GAAttention", "distance_features", "GATrBlock", "GATrNet",
           "CliffordLinear", "CliffordGeometricProduct", "CliffordSiLU", "CliffordLayerNorm",
           "CliffordBlock", "subspace_index"]
