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
from ._egnn_layers import (_Chunks, _CompiledLayer, _kernels, _Layer, _layer_autograd,
                           _plan_chunks)
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
                update_h: bool = True, h_linear=None, fused_backward: bool = True,
                chunks: _Chunks | None = None) -> tuple[Tensor, Tensor]:
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
        fused_backward : bool
            True: one autograd node with the hand-written backward (:class:`_Layer`); False:
            plain operations recorded by autograd (same values).
        chunks : _Chunks or None
            Given (CPU tensors, ``graph`` a :class:`~._nbody_io.MessageGraph`): run the layer in
            C++ (:class:`_CompiledLayer`), split among threads as ``chunks`` says; needs
            ``fused_backward``.

        Returns
        -------
        h : Tensor, shape (N, hidden); x : Tensor, shape (N, 3)
        """
        e0, _, e2, _ = self.edge_mlp
        c0, _, c2, *_ = self.coord_mlp
        v0, _, v2 = self.coord_mlp_vel
        n0, _, n2 = self.node_mlp
        u, lin_w, lin_b = (h, None, None) if h_linear is None else \
            (h_linear[0], h_linear[1].weight, h_linear[1].bias)
        args = (u, lin_w, lin_b, h, x, vel, edge_attr, inv_degree, e0.weight, e0.bias,
                e2.weight, e2.bias, c0.weight, c0.bias, c2.weight, v0.weight, v0.bias, v2.weight,
                v2.bias, n0.weight, n0.bias, n2.weight, n2.bias, graph,
                (update_h, self.residual, self.norm_diff, self.tanh))
        if chunks is not None:
            if not fused_backward:
                raise ValueError("chunks: the compiled layer has the fused backward only")
            h_new, x = _CompiledLayer.apply(*args, chunks)
        else:
            h_new, x = (_Layer.apply if fused_backward else _layer_autograd)(*args)
        return (h_new if update_h else h), x


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
    radius : float or None
        None (default): no distance cutoff; a number: only nodes closer than ``radius`` exchange
        messages (radius graphs; with ``neighbors``, the nearest ones among them).
    fused_backward : bool or None
        True: each layer is one autograd node with a hand-written backward (fastest on a CPU,
        where it spares about sixty recorded operations and every recomputed ``sigmoid`` per
        layer; first derivatives only). False: plain operations that autograd differentiates
        (as fast on a GPU; supports second derivatives). None (default): True on a CPU, False
        on other devices, decided at each call.
    dense : bool or None
        True: complete graphs of equal-size systems are laid out as dense ``(B, n, n)`` edge
        tensors (:class:`~._nbody_io.DenseGraph`: broadcasts instead of gathers and scatters;
        on an H200 4% faster eager, 20% with CUDA graphs; plain autograd layers). Batches whose
        systems differ in size use the edge lists. None (default): dense off the CPU unless
        ``fused_backward=True``. Needs complete graphs (``neighbors`` and ``radius`` None).
    compiled : bool or None
        True: the fused layers run in C++ (``symformer/models/csrc/egnn_layer.cpp``, compiled at
        first use, see :mod:`symformer._cpp`; same values), and with several threads each thread
        runs whole layers on its own systems; CPU only, an error where it cannot be built.
        False: the Python layers. None (default): C++ where the fused layers run on a CPU and
        the extension builds, else Python.
    """

    def __init__(self, *, hidden: int = 64, n_layers: int = 4, residual: bool = True,
                 norm_diff: bool = False, tanh: bool = False, neighbors: int | None = None,
                 radius: float | None = None, fused_backward: bool | None = None,
                 dense: bool | None = None, compiled: bool | None = None):
        super().__init__()
        for name, val in (("fused_backward", fused_backward), ("dense", dense),
                          ("compiled", compiled)):
            if val is not None and not isinstance(val, bool):
                raise ValueError(f"{name}: expected True, False or None, got {val!r}")
        self.neighbors, self.radius = _nbody_io.graph_options(neighbors, radius)
        if dense and (neighbors is not None or radius is not None):
            raise ValueError("dense: dense layouts are for complete graphs; leave neighbors "
                             "and radius None")
        if dense and fused_backward:
            raise ValueError("dense: dense layouts use plain autograd layers; leave "
                             "fused_backward False or None")
        if compiled and (fused_backward is False or dense):
            raise ValueError("compiled: the C++ layers have the fused backward and edge lists; "
                             "leave fused_backward and dense None")
        self.fused_backward, self.dense, self.compiled = fused_backward, dense, compiled
        for name, val, low in (("hidden", hidden, 1), ("n_layers", n_layers, 0)):
            if isinstance(val, bool) or not isinstance(val, int) or val < low:
                raise ValueError(f"{name}: expected an int >= {low}, got {val!r}")
        self._graphs = _nbody_io.GraphCache()
        self.embedding = nn.Linear(1, hidden)
        self.layers = nn.ModuleList(
            EGCLVel(hidden, 2, residual=residual, norm_diff=norm_diff, tanh=tanh)
            for _ in range(n_layers))

    def forward(self, pos: Tensor, vel: Tensor, charges: Tensor, batch: Tensor) -> Tensor:
        """Predicted positions (N, 3) from flat node inputs (see :mod:`._nbody_io`)."""
        _nbody_io.check_nbody_inputs(pos, vel, charges, batch)
        layout, order = self._dense_layout(pos, batch), None
        if layout is not None:  # complete graphs of equal size, nodes in system order
            systems, n, order = layout
            if order is not None:
                pos, vel, charges = pos[order], vel[order], charges[order]
            graph = _nbody_io.DenseGraph(systems, n, pos.dtype, pos.device)
            inv_degree = graph.inv_degree(pos.dtype).unsqueeze(-1)  # [N, 1]
        else:
            # derived: 1 / degree per dtype and chunk plans per thread count, kept with the graph
            graph, derived = self._graphs.graph(pos, batch, self.neighbors, self.radius)
            if pos.dtype not in derived:
                derived[pos.dtype] = graph.inv_degree(pos.dtype).unsqueeze(-1)
            inv_degree = derived[pos.dtype]
        diff = graph.pairwise(torch.sub, pos, pos)  # [E, 3]
        charge_prod = graph.pairwise(torch.mul, charges, charges)  # [E]
        edge_attr = torch.stack([charge_prod, (diff * diff).sum(-1)], dim=-1)  # [E, 2]
        speed = vel.norm(dim=-1, keepdim=True)  # [N, 1]
        h = self.embedding(speed)  # [N, hidden]
        x = pos
        fused = layout is None and (self.fused_backward if self.fused_backward is not None
                                    else pos.device.type == "cpu")
        chunks = None
        if self._use_compiled(fused, pos):
            threads = torch.get_num_threads()
            if threads not in derived:
                derived[threads] = _plan_chunks(graph, batch, threads)
            chunks = derived[threads]
        for i, layer in enumerate(self.layers):  # the last layer's features are not read
            h, x = layer(h, x, vel, edge_attr, graph, inv_degree,
                         update_h=i + 1 < len(self.layers),
                         h_linear=(speed, self.embedding) if i == 0 else None,
                         fused_backward=fused, chunks=chunks)
        return x if order is None else x.index_select(0, torch.argsort(order))

    def _use_compiled(self, fused: bool, pos: Tensor) -> bool:
        """Whether this call runs the C++ layers (see ``compiled``)."""
        supported = pos.device.type == "cpu" and pos.dtype in (torch.float32, torch.float64)
        if self.compiled is False or not fused or not supported:
            if self.compiled and not supported:
                raise ValueError(f"compiled: the C++ layers take float32 or float64 tensors on "
                                 f"the CPU, got {pos.dtype} on {pos.device}; use compiled=None "
                                 "or False")
            return False
        if _kernels() is None:
            if self.compiled:
                raise RuntimeError("compiled: the C++ layers could not be built here (see the "
                                   "warning above, or SYMFORMER_CPP); use compiled=None or "
                                   "False")
            return False
        return True

    def _dense_layout(self, pos: Tensor, batch: Tensor):
        """``DenseGraph.layout(batch)`` when the dense layout applies to this call, else None."""
        dense = self.dense if self.dense is not None else \
            pos.device.type != "cpu" and self.fused_backward is not True
        if not dense or self.neighbors is not None or self.radius is not None:
            return None
        return _nbody_io.DenseGraph.layout(batch)
