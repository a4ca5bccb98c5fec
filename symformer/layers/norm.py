"""Equivariant RMS layer norm on the uniform spherical layout (EquiformerV2 style)."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ..registry import register
from ._uniform import check_uniform, degree_index, uniform_example
from .linear import _o3_nodes

__all__ = ["EquivariantRMSNorm"]


@register("equivariant_rms_norm", kind="layer", group=_o3_nodes,
          in_types={"x": "node:uniform:2"}, out_types="node:uniform:2",
          example_inputs=uniform_example,
          description="RMS norm with every degree weighted equally, learnable per-degree scale")
class EquivariantRMSNorm(nn.Module):
    """``y = x / rms(x) * w_l`` with the invariant row centred first.

    The RMS is taken over channels and components with each degree contributing equally
    (a component of degree l weighs ``1 / ((2l + 1)(L + 1))``), so high degrees with many
    components do not dominate. Norms of whole degree blocks are rotation invariant, and the
    learnable scale ``w_l`` is per degree and channel, so the layer is O(3)-equivariant.

    Parameters
    ----------
    lmax : int
        Maximum degree L.
    in_channels : int
        Channels C.
    eps : float
        Added to the mean square for stability.
    """

    def __init__(self, *, lmax: int = 2, in_channels: int = 8, eps: float = 1e-6,
                 center: bool = True):
        super().__init__()
        self.lmax, self.in_channels, self.eps, self.center = lmax, in_channels, eps, center
        self.weight = nn.Parameter(torch.ones(lmax + 1, in_channels))
        deg = degree_index(lmax)
        self.register_buffer("degree", deg, persistent=False)
        self.register_buffer("balance", 1.0 / ((2 * deg + 1) * (lmax + 1)).double(),
                             persistent=False)

    def forward(self, x: Tensor) -> Tensor:
        """x : [..., (L+1)^2, C] -> [..., (L+1)^2, C]."""
        check_uniform("x", x, self.lmax, self.in_channels)
        if self.center:
            x0 = x[..., :1, :] - x[..., :1, :].mean(dim=-1, keepdim=True)
            x = torch.cat([x0, x[..., 1:, :]], dim=-2)
        balance = self.balance.to(x.dtype)                          # [(L+1)^2]
        ms = (x.pow(2).mean(dim=-1) * balance).sum(dim=-1)          # [...]
        scale = torch.rsqrt(ms + self.eps)[..., None, None]
        return x * scale * self.weight[self.degree]
