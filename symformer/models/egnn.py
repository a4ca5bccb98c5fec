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


class _LayerMaps(torch.autograd.Function):
    """Every map of :class:`EGCLVel` on features and edges as one autograd node, with a
    hand-written backward.

    Forward, with ``H`` the width, ``W_1 = [W_a | W_b | W_r]`` the column blocks of
    ``edge_mlp[0].weight`` and ``W_n = [W_p | W_q]`` those of ``node_mlp[0].weight``::

        [p, q, v, s] = h [W_a; W_b; W_v; W_p]^T + [b_1, 0, b_v, b_n]   (N, 4H), one product
        pre_ij = p_i + q_j + [r_ij, e_ij] W_r^T                         (E, H)
        m_ij   = silu(silu(pre_ij) W_2^T + b_2)                         (E, H)
        phi_ij = silu(m_ij W_c^T + b_c) w_o^T                           (E, 1)
        z_i    = s_i + (sum_j m_ij) W_q^T                               (N, H), if ``update_h``

    The first map of ``edge_mlp`` on ``cat[h_i, h_j, ...]`` splits into per-node terms of the
    target and the source (E / N times fewer multiply-adds than on edges). With ``lin_w``,
    ``h = u lin_w^T + lin_b`` and the per-node maps are composed with it first (cheaper for a
    first layer fed by few inputs ``u``). Returns ``(z, phi, v)`` (``z`` None without
    ``update_h``). Autograd would record some forty nodes per layer and recompute every
    ``sigmoid`` in the backward; here the backward is a fixed sequence of matrix products and
    in-place products with the sigmoid slopes saved by the forward.
    """

    @staticmethod
    def forward(ctx, h, lin_w, lin_b, radial, edge_attr, w_1, b_1, w_2, b_2, w_c, b_c, w_o,
                w_v, b_v, w_n, b_n, graph, update_h):
        H = w_2.shape[0]
        w_cat = torch.cat([w_1[:, :H], w_1[:, H:2 * H], w_v]
                          + ([w_n[:, :H]] if update_h else []))  # [3-4 H, H]
        b_cat = torch.cat([b_1, b_1.new_zeros(H), b_v] + ([b_n] if update_h else []))
        w_eff, b_eff = w_cat, b_cat
        if lin_w is not None:
            w_eff, b_eff = w_cat @ lin_w, torch.addmv(b_cat, w_cat, lin_b)
        t = torch.addmm(b_eff, h, w_eff.t())  # [N, 3-4 H]
        one = t.new_ones(()) if any(ctx.needs_input_grad) else None
        r = torch.cat([radial, edge_attr], dim=-1)  # [E, 1 + edge_dim]
        pre = graph.pairwise(torch.add, t[:, :H], t[:, H:2 * H]).addmm_(r, w_1[:, 2 * H:].t())
        a1, d1 = _silu_and_slope(pre, one)
        m, d2 = _silu_and_slope(torch.addmm(b_2, a1, w_2.t()), one)
        a3, d3 = _silu_and_slope(torch.addmm(b_c, m, w_c.t()), one)
        phi = a3 @ w_o.t()  # [E, 1]
        agg = z = None
        if update_h:
            agg = graph.sum(m)
            z = torch.addmm(t[:, 3 * H:], agg, w_n[:, H:].t())
        if one is not None:
            ctx.save_for_backward(h, lin_w, lin_b, w_cat, w_eff, r, w_1, a1, d1, w_2, m, d2,
                                  w_c, a3, d3, w_o, w_n, agg)
        ctx.graph, ctx.update_h = graph, update_h
        ctx.set_materialize_grads(False)
        return z, phi, t[:, 2 * H:3 * H].contiguous()

    @staticmethod
    def backward(ctx, g_z, g_phi, g_v):
        (h, lin_w, lin_b, w_cat, w_eff, r, w_1, a1, d1, w_2, m, d2, w_c, a3, d3, w_o, w_n,
         agg) = ctx.saved_tensors
        graph, need, H, N = ctx.graph, ctx.needs_input_grad, w_2.shape[0], h.shape[0]
        if g_phi is None:
            g_phi = a3.new_zeros(a3.shape[0], 1)
        g3 = torch.mul(d3, w_o).mul_(g_phi)  # d loss / d (m W_c^T + b_c)
        g_o = g_phi.t() @ a3  # [1, H]
        g_c, g_bc = g3.t() @ m, g3.sum(0)
        g2 = g3 @ w_c  # d loss / d m
        g_s = g_q = None
        if ctx.update_h:
            g_s = g_z if g_z is not None else h.new_zeros(N, H)
            g_q = g_s.t() @ agg
            g2 = graph.with_target(torch.add, g_s @ w_n[:, H:], g2)
        g2.mul_(d2)
        g_2, g_b2 = g2.t() @ a1, g2.sum(0)
        g1 = (g2 @ w_2).mul_(d1)  # d loss / d pre
        # Products with 1-3 columns as matrix-vector products or with the long axis inner
        # (several times faster than the plain matrix products of these shapes).
        g_rad = torch.mv(g1, w_1[:, 2 * H]).unsqueeze(-1) if need[3] else None
        g_ea = (w_1[:, 2 * H + 1:].t() @ g1.t()).t() if need[4] else None
        g_t = torch.cat([graph.sum(g1), g1.new_zeros(N, H).index_add_(0, graph.src, g1),
                         g_v if g_v is not None else g1.new_zeros(N, H)]
                        + ([g_s] if ctx.update_h else []), dim=1)  # d loss / d t
        g_weff, g_bcat = g_t.t() @ h, g_t.sum(0)
        g_h = g_t @ w_eff if need[0] else None
        g_lw = g_lb = None
        g_wcat = g_weff
        if lin_w is not None:
            g_wcat = torch.addr(g_weff @ lin_w.t(), g_bcat, lin_b)
            g_lw, g_lb = w_cat.t() @ g_weff, torch.mv(w_cat.t(), g_bcat)
        g_1 = torch.cat([g_wcat[:H], g_wcat[H:2 * H], (r.t() @ g1).t()], dim=1)
        g_n = g_bn = None
        if ctx.update_h:
            g_n, g_bn = torch.cat([g_wcat[3 * H:], g_q], dim=1), g_bcat[3 * H:]
        return (g_h, g_lw, g_lb, g_rad, g_ea, g_1, g_bcat[:H], g_2, g_b2, g_c, g_bc, g_o,
                g_wcat[2 * H:3 * H], g_bcat[2 * H:3 * H], g_n, g_bn, None, None)


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
        diff = graph.pairwise(torch.sub, x, x)  # [E, 3]  x_i - x_j
        radial = (diff * diff).sum(-1, keepdim=True)  # [E, 1]
        e0, _, e2, _ = self.edge_mlp
        c0, _, c2, *_ = self.coord_mlp
        v0, _, v2 = self.coord_mlp_vel
        n0, _, n2 = self.node_mlp
        u, lin_w, lin_b = (h, None, None) if h_linear is None else \
            (h_linear[0], h_linear[1].weight, h_linear[1].bias)
        z, phi_x, vel_pre = _LayerMaps.apply(
            u, lin_w, lin_b, radial, edge_attr, e0.weight, e0.bias, e2.weight, e2.bias,
            c0.weight, c0.bias, c2.weight, v0.weight, v0.bias, n0.weight, n0.bias, graph,
            update_h)
        if self.norm_diff:
            diff = diff / (radial.sqrt() + 1)
        if self.tanh:  # coord_mlp[3]
            phi_x = torch.tanh(phi_x)
        trans = torch.clamp(diff * phi_x, min=-100, max=100)  # [E, 3]
        x = torch.addcmul(x, graph.sum(trans), inv_degree)
        phi_v = torch.addmm(v2.bias, F.silu(vel_pre), v2.weight.t())  # [N, 1]
        x = torch.addcmul(x, phi_v, vel)  # [N, 3]
        if not update_h:
            return h, x
        out = F.linear(F.silu(z), n2.weight, n2.bias)
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
