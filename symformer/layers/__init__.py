"""Thin modules over primitives that own parameters; all registered as ``kind="layer"``."""

from .equiformer_attention import EquiformerAttention
from .gate import Gate
from .linear import EquivariantLinear
from .norm import EquivariantRMSNorm
from .s2_activation import SeparableS2Activation
from .so2_conv import SO2Convolution
from .spherical import SphericalHarmonics, TensorProduct

__all__ = ["EquivariantLinear", "Gate", "EquivariantRMSNorm", "SO2Convolution",
           "SeparableS2Activation", "EquiformerAttention", "SphericalHarmonics",
           "TensorProduct"]
