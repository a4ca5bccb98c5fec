"""Equivariant graph attention with SO(2) convolutions (EquiformerV2, Liao et al. 2024).

For each edge ``j -> i`` (``edge_index[0] = j``, ``edge_index[1] = i``)::

    m_ij  = D_ij [x_j | x_i]                        rotate into the edge frame   [E, K, 2C]
    h_ij, a_ij = SO2Conv_1(m_ij; radial(e_ij))      h: [E, K, C_h], a: invariant [E, H A]
    alpha_ij = segment_softmax_i(w_h . act(LN(a_ij^h)))    one logit per head    [E, H]
    v_ij  = D_ij^T SO2Conv_2(act(h_ij))             values, back in the global frame [E, K, H C_v]
    out_i = W_out sum_j alpha_ij^h v_ij^h           heads concatenated, equivariant linear

The logits come from extra ``m = 0`` outputs of the first convolution: in the edge frame the
``m = 0`` rows of every degree are invariant under rotations about the edge and under the
mirrors containing it, so these are O(3) invariants of the pair and the edge. ``act`` is the
exact :class:`symformer.layers.Gate` by default (applied in the edge frame: it commutes with
the frame rotation) or the approximate :class:`SeparableS2Activation`.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from ..registry import register
from ..primitives.scatter import scatter_sum, segment_softmax
from ..primitives.so2 import m_major_rows, rotate_from_edge, rotate_to_edge
from ..primitives.wigner import edge_align_rotation
from ._dropout import check_probability
from ._uniform import check_uniform
from .gate import Gate
from .linear import EquivariantLinear
from .s2_activation import SeparableS2Activation
from .so2_conv import SO2Convolution

__all__ = ["EquiformerAttention"]

_NODES = 6


def _group(module):
    from ..groups import E3, Symmetric
    return E3() * Symmetric(_NODES)


def _example(module, generator: torch.Generator, dtype: torch.dtype) -> dict:
    n = _NODES
    src, dst = torch.meshgrid(torch.arange(n), torch.arange(n), indexing="ij")
    keep = src != dst
    edge_index = torch.stack([src[keep], dst[keep]])
    rows = (module.lmax + 1) ** 2
    return {"x": torch.randn(n, rows, module.channels, generator=generator, dtype=dtype),
            "pos": torch.randn(n, 3, generator=generator, dtype=dtype),
            "edge_index": edge_index,
            "edge_scalars": torch.randn(edge_index.shape[1], module.edge_channels,
                                        generator=generator, dtype=dtype)}


@register("equiformer_attention", kind="layer", group=_group,
          in_types={"x": "node:uniform:2", "pos": "node:point", "edge_index": "edge_index",
                    "edge_scalars": "scalar"},
          out_types="node:uniform:2", example_inputs=_example,
          description="EquiformerV2 graph attention: SO(2) convs, invariant logits, segment softmax")
class EquiformerAttention(nn.Module):
    """Multi-head equivariant graph attention over incoming edges (see the module docstring).

    Parameters
    ----------
    lmax : int
        Degree L of the node features [N, (L+1)^2, C].
    mmax : int or None
        Orders kept by the SO(2) convolutions (default L: the full product).
    channels : int
        C, input and output channels.
    heads, head_channels : int
        H heads with C_v value channels each.
    hidden_channels : int or None
        C_h, message width (default C).
    alpha_channels : int
        Invariant features per head feeding each logit.
    edge_channels : int
        Width of the invariant edge features (radial network input).
    activation : {"gate", "s2"}
        Exact gate (default) or the approximate separable S2 activation.
    alpha_drop : float
        Dropout probability on the attention weights in training (EquiformerV2's
        ``alpha_drop``; 0 by default). The weights are invariant scalars, so any dropout mask
        keeps the layer equivariant.
    """

    def __init__(self, *, lmax: int = 2, mmax: int | None = None, channels: int = 8,
                 heads: int = 2, head_channels: int = 4, hidden_channels: int | None = None,
                 alpha_channels: int = 8, edge_channels: int = 4, radial_hidden: int = 16,
                 activation: str = "gate", alpha_drop: float = 0.0):
        super().__init__()
        if activation not in ("gate", "s2"):
            raise ValueError(f"activation: expected 'gate' or 's2', got {activation!r}")
        check_probability("alpha_drop", alpha_drop)
        self.alpha_drop = nn.Dropout(alpha_drop)
        for name, v in (("heads", heads), ("head_channels", head_channels),
                        ("alpha_channels", alpha_channels), ("channels", channels)):
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ValueError(f"{name}: expected an int >= 1, got {v!r}")
        hidden = channels if hidden_channels is None else hidden_channels
        self.lmax, self.channels, self.heads = lmax, channels, heads
        self.head_channels, self.alpha_channels, self.edge_channels = (head_channels,
                                                                       alpha_channels,
                                                                       edge_channels)
        self.conv1 = SO2Convolution(lmax_in=lmax, lmax_out=lmax, mmax=mmax,
                                    in_channels=2 * channels, out_channels=hidden,
                                    edge_channels=edge_channels, radial_hidden=radial_hidden,
                                    extra_m0_channels=heads * alpha_channels)
        self.alpha_norm = nn.LayerNorm(alpha_channels)
        self.alpha_dot = nn.Parameter(torch.randn(heads, alpha_channels) / alpha_channels ** 0.5)
        self.act = (Gate(lmax=lmax, in_channels=hidden) if activation == "gate" else
                    SeparableS2Activation(lmax=lmax, in_channels=hidden))
        self.conv2 = SO2Convolution(lmax_in=lmax, lmax_out=lmax, mmax=mmax, in_channels=hidden,
                                    out_channels=heads * head_channels, edge_channels=0)
        self.mmax = self.conv1.mmax
        rows = m_major_rows(lmax, self.mmax)
        degree = [math.isqrt(r) for r in rows]
        self.register_buffer("row_degree", torch.tensor(degree), persistent=False)
        back = {r: k for k, r in enumerate(rows)}
        self.register_buffer("to_uniform", torch.tensor(
            [back.get(r, len(rows)) for r in range((lmax + 1) ** 2)]), persistent=False)
        self.register_buffer("to_m_major", torch.tensor(rows), persistent=False)
        self.proj = EquivariantLinear(lmax=lmax, in_channels=heads * head_channels,
                                      out_channels=channels)

    def forward(self, x: Tensor, pos: Tensor | None, edge_index: Tensor,
                edge_scalars: Tensor | None = None, wigner: Tensor | None = None,
                envelope: Tensor | None = None) -> Tensor:
        """
        Parameters
        ----------
        x : Tensor, shape (N, (L+1)^2, C)
        pos : Tensor, shape (N, 3); may be None when ``wigner`` is given.
        edge_index : Tensor, shape (2, E); [0] source j, [1] target i.
        edge_scalars : Tensor, shape (E, edge_channels), invariant edge features.
        wigner : Tensor, shape (E, K, K), optional
            ``edge_align_rotation(pos[j] - pos[i], L)``, to share between layers.
        envelope : Tensor, shape (E,), optional
            Smooth cutoff weights ``u_ij`` in (0, 1]: the attention becomes
            ``alpha_ij = u_ij^2 e^{s_ij} / sum_k u_ik e^{s_ik}``, so a neighbour entering or
            leaving the cutoff sphere changes the output continuously (energy models).

        Returns
        -------
        Tensor, shape (N, (L+1)^2, C)
        """
        check_uniform("x", x, self.lmax, self.channels)
        if edge_index.dim() != 2 or edge_index.shape[0] != 2:
            raise ValueError(f"edge_index: expected shape (2, E), got {tuple(edge_index.shape)}")
        src, dst = edge_index
        n, n_edges = x.shape[0], edge_index.shape[1]
        if wigner is None:
            if pos is None:
                raise ValueError("pos: needed when wigner is not given")
            wigner = edge_align_rotation(pos[src] - pos[dst], self.lmax)
        m = rotate_to_edge(torch.cat([x[src], x[dst]], dim=-1), wigner, self.mmax)  # m-major
        h, a = self.conv1.edge_frame(m, edge_scalars)                     # [E, K, C_h], [E, H A]
        a = self.alpha_norm(a.view(n_edges, self.heads, self.alpha_channels))
        logits = (torch.nn.functional.silu(a) * self.alpha_dot).sum(-1)   # [E, H]
        if envelope is not None:  # weights u e^s inside the softmax, and u once more outside
            logits = logits + torch.log(envelope.clamp(min=1e-30))[:, None]
        alpha = segment_softmax(logits, dst, n)                           # [E, H]
        if envelope is not None:
            alpha = alpha * envelope[:, None]
        alpha = self.alpha_drop(alpha)
        v, _ = self.conv2.edge_frame(self._activation(h))                 # [E, K', H C_v]
        v = rotate_from_edge(v, wigner, self.lmax, self.mmax).unflatten(-1, (self.heads, self.head_channels))
        v = (v * alpha[:, None, :, None]).flatten(-2)                     # [E, K, H C_v]
        return self.proj(scatter_sum(v, dst, n))                          # [N, K, C]

    def _activation(self, h: Tensor) -> Tensor:
        """The activation on m-major edge-frame features h [E, K', C_h] (row 0 is l = 0)."""
        if isinstance(self.act, Gate):
            # Gate.forward on the m-major rows: SiLU on the scalars, sigmoid gates by degree.
            scalars = h[:, 0, :]                                          # [E, C_h]
            g = torch.sigmoid(self.act.gates(scalars)).unflatten(-1, (self.lmax, -1))
            g = torch.cat([torch.ones_like(g[:, :1]), g], dim=1)           # [E, L+1, C_h]
            out = h * g.index_select(1, self.row_degree)
            return torch.cat([torch.nn.functional.silu(scalars)[:, None], out[:, 1:]], dim=1)
        padded = torch.cat([h, h.new_zeros(h.shape[0], 1, h.shape[-1])], dim=1)
        y = self.act(padded.index_select(1, self.to_uniform))             # uniform layout
        return y.index_select(1, self.to_m_major)

    def extra_repr(self) -> str:
        return f"lmax={self.lmax}, channels={self.channels}, heads={self.heads}"
