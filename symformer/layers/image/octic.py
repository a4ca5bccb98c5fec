"""D_4-equivariant (octic) layers for vision transformers on square images.

As in "Stronger ViTs With Octic Equivariance" (Nordenfors et al. 2025), token features carry a
representation of the octic group D_4. Here a token has ``m`` copies of the regular
representation, stored in the irreps layout of :mod:`._d4`: a tensor ``(..., m, 8)`` whose last
axis holds the coordinates (A1, A2, B1, B2, E, E). An image rotated or mirrored by ``g``
permutes the tokens spatially and maps every copy by the orthogonal ``D(g)``.

* :class:`OcticLinear`: by Schur's lemma an equivariant linear map only mixes copies of the same
  irrep: four ``m_out x m_in`` blocks (A1, A2, B1, B2) and one ``2 m_out x 2 m_in`` block shared
  by both coordinates of E. That is ``12 m_in m_out`` multiply-adds against ``64 m_in m_out``
  for a dense layer of the same width ``8 m`` (5.33x fewer FLOPs).
* :class:`OcticLayerNorm`: centres the invariant (A1) part, divides by the RMS of all
  coordinates (the norm is invariant because ``D(g)`` is orthogonal), per-irrep gains.
* :class:`OcticGELU`: GELU in the regular basis, where ``D(g)`` permutes coordinates.
* :class:`OcticPatchEmbed`, :func:`symmetrize`: patch embedding and positional embedding with
  weights projected onto the equivariant subspace by group averaging.
* :class:`OcticAttention`: heads are groups of whole copies, so ``q . k`` is invariant.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from . import _d4

__all__ = ["OcticLinear", "OcticLayerNorm", "OcticGELU", "OcticPatchEmbed", "OcticAttention",
           "OcticBlock", "symmetrize", "octic_linear_flops"]


def _check_copies(name: str, v: int) -> int:
    if isinstance(v, bool) or not isinstance(v, int) or v < 1:
        raise ValueError(f"{name} must be a positive int, got {v!r}")
    return v


def octic_linear_flops(in_copies: int, out_copies: int) -> tuple[int, int]:
    """Multiply-adds per token of (:class:`OcticLinear`, dense linear of the same width)."""
    return 12 * in_copies * out_copies, 64 * in_copies * out_copies


def symmetrize(t: Tensor) -> Tensor:
    """Project ``t`` onto the tensors fixed by every ``D(g) A(g)``.

    ``t`` has shape ``(m, 8, ..., s, s)``: ``D(g)`` acts on axis 1 (irreps layout) and the image
    action ``A(g)`` on the last two axes. The result ``(1/8) sum_g D(g) A(g) t`` satisfies
    ``D(g) A(g) t = t`` for all g.
    """
    if t.ndim < 4 or t.shape[1] != 8 or t.shape[-1] != t.shape[-2]:
        raise ValueError(f"symmetrize expects shape (m, 8, ..., s, s), got {tuple(t.shape)}")
    D = _d4.irreps_matrices(t.dtype, t.device)
    flat = t.flatten(2)
    out = torch.zeros_like(flat)
    for e in range(_d4.ORDER):
        out = out + torch.einsum("ab,mbx->max", D[e], _d4.act_image(t, e).flatten(2))
    return (out / _d4.ORDER).reshape(t.shape)


class OcticLinear(nn.Module):
    """Equivariant linear map ``(..., in_copies, 8) -> (..., out_copies, 8)``; the bias acts on
    the invariant A1 coordinates only."""

    def __init__(self, in_copies: int, out_copies: int, bias: bool = True):
        super().__init__()
        self.in_copies = _check_copies("in_copies", in_copies)
        self.out_copies = _check_copies("out_copies", out_copies)
        self.w1 = nn.Parameter(torch.randn(4, out_copies, in_copies) / math.sqrt(in_copies))
        self.wE = nn.Parameter(torch.randn(2 * out_copies, 2 * in_copies)
                               / math.sqrt(2 * in_copies))
        self.bias = nn.Parameter(torch.zeros(out_copies)) if bias else None

    def forward(self, x: Tensor) -> Tensor:
        """
        Parameters
        ----------
        x : Tensor, shape (..., in_copies, 8)

        Returns
        -------
        Tensor, shape (..., out_copies, 8)
        """
        if x.ndim < 2 or x.shape[-2:] != (self.in_copies, 8):
            raise ValueError(f"x must have shape (..., {self.in_copies}, 8), got "
                             f"{tuple(x.shape)}")
        lead = x.shape[:-2]
        one = torch.einsum("...ci,ioc->...oi", x[..., :4], self.w1)       # (..., m_out, 4)
        if self.bias is not None:
            one = torch.cat([one[..., :1] + self.bias[:, None], one[..., 1:]], -1)
        # E coordinates 4 + 2 j + i: copies (c, j) as rows, vector index i last.
        e = x[..., 4:].reshape(*lead, 2 * self.in_copies, 2)
        e = torch.einsum("...ci,oc->...oi", e, self.wE)                    # (..., 2 m_out, 2)
        return torch.cat([one, e.reshape(*lead, self.out_copies, 4)], -1)


class OcticLayerNorm(nn.Module):
    """Equivariant layer norm of ``(..., copies, 8)`` features."""

    def __init__(self, copies: int, eps: float = 1e-5):
        super().__init__()
        self.copies = _check_copies("copies", copies)
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(copies, 6))   # A1, A2, B1, B2, E col 0, E col 1
        self.bias = nn.Parameter(torch.zeros(copies))
        self.register_buffer("_expand", torch.tensor([0, 1, 2, 3, 4, 4, 5, 5]),
                             persistent=False)

    def forward(self, x: Tensor) -> Tensor:
        """``x`` : Tensor, shape (..., copies, 8) -> same shape."""
        if x.ndim < 2 or x.shape[-2:] != (self.copies, 8):
            raise ValueError(f"x must have shape (..., {self.copies}, 8), got {tuple(x.shape)}")
        a1 = x[..., :1] - x[..., :1].mean(dim=-2, keepdim=True)
        x = torch.cat([a1, x[..., 1:]], -1)
        rms = x.pow(2).mean(dim=(-2, -1), keepdim=True).add(self.eps).rsqrt()
        y = x * rms * self.weight[:, self._expand]
        return torch.cat([y[..., :1] + self.bias[:, None], y[..., 1:]], -1)


class OcticGELU(nn.Module):
    """GELU applied in the regular basis (where the group permutes coordinates)."""

    def forward(self, x: Tensor) -> Tensor:
        """``x`` : Tensor, shape (..., 8) -> same shape."""
        Q = _d4.regular_basis(x.dtype, x.device)
        return F.gelu(x @ Q) @ Q.T


class OcticPatchEmbed(nn.Module):
    """Non-overlapping ``patch x patch`` patches of ``[B, C, H, W]`` images -> octic tokens
    ``[B, (H/patch) (W/patch), copies, 8]`` (row-major over the patch grid)."""

    def __init__(self, patch: int, copies: int, in_channels: int = 1):
        super().__init__()
        self.patch = _check_copies("patch", patch)
        self.copies = _check_copies("copies", copies)
        self.in_channels = _check_copies("in_channels", in_channels)
        fan_in = in_channels * patch * patch
        self.weight = nn.Parameter(torch.randn(copies, 8, in_channels, patch, patch)
                                   * math.sqrt(8 / fan_in))
        self.bias = nn.Parameter(torch.zeros(copies))

    def forward(self, image: Tensor) -> Tensor:
        """
        Parameters
        ----------
        image : Tensor, shape (B, in_channels, H, W) with H == W divisible by ``patch``

        Returns
        -------
        Tensor, shape (B, (H / patch) * (W / patch), copies, 8)
        """
        if image.ndim != 4 or image.shape[1] != self.in_channels:
            raise ValueError(f"image must have shape (B, {self.in_channels}, H, W), got "
                             f"{tuple(image.shape)}")
        H, W = image.shape[-2:]
        if H != W or H % self.patch:
            raise ValueError(f"image must be square with a side divisible by patch="
                             f"{self.patch} (exact D_4 action), got {H}x{W}")
        K = symmetrize(self.weight).flatten(0, 1)                     # (8 m, C, p, p)
        b = torch.zeros(self.copies, 8, dtype=image.dtype, device=image.device)
        b = torch.cat([self.bias[:, None], b[:, 1:]], -1).flatten()
        t = F.conv2d(image, K, b, stride=self.patch)                  # (B, 8 m, Hp, Wp)
        return t.flatten(2).transpose(1, 2).unflatten(-1, (self.copies, 8))


class OcticAttention(nn.Module):
    """Multi-head self-attention on ``(B, N, copies, 8)`` tokens; each head holds
    ``copies / heads`` whole copies so that its logits are D_4-invariant."""

    def __init__(self, copies: int, heads: int):
        super().__init__()
        _check_copies("copies", copies)
        if isinstance(heads, bool) or not isinstance(heads, int) or heads < 1 or copies % heads:
            raise ValueError(f"heads must be a positive divisor of copies={copies}, got {heads!r}")
        self.copies, self.heads = copies, heads
        self.qkv = OcticLinear(copies, 3 * copies)
        self.proj = OcticLinear(copies, copies)

    def forward(self, x: Tensor) -> Tensor:
        """``x`` : Tensor, shape (B, N, copies, 8) -> same shape."""
        B, N = x.shape[:2]
        q, k, v = self.qkv(x).reshape(B, N, 3, self.heads, -1).permute(2, 0, 3, 1, 4)
        y = F.scaled_dot_product_attention(q, k, v)                   # (B, heads, N, d)
        return self.proj(y.transpose(1, 2).reshape(B, N, self.copies, 8))


class OcticBlock(nn.Module):
    """Pre-norm transformer block of octic layers: attention, then an MLP with GELU in the
    regular basis."""

    def __init__(self, copies: int, heads: int, mlp_ratio: int = 4):
        super().__init__()
        self.norm1, self.norm2 = OcticLayerNorm(copies), OcticLayerNorm(copies)
        self.attn = OcticAttention(copies, heads)
        self.mlp = nn.Sequential(OcticLinear(copies, mlp_ratio * copies), OcticGELU(),
                                 OcticLinear(mlp_ratio * copies, copies))

    def forward(self, x: Tensor) -> Tensor:
        """``x`` : Tensor, shape (B, N, copies, 8) -> same shape."""
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))
