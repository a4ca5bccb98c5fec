"""Scalar-gated nonlinearity on the uniform spherical layout."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ..registry import register
from ._uniform import check_uniform, uniform_example
from .linear import _o3_nodes

__all__ = ["Gate"]


@register("gate", kind="layer", group=_o3_nodes,
          in_types={"x": "node:uniform:2"}, out_types="node:uniform:2",
          example_inputs=uniform_example,
          description="SiLU on scalars, sigmoid gates from scalars on degrees l > 0")
class Gate(nn.Module):
    """Equivariant nonlinearity: ``y_0 = silu(x_0)``, ``y_l = x_l * sigmoid(g_l(x_0))``.

    The gates are computed from the invariant row only, so multiplying a degree-l block by them
    commutes with every rotation and reflection.

    Parameters
    ----------
    lmax : int
        Maximum degree L.
    in_channels : int
        Channels C (unchanged by the layer).
    """

    def __init__(self, *, lmax: int = 2, in_channels: int = 8):
        super().__init__()
        self.lmax, self.in_channels = lmax, in_channels
        self.gates = nn.Linear(in_channels, lmax * in_channels) if lmax > 0 else None

    def forward(self, x: Tensor) -> Tensor:
        """x : [..., (L+1)^2, C] -> [..., (L+1)^2, C]."""
        check_uniform("x", x, self.lmax, self.in_channels)
        scalars = x[..., 0, :]                                      # [..., C]
        out = [torch.nn.functional.silu(scalars).unsqueeze(-2)]
        if self.gates is not None:
            g = torch.sigmoid(self.gates(scalars))                  # [..., L*C]
            g = g.unflatten(-1, (self.lmax, self.in_channels))      # [..., L, C]
            for l in range(1, self.lmax + 1):
                out.append(x[..., l * l:(l + 1) ** 2, :] * g[..., l - 1, None, :])
        return torch.cat(out, dim=-2)
