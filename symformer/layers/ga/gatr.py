"""GATr blocks and the GATr network (Brehmer, de Haan, Behrends & Cohen, NeurIPS 2023).

One block (pre-norm residual, as in the paper)::

    (x, s) <- (x, s) + Attention(LayerNorm(x, s))
    (x, s) <- (x, s) + Linear(GatedGELU(GeometricBilinear(LayerNorm(x, s), ref)))

with ``ref`` the mean of the block's input over tokens and channels (for the equivariant
join). Every piece is Pin(3,0,1)-equivariant, so the network is E(3)-equivariant (reflections
included) as a map of multivectors.
"""

from __future__ import annotations

from torch import Tensor, nn

from .attention import GAAttention
from .equi_linear import EquiLinear
from .ops import EquiLayerNorm, GeometricBilinear, ScalarGatedGELU, reference_multivector

__all__ = ["GATrBlock", "GATrNet"]


class GATrBlock(nn.Module):
    """One GATr block on ``mv`` multivector and ``s`` scalar channels (see module docstring).

    Parameters
    ----------
    mv, s : int
        Channels (``mv`` even).
    heads : int
        Attention heads (each with ``max(mv // heads, 1)`` multivector and
        ``max(s // heads, 1)`` scalar channels).
    distance_aware : bool
        Distance-aware attention for points.
    """

    def __init__(self, mv: int, s: int, *, heads: int = 4, distance_aware: bool = False):
        super().__init__()
        self.norm1, self.norm2 = EquiLayerNorm(), EquiLayerNorm()
        self.attention = GAAttention(mv, mv, s, s, heads=heads, hidden_mv=max(mv // heads, 1),
                                     hidden_s=max(s // heads, 1), distance_aware=distance_aware)
        self.bilinear = GeometricBilinear(mv, 2 * mv, s, 2 * s)
        self.gelu = ScalarGatedGELU()
        self.linear = EquiLinear(2 * mv, mv, 2 * s, s)

    def forward(self, x: Tensor, s: Tensor, mask: Tensor | None = None
                ) -> tuple[Tensor, Tensor]:
        """x (B, N, mv, 16), s (B, N, s), mask as :class:`GAAttention` -> same shapes."""
        ref = reference_multivector(x, mask)  # (B, 1, 1, 16)
        hx, hs = self.attention(*self.norm1(x, s), mask=mask)
        x, s = x + hx, s + hs
        hx, hs = self.bilinear(*self.norm2(x, s), ref)
        hx, hs = self.linear(*self.gelu(hx, hs))
        return x + hx, s + hs


class GATrNet(nn.Module):
    """Input linear map, ``blocks`` GATr blocks, output linear map.

    Parameters
    ----------
    in_mv, out_mv, in_s, out_s : int
        Input and output channels.
    hidden_mv, hidden_s : int
        Width of the blocks (16 and 32 in the GATr paper's n-body setup).
    blocks, heads : int
        Depth and attention heads.
    distance_aware : bool
        Distance-aware attention.
    """

    def __init__(self, in_mv: int, out_mv: int, in_s: int, out_s: int, *, hidden_mv: int = 16,
                 hidden_s: int = 32, blocks: int = 4, heads: int = 4,
                 distance_aware: bool = False):
        super().__init__()
        if isinstance(blocks, bool) or not isinstance(blocks, int) or blocks < 0:
            raise ValueError(f"blocks: expected an int >= 0, got {blocks!r}")
        if hidden_mv < 2 or hidden_mv % 2:
            raise ValueError(f"hidden_mv: expected an even int >= 2, got {hidden_mv!r}")
        self.inp = EquiLinear(in_mv, hidden_mv, in_s, hidden_s)
        self.blocks = nn.ModuleList(GATrBlock(hidden_mv, hidden_s, heads=heads,
                                              distance_aware=distance_aware)
                                    for _ in range(blocks))
        self.out = EquiLinear(hidden_mv, out_mv, hidden_s, out_s)

    def forward(self, x: Tensor, s: Tensor, mask: Tensor | None = None
                ) -> tuple[Tensor, Tensor]:
        """x (B, N, in_mv, 16), s (B, N, in_s), mask (B, N) or (B, 1, N, N) bool ->
        (B, N, out_mv, 16), (B, N, out_s)."""
        x, s = self.inp(x, s)
        for block in self.blocks:
            x, s = block(x, s, mask)
        return self.out(x, s)
