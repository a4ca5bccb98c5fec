"""Tensor products behind one interface: a declarative :class:`TensorProductSpec` (e3nn
semantics, ``mul_ir`` layout) and pluggable backends (``cg``, ``so2``, ``grid``, ``gaunt``,
``cp``) chosen by :func:`tensor_product`. What each backend computes, and how it relates to the
CG product, is in ``docs/tensor_products.md`` and each backend's module docstring.
"""

from .cp import cp_residuals
from .dispatch import BACKENDS, available_backends, choose_backend, tensor_product
from .expressivity import bilinear_tensor, expressivity
from .grid import gaunt_path_weight, gaunt_paths, gaunt_spec, sphere_grid
from .so2 import so2_edge_message
from .spec import MODES, Instruction, TensorProductSpec

__all__ = ["TensorProductSpec", "Instruction", "MODES", "BACKENDS", "tensor_product",
           "available_backends", "choose_backend", "gaunt_spec", "gaunt_path_weight",
           "gaunt_paths", "sphere_grid", "so2_edge_message", "cp_residuals", "bilinear_tensor",
           "expressivity"]
