"""Equivariant linear map on the uniform spherical layout."""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from ..registry import register
from ._uniform import check_uniform, uniform_example

__all__ = ["EquivariantLinear"]


def _o3_nodes(module):
    from ..groups import O3, Symmetric
    return O3() * Symmetric(6)


@register("equivariant_linear", kind="layer", group=_o3_nodes,
          in_types={"x": "node:uniform:2"}, out_types="node:uniform:2",
          example_inputs=uniform_example,
          description="per-degree channel mixing of [N, (L+1)^2, C] features")
class EquivariantLinear(nn.Module):
    """Mix channels within each degree: ``y_l = x_l W_l`` (+ bias on l = 0).

    Any linear map commuting with O(3) on ``[..., (L+1)^2, C]`` (natural parity) has this form
    (Schur's lemma), so this is the most general equivariant linear layer of the layout.

    Parameters
    ----------
    lmax : int
        Maximum degree L.
    in_channels, out_channels : int
        Channels C_in, C_out.
    bias : bool
        Learnable bias on the invariant (l = 0) row.
    """

    def __init__(self, *, lmax: int = 2, in_channels: int = 8, out_channels: int = 8,
                 bias: bool = True):
        super().__init__()
        if lmax < 0 or in_channels < 1 or out_channels < 1:
            raise ValueError(f"lmax >= 0 and channels >= 1 required, got lmax={lmax}, "
                             f"in_channels={in_channels}, out_channels={out_channels}")
        self.lmax, self.in_channels, self.out_channels = lmax, in_channels, out_channels
        # Unit-variance outputs for unit-variance inputs.
        self.weight = nn.Parameter(torch.randn(lmax + 1, in_channels, out_channels)
                                   / math.sqrt(in_channels))
        self.bias = nn.Parameter(torch.zeros(out_channels)) if bias else None

    def forward(self, x: Tensor) -> Tensor:
        """x : [..., (L+1)^2, C_in] -> [..., (L+1)^2, C_out]."""
        check_uniform("x", x, self.lmax, self.in_channels)
        blocks = []
        for l in range(self.lmax + 1):
            blocks.append(x[..., l * l:(l + 1) ** 2, :] @ self.weight[l])  # [..., 2l+1, C_out]
        out = torch.cat(blocks, dim=-2)
        if self.bias is not None:
            out = torch.cat([out[..., :1, :] + self.bias, out[..., 1:, :]], dim=-2)
        return out

    def extra_repr(self) -> str:
        return f"lmax={self.lmax}, in_channels={self.in_channels}, out_channels={self.out_channels}"
