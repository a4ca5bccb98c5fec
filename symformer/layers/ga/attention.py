"""Multi-head geometric-algebra attention through ``scaled_dot_product_attention`` (GATr).

Queries and keys are compared with the E(3)-invariant inner product of multivectors (the 8
blades without e0, all with metric weight +1), plus ordinary dot products of scalar channels,
so the logits are invariant and the attention runs through torch's fused SDPA kernels (memory
linear in the number of tokens on the memory-efficient / flash paths). The optional
distance-aware term adds ``-|p_q - p_k|^2`` for the points ``p`` held in the trivector part of each
query/key channel, through features ``phi(q) . psi(k)`` (homogeneous, so it is multiplied by
``w_q^2 w_k^2`` with ``w`` the e123 components; invariant under reflections too).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from symformer.primitives.ga import BLADE, NON_E0_BLADES, blade_index

from .equi_linear import EquiLinear

__all__ = ["GAAttention", "distance_features"]

_TRI = blade_index("e023", "e013", "e012")


def distance_features(x: Tensor) -> tuple[Tensor, Tensor]:
    """Query and key features of the trivector part, ``phi(q) . psi(k) = -w_q^2 w_k^2
    |p_q - p_k|^2``; x : Tensor, shape (..., C, 16). Returns two tensors (..., C, 5)."""
    w = x[..., BLADE["e123"]:BLADE["e123"] + 1]  # (..., C, 1)
    u = x[..., _TRI]  # homogeneous coordinates up to fixed signs (only squares/dots are used)
    uu, ww = u.square().sum(-1, keepdim=True), w.square()
    phi = torch.cat([2 * w * u, uu, ww], dim=-1)
    psi = torch.cat([w * u, -ww, -uu], dim=-1)
    return phi, psi


class GAAttention(nn.Module):
    """Self-attention on tokens of multivector and scalar channels.

    Parameters
    ----------
    in_mv, out_mv, in_s, out_s : int
        Channels of the input and output.
    heads : int
        Attention heads.
    hidden_mv, hidden_s : int
        Multivector and scalar channels per head for queries, keys and values.
    distance_aware : bool
        Add the point-distance term to the logits (a learnable per-head weight, started small).
    """

    def __init__(self, in_mv: int, out_mv: int, in_s: int, out_s: int, *, heads: int = 4,
                 hidden_mv: int = 4, hidden_s: int = 8, distance_aware: bool = False):
        super().__init__()
        for name, v in (("heads", heads), ("hidden_mv", hidden_mv)):
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ValueError(f"{name}: expected an int >= 1, got {v!r}")
        self.heads, self.hidden_mv, self.hidden_s = heads, hidden_mv, hidden_s
        self.distance_aware = bool(distance_aware)
        self.qkv = EquiLinear(in_mv, 3 * heads * hidden_mv, in_s, 3 * heads * hidden_s)
        self.out = EquiLinear(heads * hidden_mv, out_mv, heads * hidden_s, out_s)
        if self.distance_aware:
            self.distance_weight = nn.Parameter(torch.full((heads,), 0.1))
        self.register_buffer("_inner", torch.tensor(NON_E0_BLADES), persistent=False)

    def forward(self, x: Tensor, s: Tensor, mask: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """
        Parameters
        ----------
        x : Tensor, shape (B, N, in_mv, 16)
        s : Tensor, shape (B, N, in_s)
        mask : Tensor, optional, bool, shape (B, N) (True = real token: real tokens attend to
            real tokens, padding only to itself) or (B, 1 or heads, N, N) (True = query may
            attend to key).

        Returns
        -------
        y : Tensor, shape (B, N, out_mv, 16); s : Tensor, shape (B, N, out_s)
        """
        B, N = x.shape[:2]
        H, C, S = self.heads, self.hidden_mv, self.hidden_s
        mv, sc = self.qkv(x, s)  # (B, N, 3HC, 16), (B, N, 3HS)
        mv = mv.view(B, N, 3, H, C, 16).permute(2, 0, 3, 1, 4, 5)  # (3, B, H, N, C, 16)
        sc = sc.view(B, N, 3, H, S).permute(2, 0, 3, 1, 4)  # (3, B, H, N, S)
        q_mv, k_mv, v_mv = mv
        inner = self._inner
        q = [q_mv[..., inner].flatten(-2), sc[0]]
        k = [k_mv[..., inner].flatten(-2), sc[1]]
        if self.distance_aware:
            phi, psi = distance_features(q_mv)[0], distance_features(k_mv)[1]
            q.append(phi.flatten(-2) * self.distance_weight.view(1, H, 1, 1).to(x.dtype))
            k.append(psi.flatten(-2))
        q, k = torch.cat(q, dim=-1), torch.cat(k, dim=-1)  # (B, H, N, E)
        v = torch.cat([v_mv.flatten(-2), sc[2]], dim=-1)  # (B, H, N, 16C + S)
        attn_mask = None
        if mask is not None:
            attn_mask = mask
            if mask.ndim == 2:
                eye = torch.eye(N, dtype=torch.bool, device=mask.device)
                attn_mask = (mask[:, None, :] | eye)[:, None]  # (B, 1, N, N)
        scale = 1.0 / math.sqrt(8 * C + S)
        # Equal head dims let SDPA take its fused (flash) CPU kernel, memory linear in tokens;
        # zero padding changes no dot product.
        e, ev = q.shape[-1], v.shape[-1]
        if e < ev:
            q, k = F.pad(q, (0, ev - e)), F.pad(k, (0, ev - e))
        elif ev < e:
            v = F.pad(v, (0, e - ev))
        a = F.scaled_dot_product_attention(q, k, v, attn_mask=attn_mask, scale=scale)[..., :ev]
        a = a.transpose(1, 2)  # (B, N, H, 16C + S)
        out_mv = a[..., :16 * C].reshape(B, N, H * C, 16)
        out_s = a[..., 16 * C:].reshape(B, N, H * S)
        return self.out(out_mv, out_s)
