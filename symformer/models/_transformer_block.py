"""The pre-LayerNorm transformer block shared by the plain (non-equivariant) token models: the
n-body "no graph priors" baseline and the image ViTs."""

from __future__ import annotations

from torch import Tensor, nn
from torch.nn import functional as F

__all__ = ["TransformerBlock"]


class TransformerBlock(nn.Module):
    """Pre-LayerNorm multi-head self-attention plus MLP on ``(B, N, dim)`` tokens.

    Parameters
    ----------
    dim : int
        Token width (divisible by ``heads``).
    heads : int
        Attention heads.
    mlp_ratio : int
        Hidden width of the MLP as a multiple of ``dim``.
    """

    def __init__(self, dim: int, heads: int, mlp_ratio: int = 4):
        super().__init__()
        if dim % heads:
            raise ValueError(f"dim={dim} must be divisible by heads={heads}")
        self.heads = heads
        self.norm1, self.norm2 = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)
        self.mlp = nn.Sequential(nn.Linear(dim, mlp_ratio * dim), nn.GELU(),
                                 nn.Linear(mlp_ratio * dim, dim))

    def forward(self, t: Tensor, mask: Tensor | None = None) -> Tensor:
        """
        Parameters
        ----------
        t : Tensor, shape (B, N, dim)
        mask : Tensor or None; broadcastable to (B, heads, N, N): bool (True where query n may
            attend to key m) or an additive float attention bias.

        Returns
        -------
        Tensor, shape (B, N, dim)
        """
        B, N, d = t.shape
        q, k, v = self.qkv(self.norm1(t)).reshape(B, N, 3, self.heads, -1).permute(2, 0, 3, 1, 4)
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)  # (B, heads, N, d / heads)
        t = t + self.proj(y.transpose(1, 2).reshape(B, N, d))
        return t + self.mlp(self.norm2(t))
