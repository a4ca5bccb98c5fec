"""Pure functions on tensors with documented shapes: spherical harmonics, Wigner D,
Clebsch-Gordan coefficients, tensor products (``symformer.primitives.tp``: CG, SO(2), Gaunt,
grid and CP backends behind one spec), radial bases, scatter/segment ops.

Conventions (identical to e3nn) are written down in ``docs/conventions.md``.
"""

from .clebsch_gordan import clebsch_gordan, is_triangle, wigner_3j
from .radial import (bessel_basis, cosine_cutoff, exp_without_subnormals, gaussian_basis,
                     polynomial_cutoff)
from .scatter import scatter_mean, scatter_sum, segment_softmax
from .so2 import (cg_to_so2_weights, m_major_rows, rotate_from_edge, rotate_to_edge,
                  so2_convolution, so2_linear, so2_num_coefficients, so2_rows)
from .spherical_harmonics import NORMALIZATIONS, sh_dim, spherical_harmonics
from .tensor_product import cg_tensor_product, cg_tensor_product_paths, sh_path_list
from . import ga  # noqa: F401  (geometric algebra: Cl(p,q,r), PGA)
from . import tp  # noqa: F401  (tensor-product specs and backends)
from .wigner import (edge_align_rotation, random_rotation, rotation_part, rotation_to_y,
                     wigner_D, wigner_D_blocks)

__all__ = [
    "spherical_harmonics", "sh_dim", "NORMALIZATIONS",
    "wigner_D", "wigner_D_blocks", "rotation_part", "random_rotation", "rotation_to_y",
    "edge_align_rotation",
    "clebsch_gordan", "wigner_3j", "is_triangle",
    "sh_path_list", "cg_tensor_product", "cg_tensor_product_paths",
    "gaussian_basis", "bessel_basis", "polynomial_cutoff", "cosine_cutoff", "exp_without_subnormals",
    "scatter_sum", "scatter_mean", "segment_softmax",
    "so2_rows", "m_major_rows", "so2_num_coefficients", "rotate_to_edge", "rotate_from_edge",
    "so2_linear", "so2_convolution", "cg_to_so2_weights",
]
