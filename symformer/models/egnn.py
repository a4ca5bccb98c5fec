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


def _silu_and_slope(z: Tensor, one: Tensor | None) -> tuple[Tensor, Tensor | None]:
    """``silu(z)`` and, given ``one`` (a 0-dim tensor 1), its derivative
    ``s + silu(z) (1 - s) = lerp(s, 1, silu(z))`` with ``s = sigmoid(z)``. Overwrites ``z`` (a
    fresh intermediate). Keeping the derivative from the forward spares the backward a second
    ``sigmoid``, the costliest elementwise op here."""
    s = torch.sigmoid(z)
    out = z.mul_(s)
    return out, (s.lerp_(one, out) if one is not None else None)


class _EdgeChain(torch.autograd.Function):
    """The edge part of :class:`EGCLVel` as one autograd node, with a hand-written backward.

    Forward, for the edges ``j -> i`` of ``graph``::

        pre_ij = h_i[i] + h_j[j] + r_ij w_r^T              (E, hidden)
        m_ij   = silu(silu(pre_ij) w_2^T + b_2)            (E, hidden)
        phi_ij = silu(m_ij w_c^T + b_c) w_o^T              (E, 1)
        agg_i  = sum_j m_ij                                (N, hidden), only if ``aggregate``

    Returns ``(agg, phi)`` (``agg`` None without ``aggregate``). Autograd would record some
    twenty nodes and recompute every ``sigmoid`` in the backward; here the backward is a fixed
    sequence of matrix products and in-place products with the saved slopes, and the gathers
    of the first map are undone by one sum and one scatter.
    """

    @staticmethod
    def forward(ctx, h_i, h_j, radial, edge_attr, w_r, w_2, b_2, w_c, b_c, w_o, graph,
                aggregate):
        slope = h_i.new_ones(()) if any(ctx.needs_input_grad) else None
        r = torch.cat([radial, edge_attr], dim=-1)  # [E, 1 + edge_dim]
        pre = graph.pairwise(torch.add, h_i, h_j).addmm_(r, w_r.t())
        a1, d1 = _silu_and_slope(pre, slope)
        m, d2 = _silu_and_slope(torch.addmm(b_2, a1, w_2.t()), slope)
        a3, d3 = _silu_and_slope(torch.addmm(b_c, m, w_c.t()), slope)
        phi = a3 @ w_o.t()  # [E, 1]
        agg = graph.sum(m) if aggregate else None
        if slope is not None:
            ctx.save_for_backward(r, w_r, a1, d1, w_2, m, d2, w_c, a3, d3, w_o)
        ctx.graph, ctx.num_nodes = graph, h_j.shape[0]
        ctx.set_materialize_grads(False)
        return agg, phi

    @staticmethod
    def backward(ctx, g_agg, g_phi):
        r, w_r, a1, d1, w_2, m, d2, w_c, a3, d3, w_o = ctx.saved_tensors
        graph, need = ctx.graph, ctx.needs_input_grad
        if g_phi is None:
            g_phi = a3.new_zeros(a3.shape[0], 1)
        g3 = torch.mul(d3, w_o).mul_(g_phi)  # d loss / d (m w_c^T + b_c)
        g_o = g_phi.t() @ a3  # [1, hidden]
        g_c, g_bc = g3.t() @ m, g3.sum(0)
        g2 = g3 @ w_c  # d loss / d m
        if g_agg is not None:
            g2 = graph.with_target(torch.add, g_agg, g2)
        g2.mul_(d2)
        g_2, g_b2 = g2.t() @ a1, g2.sum(0)
        g1 = (g2 @ w_2).mul_(d1)  # d loss / d pre
        # Products with 1-3 columns as matrix-vector products or with the long axis inner
        # (several times faster than the plain matrix products of these shapes).
        g_rad = torch.mv(g1, w_r[:, 0]).unsqueeze(-1) if need[2] else None
        g_ea = (w_r[:, 1:].t() @ g1.t()).t() if need[3] else None
        g_wr = (r.t() @ g1).t() if need[4] else None
        g_hi = graph.sum(g1) if need[0] else None
        g_hj = g1.new_zeros(ctx.num_nodes, g1.shape[1]).index_add_(0, graph.src, g1) \
            if need[1] else None
        return g_hi, g_hj, g_rad, g_ea, g_wr, g_2, g_b2, g_c, g_bc, g_o, None, None


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
        self.residual, self.norm_diff, self.tanh = residual, norm_diff, tanh
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
        lin2, c0, c2 = self.edge_mlp[2], self.coord_mlp[0], self.coord_mlp[2]
        agg, phi_x = _EdgeChain.apply(h_i, h_j, radial, edge_attr, w_first[2], lin2.weight,
                                      lin2.bias, c0.weight, c0.bias, c2.weight, graph, update_h)
        if self.norm_diff:
            diff = diff / (radial.sqrt() + 1)
        if self.tanh:  # coord_mlp[3]
            phi_x = torch.tanh(phi_x)
        trans = torch.clamp(diff * phi_x, min=-100, max=100)  # [E, 3]
        x = torch.addcmul(x, graph.sum(trans), inv_degree)
        v2 = self.coord_mlp_vel[2]
        phi_v = torch.addmm(v2.bias, F.silu(vel_pre), v2.weight.t())  # [N, 1]
        x = torch.addcmul(x, phi_v, vel)  # [N, 3]
        if not update_h:
            return h, x
        node2 = self.node_mlp[2]
        out = F.linear(F.silu(torch.addmm(node_pre[0], agg, w_node[1].t())), node2.weight,
                       node2.bias)
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
