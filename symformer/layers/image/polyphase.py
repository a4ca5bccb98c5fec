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


def _lexmax(v: Tensor) -> int:
    """Index of the lexicographically largest row of ``v`` (n, L); exact comparisons only."""
    idx = torch.arange(v.shape[0], device=v.device)
    for j in range(v.shape[1]):
        col = v[idx, j]
        idx = idx[col == col.max()]
        if len(idx) == 1:
            break
    return int(idx[0])


def _break_tie(image: Tensor, offsets: Tensor, patch: int) -> int:
    """Among tied ``offsets`` (n, 2), the one whose anchored image has the largest canonical
    form under shifts of the patch grid (the lexicographic maximum over those shifts). Only the
    pixel values are compared, so the choice follows the image under any cyclic shift."""
    C, H, W = image.shape
    forms = []
    for a, b in offsets.tolist():
        anchored = torch.roll(image, (-a, -b), dims=(-2, -1))
        shifted = torch.stack([torch.roll(anchored, (r, c), dims=(-2, -1)).flatten()
                               for r in range(0, H, patch) for c in range(0, W, patch)])
        forms.append(shifted[_lexmax(shifted)])
    return _lexmax(torch.stack(forms))


def polyphase_offsets(image: Tensor, patch: int) -> Tensor:
    """Offset ``(a, b)`` of the highest-energy polyphase component of each image.

    The energy of a component is summed in sorted order, so that it does not depend on where
    its pixels sit (a shifted image gives bit-identical energies). Exact ties, which quantised
    images do produce (about 1% of MNIST digits), are broken by :func:`_break_tie`.

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
    x = image.detach()
    comps = x.reshape(B, C, H // patch, patch, W // patch, patch).permute(0, 3, 5, 1, 2, 4)
    energy = comps.reshape(B, patch * patch, -1).to(torch.float64).pow(2).sort(-1).values.sum(-1)
    tied = energy == energy.max(dim=1, keepdim=True).values                # (B, patch^2)
    k = tied.to(torch.int64).argmax(dim=1)
    for i in torch.nonzero(tied.sum(dim=1) > 1).flatten().tolist():
        cands = torch.nonzero(tied[i]).flatten()
        offs = torch.stack([cands // patch, cands % patch], dim=-1)
        k[i] = cands[_break_tie(x[i], offs, patch)]
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
