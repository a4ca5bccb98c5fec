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

    def _node_terms(self, h: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Per-node parts of the edge MLP's first layer and the velocity gate's hidden layer,
        in one matrix product: ``(h W_i^T + b, h W_j^T, silu(phi_v hidden))``, each (..., hidden)."""
        first, vel0, hidden = self.edge_mlp[0], self.coord_mlp_vel[0], h.shape[-1]
        w = first.weight  # [hidden, 2 hidden + 1 + edge_dim]
        weight = torch.cat([w[:, :hidden], w[:, hidden:2 * hidden], vel0.weight])  # [3 hidden, hidden]
        bias = torch.cat([first.bias, first.bias.new_zeros(hidden), vel0.bias])
        h_i, h_j, v = F.linear(h, weight, bias).split(hidden, dim=-1)
        return h_i, h_j, F.silu(v)

    def _messages(self, pre: Tensor, scalars: Tensor) -> Tensor:
        """``edge_mlp`` from the pre-activation of its node parts: ``pre`` (E, hidden) plus the
        edge scalars ``[radial, edge_attr]`` (E, 1 + edge_dim) times their weight columns."""
        first, second = self.edge_mlp[0], self.edge_mlp[2]
        pre = torch.addmm(pre, scalars, first.weight[:, 2 * pre.shape[-1]:].T)
        return F.silu(F.linear(F.silu(pre), second.weight, second.bias))

    def _coord_weight(self, m: Tensor) -> Tensor:
        """``coord_mlp(m)`` (E, 1); the 1-wide last layer as a matrix-vector product."""
        hidden, last = self.coord_mlp[0], self.coord_mlp[2]
        out = (F.silu(F.linear(m, hidden.weight, hidden.bias)) @ last.weight[0]).unsqueeze(-1)
        return torch.tanh(out) if len(self.coord_mlp) > 3 else out

    def _node_update(self, h: Tensor, agg: Tensor) -> Tensor:
        out = self.node_mlp(torch.cat([h, agg], dim=-1))
        return h + out if self.residual else out

    def dense_weights(self) -> list[Tensor]:
        """The 15 weights in the order :class:`_DenseLayer` takes them."""
        return [self.edge_mlp[0].weight, self.edge_mlp[0].bias, self.edge_mlp[2].weight,
                self.edge_mlp[2].bias, *self.node_mlp[0].parameters(),
                *self.node_mlp[2].parameters(), *self.coord_mlp[0].parameters(),
                self.coord_mlp[2].weight, *self.coord_mlp_vel[0].parameters(),
                *self.coord_mlp_vel[2].parameters()]

    def forward(self, h: Tensor, x: Tensor, vel: Tensor, edge_attr: Tensor, edge_index: Tensor,
                inv_degree: Tensor) -> tuple[Tensor, Tensor]:
        """Sparse layer on any graph.

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
        h_i, h_j, v = self._node_terms(h)
        m = self._messages(h_i[dst] + h_j[src], torch.cat([radial, edge_attr], dim=-1))
        if self.norm_diff:
            diff = diff / (radial.sqrt() + 1)
        trans = torch.clamp(diff * self._coord_weight(m), min=-100, max=100)  # [E, 3]
        x = x + x.new_zeros(x.shape).index_add_(0, dst, trans) * inv_degree
        x = x + (v @ self.coord_mlp_vel[2].weight[0] + self.coord_mlp_vel[2].bias).unsqueeze(-1) * vel
        h = self._node_update(h, h.new_zeros(h.shape).index_add_(0, dst, m))
        return h, x


def _silu(x: Tensor) -> tuple[Tensor, Tensor]:
    """``(silu(x), x)``: the backward recomputes from ``x``; a saved sigmoid would be faster
    but ``x * sigmoid(x)`` rounds differently from ``silu`` (float32 outputs would move)."""
    return F.silu(x), x


def _silu_grad(grad: Tensor, x: Tensor, _: Tensor) -> Tensor:
    return torch.ops.aten.silu_backward(grad, x)


class _DenseLayer(torch.autograd.Function):
    """One :class:`EGCLVel` on ``B`` complete graphs of ``n >= 2`` nodes, with a hand-written
    backward: edges are the off-diagonal pairs of dense (B, n, n - 1) arrays, so there are no
    gathers or scatters, and one fused node-level product serves ``h_i``, ``h_j`` and the
    velocity gate. Few, large kernels matter here: per-op overhead rivals the arithmetic.

    Inputs: ``h`` (N, F), ``x, vel`` (B, n, 3), ``edge_attr`` (E, 2), ``update_h`` (the last
    layer skips the node update, which cannot reach the output), ``residual``, then the layer's
    15 weights (see :meth:`EGCLVel.dense_weights`). Outputs ``(h, x)`` or, without the node
    update, ``(x,)``. First-order gradients only.
    """

    @staticmethod
    def forward(ctx, h, x, vel, edge_attr, update_h, residual, *weights):
        (w0, b0, w1, b1, wn0, bn0, wn1, bn1, wc0, bc0, wc1, wv0, bv0, wv1, bv1) = weights
        (B, n, _), (N, F_) = x.shape, h.shape
        E = B * n * (n - 1)
        diff = _off_diagonal(x.unsqueeze(2) - x.unsqueeze(1)).reshape(E, 3)  # x_i - x_j
        scalars = torch.cat([(diff * diff).sum(-1, keepdim=True), edge_attr], dim=-1)  # [E, 3]
        wcat = torch.cat([w0[:, :F_], w0[:, F_:2 * F_], wv0])  # [3F, F]
        node = torch.addmm(torch.cat([b0, b0.new_zeros(F_), bv0]), h, wcat.T)  # [N, 3F]
        h_i, h_j, vh = node.view(B, n, 3 * F_).split(F_, dim=-1)
        pre = _off_diagonal(h_i.unsqueeze(2) + h_j.unsqueeze(1)).reshape(E, F_)
        pre = torch.addmm(pre, scalars, w0[:, 2 * F_:].T)
        z1, s1 = _silu(pre)
        u = torch.addmm(b1, z1, w1.T)
        m, s2 = _silu(u)  # messages [E, F]
        c = torch.addmm(bc0, m, wc0.T)
        z3, s3 = _silu(c)
        phi = z3 @ wc1[0]  # [E]
        trans = diff * phi.unsqueeze(-1)
        x = x + trans.clamp(-100, 100).view(B, n, n - 1, 3).sum(2) * (1.0 / (n - 1))
        vh = vh.reshape(N, F_)
        zv, sv = _silu(vh)
        gate = (torch.addmv(bv1, zv, wv1[0])).view(B, n, 1)
        x = x + gate * vel
        ctx.shape, ctx.update_h, ctx.residual = (B, n, N, F_, E), update_h, residual
        saved = [h, vel, diff, scalars, wcat, pre, z1, s1, u, s2, m, c, z3, s3, phi, trans, vh,
                 zv, sv, gate, w0, w1, wc0, wc1, wv1]
        if not update_h:
            ctx.save_for_backward(*saved)
            return (x,)
        hn = torch.cat([h, m.view(B, n, n - 1, F_).sum(2).view(N, F_)], dim=-1)  # [h, sum_j m]
        p = torch.addmm(bn0, hn, wn0.T)
        zp, sp = _silu(p)
        out = torch.addmm(bn1, zp, wn1.T)
        ctx.save_for_backward(*saved, hn, p, zp, sp, wn0, wn1)
        return (h + out if residual else out), x

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, *grads):
        B, n, N, F_, E = ctx.shape
        (h, vel, diff, scalars, wcat, pre, z1, s1, u, s2, m, c, z3, s3, phi, trans, vh, zv, sv,
         gate, w0, w1, wc0, wc1, wv1, *node) = ctx.saved_tensors
        g_x = grads[-1]  # [B, n, 3]
        g_gate = (g_x * vel).sum(-1).reshape(N)
        g_vel = g_x * gate if ctx.needs_input_grad[2] else None
        g_vh = _silu_grad(g_gate.unsqueeze(-1) * wv1, vh, sv)
        # clamp passes gradient inside [-100, 100] (bounds included)
        g_trans = (g_x * (1.0 / (n - 1))).unsqueeze(2).expand(B, n, n - 1, 3).reshape(E, 3)
        g_trans = g_trans * (trans.abs() <= 100)
        g_phi = (g_trans * diff).sum(-1)
        g_diff = g_trans * phi.unsqueeze(-1)
        g_c = _silu_grad(g_phi.unsqueeze(-1) * wc1, c, s3)
        g_m = g_c @ wc0
        g_node = [None] * 4
        g_h = None
        if ctx.update_h:
            hn, p, zp, sp, wn0, wn1 = node
            g_out = grads[0]
            g_p = _silu_grad(g_out @ wn1, p, sp)
            g_hn = g_p @ wn0
            g_node = [g_p.T @ hn, g_p.sum(0), g_out.T @ zp, g_out.sum(0)]
            g_h = g_hn[:, :F_] + g_out if ctx.residual else g_hn[:, :F_]
            g_m = (g_m.view(B, n, n - 1, F_) + g_hn[:, F_:].view(B, n, 1, F_)).view(E, F_)
        g_u = _silu_grad(g_m, u, s2)
        g_pre = _silu_grad(g_u @ w1, pre, s1)
        # narrow products: these layouts run several times faster
        g_scalars = (w0[:, 2 * F_:].T @ g_pre.T).T  # [E, 3]
        g_diff = torch.addcmul(g_diff, diff, g_scalars[:, :1], value=2.0)
        # h_j is summed over the targets i != j: scatter into the zero-diagonal square
        square = g_pre.new_zeros(B, n * n, F_)
        square[:, 1:].view(B, n - 1, n + 1, F_)[:, :, :n] = g_pre.view(B, n - 1, n, F_)
        g_nodes = torch.cat([g_pre.view(B, n, n - 1, F_).sum(2).view(N, F_),
                             square.view(B, n, n, F_).sum(1).view(N, F_), g_vh], dim=-1)
        g_wcat = g_nodes.T @ h  # [3F, F]
        g_bcat = g_nodes.sum(0)
        g_hcat = g_nodes @ wcat
        g_h = g_hcat if g_h is None else g_h + g_hcat
        g_x_in = None
        if ctx.needs_input_grad[1]:
            sq = g_diff.new_zeros(B, n * n, 3)
            sq[:, 1:].view(B, n - 1, n + 1, 3)[:, :, :n] = g_diff.view(B, n - 1, n, 3)
            sq = sq.view(B, n, n, 3)
            g_x_in = g_x + sq.sum(2) - sq.sum(1)
        g_w0 = torch.cat([g_wcat[:F_], g_wcat[F_:2 * F_], (scalars.T @ g_pre).T], dim=1)
        return (g_h, g_x_in, g_vel, g_scalars[:, 1:] if ctx.needs_input_grad[3] else None,
                None, None, g_w0, g_bcat[:F_], g_u.T @ z1, g_u.sum(0), *g_node,
                g_c.T @ m, g_c.sum(0), (g_phi @ z3).unsqueeze(0), g_wcat[2 * F_:],
                g_bcat[2 * F_:], (g_gate @ zv).unsqueeze(0), g_gate.sum().reshape(1))


