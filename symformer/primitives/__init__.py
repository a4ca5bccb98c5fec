"""Pure functions on tensors with documented shapes: spherical harmonics, Wigner D,
Clebsch-Gordan coefficients, tensor products, radial bases, scatter/segment ops."""

from .spherical_harmonics import NORMALIZATIONS, sh_dim, spherical_harmonics
from .wigner import (edge_align_rotation, random_rotation, rotation_part, rotation_to_y,
                     wigner_D, wigner_D_blocks)

__all__ = ["NORMALIZATIONS", "sh_dim", "spherical_harmonics", "edge_align_rotation",
           "random_rotation", "rotation_part", "rotation_to_y", "wigner_D", "wigner_D_blocks"]
