"""The one graph-batch type of symformer, its collation, and the flat <-> dense views.

A batch of ``B`` graphs with ``N`` nodes in total stores node tensors flat, ``[N, ...]``, with a
sorted ``batch`` vector ``[N]`` of graph ids and ``ptr`` ``[B + 1]`` offsets; graph tensors are
``[B, ...]``. Edges are ``edge_index`` ``[2, E]`` with ``edge_index[0]`` the source ``j`` and
``edge_index[1]`` the target ``i`` (messages flow ``j -> i``). Periodic systems add ``cell``
``[B, 3, 3]`` (rows are lattice vectors) and integer ``edge_shift`` ``[E, 3]``; the edge vector
is ``pos[j] + edge_shift @ cell - pos[i]`` (see :func:`edge_vectors`).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import torch
from torch import Tensor

from .validate import (check_batch_vector, check_index, check_same_device, check_tensor)

__all__ = ["GraphBatch", "collate", "to_dense", "from_dense", "edge_vectors"]

RESERVED = ("pos", "edge_index", "edge_shift", "cell")


def edge_vectors(pos: Tensor, edge_index: Tensor, cell: Tensor | None = None,
                 edge_shift: Tensor | None = None, batch: Tensor | None = None) -> Tensor:
    """Edge vectors from target to source, ``pos[j] + edge_shift @ cell - pos[i]``.

    Parameters
    ----------
    pos : Tensor, shape (N, 3)
    edge_index : Tensor, shape (2, E), integer; ``[0]`` = source j, ``[1]`` = target i.
    cell : Tensor, shape (B, 3, 3) or (3, 3), optional; rows are lattice vectors.
    edge_shift : Tensor, shape (E, 3), optional; integer cell offsets of the source image.
    batch : Tensor, shape (N,), optional; needed when ``cell`` has a batch axis and B > 1.

    Returns
    -------
    Tensor, shape (E, 3); differentiable w.r.t. ``pos`` and ``cell``. Only shapes and dtypes
    are checked here (no device synchronisation).
    """
    check_tensor("pos", pos, ("N", 3), "float", finite=False)
    check_tensor("edge_index", edge_index, (2, "E"), "int", finite=False)
    src, dst = edge_index[0], edge_index[1]
    vec = pos[src] - pos[dst]  # [E, 3]
    if (cell is None) != (edge_shift is None):
        raise ValueError("cell and edge_shift: give both or neither")
    if cell is None:
        return vec
    dims = {"E": edge_index.shape[1]}
    check_tensor("edge_shift", edge_shift, ("E", 3), finite=False, dims=dims)
    check_tensor("cell", cell, ("...", 3, 3), "float", finite=False)
    shift = edge_shift.to(pos.dtype)
    if cell.dim() == 2:
        return vec + shift @ cell
    if cell.dim() != 3:
        raise ValueError(f"cell: expected shape (B, 3, 3) or (3, 3), got {tuple(cell.shape)}")
    if batch is None:
        if cell.shape[0] != 1:
            raise ValueError("batch: required when cell holds more than one graph")
        return vec + shift @ cell[0]
    check_tensor("batch", batch, (pos.shape[0],), "int", finite=False)
    return vec + torch.einsum("ek,ekd->ed", shift, cell[batch[dst]])  # [E, 3]


def to_dense(x: Tensor, batch: Tensor, num_graphs: int | None = None,
             max_nodes: int | None = None, fill_value: float = 0.0) -> tuple[Tensor, Tensor]:
    """Scatter flat node data into a padded dense tensor.

    Parameters
    ----------
    x : Tensor, shape (N, ...)
    batch : Tensor, shape (N,), sorted integer graph ids.
    num_graphs : int, optional; defaults to ``batch.max() + 1`` (0 when N == 0).
    max_nodes : int, optional; defaults to the largest graph. A graph larger than
        ``max_nodes`` is an error (nothing is silently dropped).

    Returns
    -------
    dense : Tensor, shape (B, Nmax, ...), padded with ``fill_value``.
    mask : Tensor, shape (B, Nmax), bool; True at real nodes (a prefix of each row).
    """
    check_tensor("x", x, ("N", "..."), finite=False)
    check_batch_vector("batch", batch, x.shape[0], num_graphs)
    n = x.shape[0]
    if num_graphs is None:
        num_graphs = int(batch[-1]) + 1 if n else 0
    counts = torch.bincount(batch, minlength=num_graphs)  # [B]
    biggest = int(counts.max()) if num_graphs else 0
    if max_nodes is None:
        max_nodes = biggest
    elif biggest > max_nodes:
        raise ValueError(f"max_nodes: a graph has {biggest} nodes, more than max_nodes={max_nodes}")
    ptr = torch.cumsum(counts, 0) - counts  # [B] first node of each graph
    local = torch.arange(n, device=x.device) - ptr[batch]  # [N] position inside its graph
    dense = x.new_full((num_graphs, max_nodes) + tuple(x.shape[1:]), fill_value)
    dense[batch, local] = x
    mask = torch.zeros(num_graphs, max_nodes, dtype=torch.bool, device=x.device)
    mask[batch, local] = True
    return dense, mask


def from_dense(dense: Tensor, mask: Tensor) -> Tensor:
    """Inverse of :func:`to_dense`: ``dense`` ``(B, Nmax, ...)`` and ``mask`` ``(B, Nmax)`` to ``(N, ...)``."""
    dims: dict = {}
    check_tensor("mask", mask, ("B", "Nmax"), "bool", dims=dims)
    check_tensor("dense", dense, ("B", "Nmax", "..."), finite=False, dims=dims)
    return dense[mask]


def _cast(t: Tensor | None, device, dtype, non_blocking: bool) -> Tensor | None:
    if t is None:
        return None
    fdtype = dtype if (dtype is not None and t.is_floating_point()) else None
    return t.to(device=device, dtype=fdtype, non_blocking=non_blocking)


@dataclass(frozen=True)
class GraphBatch:
    """A batch of graphs with flat node storage (see the module docstring for the layout).

    Parameters
    ----------
    pos : Tensor, shape (N, 3), float, finite.
    batch : Tensor, shape (N,), sorted integer graph ids; defaults to one graph (all zeros).
    node : dict of str -> Tensor, shape (N, ...); other node fields.
    graph : dict of str -> Tensor, shape (B, ...); graph-level fields.
    edge_index : Tensor, shape (2, E), optional; no edge may join two graphs.
    cell : Tensor, shape (B, 3, 3), optional; rows are lattice vectors.
    edge_shift : Tensor, shape (E, 3), optional, integer; needs ``cell`` and ``edge_index``.
    num_graphs : int, optional; inferred from ``graph``/``cell`` leading sizes, else
        ``batch.max() + 1``. Graphs with no nodes are allowed.

    Everything is validated on construction (shapes, dtypes, devices, NaN/inf, index ranges);
    integer index tensors are stored as int64. ``ptr`` ``[B + 1]`` is derived.
    """

    pos: Tensor
    batch: Tensor | None = None
    node: dict = field(default_factory=dict)
    graph: dict = field(default_factory=dict)
    edge_index: Tensor | None = None
    cell: Tensor | None = None
    edge_shift: Tensor | None = None
    num_graphs: int | None = None
    ptr: Tensor = field(init=False, repr=False)

    def __post_init__(self):
        set_ = lambda k, v: object.__setattr__(self, k, v)  # noqa: E731  (frozen dataclass)
        check_tensor("pos", self.pos, ("N", 3), "float")
        n, dev = self.pos.shape[0], self.pos.device
        for kind, fields in (("node", self.node), ("graph", self.graph)):
            if not isinstance(fields, dict):
                raise TypeError(f"{kind}: expected a dict of tensors, got {type(fields).__name__}")
            for k in fields:
                if not isinstance(k, str) or k in RESERVED:
                    raise ValueError(f"{kind}: invalid field name {k!r} (reserved: {RESERVED})")
        set_("node", dict(self.node))
        set_("graph", dict(self.graph))
        b = self.num_graphs
        sizes = {f"graph[{k!r}]": v.shape[0] for k, v in self.graph.items()
                 if isinstance(v, Tensor) and v.dim() > 0}
        if isinstance(self.cell, Tensor) and self.cell.dim() == 3:
            sizes["cell"] = self.cell.shape[0]
        if b is None and sizes:
            b = next(iter(sizes.values()))
        if self.batch is None:
            if b is not None and b != 1 and n > 0:
                raise ValueError(f"batch: required when num_graphs={b}")
            set_("batch", torch.zeros(n, dtype=torch.long, device=dev))
            b = (1 if n else 0) if b is None else b
        check_batch_vector("batch", self.batch, n, b)
        set_("batch", self.batch.long())
        if b is None:
            b = int(self.batch[-1]) + 1 if n else 0
        if not isinstance(b, int) or b < 0:
            raise ValueError(f"num_graphs: expected a non-negative int, got {b!r}")
        set_("num_graphs", b)
        counts = torch.bincount(self.batch, minlength=b)
        set_("ptr", torch.cat([counts.new_zeros(1), torch.cumsum(counts, 0)]))
        for k, v in self.node.items():
            check_tensor(f"node[{k!r}]", v, (n, "..."))
        for k, v in self.graph.items():
            check_tensor(f"graph[{k!r}]", v, (b, "..."))
        self._check_edges(n, b)
        named = [("pos", self.pos), ("batch", self.batch)]
        named += [(f"node[{k!r}]", v) for k, v in self.node.items()]
        named += [(f"graph[{k!r}]", v) for k, v in self.graph.items()]
        named += [(k, getattr(self, k)) for k in ("edge_index", "cell", "edge_shift")
                  if getattr(self, k) is not None]
        check_same_device(named)

    def _check_edges(self, n: int, b: int) -> None:
        if self.edge_index is not None:
            check_index("edge_index", self.edge_index, n)
            check_tensor("edge_index", self.edge_index, (2, None))
            ei = self.edge_index.long()
            object.__setattr__(self, "edge_index", ei)
            if ei.numel() and bool((self.batch[ei[0]] != self.batch[ei[1]]).any()):
                raise ValueError("edge_index: an edge joins nodes of two different graphs")
        if self.cell is not None:
            check_tensor("cell", self.cell, (b, 3, 3), "float")
            if self.cell.dtype != self.pos.dtype:
                raise TypeError(f"cell: expected dtype {self.pos.dtype} (as pos), got {self.cell.dtype}")
        if self.edge_shift is not None:
            if self.edge_index is None or self.cell is None:
                raise ValueError("edge_shift: needs edge_index and cell")
            check_tensor("edge_shift", self.edge_shift, (self.edge_index.shape[1], 3), "int")
            object.__setattr__(self, "edge_shift", self.edge_shift.long())

    @property
    def num_nodes(self) -> int:
        return self.pos.shape[0]

    @property
    def num_edges(self) -> int:
        return 0 if self.edge_index is None else self.edge_index.shape[1]

    @property
    def edge_vec(self) -> Tensor | None:
        """``[E, 3]`` target-to-source vectors, recomputed on each access so gradients reach ``pos``."""
        if self.edge_index is None:
            return None
        return edge_vectors(self.pos, self.edge_index, self.cell, self.edge_shift, self.batch)

    def to_dense(self, x: Tensor, fill_value: float = 0.0) -> tuple[Tensor, Tensor]:
        """Dense ``[B, Nmax, ...]`` view of a node tensor ``x`` ``[N, ...]`` plus its mask."""
        return to_dense(x, self.batch, self.num_graphs, fill_value=fill_value)

    def to(self, device=None, dtype: torch.dtype | None = None, non_blocking: bool = False):
        """Move to ``device``; cast floating tensors to ``dtype`` (integer tensors keep theirs)."""
        c = lambda t: _cast(t, device, dtype, non_blocking)  # noqa: E731
        out = object.__new__(GraphBatch)  # skip re-validation: the data were checked already
        for f in dataclasses.fields(self):
            v = getattr(self, f.name)
            v = {k: c(t) for k, t in v.items()} if isinstance(v, dict) else (
                c(v) if isinstance(v, Tensor) else v)
            object.__setattr__(out, f.name, v)
        return out

    def split(self) -> list[dict]:
        """Per-graph dicts (``pos``, node fields, graph fields without the batch axis, and local
        ``edge_index``/``cell``/``edge_shift`` when present); ``collate(b.split())`` rebuilds ``b``
        (graphs without nodes included) given the same ``node_keys``/``graph_keys``."""
        ptr = self.ptr.tolist()
        if self.edge_index is not None:
            edge_graph = self.batch[self.edge_index[1]]
            order = torch.argsort(edge_graph, stable=True)
            eptr = [0] + torch.cumsum(torch.bincount(edge_graph, minlength=self.num_graphs),
                                      0).tolist()
        out = []
        for g in range(self.num_graphs):
            a, z = ptr[g], ptr[g + 1]
            s = {"pos": self.pos[a:z]}
            s.update({k: v[a:z] for k, v in self.node.items()})
            s.update({k: v[g] for k, v in self.graph.items()})
            if self.cell is not None:
                s["cell"] = self.cell[g]
            if self.edge_index is not None:
                idx = order[eptr[g]:eptr[g + 1]]
                s["edge_index"] = self.edge_index[:, idx] - a
                if self.edge_shift is not None:
                    s["edge_shift"] = self.edge_shift[idx]
            out.append(s)
        return out


def collate(samples: list[dict], *, node_keys=None, graph_keys=None) -> GraphBatch:
    """Batch variable-size graphs into one :class:`GraphBatch`.

    Each sample is a dict with ``pos`` ``[n_i, 3]``, optional ``edge_index`` ``[2, e_i]`` (local
    node ids, offset here), ``cell`` ``[3, 3]`` and ``edge_shift`` ``[e_i, 3]``, and other fields.
    A field is a node field if named in ``node_keys``, a graph field if named in ``graph_keys``;
    otherwise the shape rule decides: node field iff its leading size equals ``n_i`` in every
    sample, graph field otherwise (pass ``graph_keys`` when that is ambiguous, e.g. a graph-level
    vector of length 3 on 3-node graphs). Python numbers and arrays are converted with
    ``torch.as_tensor``. Graph fields are stacked to ``[B, ...]``, node fields concatenated.
    An empty list gives an empty batch (0 graphs, ``pos`` of the default dtype).
    """
    if not isinstance(samples, (list, tuple)):
        raise TypeError(f"samples: expected a list of dicts, got {type(samples).__name__}")
    if not samples:
        return GraphBatch(pos=torch.zeros(0, 3), num_graphs=0)
    node_keys, graph_keys = set(node_keys or ()), set(graph_keys or ())
    if node_keys & graph_keys:
        raise ValueError(f"node_keys and graph_keys overlap: {sorted(node_keys & graph_keys)}")
    keys = None
    conv = []
    for i, s in enumerate(samples):
        if not isinstance(s, dict):
            raise TypeError(f"samples[{i}]: expected a dict, got {type(s).__name__}")
        if "pos" not in s:
            raise ValueError(f"samples[{i}]: missing key 'pos'")
        if keys is not None and set(s) != keys:
            diff = sorted(set(s) ^ keys)
            raise ValueError(f"samples[{i}]: keys differ from samples[0] in {diff}")
        keys = set(s)
        c = {k: v if isinstance(v, Tensor) else torch.as_tensor(v) for k, v in s.items()}
        check_tensor(f"samples[{i}]['pos']", c["pos"], (None, 3), "float", finite=False)
        conv.append(c)
    sizes = [c["pos"].shape[0] for c in conv]
    fields = sorted(keys - set(RESERVED))
    node, graph = {}, {}
    for k in fields:
        is_node = k in node_keys or (k not in graph_keys and all(
            c[k].dim() > 0 and c[k].shape[0] == n for c, n in zip(conv, sizes)))
        try:
            if is_node:
                node[k] = torch.cat([c[k] for c in conv])
            else:
                graph[k] = torch.stack([c[k] for c in conv])
        except RuntimeError as e:
            raise ValueError(f"samples[...][{k!r}]: cannot {'concatenate' if is_node else 'stack'} "
                             f"across samples ({e})") from None
    kw = {}
    if "edge_index" in keys:
        offsets = torch.cumsum(torch.tensor([0] + sizes[:-1]), 0).tolist()
        for i, (c, n) in enumerate(zip(conv, sizes)):
            check_index(f"samples[{i}]['edge_index']", c["edge_index"], n)
        kw["edge_index"] = torch.cat([c["edge_index"].long() + o for c, o in zip(conv, offsets)],
                                     dim=1)
    if "cell" in keys:
        kw["cell"] = torch.stack([c["cell"] for c in conv])
    if "edge_shift" in keys:
        kw["edge_shift"] = torch.cat([c["edge_shift"] for c in conv])
    pos = torch.cat([c["pos"] for c in conv])
    batch = torch.repeat_interleave(torch.arange(len(conv), device=pos.device),
                                    torch.tensor(sizes, device=pos.device))
    return GraphBatch(pos=pos, batch=batch, node=node, graph=graph, num_graphs=len(conv), **kw)