def _off_diagonal(full: Tensor) -> Tensor:
    """Entries ``[b, i, j]`` with ``j != i`` of ``full`` (B, n, n, ...), as (B, n, n - 1, ...),
    ``j`` ascending: a strided view of the flattened pairs (the diagonal sits every ``n + 1``)."""
    B, n, rest = full.shape[0], full.shape[1], full.shape[3:]
    flat = full.reshape(B, n * n, *rest)[:, 1:].reshape(B, n - 1, n + 1, *rest)
    return flat[:, :, :n].reshape(B, n, n - 1, *rest)


def _dense_layout(batch: Tensor) -> tuple[int, int, Tensor | None] | None:
    """``(B, n, order)`` when every system has the same ``n >= 2`` nodes (``order`` groups them
    by system, None if already grouped in ascending order), else None."""
    N = batch.shape[0]
    counts = torch.bincount(batch)
    B = counts.shape[0]
    if N % B or N // B < 2 or not bool((counts == N // B).all()):
        return None
    if bool((batch[1:] >= batch[:-1]).all()):
        return B, N // B, None
    return B, N // B, torch.argsort(batch, stable=True)


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
    """

    def __init__(self, *, hidden: int = 64, n_layers: int = 4, residual: bool = True,
                 norm_diff: bool = False, tanh: bool = False):
        super().__init__()
        for name, val, low in (("hidden", hidden, 1), ("n_layers", n_layers, 0)):
            if isinstance(val, bool) or not isinstance(val, int) or val < low:
                raise ValueError(f"{name}: expected an int >= {low}, got {val!r}")
        self.embedding = nn.Linear(1, hidden)
        self.layers = nn.ModuleList(
            EGCLVel(hidden, 2, residual=residual, norm_diff=norm_diff, tanh=tanh)
            for _ in range(n_layers))

    def forward(self, pos: Tensor, vel: Tensor, charges: Tensor, batch: Tensor) -> Tensor:
        """Predict positions.

        Parameters
        ----------
        pos, vel : Tensor, shape (N, 3)
        charges : Tensor, shape (N,)
        batch : Tensor, shape (N,), integer system index (any order).

        Returns
        -------
        Tensor, shape (N, 3): predicted positions.
        """
        _nbody_io.check_nbody_inputs(pos, vel, charges, batch)
        # The dense layer implements the default coordinate update (no norm_diff, no tanh).
        plain = all(not l.norm_diff and len(l.coord_mlp) == 3 for l in self.layers)
        layout = _dense_layout(batch.long()) if plain else None
        if layout is None:
            return self._forward_sparse(pos, vel, charges, batch)
        B, n, order = layout
        if order is not None:
            pos, vel, charges = pos[order], vel[order], charges[order]
        out = self._forward_dense(pos.view(B, n, 3), vel.view(B, n, 3), charges.view(B, n))
        out = out.reshape(B * n, 3)
        if order is None:
            return out
        return out.new_empty(out.shape).index_copy(0, order, out)

    def _forward_dense(self, pos: Tensor, vel: Tensor, charges: Tensor) -> Tensor:
        """Dense forward on ``B`` systems of ``n >= 2`` nodes: pos, vel (B, n, 3), charges (B, n)."""
        diff = _off_diagonal(pos.unsqueeze(2) - pos.unsqueeze(1))
        qq = _off_diagonal(charges.unsqueeze(2) * charges.unsqueeze(1)).unsqueeze(-1)
        edge_attr = torch.cat([qq, (diff * diff).sum(-1, keepdim=True)], dim=-1)  # [B, n, n-1, 2]
        edge_attr = edge_attr.reshape(-1, 2)
        h = self.embedding(vel.norm(dim=-1, keepdim=True)).flatten(0, 1)  # [B n, hidden]
        x = pos
        for k, layer in enumerate(self.layers):
            last = k + 1 == len(self.layers)  # its node update cannot reach the output
            out = _DenseLayer.apply(h, x, vel, edge_attr, not last, layer.residual,
                                    *layer.dense_weights())
            h, x = (h, out[0]) if last else out
        return x

    def _forward_sparse(self, pos: Tensor, vel: Tensor, charges: Tensor, batch: Tensor) -> Tensor:
        """Edge-list forward for any batch (mixed sizes, single-node systems)."""
        edge_index = _nbody_io.fully_connected_edges(batch)  # [2, E]
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
