"""EGNN: E(n)-equivariant graph neural network (Satorras, Hoogeboom & Welling, ICML 2021).

The velocity-aware variant used on the charged N-body benchmark (``EGNN_vel`` with
``E_GCL_vel`` layers in the official code), reproduced layer for layer on fully connected graphs
within each system. With ``h`` node features, ``x`` positions, ``v`` velocities, ``e_ij`` the edge
attributes ``[c_i c_j, |x_i^0 - x_j^0|^2]`` (input distances, fixed over layers)::

    h^0     = W |v_i| + b
    m_ij    = phi_e(h_i, h_j, |x_i - x_j|^2, e_ij)                  (2-layer MLP, SiLU, SiLU)
    x_i    <- x_i + mean_j clamp((x_i - x_j) phi_x(m_ij), +-100)    (last layer: no bias, gain 1e-3)
    x_i    <- x_i + phi_v(h_i) v_i                                  (h before this layer's update)
    h_i    <- h_i + phi_h(h_i, sum_j m_ij)

The prediction is the final ``x``. Equivariant to E(3) acting on ``pos`` (points) and ``vel``
(vectors) and to permutations of the nodes.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from symformer.groups import E3, Symmetric

from . import _nbody_io
from ..registry import register

__all__ = ["EGNN", "EGCLVel"]


def _mlp(d_in: int, hidden: int, d_out: int, *, bias_out: bool = True) -> nn.Sequential:
    return nn.Sequential(nn.Linear(d_in, hidden), nn.SiLU(),
                         nn.Linear(hidden, d_out, bias=bias_out))


class EGCLVel(nn.Module):
    """One equivariant graph convolution with a velocity term (``E_GCL_vel``).

    Parameters
    ----------
    hidden : int
        Width of node features and of every MLP.
    edge_dim : int
        Number of extra edge attributes.
    residual : bool
        ``h <- h + phi_h(...)`` (the official ``recurrent=True``) instead of ``h <- phi_h(...)``.
    norm_diff : bool
        Divide ``x_i - x_j`` by ``|x_i - x_j| + 1`` in the coordinate update.
    tanh : bool
        Append ``tanh`` to ``phi_x``.
    """

    def __init__(self, hidden: int, edge_dim: int, *, residual: bool = True,
                 norm_diff: bool = False, tanh: bool = False):
        super().__init__()
        self.residual, self.norm_diff = residual, norm_diff
        self.edge_mlp = nn.Sequential(nn.Linear(2 * hidden + 1 + edge_dim, hidden), nn.SiLU(),
                                      nn.Linear(hidden, hidden), nn.SiLU())
        self.node_mlp = _mlp(2 * hidden, hidden, hidden)
        self.coord_mlp = _mlp(hidden, hidden, 1, bias_out=False)
        # Small initial coordinate steps keep early training stable (official init).
        nn.init.xavier_uniform_(self.coord_mlp[2].weight, gain=0.001)
        if tanh:
            self.coord_mlp.append(nn.Tanh())
        self.coord_mlp_vel = _mlp(hidden, hidden, 1)

    def _edge_messages(self, h, radial, edge_attr, src, dst):
        """``edge_mlp(cat[h_i, h_j, radial, edge_attr])``, with the first linear map applied to
        node features per node before gathering (E / N times fewer multiply-adds)."""
        first, hidden = self.edge_mlp[0], h.shape[-1]
        w = first.weight  # [hidden, 2 hidden + 1 + edge_dim]
        h_i = torch.nn.functional.linear(h, w[:, :hidden], first.bias)  # [N, hidden]
        h_j = h @ w[:, hidden:2 * hidden].T  # [N, hidden]
        pre = h_i[dst] + h_j[src] + torch.cat([radial, edge_attr], dim=-1) @ w[:, 2 * hidden:].T
        return self.edge_mlp[1:](pre)

    def forward(self, h: Tensor, x: Tensor, vel: Tensor, edge_attr: Tensor, edge_index: Tensor,
                inv_degree: Tensor) -> tuple[Tensor, Tensor]:
        """
        Parameters
        ----------
        h : Tensor, shape (N, hidden)
        x, vel : Tensor, shape (N, 3)
        edge_attr : Tensor, shape (E, edge_dim)
        edge_index : Tensor, shape (2, E); ``[0]`` source j, ``[1]`` target i.
        inv_degree : Tensor, shape (N, 1); 1 / (number of incoming edges), 1 if none.

        Returns
        -------
        h : Tensor, shape (N, hidden); x : Tensor, shape (N, 3)
        """
        src, dst = edge_index
        diff = x[dst] - x[src]  # [E, 3]  x_i - x_j
        radial = (diff * diff).sum(-1, keepdim=True)  # [E, 1]
        m = self._edge_messages(h, radial, edge_attr, src, dst)  # [E, hidden]
        if self.norm_diff:
            diff = diff / (radial.sqrt() + 1)
        trans = torch.clamp(diff * self.coord_mlp(m), min=-100, max=100)  # [E, 3]
        x = x + x.new_zeros(x.shape).index_add_(0, dst, trans) * inv_degree
        x = x + self.coord_mlp_vel(h) * vel  # [N, 3]
        agg = h.new_zeros(h.shape).index_add_(0, dst, m)  # [N, hidden]
        out = self.node_mlp(torch.cat([h, agg], dim=-1))
        return (h + out if self.residual else out), x


@register("egnn", group=lambda: E3() * Symmetric(_nbody_io.EXAMPLE_NODES),
          in_types=_nbody_io.NBODY_IN_TYPES, out_types="node:point",
          example_inputs=_nbody_io.example_inputs,
          description="EGNN (Satorras et al. 2021), velocity variant for charged N-body",
          tags=("nbody", "e3"))
class EGNN(nn.Module):
    """E(n)-equivariant GNN predicting future positions of charged particles.

    Parameters (keyword-only; defaults are the published N-body configuration)
    ----------
    hidden : int
        Node feature width (64).
    n_layers : int
        Number of :class:`EGCLVel` layers (4).
    residual, norm_diff, tanh : bool
        See :class:`EGCLVel` (True, False, False).
    neighbors : int or None
        None (default): complete graphs within each system, as published; an int: each node's
        ``neighbors`` nearest nodes only (k-NN graphs, for large systems).
    """

    def __init__(self, *, hidden: int = 64, n_layers: int = 4, residual: bool = True,
                 norm_diff: bool = False, tanh: bool = False, neighbors: int | None = None):
        super().__init__()
        _nbody_io.check_neighbors(neighbors)
        self.neighbors = neighbors
        for name, val, low in (("hidden", hidden, 1), ("n_layers", n_layers, 0)):
            if isinstance(val, bool) or not isinstance(val, int) or val < low:
                raise ValueError(f"{name}: expected an int >= {low}, got {val!r}")
        self.embedding = nn.Linear(1, hidden)
        self.layers = nn.ModuleList(
            EGCLVel(hidden, 2, residual=residual, norm_diff=norm_diff, tanh=tanh)
            for _ in range(n_layers))

    def forward(self, pos: Tensor, vel: Tensor, charges: Tensor, batch: Tensor) -> Tensor:
        """Predicted positions (N, 3) from flat node inputs (see :mod:`._nbody_io`)."""
        _nbody_io.check_nbody_inputs(pos, vel, charges, batch)
        edge_index = _nbody_io.system_edges(pos, batch, self.neighbors)  # [2, E]
        src, dst = edge_index
        degree = torch.bincount(dst, minlength=pos.shape[0]).clamp(min=1)
        inv_degree = (1.0 / degree.to(pos.dtype)).unsqueeze(-1)  # [N, 1]
        diff = pos[dst] - pos[src]
        edge_attr = torch.stack([charges[dst] * charges[src], (diff * diff).sum(-1)], dim=-1)
        h = self.embedding(vel.norm(dim=-1, keepdim=True))  # [N, hidden]
        x = pos
        for layer in self.layers:
            h, x = layer(h, x, vel, edge_attr, edge_index, inv_degree)
        return x
