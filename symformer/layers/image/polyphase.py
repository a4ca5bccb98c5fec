"""Adaptive polyphase anchoring and circular relative position bias: the two pieces that make
a patch-based vision transformer exactly invariant to cyclic shifts.

After "Reviving Shift Equivariance in Vision Transformers" (Ding et al. 2025): non-overlapping
``p x p`` patches see only the shift modulo ``p``. Of the ``p^2`` polyphase components
``x[..., a::p, b::p]`` we pick the one with the largest energy and roll the image so that it
sits at offset (0, 0). A cyclic shift of the input permutes the components (the same one wins),
so the anchored image differs from the anchored original by a shift that is a multiple of ``p``,
i.e. a cyclic shift of the patch grid. Attention with a bias that depends only on the cyclic
offset between two patches (and no absolute position) is equivariant to those grid shifts, and
mean pooling makes the classifier invariant.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

__all__ = ["polyphase_offsets", "roll_images", "PolyphaseAnchor", "CircularRelativeBias"]


def polyphase_offsets(image: Tensor, patch: int) -> Tensor:
    """Offset ``(a, b)`` of the highest-energy polyphase component of each image.

    Parameters
    ----------
    image : Tensor, shape (B, C, H, W) with H and W divisible by ``patch``

    Returns
    -------
    Tensor, shape (B, 2), int64 in [0, patch)
    """
    B, C, H, W = image.shape
    if H % patch or W % patch:
        raise ValueError(f"image sides {H}x{W} must be divisible by patch={patch}")
    # energies in float64 so that the argmax does not depend on summation order
    x = image.detach().to(torch.float64).reshape(B, C, H // patch, patch, W // patch, patch)
    energy = x.pow(2).sum(dim=(1, 2, 4)).flatten(1)                  # (B, patch * patch)
    k = energy.argmax(dim=1)
    return torch.stack([k // patch, k % patch], dim=-1)


def roll_images(image: Tensor, shift: Tensor) -> Tensor:
    """Per-image ``torch.roll(image[b], shift[b], dims=(-2, -1))``.

    Parameters
    ----------
    image : Tensor, shape (B, C, H, W)
    shift : Tensor, shape (B, 2), int64

    Returns
    -------
    Tensor, shape (B, C, H, W)
    """
    B, C, H, W = image.shape
    rows = (torch.arange(H, device=image.device)[None, :] - shift[:, :1]) % H     # (B, H)
    cols = (torch.arange(W, device=image.device)[None, :] - shift[:, 1:]) % W     # (B, W)
    idx = (rows[:, :, None] * W + cols[:, None, :]).reshape(B, 1, H * W).expand(B, C, H * W)
    return image.reshape(B, C, H * W).gather(2, idx).reshape(B, C, H, W)


class PolyphaseAnchor(nn.Module):
    """Roll each image so that its highest-energy ``patch``-polyphase component is at (0, 0)."""

    def __init__(self, patch: int):
        super().__init__()
        if isinstance(patch, bool) or not isinstance(patch, int) or patch < 1:
            raise ValueError(f"patch must be a positive int, got {patch!r}")
        self.patch = patch

    def forward(self, image: Tensor) -> Tensor:
        """``image`` : Tensor, shape (B, C, H, W) -> anchored image, same shape."""
        return roll_images(image, -polyphase_offsets(image, self.patch))


class CircularRelativeBias(nn.Module):
    """Learned attention bias ``(heads, N, N)`` on a ``gh x gw`` token grid (row-major) that
    depends only on the cyclic offset between query and key patches."""

    def __init__(self, gh: int, gw: int, heads: int):
        super().__init__()
        self.gh, self.gw, self.heads = gh, gw, heads
        self.table = nn.Parameter(torch.zeros(heads, gh, gw))
        r = torch.arange(gh).repeat_interleave(gw)
        c = torch.arange(gw).repeat(gh)
        self.register_buffer("_index", (((r[:, None] - r[None, :]) % gh) * gw
                                        + (c[:, None] - c[None, :]) % gw), persistent=False)

    def forward(self) -> Tensor:
        """The bias, shape (heads, gh * gw, gh * gw)."""
        return self.table.flatten(1)[:, self._index]
