"""TorchMD-ET: the equivariant transformer of TorchMD-NET (Thölke & De Fabritiis, ICLR 2022).

Scalar features ``x`` ``(N, F)`` and vector features ``vec`` ``(N, 3, F)`` are updated by
layers of scalar-vector attention with distance filters (the paper's update equations, as in the
official ``EquivariantMultiHeadAttention``). With ``r_ij = pos_j - pos_i``, ``d_ij = r_ij /
|r_ij|`` and ``f_ij`` the edge features (expanded-normal RBF of ``|r_ij|``)::

    x'          = LayerNorm(x)
    q, k, v     = W_q x', W_k x', W_v x'                   (v has 3F channels)
    U1, U2, U3  = vec_proj(vec)                            (three (N, 3, F) projections)
    D^K, D^V    = SiLU(W_dk f_ij), SiLU(W_dv f_ij)
    A_ij        = SiLU(sum_per_head q_i * k_j * D^K_ij) * cutoff(|r_ij|)   (no softmax)
    s1, s2, s3  = split(v_j * D^V_ij)
    y_i         = sum_j A_ij s1_ij
    w_i         = sum_j s2_ij vec_j + s3_ij d_ij
    o1, o2, o3  = split(W_o y_i)
    x          <- x + <U1, U2> * o2 + o3
    vec        <- vec + o1 * U3 + w_i

For the charged N-body benchmark the inputs are adapted as follows: scalar embedding
``W [c_i, |v_i|]`` plus TorchMD-NET's neighbour embedding, vector features initialised with the
velocity (``vec_i = v_i w^T``, ``w`` learnable of size F), and the product of charges ``c_i c_j``
concatenated to the RBF in every distance filter. Graphs are fully connected within each system.
The benchmark needs no cutoff: by default (``cutoff=None``) there is no cosine envelope and the
RBF centres span ``[0, rbf_range]`` (the expanded-normal basis saturates smoothly beyond it). The
output is ``pos`` plus a displacement from two gated equivariant blocks (TorchMD-NET's
``EquivariantVectorOutput``). Equivariant to E(3) (vector features are true vectors; reflections
included) and to permutations of the nodes.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from symformer.groups import E3, Symmetric
from symformer.primitives import cosine_cutoff

from . import _nbody_io
from ..registry import register

__all__ = ["TorchMDET", "ETAttention", "GatedEquivariantBlock", "expnorm_basis"]


def expnorm_basis(r: Tensor, num_rbf: int, rbf_range: float) -> Tensor:
    """TorchMD-NET's expanded-normal smearing without envelope (``ExpNormalSmearing``).

    ``exp(-beta (exp(-alpha r) - mu_k)^2)`` with ``alpha = 5 / rbf_range``, ``mu_k`` evenly spaced
    on ``[exp(-rbf_range), 1]`` and ``beta = (2 / num_rbf (1 - exp(-rbf_range)))^-2``.

    Parameters
    ----------
    r : Tensor, shape (...), distances.

    Returns
    -------
    Tensor, shape (..., num_rbf)
    """
    start = math.exp(-rbf_range)
    mu = torch.linspace(start, 1.0, num_rbf, dtype=r.dtype, device=r.device)
    beta = (2.0 / num_rbf * (1.0 - start)) ** -2
    return torch.exp(-beta * (torch.exp(-(5.0 / rbf_range) * r)[..., None] - mu) ** 2)


def _safe_norm(v: Tensor, dim: int) -> Tensor:
    """``|v|`` along ``dim`` with a zero (not NaN) gradient at ``v = 0``."""
    sq = (v * v).sum(dim)
    nz = sq > 0
    return torch.where(nz, torch.where(nz, sq, torch.ones_like(sq)).sqrt(), torch.zeros_like(sq))


def _xavier(*layers: nn.Linear) -> None:
    # TorchMD-NET's reset_parameters: Xavier-uniform weights, zero biases.
    for layer in layers:
        nn.init.xavier_uniform_(layer.weight)
        if layer.bias is not None:
            nn.init.zeros_(layer.bias)


class ETAttention(nn.Module):
    """One equivariant multi-head attention layer (``EquivariantMultiHeadAttention``).

    Parameters
    ----------
    hidden : int
        Feature width F (divisible by ``heads``).
    edge_dim : int
        Width of the edge features fed to the distance filters.
    heads : int
        Number of attention heads.
    """

    def __init__(self, hidden: int, edge_dim: int, heads: int):
        super().__init__()
        self.hidden, self.heads, self.head_dim = hidden, heads, hidden // heads
        self.layernorm = nn.LayerNorm(hidden)
        self.q_proj = nn.Linear(hidden, hidden)
        self.k_proj = nn.Linear(hidden, hidden)
        self.v_proj = nn.Linear(hidden, 3 * hidden)
        self.o_proj = nn.Linear(hidden, 3 * hidden)
        self.vec_proj = nn.Linear(hidden, 3 * hidden, bias=False)
        self.dk_proj = nn.Linear(edge_dim, hidden)
        self.dv_proj = nn.Linear(edge_dim, 3 * hidden)
        _xavier(self.q_proj, self.k_proj, self.v_proj, self.o_proj, self.vec_proj, self.dk_proj,
                self.dv_proj)

    def _channel_order(self) -> Tensor:
        """Row order putting the per-head ``[s1 | s2 | s3]`` blocks of ``v_proj`` and ``dv_proj``
        into three (heads x head_dim) blocks, so that s1, s2, s3 are column ranges."""
        H, D = self.heads, self.head_dim
        return torch.arange(3 * H * D, device=self.v_proj.weight.device).view(
            H, 3, D).transpose(0, 1).reshape(-1)

    def _filter_weights(self, edge_dim_in: int, order: Tensor) -> tuple[Tensor, Tensor | None]:
        """Weights of ``[W_dk; W_dv]`` (4F, edge_dim) and biases; with ``edge_dim_in =
        edge_dim + 1`` (a trailing column of ones in the edge features) the biases become the
        last weight column, so they ride in the products instead of being copied into every
        row."""
        weight = torch.cat([self.dk_proj.weight, self.dv_proj.weight[order]])  # [4F, edge_dim]
        dk_b, dv_b = self.dk_proj.bias, self.dv_proj.bias  # either may be None (no bias)
        if dk_b is None and dv_b is None:
            return weight, None
        bias = torch.cat([weight.new_zeros(self.hidden) if dk_b is None else dk_b,
                          weight.new_zeros(3 * self.hidden) if dv_b is None else dv_b[order]])
        if edge_dim_in == weight.shape[1] + 1:
            return torch.cat([weight, bias[:, None]], dim=1), None
        return weight, bias

    def _messages(self, graph: _nbody_io.MessageGraph, q: Tensor, kv: Tensor, pv: Tensor,
                  edge_attr: Tensor, weight: Tensor, bias: Tensor | None,
                  envelope: Tensor | None, direction: Tensor) -> tuple[Tensor, Tensor]:
        """``y_i = sum_j A_ij s1_ij`` (N_t, F) and ``w_i = sum_j s2_ij vec_j + d_ij s3_ij^T``
        (N_t, 3, F) for the targets of ``graph``.

        q : (N_t, F) target queries; kv : (N, 3F) ``[k | v1 | v3]`` of the sources; pv :
        (3, N, F) ``vec_j v2_j`` by spatial component; edge tensors (E_t, ...) in graph order.
        """
        E, H, D, Fh = graph.num_edges, self.heads, self.head_dim, self.hidden
        # One product per filter block (blocks used apart: splitting one product would copy
        # its gradient back together).
        dk, dv1, dv2, dv3 = [F.silu(F.linear(edge_attr, weight[b * Fh:(b + 1) * Fh],
                                             None if bias is None else bias[b * Fh:(b + 1) * Fh]))
                             for b in range(4)]  # 4 x [E, F]
        k_j, v1_j, v3_j = graph.source(kv).split(Fh, dim=-1)  # 3 x [E, F]
        logits = (graph.with_target(torch.mul, q, k_j) * dk).view(E, H, D).sum(-1)  # [E, H]
        attn = F.silu(logits) if envelope is None else F.silu(logits) * envelope[:, None]
        msg_x = ((v1_j * dv1).view(E, H, D) * attn[..., None]).view(E, Fh)  # [E, F]
        y = graph.sum(msg_x)  # [N_t, F]
        # sum_j vec_j s2_ij with s2_ij = v2_j dv2_ij: the node factor vec_j v2_j first, one
        # spatial component at a time ((E, F) temporaries, not (E, 3, F) ones).
        w = torch.stack([graph.sum(graph.source(pv[c]) * dv2) for c in range(3)], 1)
        return y, w + graph.outer_sum(direction, v3_j * dv3)  # + sum_j d_ij s3_ij^T

    def forward(self, x: Tensor, vec: Tensor, graph, edge_attr: Tensor,
                envelope: Tensor | None, direction: Tensor) -> tuple[Tensor, Tensor]:
        """
        Parameters
        ----------
        x : Tensor, shape (N, F); vec : Tensor, shape (N, 3, F)
        graph : MessageGraph, or Tensor of shape (2, E) (``[0]`` source j, ``[1]`` target i;
            the edge tensors then follow its order). Messages flow from source j to target i.
        edge_attr : Tensor, shape (E, edge_dim), in the edge order of ``graph``; or
            (E, edge_dim + 1) with a last column of ones, which carries the filter biases.
        envelope : Tensor, shape (E,), the cutoff factor of each edge, or None for none.
        direction : Tensor, shape (E, 3), ``d_ij`` (zero for coincident points).

        Returns
        -------
        dx : Tensor, shape (N, F); dvec : Tensor, shape (N, 3, F), the residual updates.
        """
        Fh = self.hidden
        if isinstance(graph, Tensor):
            graph = _nbody_io.MessageGraph(graph, x.shape[0], keep_order=True)
        order = self._channel_order()
        x = self.layernorm(x)
        # q, k, v as one product; k and v's s1, s3 parts adjacent, gathered per edge together.
        wv, bv = self.v_proj.weight[order], self.v_proj.bias[order]
        proj = F.linear(x, torch.cat([self.q_proj.weight, self.k_proj.weight, wv[:Fh], wv[2 * Fh:],
                                      wv[Fh:2 * Fh]]),
                        torch.cat([self.q_proj.bias, self.k_proj.bias, bv[:Fh], bv[2 * Fh:],
                                   bv[Fh:2 * Fh]]))  # [N, 5F]
        q, kv, v2 = proj[:, :Fh], proj[:, Fh:4 * Fh], proj[:, 4 * Fh:]
        pv = torch.stack([vec[:, c] * v2 for c in range(3)])  # [3, N, F]
        weight, bias = self._filter_weights(edge_attr.shape[-1], order)
        y, w = self._messages(graph, q, kv, pv, edge_attr, weight, bias, envelope, direction)
        u1, u2, u3 = torch.split(self.vec_proj(vec), Fh, dim=-1)  # 3 x [N, 3, F]
        o1, o2, o3 = torch.split(self.o_proj(y), Fh, dim=-1)  # 3 x [N, F]
        dx = (u1 * u2).sum(dim=1) * o2 + o3
        dvec = u3 * o1[:, None, :] + w
        return dx, dvec


class GatedEquivariantBlock(nn.Module):
    """Gated equivariant block (Schütt et al. 2021, PaiNN; TorchMD-NET's output head).

    ``s, g = MLP([x, |W1 vec|])``; scalar out ``s`` (SiLU'd if ``scalar_activation``), vector out
    ``g * (W2 vec)``. Shapes ``(N, F), (N, 3, F) -> (N, F_out), (N, 3, F_out)``.
    """

    def __init__(self, hidden: int, out: int, *, scalar_activation: bool):
        super().__init__()
        self.out, self.scalar_activation = out, scalar_activation
        self.vec1_proj = nn.Linear(hidden, hidden, bias=False)
        self.vec2_proj = nn.Linear(hidden, out, bias=False)
        self.update_net = nn.Sequential(nn.Linear(2 * hidden, hidden), nn.SiLU(),
                                        nn.Linear(hidden, 2 * out))
        _xavier(self.vec1_proj, self.vec2_proj, self.update_net[0], self.update_net[2])

    def forward(self, x: Tensor, vec: Tensor) -> tuple[Tensor, Tensor]:
        norm = _safe_norm(self.vec1_proj(vec), dim=1)  # [N, F]
        s, gate = torch.split(self.update_net(torch.cat([x, norm], dim=-1)), self.out, dim=-1)
        vec = gate[:, None, :] * self.vec2_proj(vec)  # [N, 3, out]
        return (F.silu(s) if self.scalar_activation else s), vec


@register("torchmd_et", group=lambda: E3() * Symmetric(_nbody_io.EXAMPLE_NODES),
          in_types=_nbody_io.NBODY_IN_TYPES, out_types="node:point",
          example_inputs=_nbody_io.example_inputs,
          description="TorchMD-ET equivariant transformer (Thölke & De Fabritiis 2022), "
                      "velocity-initialised vector features for charged N-body",
          tags=("nbody", "e3", "attention"))
class TorchMDET(nn.Module):
    """Equivariant transformer predicting future positions of charged particles.

    Parameters (keyword-only)
    ----------
    hidden : int
        Feature width F (64).
    n_layers : int
        Number of :class:`ETAttention` layers (4).
    heads : int
        Attention heads; must divide ``hidden`` (8).
    num_rbf : int
        Radial basis functions (32).
    rbf_range : float
        Range of the RBF centres when ``cutoff`` is None (10.0; benchmark distances are mostly
        below 9).
    cutoff : float or None
        Cosine cutoff on attention and RBF as in TorchMD-NET (then the RBF spans
        ``[0, cutoff]``); None (default) for none.
    neighbors : int or None
        None (default): complete graphs within each system, as published; an int: each node's
        ``neighbors`` nearest nodes only (k-NN graphs, for large systems).
    """

    def __init__(self, *, hidden: int = 64, n_layers: int = 4, heads: int = 8, num_rbf: int = 32,
                 rbf_range: float = 10.0, cutoff: float | None = None,
                 neighbors: int | None = None):
        super().__init__()
        _nbody_io.check_neighbors(neighbors)
        self.neighbors = neighbors
        for name, val, low in (("hidden", hidden, 1), ("n_layers", n_layers, 0),
                               ("heads", heads, 1), ("num_rbf", num_rbf, 1)):
            if isinstance(val, bool) or not isinstance(val, int) or val < low:
                raise ValueError(f"{name}: expected an int >= {low}, got {val!r}")
        if hidden % heads:
            raise ValueError(f"heads: must divide hidden={hidden}, got {heads}")
        for name, val in (("rbf_range", rbf_range), ("cutoff", cutoff)):
            if val is not None and (isinstance(val, bool) or not isinstance(val, (int, float))
                                    or not val > 0):
                raise ValueError(f"{name}: expected a positive number, got {val!r}")
        if rbf_range is None:
            raise ValueError("rbf_range: expected a positive number, got None")
        self.num_rbf, self.cutoff = num_rbf, cutoff
        self.rbf_range = float(cutoff if cutoff is not None else rbf_range)
        edge_dim = num_rbf + 1  # RBF and c_i c_j
        self.embedding = nn.Linear(2, hidden)  # [c_i, |v_i|]
        self.vel_embedding = nn.Linear(1, hidden, bias=False)  # v_i -> F vector channels
        # Neighbour embedding (TorchMD-NET's NeighborEmbedding) with continuous node inputs.
        self.neighbor_embedding = nn.Linear(2, hidden)
        self.neighbor_filter = nn.Linear(edge_dim, hidden)
        self.neighbor_combine = nn.Linear(2 * hidden, hidden)
        _xavier(self.embedding, self.neighbor_embedding, self.neighbor_filter,
                self.neighbor_combine)
        self.layers = nn.ModuleList(ETAttention(hidden, edge_dim, heads) for _ in range(n_layers))
        self.out_norm = nn.LayerNorm(hidden)
        self.head = nn.ModuleList([
            GatedEquivariantBlock(hidden, hidden // 2 or 1, scalar_activation=True),
            GatedEquivariantBlock(hidden // 2 or 1, 1, scalar_activation=False)])

    def forward(self, pos: Tensor, vel: Tensor, charges: Tensor, batch: Tensor) -> Tensor:
        """Predicted positions (N, 3) from flat node inputs (see :mod:`._nbody_io`)."""
        _nbody_io.check_nbody_inputs(pos, vel, charges, batch)
        graph = _nbody_io.MessageGraph(_nbody_io.system_edges(pos, batch, self.neighbors),
                                       pos.shape[0])
        rel = graph.pairwise(torch.rsub, pos, pos)  # [E, 3]  r_ij = pos_j - pos_i
        r = _safe_norm(rel, dim=-1)  # [E]
        direction = rel / torch.where(r > 0, r, torch.ones_like(r))[:, None]  # [E, 3]
        envelope = None if self.cutoff is None else cosine_cutoff(r, self.cutoff)  # [E]
        rbf = expnorm_basis(r, self.num_rbf, self.rbf_range)
        if envelope is not None:
            rbf = rbf * envelope[:, None]
        charge_prod = graph.pairwise(torch.mul, charges, charges)  # [E]
        edge_attr = torch.cat([rbf, charge_prod[:, None]], dim=-1)  # [E, num_rbf + 1]

        node_in = torch.stack([charges, _safe_norm(vel, dim=-1)], dim=-1)  # [N, 2]
        x = self.embedding(node_in)  # [N, F]
        nb = graph.source(self.neighbor_embedding(node_in)) * self.neighbor_filter(edge_attr)
        if envelope is not None:
            nb = nb * envelope[:, None]  # [E, F]
        x = self.neighbor_combine(torch.cat([x, graph.sum(nb)], -1))
        vec = vel[:, :, None] * self.vel_embedding.weight[:, 0]  # [N, 3, F]

        edge_in = torch.cat([edge_attr, edge_attr.new_ones(edge_attr.shape[0], 1)], dim=-1)
        for layer in self.layers:
            dx, dvec = layer(x, vec, graph, edge_in, envelope, direction)
            x, vec = x + dx, vec + dvec
        x = self.out_norm(x)
        for block in self.head:
            x, vec = block(x, vec)
        return pos + vec[:, :, 0]  # [N, 3]
