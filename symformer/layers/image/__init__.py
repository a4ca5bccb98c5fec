"""Image layers: octic (D_4) transformer layers, polyphase anchoring, p4m group convolutions,
Equivariant Transformer (canonical-coordinate) layers."""

from .octic import (OcticAttention, OcticBlock, OcticGELU, OcticLayerNorm, OcticLinear,
                    OcticPatchEmbed, octic_linear_flops, symmetrize)

__all__ = ["OcticLinear", "OcticLayerNorm", "OcticGELU", "OcticPatchEmbed", "OcticAttention",
           "OcticBlock", "symmetrize", "octic_linear_flops"]
