"""Thin modules over primitives that own parameters; all registered as ``kind="layer"``."""

from . import ga  # noqa: F401  (GATr and Clifford-group layers)
from . import image  # noqa: F401  (image layers: octic, p4m, polyphase, ETN, Fourier scale)
from .equiformer_attention import EquiformerAttention
from .gate import Gate
from .linear import EquivariantLinear
from .norm import EquivariantRMSNorm
from .s2_activation import SeparableS2Activation
from .se3_attention import SE3AttentionBlock
from .so2_conv import SO2Convolution
from .spherical import SphericalHarmonics, TensorProduct
from .tensor_product import EquivariantTensorProduct
from .tfn import TFNConv

__all__ = ["EquivariantLinear", "Gate", "EquivariantRMSNorm", "SO2Convolution",
           "SeparableS2Activation", "EquiformerAttention", "SphericalHarmonics",
           "TensorProduct", "TFNConv", "SE3AttentionBlock", "EquivariantTensorProduct"]
