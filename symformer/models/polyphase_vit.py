"""Polyphase ViT: a vision transformer exactly invariant to cyclic shifts of its input.

After "Reviving Shift Equivariance in Vision Transformers" (Ding et al. 2025): adaptive
polyphase anchoring of the input (:class:`~symformer.layers.image.polyphase.PolyphaseAnchor`),
patch embedding, a depth-wise convolution with circular padding on the token grid as positional
encoding (as in the paper), transformer blocks with a circular relative attention bias, mean
pooling; nothing depends on absolute positions::

    x   = anchor(image)                           (B, C, S, S), shift fixed modulo patch
    t   = W_patch * patches(x)                    (B, dim, g, g)
    t  <- t + DWConv3x3_circular(t)               (B, N, dim) after flattening
    t  <- t + MHA(LN(t), bias=B[(i - j) mod g]);  t <- t + MLP(LN(t))
    out = W_head LN(mean_n t)                     (B, num_classes), shift-invariant
"""

from __future__ import annotations

from torch import Tensor, nn

from symformer.groups import CyclicShift
from symformer.layers.image.polyphase import CircularRelativeBias, PolyphaseAnchor

from ._image_common import check_input, patch_grid, register_image, transformer_trunk
from .vit import Block

__all__ = ["PolyphaseViT"]


@register_image("polyphase_vit", group=lambda m: CyclicShift(m.image_size, m.image_size),
                description="Shift-invariant ViT (adaptive polyphase anchoring)")
class PolyphaseViT(nn.Module):
    """Cyclic-shift-invariant ViT classifier ``(B, C, S, S)`` in [0, 1] -> logits.

    Parameters are those of :class:`symformer.models.vit.ViT`.
    """

    def __init__(self, *, image_size: int = 28, patch: int = 4, dim: int = 32, depth: int = 2,
                 heads: int = 2, mlp_ratio: int = 4, num_classes: int = 10,
                 in_channels: int = 1):
        super().__init__()
        g = patch_grid(image_size, patch)
        self.image_size, self.in_channels = image_size, in_channels
        self.anchor = PolyphaseAnchor(patch)
        self.embed = nn.Conv2d(in_channels, dim, patch, stride=patch)
        self.pos_conv = nn.Conv2d(dim, dim, 3, padding=1, padding_mode="circular", groups=dim)
        self.bias = nn.ModuleList(CircularRelativeBias(g, g, heads) for _ in range(depth))
        self.blocks, self.norm, self.head = transformer_trunk(
            lambda: Block(dim, heads, mlp_ratio), depth, dim, num_classes)

    def forward(self, image: Tensor) -> Tensor:
        """
        Parameters
        ----------
        image : Tensor, shape (B, in_channels, image_size, image_size), values in [0, 1]

        Returns
        -------
        Tensor, shape (B, num_classes): logits, invariant under cyclic shifts
        """
        check_input(self, image)
        t = self.embed(self.anchor(image))                               # (B, dim, g, g)
        t = (t + self.pos_conv(t)).flatten(2).transpose(1, 2)            # (B, N, dim)
        for blk, bias in zip(self.blocks, self.bias):
            t = blk(t, bias().to(t.dtype))
        return self.head(self.norm(t.mean(dim=1)))
