"""A plain vision transformer: the baseline of the image benchmarks.

Non-overlapping patches are embedded linearly, a learned absolute positional embedding is
added, pre-LayerNorm transformer blocks follow, and the mean token goes through a LayerNorm and a
linear head::

    t   = W_patch * patches + pos          (B, N, dim)
    t  <- t + MHA(LN(t));  t <- t + MLP(LN(t))
    out = W_head LN(mean_n t)              (B, num_classes)

No symmetry is built in; it is registered with the trivial group C_1 (nothing to check).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from symformer.groups import Cyclic

from ._image_common import check_input, example_image, patch_grid, register_image, transformer_trunk
from ._transformer_block import TransformerBlock

# example_image is re-exported: it has been part of this module's public API
__all__ = ["ViT", "Block", "example_image"]


Block = TransformerBlock  # the name the image models have always used


@register_image("vit", group=lambda: Cyclic(1),
                description="Plain ViT classifier (baseline; no built-in symmetry)")
class ViT(nn.Module):
    """Plain ViT classifier ``(B, C, S, S)`` in [0, 1] -> logits ``(B, num_classes)``.

    Parameters
    ----------
    image_size, patch : int
        Square input side and patch side (``image_size % patch == 0``).
    dim, depth, heads, mlp_ratio : int
        Token width, number of blocks, attention heads, MLP expansion.
    """

    def __init__(self, *, image_size: int = 28, patch: int = 4, dim: int = 32, depth: int = 2,
                 heads: int = 2, mlp_ratio: int = 4, num_classes: int = 10,
                 in_channels: int = 1):
        super().__init__()
        g = patch_grid(image_size, patch)
        self.image_size, self.in_channels = image_size, in_channels
        self.embed = nn.Conv2d(in_channels, dim, patch, stride=patch)
        self.pos = nn.Parameter(torch.randn(1, g * g, dim) * 0.02)
        self.blocks, self.norm, self.head = transformer_trunk(
            lambda: Block(dim, heads, mlp_ratio), depth, dim, num_classes)

    def forward(self, image: Tensor) -> Tensor:
        """
        Parameters
        ----------
        image : Tensor, shape (B, in_channels, image_size, image_size), values in [0, 1]

        Returns
        -------
        Tensor, shape (B, num_classes): logits
        """
        check_input(self, image)
        t = self.embed(image).flatten(2).transpose(1, 2) + self.pos    # (B, N, dim)
        for blk in self.blocks:
            t = blk(t)
        return self.head(self.norm(t.mean(dim=1)))
