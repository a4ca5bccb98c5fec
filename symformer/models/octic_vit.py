"""Octic ViT: a vision transformer exactly invariant to the 8 quarter turns and mirror images
of square inputs (D_4), after "Stronger ViTs With Octic Equivariance" (Nordenfors et al. 2025).

Every token carries ``copies`` regular representations of D_4 (width ``8 copies``); all layers
are D_4-equivariant (:mod:`symformer.layers.image.octic`); the positional embedding is
group-averaged so that it transforms like the tokens. The classifier reads 6 invariants per copy
of the mean token: the A1 coordinate, the magnitudes of A2, B1, B2 (signs flip under the group)
and the lengths of the two E vectors (rotated by the group)::

    t   = OcticPatchEmbed(image) + sym(pos)     (B, N, copies, 8)
    t  <- OcticBlock(t)  (depth times)
    z   = invariants(mean_n OcticLN(t))         (B, 6 copies)
    out = W_head LN(z)                          (B, num_classes), exactly D_4-invariant
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from symformer.groups import Octic
from symformer.layers.image.octic import OcticBlock, OcticLayerNorm, OcticPatchEmbed, symmetrize

from ._image_common import check_input, patch_grid, register_image

__all__ = ["OcticViT"]


@register_image("octic_vit", group=lambda: Octic(),
                description="Octic (D_4-invariant) ViT classifier")
class OcticViT(nn.Module):
    """D_4-invariant ViT classifier ``(B, C, S, S)`` in [0, 1] -> logits ``(B, num_classes)``.

    Parameters
    ----------
    image_size, patch : int
        Square input side and patch side (``image_size % patch == 0``).
    copies : int
        Regular-representation copies per token (token width ``8 * copies``).
    depth, heads, mlp_ratio : int
        Blocks, attention heads (dividing ``copies``), MLP expansion.
    """

    def __init__(self, *, image_size: int = 28, patch: int = 4, copies: int = 4, depth: int = 2,
                 heads: int = 2, mlp_ratio: int = 4, num_classes: int = 10,
                 in_channels: int = 1):
        super().__init__()
        g = patch_grid(image_size, patch)
        self.image_size, self.in_channels = image_size, in_channels
        self.embed = OcticPatchEmbed(patch, copies, in_channels)
        self.pos = nn.Parameter(torch.randn(copies, 8, g, g) * 0.02)
        self.blocks = nn.ModuleList(OcticBlock(copies, heads, mlp_ratio) for _ in range(depth))
        self.norm_tokens = OcticLayerNorm(copies)
        self.norm = nn.LayerNorm(6 * copies)
        self.head = nn.Linear(6 * copies, num_classes)

    def forward(self, image: Tensor) -> Tensor:
        """
        Parameters
        ----------
        image : Tensor, shape (B, in_channels, image_size, image_size), values in [0, 1]

        Returns
        -------
        Tensor, shape (B, num_classes): logits, invariant under D_4
        """
        check_input(self, image)
        pos = symmetrize(self.pos).flatten(2).permute(2, 0, 1)        # (N, copies, 8)
        t = self.embed(image) + pos                                     # (B, N, copies, 8)
        for blk in self.blocks:
            t = blk(t)
        t = self.norm_tokens(t).mean(dim=1)                             # (B, copies, 8)
        B, m = t.shape[:2]
        # |.| and lengths are smoothed at 0 (finite gradients); both stay exactly invariant
        e = t[..., 4:].reshape(B, m, 2, 2).pow(2).sum(-1).add(1e-12).sqrt()   # (B, m, 2)
        a = t[..., 1:4].pow(2).add(1e-12).sqrt()                                # (B, m, 3)
        z = torch.cat([t[..., :1], a, e], dim=-1).flatten(1)                    # (B, 6 m)
        return self.head(self.norm(z))
