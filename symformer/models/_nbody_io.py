"""Shared pieces of the n-body models: input checks, example inputs, fully connected graphs.

N-body models take flat node tensors (see :func:`symformer.data.nbody.to_graph_batch`)::

    pos     : Tensor, shape (N, 3)   positions            "node:point"
    vel     : Tensor, shape (N, 3)   velocities           "node:vector"
    charges : Tensor, shape (N,)     charges              "node:scalar"
    batch   : Tensor, shape (N,)     system of each node  "node:scalar" (integer)

``batch`` need not be sorted and the nodes of one system need not be contiguous, so that
permuting the node axis (``batch`` included) is a symmetry of every model.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from symformer.data.graphs import radius_graph
from symformer.primitives.scatter import scatter_sum

from ._checks import check_integer_dtype, check_point_cloud

__all__ = ["NBODY_IN_TYPES", "EXAMPLE_SYSTEMS", "EXAMPLE_PARTICLES", "EXAMPLE_NODES",
           "example_inputs", "check_nbody_inputs", "fully_connected_edges", "system_edges",
           "check_neighbors", "check_radius", "graph_options", "MessageGraph", "DenseGraph",
           "GraphCache"]

NBODY_IN_TYPES = {"pos": "node:point", "vel": "node:vector", "charges": "node:scalar",
                  "batch": "node:scalar"}
EXAMPLE_SYSTEMS, EXAMPLE_PARTICLES = 3, 5
EXAMPLE_NODES = EXAMPLE_SYSTEMS * EXAMPLE_PARTICLES


def example_inputs(module, generator: torch.Generator, dtype: torch.dtype) -> dict:
    """3 random systems of 5 charged particles as flat node tensors (15 nodes).

    Positions ``N(0, 1)``, velocities of speed 0.5 in random directions, charges in {-1, +1},
    as at the start of the benchmark's simulations.
    """
    n = EXAMPLE_NODES
    pos = torch.randn(n, 3, generator=generator, dtype=torch.float64)
    vel = torch.randn(n, 3, generator=generator, dtype=torch.float64)
    vel = 0.5 * vel / vel.norm(dim=-1, keepdim=True)
    charges = torch.randint(0, 2, (n,), generator=generator).to(torch.float64) * 2 - 1
    batch = torch.arange(EXAMPLE_SYSTEMS).repeat_interleave(EXAMPLE_PARTICLES)
    return {"pos": pos.to(dtype), "vel": vel.to(dtype), "charges": charges.to(dtype),
            "batch": batch}


def check_nbody_inputs(pos: Tensor, vel: Tensor, charges: Tensor, batch: Tensor) -> None:
    """Raise ``TypeError``/``ValueError`` naming the argument unless the inputs are consistent
    flat node tensors (shapes above, one floating dtype, integer ``batch >= 0``, finite)."""
    n = check_point_cloud(pos=pos, vel=vel, charges=charges, batch=batch)
    if n == 0:
        raise ValueError("pos: expected at least one node, got shape (0, 3)")
    if vel.shape != pos.shape:
        raise ValueError(f"vel: expected shape {tuple(pos.shape)} like pos, got {tuple(vel.shape)}")
    if charges.shape != (n,):
        raise ValueError(f"charges: expected shape ({n},), got {tuple(charges.shape)}")
    if batch.shape != (n,):
        raise ValueError(f"batch: expected shape ({n},), got {tuple(batch.shape)}")
    for name, x in (("vel", vel), ("charges", charges)):
        if x.dtype != pos.dtype:
            raise TypeError(f"{name}: expected dtype {pos.dtype} like pos, got {x.dtype}")
    check_integer_dtype("batch", batch)
    # One read of four flags: on a GPU each host read waits for the device.
    negative, *finite = torch.stack([batch.min() < 0] + [torch.isfinite(x).all()
                                                          for x in (pos, vel, charges)]).tolist()
    if negative:
        raise ValueError("batch: expected non-negative system indices")
    for name, ok in zip(("pos", "vel", "charges"), finite):
        if not ok:
            raise ValueError(f"{name}: contains NaN or infinite values")


def fully_connected_edges(batch: Tensor) -> Tensor:
    """Every ordered pair of distinct nodes in the same system.

    Parameters
    ----------
    batch : Tensor, shape (N,), integer >= 0; need not be sorted.

    Returns
    -------
    Tensor, shape (2, E), long, with ``E = sum_g n_g (n_g - 1)``; ``[0]`` is the source j and
    ``[1]`` the target i (messages flow j -> i), grouped by system in ascending order.
    """
    if batch.device.type != "cpu":  # sizes depend on values: one copy to the host, not six reads
        return fully_connected_edges(batch.cpu()).to(batch.device)
    batch = batch.long()
    order = torch.argsort(batch, stable=True)  # nodes grouped by system
    counts = torch.bincount(batch)  # (G,)
    start = torch.cumsum(counts, 0) - counts  # first position of each system in `order`
    pairs = counts * counts
    graph = torch.repeat_interleave(torch.arange(len(counts), device=batch.device), pairs)
    k = torch.arange(graph.shape[0], device=batch.device) - (torch.cumsum(pairs, 0) - pairs)[graph]
    n = counts[graph]
    a, b = k // n, k % n  # local (target, source) of each of the n^2 pairs
    keep = a != b
    base = start[graph]
    return torch.stack([order[(base + b)[keep]], order[(base + a)[keep]]])


def check_neighbors(neighbors) -> None:
    """``ValueError`` naming ``neighbors`` unless it is None or a positive int."""
    if neighbors is not None and (isinstance(neighbors, bool) or not isinstance(neighbors, int)
                                  or neighbors < 1):
        raise ValueError(f"neighbors: expected None (complete graphs) or an int >= 1, "
                         f"got {neighbors!r}")


def check_radius(radius) -> None:
    """``ValueError`` naming ``radius`` unless it is None or a positive number."""
    if radius is not None and (isinstance(radius, bool) or not isinstance(radius, (int, float))
                               or math.isnan(radius) or radius <= 0):
        raise ValueError(f"radius: expected None (no cutoff) or a positive number, "
                         f"got {radius!r}")


def graph_options(neighbors, radius) -> tuple[int | None, float | None]:
    """Checked ``(neighbors, radius)`` of a model's message-passing graph (see
    :func:`system_edges`); a ``ValueError`` names the bad one."""
    check_neighbors(neighbors)
    check_radius(radius)
    return neighbors, (None if radius is None else float(radius))


def system_edges(pos: Tensor, batch: Tensor, neighbors: int | None = None,
                 radius: float | None = None) -> Tensor:
    """The message-passing graph of the models, within each system: complete (both None), the
    nodes closer than ``radius`` (a radius graph), each node's ``neighbors`` nearest nodes (a
    k-NN graph), or the ``neighbors`` nearest among those closer than ``radius`` (both).

    Radius graphs depend on distances only, so the models stay exactly E(3)- and
    permutation-equivariant; the k-NN choice is too for points in general position (no ties at
    the k-th distance). A node with no other node within ``radius`` receives no messages.

    Parameters
    ----------
    pos : Tensor, shape (N, 3)
    batch : Tensor, shape (N,), integer >= 0; need not be sorted.
    neighbors : int or None
    radius : float or None; pairs at distance ``< radius`` are edges.

    Returns
    -------
    Tensor, shape (2, E), long; ``[0]`` source j, ``[1]`` target i.
    """
    graph_options(neighbors, radius)
    if neighbors is None and radius is None:
        return fully_connected_edges(batch)
    batch = batch.long()
    order = torch.argsort(batch, stable=True)  # radius_graph wants each system contiguous
    cutoff = math.inf if radius is None else radius
    return order[radius_graph(pos.detach()[order], cutoff, batch[order],
                              max_num_neighbors=neighbors)]


class MessageGraph:
    """Gather and sum node tensors over the edges ``j -> i`` of a message-passing graph.

    Edge tensors have shape ``(E, ...)``. When every node has the same number ``k >= 1`` of
    incoming edges (complete graphs of equal-size systems, k-NN graphs) the edges are put in
    target order, ``k`` per node, and the graph is *regular*: target-side gathers become
    broadcasts (no indexing) and sums over incoming edges become sums over a ``(N, k, ...)``
    view (no scatter), forward and backward. Other graphs gather with ``index_select`` and sum
    with ``index_add``. Both give the same values up to the order of floating-point additions.

    Parameters
    ----------
    edge_index : Tensor, shape (2, E), long; ``[0]`` source j, ``[1]`` target i.
    num_nodes : int
    allow_regular : bool
        False forces the general layout (to compare the two).
    keep_order : bool
        True keeps the given edge order (for edge tensors computed beforehand): the graph is
        then regular only if its edges are already grouped by target in ascending order.

    Attributes
    ----------
    regular : bool
    src, dst : Tensor, shape (E,); the edges in the order of edge tensors.
    """

    def __init__(self, edge_index: Tensor, num_nodes: int, allow_regular: bool = True,
                 keep_order: bool = False):
        src, dst = edge_index[0], edge_index[1]
        self.num_nodes, self.num_edges = num_nodes, src.shape[0]
        # index_add, not bincount, and the three flags in one host read: on a GPU every read
        # of a device value waits for the device.
        self.degree = torch.zeros(num_nodes, dtype=torch.long, device=dst.device).index_add_(
            0, dst, torch.ones_like(dst))  # (N,)
        k, uniform, ordered = 0, False, True
        if num_nodes:
            k, uniform, ordered = torch.stack([
                self.degree[0], (self.degree == self.degree[0]).all().long(),
                (dst[1:] >= dst[:-1]).all().long()]).tolist()
        self.k = k
        self.regular = allow_regular and k > 0 and bool(uniform)
        if self.regular and self.num_edges > 1 and not ordered:
            if keep_order:
                self.regular = False
            else:
                perm = torch.argsort(dst, stable=True)  # each node's incoming edges together
                src, dst = src[perm], dst[perm]
        self.src, self.dst = src, dst

    def source(self, t: Tensor) -> Tensor:
        """``t[j]`` of every edge: ``(N, ...) -> (E, ...)``."""
        return t.index_select(0, self.src)

    def target(self, t: Tensor) -> Tensor:
        """``t[i]`` of every edge: ``(N, ...) -> (E, ...)``."""
        if self.regular:
            return t.unsqueeze(1).expand(self.num_nodes, self.k, *t.shape[1:]).flatten(0, 1)
        return t.index_select(0, self.dst)

    def with_target(self, op, t_target: Tensor, t_edge: Tensor) -> Tensor:
        """``op(t_target[i], t_edge_ij)`` of every edge: ``(N, ...), (E, ...) -> (E, ...)``; in a
        regular graph the target side is a broadcast."""
        if not self.regular:
            return op(self.target(t_target), t_edge)
        t_edge = t_edge.view(self.num_nodes, self.k, *t_edge.shape[1:])
        return op(t_target.unsqueeze(1), t_edge).flatten(0, 1)

    def pairwise(self, op, t_target: Tensor, t_source: Tensor) -> Tensor:
        """``op(t_target[i], t_source[j])`` of every edge, e.g. ``torch.sub`` for ``x_i - x_j``:
        ``(N, ...), (N, ...) -> (E, ...)``."""
        return self.with_target(op, t_target, self.source(t_source))

    def sum_product(self, a: Tensor, b: Tensor) -> Tensor:
        """``sum_j a_ij * b_ij`` (broadcasting) over the incoming edges of each node: ``(E, ...),
        (E, ...) -> (N, ...)``. Same as ``sum(a * b)``, but in a regular graph the product is
        formed in the ``(N, k, ...)`` view, so its gradient is a broadcast, not a copy."""
        if not self.regular:
            return self.sum(a * b)
        n, k = self.num_nodes, self.k
        return (a.view(n, k, *a.shape[1:]) * b.view(n, k, *b.shape[1:])).sum(1)

    def outer_sum(self, a: Tensor, b: Tensor) -> Tensor:
        """``sum_j a_ij b_ij^T`` over the incoming edges of each node: ``(E, p), (E, q) ->
        (N, p, q)``; in a regular graph one batched matrix product (no (E, p, q) temporary)."""
        if self.regular:
            a = a.reshape(self.num_nodes, self.k, a.shape[-1])
            return torch.bmm(a.transpose(1, 2), b.reshape(self.num_nodes, self.k, b.shape[-1]))
        return self.sum(a[:, :, None] * b[:, None, :])

    def sum(self, t: Tensor) -> Tensor:
        """``sum_j t_ij`` over the incoming edges of each node: ``(E, ...) -> (N, ...)``."""
        if self.regular:
            return t.view(self.num_nodes, self.k, *t.shape[1:]).sum(1)
        return scatter_sum(t, self.dst, self.num_nodes)

    def source_sum(self, t: Tensor) -> Tensor:
        """``sum_i t_ij`` over the outgoing edges of each node, the adjoint of :meth:`source`:
        ``(E, ...) -> (N, ...)``."""
        return scatter_sum(t, self.src, self.num_nodes)

    def inv_degree(self, dtype: torch.dtype) -> Tensor:
        """``1 / in-degree`` (1 for nodes without incoming edges), shape (N,)."""
        return 1.0 / self.degree.clamp(min=1).to(dtype)


class GraphCache:
    """A model's message-passing graph, kept while ``batch`` repeats.

    A complete graph depends on ``batch`` only, so the last one is kept with a copy of its
    ``batch``, and :meth:`graph` returns it again while the next ``batch`` is equal (one
    comparison instead of some twenty operations; training batches of equal-size systems all
    match). k-NN and radius graphs depend on positions and are never kept; nor is anything made
    under ``torch.inference_mode``, whose tensors autograd could not save later.

    Attributes
    ----------
    last : ``(batch copy, MessageGraph, derived)`` or None
    """

    def __init__(self):
        self.last = None

    def graph(self, pos: Tensor, batch: Tensor, neighbors: int | None = None,
              radius: float | None = None) -> tuple[MessageGraph, dict]:
        """``(MessageGraph, derived)``: the graph of :func:`system_edges` and a dict, kept with
        it, for what callers derive from the graph alone."""
        keep = neighbors is None and radius is None and not torch.is_inference_mode_enabled()
        last = self.last
        if keep and last is not None and last[0].shape == batch.shape \
                and last[0].dtype == batch.dtype and last[0].device == batch.device \
                and torch.equal(last[0], batch):
            return last[1], last[2]
        graph = MessageGraph(system_edges(pos, batch, neighbors, radius), pos.shape[0])
        derived = {}
        if keep:
            self.last = (batch.clone(), graph, derived)
        return graph, derived


class DenseGraph:
    """The complete graphs of ``B`` systems of ``n`` nodes each, laid out densely: the same
    interface as :class:`MessageGraph` for the operations plain layers use, with nodes in system
    order (node ``b n + i`` is node ``i`` of system ``b``) and edge tensors of shape
    ``(B n n, ...)``, row ``(b, i, j)`` for the edge ``j -> i``.

    The ``n`` self-pairs ``(b, i, i)`` are computed like the other edges (no gather or scatter is
    needed, only broadcasts) and masked out of every sum, so the results equal those on
    :class:`MessageGraph`. Costs ``n / (n - 1)`` the arithmetic of the edge list.

    Parameters
    ----------
    systems, nodes_per_system : int
    dtype, device : those of the node tensors.
    """

    def __init__(self, systems: int, nodes_per_system: int, dtype=torch.float32, device=None):
        self.B, self.n = systems, nodes_per_system
        self.num_nodes, self.num_edges = systems * nodes_per_system, systems * nodes_per_system ** 2
        self.k = max(nodes_per_system - 1, 0)
        # (n, n), 0 on the self-pairs
        self._mask = 1 - torch.eye(nodes_per_system, dtype=dtype, device=device)

    def _target(self, t: Tensor) -> Tensor:
        return t.view(self.B, self.n, 1, *t.shape[1:])

    def source(self, t: Tensor) -> Tensor:
        """``t[j]`` of every edge: ``(N, ...) -> (B n n, ...)``."""
        t = t.view(self.B, 1, self.n, *t.shape[1:])
        return t.expand(self.B, self.n, self.n, *t.shape[3:]).reshape(self.num_edges,
                                                                      *t.shape[3:])

    def with_target(self, op, t_target: Tensor, t_edge: Tensor) -> Tensor:
        """``op(t_target[i], t_edge_ij)``: ``(N, ...), (B n n, ...) -> (B n n, ...)``."""
        t_edge = t_edge.view(self.B, self.n, self.n, *t_edge.shape[1:])
        return op(self._target(t_target), t_edge).flatten(0, 2)

    def pairwise(self, op, t_target: Tensor, t_source: Tensor) -> Tensor:
        """``op(t_target[i], t_source[j])``: ``(N, ...), (N, ...) -> (B n n, ...)``."""
        out = op(self._target(t_target), t_source.view(self.B, 1, self.n, *t_source.shape[1:]))
        return out.flatten(0, 2)

    def sum(self, t: Tensor) -> Tensor:
        """``sum_{j != i} t_ij``: ``(B n n, ...) -> (N, ...)``."""
        t = t.view(self.B, self.n, self.n, *t.shape[1:])
        mask = self._mask.view(1, self.n, self.n, *([1] * (t.dim() - 3)))
        return (t * mask).sum(2).flatten(0, 1)

    def inv_degree(self, dtype: torch.dtype) -> Tensor:
        """``1 / (n - 1)`` for every node (1 for single-node systems), shape (N,)."""
        return torch.full((self.num_nodes,), 1.0 / max(self.k, 1), dtype=dtype,
                          device=self._mask.device)

    @staticmethod
    def layout(batch: Tensor) -> tuple[int, int, Tensor | None] | None:
        """``(B, n, order)`` when every system has the same number ``n`` of nodes, with
        ``order`` the permutation that sorts the nodes by system (None if already sorted);
        None when the sizes differ."""
        sorted_ = (batch[1:] >= batch[:-1]).all().long().view(1)
        *counts, is_sorted = torch.cat([torch.bincount(batch.long()), sorted_]).tolist()
        counts = [c for c in counts if c]  # one host read (a GPU waits once)
        if any(c != counts[0] for c in counts):
            return None
        order = None if is_sorted else torch.argsort(batch, stable=True)
        return len(counts), counts[0], order
