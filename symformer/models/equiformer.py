"""Equiformer-style equivariant transformer for the charged N-body benchmark.

EquiformerV2 (Liao, Wood, Das & Smidt, ICLR 2024) blocks on fully connected graphs within each
system, with node features in the uniform layout [N, (L+1)^2, C]::

    x^0_i   = [W_q (c_i, |v_i|)  (l = 0) ;  v_i w_v  (l = 1, D^1(R) = R) ; 0]
    e_ij    = [c_i c_j, gaussians(|x_i - x_j|)]                     invariant edge features
    x      <- x + EquiformerAttention(RMSNorm(x), e)                 per block
    x      <- x + Linear(Gate(Linear(RMSNorm(x))))                   feed-forward
    x_pred  = pos + (l = 1 rows of Linear_{C -> 1}(RMSNorm(x)))      displacement

The edge frames (Wigner matrices) are computed once and shared by the blocks. Every piece is
exactly E(3)-equivariant on natural-parity features (mirror-even SO(2) weights, gate
activation), so the model is registered with E(3) x S_n, reflections included.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from symformer.groups import E3, Symmetric

from ..layers._dropout import check_probability, drop_path
from ..layers.equiformer_attention import EquiformerAttention
from ..layers.gate import Gate
from ..layers.linear import EquivariantLinear
from ..layers.norm import EquivariantRMSNorm
from ..primitives.radial import gaussian_basis
from ..primitives.wigner import edge_align_rotation
from . import _nbody_io
from ..registry import register

__all__ = ["Equiformer", "EquiformerBlock"]


class EquiformerBlock(nn.Module):
    """Pre-norm attention and feed-forward sub-blocks with residual connections.

    ``alpha_drop`` (dropout on the attention weights) and ``drop_path`` (stochastic depth of
    both residual branches, one draw per system) are training-time regularisers, 0 by default.
    """

    def __init__(self, *, lmax: int, mmax: int | None, channels: int, heads: int,
                 head_channels: int, edge_channels: int, ffn_channels: int, activation: str,
                 alpha_drop: float = 0.0, drop_path: float = 0.0):
        super().__init__()
        check_probability("drop_path", drop_path)
        self.drop_path_rate = drop_path  # the module-level drop_path() applies it
        self.norm1 = EquivariantRMSNorm(lmax=lmax, in_channels=channels)
        self.attn = EquiformerAttention(lmax=lmax, mmax=mmax, channels=channels, heads=heads,
                                        head_channels=head_channels,
                                        edge_channels=edge_channels, activation=activation,
                                        alpha_drop=alpha_drop)
        self.norm2 = EquivariantRMSNorm(lmax=lmax, in_channels=channels)
        self.ffn = nn.Sequential(
            EquivariantLinear(lmax=lmax, in_channels=channels, out_channels=ffn_channels),
            Gate(lmax=lmax, in_channels=ffn_channels),
            EquivariantLinear(lmax=lmax, in_channels=ffn_channels, out_channels=channels))

    def forward(self, x: Tensor, pos: Tensor | None, edge_index: Tensor, edge_scalars: Tensor,
                wigner: Tensor, envelope: Tensor | None = None,
                batch: Tensor | None = None) -> Tensor:
        """x : [N, (L+1)^2, C] -> [N, (L+1)^2, C]; ``envelope`` (E,) as in the attention;
        ``batch`` (N,) the system of each node, for ``drop_path`` (else one draw per node)."""
        p, train = self.drop_path_rate, self.training
        x = x + drop_path(self.attn(self.norm1(x), pos, edge_index, edge_scalars, wigner,
                                    envelope), p, train, batch)
        return x + drop_path(self.ffn(self.norm2(x)), p, train, batch)


@register("equiformer", group=lambda: E3() * Symmetric(_nbody_io.EXAMPLE_NODES),
          in_types=_nbody_io.NBODY_IN_TYPES, out_types="node:point",
          example_inputs=_nbody_io.example_inputs,
          description="Equiformer(V2)-style transformer with SO(2) convolutions, charged N-body",
          tags=("nbody", "e3"))
class Equiformer(nn.Module):
    """Equivariant graph-attention transformer predicting future particle positions.

    Parameters (keyword-only)
    ----------
    lmax : int
        Maximum degree of the node features (2).
    mmax : int or None
        Orders kept by the SO(2) convolutions (None: lmax, the full product).
    channels : int
        Channels per degree (16).
    n_layers : int
        Number of attention + feed-forward blocks (3).
    heads, head_channels : int
        Attention heads and value channels per head (4, 4).
    num_rbf : int
        Gaussian distance features on ``[0, cutoff]`` (16).
    cutoff : float
        Range of the distance features (no neighbour cutoff: graphs are complete) (6.0).
    ffn_channels : int or None
        Feed-forward width (default 2 * channels).
    activation : {"gate", "s2"}
        Message nonlinearity: exact gate (default) or the approximate separable S2 activation
        (then the model is only approximately equivariant; see
        :mod:`symformer.layers.s2_activation`).
    neighbors : int or None
        None (default): complete graphs within each system, as published; an int: each node's
        ``neighbors`` nearest nodes only (k-NN graphs, for large systems).
    radius : float or None
        None (default): no distance cutoff; a number: only nodes closer than ``radius`` exchange
        messages (radius graphs; with ``neighbors``, the nearest ones among them).
    alpha_drop, drop_path : float
        Training-time dropout on the attention weights and stochastic depth, one draw per
        system (0, 0): see :class:`EquiformerBlock`.
    """

    def __init__(self, *, lmax: int = 2, mmax: int | None = None, channels: int = 16,
                 n_layers: int = 3, heads: int = 4, head_channels: int = 4, num_rbf: int = 16,
                 cutoff: float = 6.0, ffn_channels: int | None = None,
                 activation: str = "gate", neighbors: int | None = None,
                 radius: float | None = None, alpha_drop: float = 0.0, drop_path: float = 0.0):
        super().__init__()
        self.neighbors, self.radius = _nbody_io.graph_options(neighbors, radius)
        for name, val, low in (("lmax", lmax, 1), ("channels", channels, 1),
                               ("n_layers", n_layers, 0), ("num_rbf", num_rbf, 1)):
            if isinstance(val, bool) or not isinstance(val, int) or val < low:
                raise ValueError(f"{name}: expected an int >= {low}, got {val!r}")
        if not cutoff > 0:
            raise ValueError(f"cutoff: expected a positive float, got {cutoff!r}")
        self.lmax, self.channels, self.num_rbf, self.cutoff = lmax, channels, num_rbf, cutoff
        self.scalar_embed = nn.Linear(2, channels)
        self.vector_embed = nn.Parameter(torch.randn(channels))
        self.blocks = nn.ModuleList(
            EquiformerBlock(lmax=lmax, mmax=mmax, channels=channels, heads=heads,
                            head_channels=head_channels, edge_channels=1 + num_rbf,
                            ffn_channels=ffn_channels or 2 * channels, activation=activation,
                            alpha_drop=alpha_drop, drop_path=drop_path)
            for _ in range(n_layers))
        self.out_norm = EquivariantRMSNorm(lmax=lmax, in_channels=channels)
        self.readout = EquivariantLinear(lmax=lmax, in_channels=channels, out_channels=1,
                                         bias=False)

    def forward(self, pos: Tensor, vel: Tensor, charges: Tensor, batch: Tensor) -> Tensor:
        """Predicted positions (N, 3) from flat node inputs (see :mod:`._nbody_io`)."""
        _nbody_io.check_nbody_inputs(pos, vel, charges, batch)
        edge_index = _nbody_io.system_edges(pos, batch, self.neighbors, self.radius)  # [2, E]
        src, dst = edge_index
        edge_vec = pos[src] - pos[dst]                                   # [E, 3]
        dist = edge_vec.norm(dim=-1)
        edge_scalars = torch.cat([(charges[src] * charges[dst])[:, None],
                                  gaussian_basis(dist, self.num_rbf, self.cutoff)], dim=-1)
        wigner = edge_align_rotation(edge_vec, self.lmax)                # [E, K, K]
        n, rows = pos.shape[0], (self.lmax + 1) ** 2
        scalars = self.scalar_embed(torch.stack([charges, vel.norm(dim=-1)], dim=-1))
        vectors = vel[:, :, None] * self.vector_embed                    # [N, 3, C]
        x = torch.cat([scalars[:, None, :], vectors,
                       pos.new_zeros(n, rows - 4, self.channels)], dim=-2)  # [N, K, C]
        for block in self.blocks:
            x = block(x, pos, edge_index, edge_scalars, wigner, batch=batch)
        disp = self.readout(self.out_norm(x))[:, 1:4, 0]                 # [N, 3]
        return pos + disp
