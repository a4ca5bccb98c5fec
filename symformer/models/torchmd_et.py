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
from symformer.primitives import cosine_cutoff, exp_without_subnormals

from . import _nbody_io
from ..registry import register

__all__ = ["TorchMDET", "ETAttention", "GatedEquivariantBlock", "expnorm_basis",
           "shared_edge_rows"]

_SHARED_ROWS_MAX = 0.8  # share filter rows when unique pairs are at most this fraction of edges


def expnorm_basis(r: Tensor, num_rbf: int, rbf_range: float) -> Tensor:
    """TorchMD-NET's expanded-normal smearing without envelope (``ExpNormalSmearing``).

    ``exp(-beta (exp(-alpha r) - mu_k)^2)`` with ``alpha = 5 / rbf_range``, ``mu_k`` evenly spaced
    on ``[exp(-rbf_range), 1]`` and ``beta = (2 / num_rbf (1 - exp(-rbf_range)))^-2``; values
    below ``exp(-80)`` are exactly 0 (:func:`~symformer.primitives.exp_without_subnormals`).

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
    u = torch.exp(-(5.0 / rbf_range) * r)[..., None]
    return exp_without_subnormals(-beta * (u - mu) ** 2)


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

    BLOCKED_MIN_EDGES = 512  # from here contiguous per-edge blocks beat the fewest operations

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
        order = torch.arange(3 * hidden).view(heads, 3, self.head_dim).transpose(0, 1).reshape(-1)
        self.register_buffer("_value_order", order, persistent=False)  # see _value_rows

    def _messages(self, x, vec, graph, edge_attr, envelope, direction, edge_rows):
        """``y`` (N, F) and ``w`` (N, 3, F) with the value channels in their stored per-head
        ``[s1 | s2 | s3]`` order: the fewest operations, for small graphs."""
        E, H, D, n = graph.num_edges, self.heads, self.head_dim, x.shape[0]
        if edge_rows is not None:
            edge_attr = edge_attr.index_select(0, edge_rows)
        k_j = graph.source(self.k_proj(x))  # [E, F]
        v_j = graph.source(self.v_proj(x))  # [E, 3F], per head [s1 | s2 | s3] blocks of D
        dk = F.silu(self.dk_proj(edge_attr))  # [E, F]
        dv = F.silu(self.dv_proj(edge_attr))  # [E, 3F]
        # q_i is a broadcast, not a gather, on regular graphs.
        logits = (graph.with_target(torch.mul, self.q_proj(x), k_j) * dk).view(E, H, D).sum(-1)
        attn = F.silu(logits) if envelope is None else F.silu(logits) * envelope[:, None]
        # unbind, not three selects: one gradient buffer instead of three zero-filled ones.
        s1, s2, s3 = (v_j * dv).view(E, H, 3, D).unbind(2)  # 3 x [E, H, D]
        y = graph.sum_product(s1, attn[..., None]).view(n, self.hidden)  # [N, F]
        w = graph.sum_product(graph.source(vec).view(E, 3, H, D),
                              s2.unsqueeze(1)).view(n, 3, self.hidden)  # sum_j vec_j s2_ij
        # sum_j d_ij s3_ij^T: one batched product on regular graphs, no (E, 3, F) temporary.
        return y, w + graph.outer_sum(direction, s3.reshape(E, self.hidden))

    def _messages_blocked(self, x, vec, graph, edge_attr, envelope, direction, edge_rows):
        """As :meth:`_messages`, with every per-edge tensor a contiguous ``(E, F)`` block (the
        value channels regrouped by :meth:`_value_rows`) and ``vec_j s2_ij`` formed as
        ``(vec_j v2_j) D^V2_ij``: strided column slices of ``(E, 3F)`` tensors make
        elementwise products several times slower on the CPU, which dominates large graphs."""
        E, H, D, n, Fh = graph.num_edges, self.heads, self.head_dim, x.shape[0], self.hidden
        # unbind, not iteration: one stacked gradient instead of a zero-filled one per block
        v1, v2, v3 = _stacked_linear(x, *self._value_rows(self.v_proj), 3).unbind(0)  # [N, F]
        wd, bd = self._value_rows(self.dv_proj)
        dv = F.silu(_stacked_linear(edge_attr, wd, bd, 3))  # [3, E or U, F]
        dk = F.silu(self.dk_proj(edge_attr))  # [E or U, F]
        if edge_rows is not None:  # filters of shared rows, then one gather per edge
            dv, dk = dv.index_select(1, edge_rows), dk.index_select(0, edge_rows)
        dv1, dv2, dv3 = dv.unbind(0)  # 3 x [E, F]
        q, k = self.q_proj(x), self.k_proj(x)
        k_j, v1_j, v3_j, vv_j = (graph.source(t) for t in (k, v1, v3,
                                                           (vec * v2[:, None, :]).flatten(1)))
        logits = (graph.with_target(torch.mul, q, k_j * dk)).view(E, H, D).sum(-1)  # [E, H]
        attn = F.silu(logits) if envelope is None else F.silu(logits) * envelope[:, None]
        y = graph.sum_product((v1_j * dv1).view(E, H, D), attn[..., None]).view(n, Fh)
        if not graph.regular:  # both vector terms in one (E, 3, F) tensor: one scatter
            return y, graph.sum(torch.addcmul(vv_j.view(E, 3, Fh) * dv2.unsqueeze(1),
                                              direction.unsqueeze(2), (v3_j * dv3).unsqueeze(1)))
        w = graph.sum_product(vv_j.view(E, 3, Fh), dv2.unsqueeze(1))  # sum_j vec_j s2_ij
        return y, w + graph.outer_sum(direction, v3_j * dv3)  # [N, 3, F]

    def _value_rows(self, layer: nn.Linear) -> tuple[Tensor, Tensor | None]:
        """Weight and bias of a ``3F``-wide value map with rows reordered from the per-head
        ``[s1 | s2 | s3]`` blocks to ``[s1 of all heads | s2 | s3]``, three blocks of F."""
        order = self._value_order
        return layer.weight[order], (layer.bias[order] if layer.bias is not None else None)

    def forward(self, x: Tensor, vec: Tensor, graph, edge_attr: Tensor,
                envelope: Tensor | None, direction: Tensor,
                edge_rows: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """
        Parameters
        ----------
        x : Tensor, shape (N, F); vec : Tensor, shape (N, 3, F)
        graph : MessageGraph, or Tensor of shape (2, E) (``[0]`` source j, ``[1]`` target i;
            the edge tensors then follow its order). Messages flow from source j to target i.
        edge_attr : Tensor, shape (E, edge_dim), in the edge order of ``graph``; or shape
            (U, edge_dim) with ``edge_rows``: rows shared by several edges (``j -> i`` and
            ``i -> j`` have equal features), whose distance filters are computed once.
        envelope : Tensor, shape (E,), the cutoff factor of each edge, or None for none.
        direction : Tensor, shape (E, 3), ``d_ij`` (zero for coincident points).
        edge_rows : Tensor, shape (E,), optional; the row of ``edge_attr`` of each edge.

        Returns
        -------
        dx : Tensor, shape (N, F); dvec : Tensor, shape (N, 3, F), the residual updates.
        """
        if isinstance(graph, Tensor):
            graph = _nbody_io.MessageGraph(graph, x.shape[0], keep_order=True)
        Fh = self.hidden
        x = self.layernorm(x)
        u1, u2, u3 = torch.split(self.vec_proj(vec), Fh, dim=-1)  # 3 x [N, 3, F]
        messages = (self._messages_blocked if graph.num_edges >= self.BLOCKED_MIN_EDGES
                    else self._messages)
        y, w = messages(x, vec, graph, edge_attr, envelope, direction, edge_rows)
        o1, o2, o3 = torch.split(self.o_proj(y), Fh, dim=-1)  # 3 x [N, F]
        dx = (u1 * u2).sum(dim=1) * o2 + o3
        dvec = u3 * o1[:, None, :] + w
        return dx, dvec


def shared_edge_rows(src: Tensor, dst: Tensor, num_nodes: int
                     ) -> tuple[Tensor | None, Tensor | None]:
    """Rows shared by the two directions of each node pair, for :class:`ETAttention`'s
    ``edge_rows``, on graphs large enough for the blocked messages and with enough mutual
    edges (unique pairs at most ``_SHARED_ROWS_MAX`` of the edges); else ``(None, None)``.

    Parameters
    ----------
    src, dst : Tensor, shape (E,), the edges ``src -> dst``.
    num_nodes : int

    Returns
    -------
    rows : Tensor, shape (E,), the pair of each edge; first : Tensor, shape (U,), one edge of
    each pair (features of the pairs: ``edge_attr[first]``).
    """
    if src.shape[0] < ETAttention.BLOCKED_MIN_EDGES:
        return None, None
    a, b = torch.minimum(src, dst), torch.maximum(src, dst)
    pairs, rows = torch.unique(a * num_nodes + b, return_inverse=True)
    if pairs.shape[0] > _SHARED_ROWS_MAX * src.shape[0]:
        return None, None  # few mutual edges: the gathers would cost more than they save
    first = torch.empty_like(pairs).scatter_(0, rows, torch.arange(rows.shape[0],
                                                                 device=rows.device))
    return rows, first


def _stacked_linear(x: Tensor, weight: Tensor, bias: Tensor | None, blocks: int) -> Tensor:
    """``x W^T + b`` as ``blocks`` (B) separate contiguous blocks of F channels, one product.

    Parameters
    ----------
    x : Tensor, shape (M, A); weight : Tensor, shape (B F, A); bias : Tensor, shape (B F,)
        or None
    blocks : int

    Returns
    -------
    Tensor, shape (B, M, F). Every block is contiguous: elementwise products of ``(M, F)``
    column slices of one ``(M, B F)`` result run several times slower on the CPU.
    """
    width = weight.shape[0] // blocks
    w = weight.view(blocks, width, -1).transpose(1, 2)
    if bias is None:
        return torch.bmm(x.expand(blocks, *x.shape), w)
    return torch.baddbmm(bias.view(blocks, 1, width), x.expand(blocks, *x.shape), w)


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
    radius : float or None
        None (default): no distance cutoff; a number: only nodes closer than ``radius`` exchange
        messages (radius graphs; with ``neighbors``, the nearest ones among them).
    """

    def __init__(self, *, hidden: int = 64, n_layers: int = 4, heads: int = 8, num_rbf: int = 32,
                 rbf_range: float = 10.0, cutoff: float | None = None,
                 neighbors: int | None = None,
                 radius: float | None = None):
        super().__init__()
        self.neighbors, self.radius = _nbody_io.graph_options(neighbors, radius)
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
        edges = _nbody_io.system_edges(pos, batch, self.neighbors, self.radius)  # [2, E]
        graph = _nbody_io.MessageGraph(edges, pos.shape[0])
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
        nb = self.neighbor_filter(edge_attr)  # [E, F]
        if envelope is not None:
            nb = nb * envelope[:, None]
        nb = graph.sum_product(graph.source(self.neighbor_embedding(node_in)), nb)  # [N, F]
        x = self.neighbor_combine(torch.cat([x, nb], -1))
        vec = vel[:, :, None] * self.vel_embedding.weight[:, 0]  # [N, 3, F]

        # j -> i and i -> j have bitwise equal features (|r|, c_i c_j): every layer computes
        # the distance filters once per pair of nodes
        rows, first = shared_edge_rows(graph.src, graph.dst, pos.shape[0])
        if rows is not None:
            edge_attr = edge_attr.index_select(0, first)  # [U, num_rbf + 1]
        for layer in self.layers:
            dx, dvec = layer(x, vec, graph, edge_attr, envelope, direction, rows)
            x, vec = x + dx, vec + dvec
        x = self.out_norm(x)
        for block in self.head:
            x, vec = block(x, vec)
        return pos + vec[:, :, 0]  # [N, 3]
