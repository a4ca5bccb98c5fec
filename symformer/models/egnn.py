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
from torch.nn import functional as F

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

    def _node_terms(self, h: Tensor, w_first: tuple, w_node: tuple, update_h: bool,
                    h_linear=None) -> tuple[Tensor, ...]:
        """Every linear map of the layer that reads ``h`` alone, as one matrix product.

        ``edge_mlp``'s first map on ``cat[h_i, h_j, ...]`` splits into per-node terms for the
        target and the source (E / N times fewer multiply-adds than on edges), and ``phi_v`` and
        ``phi_h`` start with maps of ``h`` too (``phi_h``'s only when ``update_h``). With
        ``h_linear = (u, lin)``, ``h = lin(u)`` and the maps are composed with ``lin`` first
        (cheaper when ``u`` has fewer columns than ``h``). ``w_first`` and ``w_node`` are the
        column blocks of ``edge_mlp[0].weight`` and ``node_mlp[0].weight``. Returns three or
        four (N, hidden) tensors.
        """
        hidden = h.shape[-1]
        first, vel0, node0 = self.edge_mlp[0], self.coord_mlp_vel[0], self.node_mlp[0]
        weights = [w_first[0], w_first[1], vel0.weight]
        biases = [first.bias, first.bias.new_zeros(hidden), vel0.bias]
        if update_h:
            weights.append(w_node[0])
            biases.append(node0.bias)
        weight, bias = torch.cat(weights), torch.cat(biases)  # [3-4 hidden, hidden]
        if h_linear is not None:
            u, lin = h_linear
            h, bias = u, torch.addmv(bias, weight, lin.bias)
            weight = weight @ lin.weight
        return F.linear(h, weight, bias).split(hidden, dim=-1)

    def forward(self, h: Tensor, x: Tensor, vel: Tensor, edge_attr: Tensor,
                graph: _nbody_io.MessageGraph, inv_degree: Tensor,
                update_h: bool = True, h_linear=None) -> tuple[Tensor, Tensor]:
        """
        Parameters
        ----------
        h : Tensor, shape (N, hidden)
        x, vel : Tensor, shape (N, 3)
        edge_attr : Tensor, shape (E, edge_dim), in the edge order of ``graph``
        graph : MessageGraph; messages flow from source j to target i.
        inv_degree : Tensor, shape (N, 1); 1 / (number of incoming edges), 1 if none.
        update_h : bool
            False skips the feature update and returns ``h`` unchanged (for a last layer whose
            features are not read).
        h_linear : (Tensor, nn.Linear) or None
            ``(u, lin)`` with ``h == lin(u)``, for a first layer fed by a linear embedding of
            few inputs ``u`` (N, d): the per-node maps then cost N d instead of N hidden per
            output.

        Returns
        -------
        h : Tensor, shape (N, hidden); x : Tensor, shape (N, 3)
        """
        hidden = h.shape[-1]
        diff = graph.pairwise(torch.sub, x, x)  # [E, 3]  x_i - x_j
        radial = (diff * diff).sum(-1, keepdim=True)  # [E, 1]
        # Column blocks of the first maps by one split each (one gradient buffer per weight).
        w_first = self.edge_mlp[0].weight.split([hidden, hidden, 1 + edge_attr.shape[-1]], 1)
        w_node = self.node_mlp[0].weight.split(hidden, dim=1)  # ([hidden, hidden],) * 2
        h_i, h_j, vel_pre, *node_pre = self._node_terms(h, w_first, w_node, update_h, h_linear)
        pre = torch.addmm(graph.pairwise(torch.add, h_i, h_j),
                          torch.cat([radial, edge_attr], dim=-1), w_first[2].t())  # [E, hidden]
        lin2 = self.edge_mlp[2]
        m = F.silu(F.linear(F.silu(pre), lin2.weight, lin2.bias))  # [E, hidden]
        if self.norm_diff:
            diff = diff / (radial.sqrt() + 1)
        c0, c2 = self.coord_mlp[0], self.coord_mlp[2]
        phi_x = (F.silu(F.linear(m, c0.weight, c0.bias)) * c2.weight[0]).sum(-1, keepdim=True)
        for extra in self.coord_mlp[3:]:  # tanh
            phi_x = extra(phi_x)
        trans = torch.clamp(diff * phi_x, min=-100, max=100)  # [E, 3]
        x = x + graph.sum(trans) * inv_degree
        v2 = self.coord_mlp_vel[2]
        phi_v = (F.silu(vel_pre) * v2.weight[0]).sum(-1, keepdim=True) + v2.bias  # [N, 1]
        x = x + phi_v * vel  # [N, 3]
        if not update_h:
            return h, x
        node2 = self.node_mlp[2]
        agg = F.linear(graph.sum(m), w_node[1])  # [N, hidden]
        out = F.linear(F.silu(node_pre[0] + agg), node2.weight, node2.bias)
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
        graph = _nbody_io.MessageGraph(_nbody_io.system_edges(pos, batch, self.neighbors),
                                       pos.shape[0])
        inv_degree = graph.inv_degree(pos.dtype).unsqueeze(-1)  # [N, 1]
        diff = graph.pairwise(torch.sub, pos, pos)  # [E, 3]
        charge_prod = graph.pairwise(torch.mul, charges, charges)  # [E]
        edge_attr = torch.stack([charge_prod, (diff * diff).sum(-1)], dim=-1)  # [E, 2]
        speed = vel.norm(dim=-1, keepdim=True)  # [N, 1]
        h = self.embedding(speed)  # [N, hidden]
        x = pos
        for i, layer in enumerate(self.layers):  # the last layer's features are not read
            h, x = layer(h, x, vel, edge_attr, graph, inv_degree,
                         update_h=i + 1 < len(self.layers),
                         h_linear=(speed, self.embedding) if i == 0 else None)
        return x
