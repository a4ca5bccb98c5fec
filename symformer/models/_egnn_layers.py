"""EGNN's layer as autograd functions: one :class:`~.egnn.EGCLVel` layer computed three ways, with
the same values.

- :class:`_Layer`: one autograd node with a hand-written backward (first derivatives; the CPU
  default in Python).
- :class:`_CompiledLayer`: the same in C++ (``csrc/egnn_layer.cpp``, compiled at first use by
  :mod:`symformer._cpp`), split among threads by whole systems (:func:`_plan_chunks`).
- :func:`_layer_autograd`: plain operations that autograd differentiates (second derivatives,
  :class:`~._nbody_io.DenseGraph` layouts, GPUs).
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor
from torch.nn import functional as F

from . import _nbody_io
from .. import _cpp


def _silu_and_slope(z: Tensor, one: Tensor | None) -> tuple[Tensor, Tensor | None]:
    """``silu(z)`` and, given ``one`` (a 0-dim tensor 1), its derivative
    ``s + silu(z) (1 - s) = lerp(s, 1, silu(z))`` with ``s = sigmoid(z)``. Overwrites ``z`` (a
    fresh intermediate). Keeping the derivative from the forward spares the backward a second
    ``sigmoid``, the costliest elementwise op here."""
    s = torch.sigmoid(z)
    out = z.mul_(s)
    return out, (s.lerp_(one, out) if one is not None else None)


def _add_target_(graph: _nbody_io.MessageGraph, t_edge: Tensor, t_node: Tensor) -> Tensor:
    """``t_edge_ij += t_node_i`` in place (``t_edge`` a fresh intermediate), (E, ...) += (N, ...);
    a broadcast in a regular graph."""
    if graph.regular:
        t_edge.view(graph.num_nodes, graph.k, *t_edge.shape[1:]).add_(t_node.unsqueeze(1))
        return t_edge
    return t_edge.add_(graph.target(t_node))


def _node_weights(w_1, b_1, w_v, b_v, w_n, b_n, update_h: bool):
    """``(w_cat, b_cat, w_r, w_q)``: the per-node maps of a layer stacked into one product,
    ``[W_a; W_b; W_v; W_p]`` (``W_p`` only with ``update_h``) with biases ``[b_1, 0, b_v, b_n]``,
    and the edge-attribute and aggregate blocks ``W_r``, ``W_q`` (see :class:`_Layer`)."""
    H = w_1.shape[0]
    w_a, w_b, w_r = w_1.split([H, H, w_1.shape[1] - 2 * H], dim=1)
    w_p, w_q = w_n.split(H, dim=1)
    w_cat = torch.cat([w_a, w_b, w_v] + ([w_p] if update_h else []))  # [3-4 H, H]
    b_cat = torch.cat([b_1, b_1.new_zeros(H), b_v] + ([b_n] if update_h else []))
    return w_cat, b_cat, w_r, w_q


class _Layer(torch.autograd.Function):
    """One :class:`EGCLVel` layer as one autograd node, with a hand-written backward.

    Forward, with ``H`` the width, ``W_1 = [W_a | W_b | W_r]`` the column blocks of
    ``edge_mlp[0].weight`` and ``W_n = [W_p | W_q]`` those of ``node_mlp[0].weight``::

        [p, q, v, s] = h [W_a; W_b; W_v; W_p]^T + [b_1, 0, b_v, b_n]   (N, 4H), one product
        pre_ij = p_i + q_j + [|x_i - x_j|^2, e_ij] W_r^T                (E, H)
        m_ij   = silu(silu(pre_ij) W_2^T + b_2)                         (E, H)
        phi_ij = silu(m_ij W_c^T + b_c) w_o^T                           (E, 1), tanh optional
        x_i   <- x_i + mean_j clamp((x_i - x_j) phi_ij, +-100) + (silu(v_i) w_v2^T + b_v2) vel_i
        h_i   <- h_i + silu(s_i + (sum_j m_ij) W_q^T) W_n2^T + b_n2     (if ``update_h``)

    The first map of ``edge_mlp`` on ``cat[h_i, h_j, ...]`` splits into per-node terms of the
    target and the source (E / N times fewer multiply-adds than on edges). With ``lin_w``, the
    maps read ``u`` with ``h = u lin_w^T + lin_b`` composed in (cheaper for a first layer fed by
    few inputs); ``h`` itself then only enters the residual. Autograd would record some sixty
    nodes per layer and recompute every ``sigmoid`` in its backward; here the backward is a
    fixed sequence of matrix products and in-place products with the slopes kept by the
    forward (first order only: ``create_graph=True`` raises). ``flags`` is ``(update_h,
    residual, norm_diff, tanh)`` (see :class:`EGCLVel`). Returns ``(h, x)`` (``h`` None without
    ``update_h``).
    """

    @staticmethod
    def forward(ctx, u, lin_w, lin_b, h, x, vel, edge_attr, inv_degree, w_1, b_1, w_2, b_2,
                w_c, b_c, w_o, w_v, b_v, w_v2, b_v2, w_n, b_n, w_n2, b_n2, graph, flags):
        update_h, residual, norm_diff, tanh = flags
        H = w_2.shape[0]
        w_cat, b_cat, w_r, w_q = _node_weights(w_1, b_1, w_v, b_v, w_n, b_n, update_h)
        w_eff, b_eff = w_cat, b_cat
        if lin_w is not None:
            w_eff, b_eff = torch.mm(w_cat, lin_w), torch.addmv(b_cat, w_cat, lin_b)
        t = F.linear(u, w_eff, b_eff)  # [N, 3-4 H]
        t_p, t_q, t_v, *t_s = t.split(H, dim=1)
        one = t.new_ones(()) if any(ctx.needs_input_grad) else None
        diff = graph.pairwise(torch.sub, x, x)  # [E, 3]  x_i - x_j
        radial = (diff * diff).sum(-1, keepdim=True)  # [E, 1]
        r = torch.cat([radial, edge_attr], dim=-1)  # [E, 1 + edge_dim]
        pre = _add_target_(graph, graph.source(t_q), t_p).addmm_(r, w_r.t())
        a1, d1 = _silu_and_slope(pre, one)
        m, d2 = _silu_and_slope(F.linear(a1, w_2, b_2), one)
        a3, d3 = _silu_and_slope(F.linear(m, w_c, b_c), one)
        phi = F.linear(a3, w_o)  # [E, 1]
        if tanh:  # coord_mlp[3]
            phi = phi.tanh_()
        q = dn = diff
        if norm_diff:
            q = radial.sqrt().add_(1)
            dn = diff / q
        trans = dn * phi
        clamped = torch.clamp(trans, min=-100, max=100)  # [E, 3]
        x = torch.addcmul(x, graph.sum(clamped), inv_degree)
        sv, dv = _silu_and_slope(t_v, one)
        phi_v = F.linear(sv, w_v2, b_v2)  # [N, 1]
        x = torch.addcmul(x, phi_v, vel)  # [N, 3]
        agg = sz = dz = None
        if update_h:
            agg = graph.sum(m)
            sz, dz = _silu_and_slope(torch.addmm(t_s[0], agg, w_q.t()), one)
            out = F.linear(sz, w_n2, b_n2)
            h = out.add_(h) if residual else out
        if one is not None:
            ctx.save_for_backward(u, lin_w, lin_b, w_cat, w_eff, r, w_r, a1, d1, w_2, m, d2, w_c,
                                  a3, d3, w_o, phi, diff, dn, q, clamped == trans, inv_degree,
                                  vel, sv, dv, w_v2, phi_v, w_q, agg, sz, dz, w_n2)
        ctx.graph, ctx.flags = graph, flags
        ctx.set_materialize_grads(False)
        return (h if update_h else None), x

    @staticmethod
    def backward(ctx, g_h, g_x):
        if torch.is_grad_enabled():  # create_graph=True: the backward below is not recorded
            raise RuntimeError("EGNN: second derivatives (create_graph=True) are not supported "
                               "by the hand-written first-order backward; build the model with "
                               "fused_backward=False")
        (u, lin_w, lin_b, w_cat, w_eff, r, w_r, a1, d1, w_2, m, d2, w_c, a3, d3, w_o, phi, diff,
         dn, q, inside, inv_degree, vel, sv, dv, w_v2, phi_v, w_q, agg, sz, dz,
         w_n2) = ctx.saved_tensors
        update_h, residual, norm_diff, tanh = ctx.flags
        graph, need, H, N = ctx.graph, ctx.needs_input_grad, w_2.shape[0], u.shape[0]
        if g_x is None:
            g_x = vel.new_zeros(N, 3)
        # Velocity term.
        g_pv = (g_x * vel).sum(-1, keepdim=True)  # [N, 1]
        g_vel = g_x * phi_v if need[5] else None
        g_v = torch.mm(g_pv, w_v2).mul_(dv)
        # Coordinate term: d loss / d clamp(...) is g_x / degree at the target.
        g_tr = graph.with_target(torch.mul, g_x * inv_degree, inside)  # [E, 3]
        g_phi = (g_tr * dn).sum(-1, keepdim=True)  # [E, 1]
        g_dn = g_tr.mul_(phi)
        if tanh:
            g_phi.mul_(torch.addcmul(phi.new_ones(()), phi, phi, value=-1))
        # Edge MLP chain.
        g3 = torch.mul(d3, w_o).mul_(g_phi)  # d loss / d (m W_c^T + b_c)
        g_o = torch.mm(g_phi.t(), a3)  # [1, H]
        g_c, g_bc = torch.mm(g3.t(), m), g3.sum(0)
        g2 = torch.mm(g3, w_c)  # d loss / d m
        g_s = g_q = g_n2 = g_bn2 = None
        if update_h:
            g_out = g_h if g_h is not None else u.new_zeros(N, H)
            g_n2, g_bn2 = torch.mm(g_out.t(), sz), g_out.sum(0)
            g_s = torch.mm(g_out, w_n2).mul_(dz)  # d loss / d s
            g_q = torch.mm(g_s.t(), agg)
            _add_target_(graph, g2, torch.mm(g_s, w_q))
        g2.mul_(d2)
        g_2, g_b2 = torch.mm(g2.t(), a1), g2.sum(0)
        g1 = torch.mm(g2, w_2).mul_(d1)  # d loss / d pre
        g_xx = None
        if need[4]:
            # Products with 1-3 columns as matrix-vector products or with the long axis inner
            # (several times faster than the plain matrix products of these shapes).
            g_rad = torch.mv(g1, w_r[:, 0]).unsqueeze(-1)  # [E, 1]
            if norm_diff:
                g_q_ = (g_dn * dn).sum(-1, keepdim=True).div_(q).neg_()
                g_dn = g_dn / q
                g_rad = g_rad + g_q_ / (2 * (q - 1))
            g_diff = torch.addcmul(g_dn, diff, g_rad, value=2)
            g_xx = g_x + graph.sum(g_diff) - graph.source_sum(g_diff)
        g_ea = torch.mm(w_r[:, 1:].t(), g1.t()).t() if need[6] else None
        g_t = torch.cat([graph.sum(g1), graph.source_sum(g1), g_v]
                        + ([g_s] if update_h else []), dim=1)  # d loss / d t
        g_weff, g_bcat = torch.mm(g_t.t(), u), g_t.sum(0)
        g_u = torch.mm(g_t, w_eff) if need[0] else None
        g_lw = g_lb = None
        g_wcat = g_weff
        if lin_w is not None:
            g_wcat = torch.addr(torch.mm(g_weff, lin_w.t()), g_bcat, lin_b)
            g_lw, g_lb = torch.mm(w_cat.t(), g_weff), torch.mv(w_cat.t(), g_bcat)
        g_wa, g_wb, g_wv, *g_wp = g_wcat.split(H)
        g_b1, _, g_bv, *g_bp = g_bcat.split(H)
        g_1 = torch.cat([g_wa, g_wb, torch.mm(r.t(), g1).t()], dim=1)
        g_n = g_bn = None
        if update_h:
            g_n, g_bn = torch.cat([g_wp[0], g_q], dim=1), g_bp[0]
        g_hres = g_h if update_h and residual and need[3] else None
        return (g_u, g_lw, g_lb, g_hres, g_xx, g_vel, g_ea, None, g_1, g_b1, g_2, g_b2, g_c,
                g_bc, g_o, g_wv, g_bv, torch.mm(g_pv.t(), sv), g_pv.sum(0), g_n, g_bn, g_n2,
                g_bn2, None, None)


class _CompiledLayer(torch.autograd.Function):
    """:class:`_Layer` with its forward and backward in C++ (``csrc/egnn_layer.cpp``, compiled at
    first use by :mod:`symformer._cpp`): the same computation, with the chains of gathers,
    elementwise operations and scatters between the matrix products as single loops and no
    interpreter cost per operation. With several :class:`_Chunks`, each thread runs the whole
    layer on its own systems. Same arguments and results as :class:`_Layer`, plus ``chunks``
    last."""

    @staticmethod
    def forward(ctx, u, lin_w, lin_b, h, x, vel, edge_attr, inv_degree, *rest):
        *weights, graph, flags, chunks = rest
        save = any(ctx.needs_input_grad)
        out = _kernels().layer_forward(u, lin_w, lin_b, h, x, vel, edge_attr, inv_degree,
                                       weights, graph.src, graph.dst, graph.num_nodes, graph.k,
                                       graph.regular, *chunks, *flags, save)
        if save:
            ctx.save_for_backward(*out[2:])
        ctx.graph, ctx.flags, ctx.chunks = graph, flags, chunks
        ctx.set_materialize_grads(False)
        return out[0], out[1]

    @staticmethod
    def backward(ctx, g_h, g_x):
        if torch.is_grad_enabled():
            raise RuntimeError("EGNN: second derivatives (create_graph=True) are not supported "
                               "by the compiled first-order backward; build the model with "
                               "fused_backward=False")
        graph = ctx.graph
        grads = _kernels().layer_backward(g_h, g_x, list(ctx.saved_tensors), graph.src,
                                          graph.dst, graph.num_nodes, graph.k, graph.regular,
                                          *ctx.chunks, *ctx.flags, list(ctx.needs_input_grad))
        return (*grads[:7], None, *grads[7:], None, None, None)


class _Chunks(NamedTuple):
    """How :class:`_CompiledLayer` splits a batch among threads: chunk ``c`` holds the whole
    systems of nodes ``bounds[c]:bounds[c + 1]`` and, in a regular graph with ``k`` edges per
    node, edges ``k bounds[c]:k bounds[c + 1]``, whose sources are ``local_src[c]`` (numbered
    within the chunk). One chunk, ``([0, N], [])``, is the whole graph."""

    bounds: list
    local_src: list


# Fewer edges than this per chunk: the fork and join cost more than the split gains.
_MIN_CHUNK_EDGES = 256


def _plan_chunks(graph: _nbody_io.MessageGraph, batch: Tensor, parts: int) -> _Chunks:
    """Split a regular graph whose systems are contiguous (``batch`` sorted) into up to ``parts``
    chunks of whole systems with about equal numbers of nodes; else one chunk."""
    n = graph.num_nodes
    parts = min(parts, graph.num_edges // _MIN_CHUNK_EDGES)
    if parts < 2 or not graph.regular:
        return _Chunks([0, n], [])
    # The first node of the system holding each equal-split point; with batch sorted, systems
    # are node ranges and every edge (within a system) stays within its chunk.
    at = batch[torch.arange(1, parts) * n // parts]
    cuts = torch.searchsorted(batch, at)
    sorted_ = (batch[1:] >= batch[:-1]).all().unsqueeze(0)
    *cuts, ok = torch.cat([cuts, sorted_.long()]).tolist()
    bounds = sorted(set([0, *cuts, n]))
    if not ok or len(bounds) < 3:
        return _Chunks([0, n], [])
    k = graph.k
    return _Chunks(bounds, [graph.src[k * a:k * b] - a for a, b in zip(bounds, bounds[1:])])


def _kernels():
    """The compiled EGNN layer (``symformer._cpp.load``), or None where it cannot be built."""
    return _cpp.load("egnn_layer")


def _layer_autograd(u, lin_w, lin_b, h, x, vel, edge_attr, inv_degree, w_1, b_1, w_2, b_2, w_c,
                    b_c, w_o, w_v, b_v, w_v2, b_v2, w_n, b_n, w_n2, b_n2, graph, flags):
    """The forward of :class:`_Layer` in plain differentiable operations (same arguments and
    results), which autograd differentiates: second derivatives work, and ``graph`` may be a
    :class:`~._nbody_io.DenseGraph`. About 10% slower than :class:`_Layer` on a CPU, as fast on
    a GPU."""
    update_h, residual, norm_diff, tanh = flags
    H = w_2.shape[0]
    w_cat, b_cat, w_r, w_q = _node_weights(w_1, b_1, w_v, b_v, w_n, b_n, update_h)
    if lin_w is not None:
        w_cat, b_cat = torch.mm(w_cat, lin_w), torch.addmv(b_cat, w_cat, lin_b)
    t_p, t_q, t_v, *t_s = F.linear(u, w_cat, b_cat).split(H, dim=1)  # [N, H] each
    diff = graph.pairwise(torch.sub, x, x)  # [E, 3]
    radial = (diff * diff).sum(-1, keepdim=True)  # [E, 1]
    r = torch.cat([radial, edge_attr], dim=-1)
    pre = graph.with_target(torch.add, t_p, graph.source(t_q)).addmm(r, w_r.t())
    m = F.silu(F.linear(F.silu(pre), w_2, b_2))  # [E, H]
    phi = F.linear(F.silu(F.linear(m, w_c, b_c)), w_o)  # [E, 1]
    if tanh:
        phi = phi.tanh()
    if norm_diff:
        diff = diff / (radial.sqrt() + 1)
    trans = torch.clamp(diff * phi, min=-100, max=100)
    x = torch.addcmul(x, graph.sum(trans), inv_degree)
    x = torch.addcmul(x, F.linear(F.silu(t_v), w_v2, b_v2), vel)
    if not update_h:
        return None, x
    out = F.linear(F.silu(torch.addmm(t_s[0], graph.sum(m), w_q.t())), w_n2, b_n2)
    return (out + h if residual else out), x
