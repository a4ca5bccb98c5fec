"""GATr's nonlinear pieces: geometric bilinear layer, scalar-gated GELU, equivariant norm."""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from symformer.primitives.ga import BLADE, NON_E0_BLADES, PGA, bilinear, equi_join

from .equi_linear import EquiLinear

__all__ = ["GeometricBilinear", "ScalarGatedGELU", "EquiLayerNorm", "reference_multivector"]


def reference_multivector(x: Tensor, mask: Tensor | None = None) -> Tensor:
    """Mean of tokens ``x`` (B, N, C, 16) over tokens and channels, shape (B, 1, 1, 16): the
    reference whose pseudoscalar makes the join reflection-equivariant. With ``mask`` (B, N)
    bool only real tokens count (so padding does not change the result)."""
    if mask is None or mask.ndim != 2:
        return x.mean(dim=(1, 2), keepdim=True)
    w = mask.to(x.dtype)[:, :, None, None]  # (B, N, 1, 1)
    count = (w.sum(dim=1, keepdim=True) * x.shape[2]).clamp(min=1)
    return (x * w).sum(dim=(1, 2), keepdim=True) / count


class GeometricBilinear(nn.Module):
    """``x -> Linear(cat[gp(L1 x, R1 x), equi_join(L2 x, R2 x, ref)])`` (GATr).

    Parameters
    ----------
    in_mv, out_mv, in_s, out_s : int
        Channels; ``out_mv`` must be even (half from geometric products, half from joins).
    """

    def __init__(self, in_mv: int, out_mv: int, in_s: int = 0, out_s: int = 0):
        super().__init__()
        if out_mv < 2 or out_mv % 2:
            raise ValueError(f"out_mv: expected an even int >= 2, got {out_mv!r}")
        self.half = out_mv // 2
        self.proj = EquiLinear(in_mv, 4 * self.half, in_s, 0)
        self.out = EquiLinear(out_mv, out_mv, in_s, out_s)
        self.in_s = in_s

    def forward(self, x: Tensor, s: Tensor | None, reference: Tensor) -> tuple[Tensor, Tensor]:
        """x (..., in_mv, 16), s (..., in_s), reference (..., 1, 16) broadcastable ->
        (y (..., out_mv, 16), s (..., out_s))."""
        h, _ = self.proj(x, s)  # (..., 4 half, 16)
        l1, r1, l2, r2 = h.split(self.half, dim=-2)
        gp = bilinear(l1, r1, PGA.cayley(x.dtype, x.device))
        jn = equi_join(l2, r2, reference)
        return self.out(torch.cat([gp, jn], dim=-2), s)


class ScalarGatedGELU(nn.Module):
    """``x -> x * gelu(<x>_0)`` per channel, and ``gelu`` on scalar channels."""

    def forward(self, x: Tensor, s: Tensor) -> tuple[Tensor, Tensor]:
        """x (..., C, 16), s (..., S) -> same shapes."""
        scalar = BLADE["1"]
        return x * F.gelu(x[..., scalar:scalar + 1]), F.gelu(s)


class EquiLayerNorm(nn.Module):
    """``x / sqrt(mean_c <x_c, x_c> + eps)`` with the invariant inner product (blades
    without e0); scalar channels get an ordinary layer norm (no affine part)."""

    def __init__(self, eps: float = 1e-6):
        super().__init__()
        self.eps = float(eps)

    def forward(self, x: Tensor, s: Tensor) -> tuple[Tensor, Tensor]:
        """x (..., C, 16), s (..., S) -> same shapes."""
        sq = x[..., list(NON_E0_BLADES)].square().sum(-1).mean(-1, keepdim=True)  # (..., 1)
        x = x / torch.sqrt(sq + self.eps)[..., None]
        if s.shape[-1]:
            s = F.layer_norm(s, s.shape[-1:], eps=self.eps)
        return x, s
