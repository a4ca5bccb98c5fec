"""Image layers: octic (D_4) transformer layers, polyphase anchoring, p4m group convolutions,
Equivariant Transformer (canonical-coordinate) layers, scale-equivariant Fourier layers."""

from .etn import ETLayer, PoseCNN
from .group_conv import P4MConv, P4MLift, p4m_act, p4m_pool
from .octic import (OcticAttention, OcticBlock, OcticGELU, OcticLayerNorm, OcticLinear,
                    OcticPatchEmbed, octic_linear_flops, symmetrize)
from .polyphase import CircularRelativeBias, PolyphaseAnchor, polyphase_offsets, roll_images
from .scale_fourier import (ScaleFourierNet, ScaleGELU, SpectralConv2d, band_limit,
                            fourier_downscale)

__all__ = ["OcticLinear", "OcticLayerNorm", "OcticGELU", "OcticPatchEmbed", "OcticAttention",
           "OcticBlock", "symmetrize", "octic_linear_flops", "P4MLift", "P4MConv", "p4m_act",
           "p4m_pool", "PolyphaseAnchor", "CircularRelativeBias", "polyphase_offsets",
           "roll_images", "ETLayer", "PoseCNN", "SpectralConv2d", "ScaleGELU", "ScaleFourierNet",
           "fourier_downscale", "band_limit"]
