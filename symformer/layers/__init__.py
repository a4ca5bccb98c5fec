"""Thin modules over primitives that own parameters; all registered as ``kind="layer"``."""

from .gate import Gate
from .linear import EquivariantLinear
from .norm import EquivariantRMSNorm

__all__ = ["EquivariantLinear", "Gate", "EquivariantRMSNorm"]
