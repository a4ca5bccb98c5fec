"""Neighbour graphs in pure torch: fully connected, radius, k-NN and periodic radius graphs.

Conventions shared by every builder:

* ``edge_index`` ``[2, E]`` int64, ``edge_index[0]`` = source ``j``, ``edge_index[1]`` = target
  ``i``; messages flow ``j -> i``; the edge vector is ``pos[j] - pos[i]`` (plus
  ``edge_shift @ cell`` for periodic graphs).
* Deterministic order: edges sorted by target, then source (then shift, lexicographically, for
  periodic graphs). Every node's incoming edges are therefore one contiguous run.
* ``batch`` ``[N]`` holds sorted graph ids; no edge joins two graphs. No self loops unless
  ``self_loops=True``. Neighbours are those with distance ``< r`` (strict).
* Memory: candidate pairs are enumerated inside each graph only (``sum_b n_b^2`` pairs, never a
  global ``N x N``) and processed in chunks of at most ``max_pairs`` pairs, so peak memory is
  ``O(N + max_pairs)`` whatever the batch size. Time is that of brute force, ``O(sum_b n_b^2)``:
  right for batches of molecules and small crystals; a single graph of 10^4+ nodes would want a
  cell list. When every graph has the same size (one system, batches of one molecule) the
  distances are computed as dense ``(targets, sources)`` blocks without per-pair gathers.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence

import torch
from torch import Tensor

from .validate import check_batch_vector, check_tensor

__all__ = ["fully_connected_graph", "radius_graph", "knn_graph", "periodic_radius_graph"]

MAX_PAIRS = 1 << 21


def _graph_layout(batch: Tensor | None, n: int, device) -> tuple[Tensor, Tensor]:
    """Validated ``batch`` [N] (int64) and per-node ``start`` [N] / ``count`` [N] of its graph."""
    if batch is None:
        batch = torch.zeros(n, dtype=torch.long, device=device)
    check_batch_vector("batch", batch, n)
    batch = batch.long()
    nb = int(batch[-1]) + 1 if n else 0
    counts = torch.bincount(batch, minlength=nb)
    ptr = torch.cumsum(counts, 0) - counts
    return batch, ptr[batch], counts[batch]


def _pair_chunks(start: Tensor, count: Tensor, weight: int, max_pairs: int
                 ) -> Iterator[tuple[Tensor, Tensor]]:
    """Yield ``(src, dst)`` candidate pairs inside each graph, targets ascending then sources
    ascending, in chunks of about ``max_pairs / weight`` pairs (a single target never splits)."""
    n = start.shape[0]
    if n == 0:
        return
    budget = max(1, max_pairs // max(weight, 1))
    cum = torch.cumsum(count, 0)  # [N] pairs up to and including each target
    total = int(cum[-1])
    # chunk boundaries: last target whose cumulative pair count stays within each budget step
    marks = torch.arange(budget, total + budget, budget, device=cum.device)
    ends = torch.searchsorted(cum, marks, right=True).unique().tolist()
    a = 0
    for z in ends + [n]:
        if z <= a:  # a target with more pairs than the budget gets a chunk of its own
            continue
        deg = count[a:z]
        dst = torch.repeat_interleave(torch.arange(a, z, device=cum.device), deg)
        first = torch.cumsum(deg, 0) - deg  # offset of each target's run inside the chunk
        local = torch.arange(dst.shape[0], device=cum.device) - torch.repeat_interleave(first, deg)
        yield start[dst] + local, dst
        a = z


def _check_pos_r(pos: Tensor, r: float) -> None:
    check_tensor("pos", pos, (None, 3), "float")
    if isinstance(r, bool) or not isinstance(r, (int, float)) or not (r > 0) or math.isnan(r):
        raise ValueError(f"r: expected a positive number, got {r!r}")


def fully_connected_graph(batch_or_num_nodes: Tensor | int, self_loops: bool = False) -> Tensor:
    """All ordered pairs inside each graph.

    Parameters
    ----------
    batch_or_num_nodes : Tensor, shape (N,), sorted graph ids; or an int N (one graph).

    Returns
    -------
    edge_index : Tensor, shape (2, E), int64, sorted by target then source;
        ``E = sum_b n_b (n_b - 1)`` (``n_b^2`` with self loops).
    """
    if isinstance(batch_or_num_nodes, Tensor):
        batch = batch_or_num_nodes
        check_tensor("batch_or_num_nodes", batch, (None,), "int")
        n, device = batch.shape[0], batch.device
        check_batch_vector("batch_or_num_nodes", batch, n)
    elif isinstance(batch_or_num_nodes, int) and not isinstance(batch_or_num_nodes, bool):
        if batch_or_num_nodes < 0:
            raise ValueError(f"batch_or_num_nodes: expected >= 0 nodes, got {batch_or_num_nodes}")
        n, device, batch = batch_or_num_nodes, torch.device("cpu"), None
    else:
        raise TypeError("batch_or_num_nodes: expected a graph-id tensor or an int, "
                        f"got {type(batch_or_num_nodes).__name__}")
    _, start, count = _graph_layout(batch, n, device)
    pieces = []
    for src, dst in _pair_chunks(start, count, 1, MAX_PAIRS):
        keep = src != dst if not self_loops else slice(None)
        pieces.append(torch.stack([src[keep], dst[keep]]))
    return torch.cat(pieces, 1) if pieces else torch.zeros(2, 0, dtype=torch.long, device=device)


def _select(src: Tensor, dst: Tensor, d2: Tensor, r2: float, k: int | None, self_loops: bool,
            start: Tensor) -> tuple[Tensor, Tensor]:
    """Keep candidate pairs within ``r2`` (and, with ``k``, the ``k`` nearest per target; ties go
    to the lower source). Input and output are in (target, source) order."""
    keep = d2 < r2
    if not self_loops:
        keep &= src != dst
    if k is None:
        return src[keep], dst[keep]
    a = int(dst[0])
    rows, local = dst - a, src - start[dst]  # [P] target row and position in its run
    t, m = int(dst[-1]) - a + 1, int(local.max()) + 1
    if t * m <= 2 * src.shape[0]:
        # dense [targets, run] block: the k-th smallest distance per row (topk) is the threshold;
        # rows keep everything below it and the lowest-index entries equal to it
        if k == 0:
            return src[:0], dst[:0]
        d = d2.new_full((t, m), float("inf"))
        d[rows, local] = torch.where(keep, d2, torch.full_like(d2, float("inf")))
        kk = min(k, m)
        thr = torch.topk(d, kk, dim=1, largest=False).values[:, -1:]  # [t, 1]
        less, equal = d < thr, d == thr
        room = kk - less.sum(1, keepdim=True)
        sel = (less | (equal & (torch.cumsum(equal, 1) <= room))) & torch.isfinite(d)
        r_idx, c_idx = sel.nonzero(as_tuple=True)  # row-major: (target, source) order
        tgt = r_idx + a
        return start[tgt] + c_idx, tgt
    src, dst, d2 = src[keep], dst[keep], d2[keep]
    if src.numel() == 0:
        return src, dst
    # mixed run lengths: order by (target, distance) with two stable sorts
    order = torch.sort(d2, stable=True).indices
    order = order[torch.sort(dst[order], stable=True).indices]
    dst_o = dst[order]
    counts = torch.bincount(dst_o - dst_o[0])
    first = torch.cumsum(counts, 0) - counts
    rank = torch.arange(dst_o.shape[0], device=dst.device) - first[dst_o - dst_o[0]]
    chosen = order[rank < k].sort().values  # back to (target, source) order
    return src[chosen], dst[chosen]


def _dense_blocks(n: int, size: int, max_pairs: int) -> Iterator[tuple[int, int]]:
    """``(a, t)``: blocks of ``t`` consecutive targets from node ``a`` when every graph has
    ``size`` nodes; whole graphs per block, or rows of one graph when a graph is too big."""
    if size * size <= max_pairs:
        step = max(1, max_pairs // (size * size)) * size
        yield from ((a, min(step, n - a)) for a in range(0, n, step))
        return
    rows = max(1, max_pairs // size)
    for g in range(0, n, size):
        yield from ((g + r0, min(rows, size - r0)) for r0 in range(0, size, rows))


def _dense_select(pos: Tensor, a: int, t: int, size: int, r2: float, k: int | None,
                  self_loops: bool) -> tuple[Tensor, Tensor]:
    """:func:`_select` for the targets ``a .. a+t-1`` of equal-size graphs (``size`` nodes each)
    against all nodes of their graphs: one dense ``(graphs, rows, size)`` distance block, no
    per-pair gathers. Same distances (bit for bit), same choice, same order."""
    base = a - a % size  # first node of the block's first graph
    g = max(t // size, 1)
    rows = t // g
    tgt = pos[a:a + t].view(g, rows, 3)
    src = pos[base:base + g * size].view(g, size, 3)
    # |pos[j] - pos[i]|^2 summed over x, y, z in that order, as (pos[src] - pos[dst]) would be;
    # one (rows, size) plane per axis instead of a (rows, size, 3) block
    d2 = (src[:, None, :, 0] - tgt[:, :, None, 0]).square_()  # [g, rows, size]
    for c in (1, 2):
        d2 += (src[:, None, :, c] - tgt[:, :, None, c]).square_()
    inf = float("inf")
    if not self_loops:  # pair (i, i) sits on the diagonal shifted by the rows' offset
        d2.diagonal(offset=a % size, dim1=1, dim2=2).fill_(inf)
    if k is None:
        gi, ri, ci = (d2 < r2).nonzero(as_tuple=True)  # row-major: (target, source) order
        return base + gi * size + ci, a + gi * rows + ri
    if k == 0:
        empty = torch.zeros(0, dtype=torch.long, device=pos.device)
        return empty, empty
    d = (d2 if math.isinf(r2) else d2.masked_fill_(d2 >= r2, inf)).view(g * rows, size)
    kk = min(k, size)
    vals, idx = torch.topk(d, min(kk + 1, size), dim=1, largest=False)
    thr = vals[:, kk - 1:kk]  # [g * rows, 1] the k-th smallest distance
    row = torch.arange(g * rows, device=pos.device)
    if (kk < size and not bool((vals[:, kk] == vals[:, kk - 1]).any())
            and not bool(torch.isinf(thr).any())):
        # the k nearest are unique in every row: take topk's columns, ascending
        c_idx = idx[:, :kk].sort(dim=1).values.reshape(-1)
        r_idx = row.repeat_interleave(kk)
    else:  # ties at the threshold go to the lowest indices; rows short of k keep what they have
        less, equal = d < thr, d == thr
        sel = less | (equal & (torch.cumsum(equal, 1) <= kk - less.sum(1, keepdim=True)))
        r_idx, c_idx = (sel & torch.isfinite(d)).nonzero(as_tuple=True)
    return base + torch.div(r_idx, rows, rounding_mode="floor") * size + c_idx, a + r_idx


def radius_graph(pos: Tensor, r: float, batch: Tensor | None = None,
                 max_num_neighbors: int | None = None, self_loops: bool = False,
                 max_pairs: int = MAX_PAIRS) -> Tensor:
    """Edges ``j -> i`` inside each graph with ``|pos[j] - pos[i]| < r``.

    Parameters
    ----------
    pos : Tensor, shape (N, 3)
    r : float, cutoff (> 0; ``math.inf`` gives the fully connected graph).
    batch : Tensor, shape (N,), optional sorted graph ids.
    max_num_neighbors : int, optional; keep only the nearest ones per target (ties: lower
        source index first).
    max_pairs : int; candidate pairs per chunk, bounds the peak memory.

    Returns
    -------
    edge_index : Tensor, shape (2, E), int64, sorted by target then source.
    """
    _check_pos_r(pos, r)
    if max_num_neighbors is not None and (not isinstance(max_num_neighbors, int)
                                          or max_num_neighbors < 0):
        raise ValueError(f"max_num_neighbors: expected a non-negative int, got {max_num_neighbors!r}")
    _, start, count = _graph_layout(batch, pos.shape[0], pos.device)
    n = pos.shape[0]
    if n and bool((count == count[0]).all()):  # equal-size graphs: dense distance blocks
        size = int(count[0])
        pieces = [torch.stack(_dense_select(pos, a, t, size, r * r, max_num_neighbors, self_loops))
                  for a, t in _dense_blocks(n, size, max_pairs)]
        return torch.cat(pieces, 1)
    pieces = []
    for src, dst in _pair_chunks(start, count, 1, max_pairs):
        d2 = (pos[src] - pos[dst]).square().sum(-1)  # [P]
        pieces.append(torch.stack(_select(src, dst, d2, r * r, max_num_neighbors, self_loops, start)))
    if not pieces:
        return torch.zeros(2, 0, dtype=torch.long, device=pos.device)
    return torch.cat(pieces, 1)


def knn_graph(pos: Tensor, k: int, batch: Tensor | None = None, self_loops: bool = False,
              max_pairs: int = MAX_PAIRS) -> Tensor:
    """Edges from the ``k`` nearest nodes ``j`` of each node ``i`` in its graph (fewer when the
    graph is smaller); ties go to the lower index. Returns ``(2, E)`` int64 sorted by target
    then source."""
    if isinstance(k, bool) or not isinstance(k, int) or k < 0:
        raise ValueError(f"k: expected a non-negative int, got {k!r}")
    return radius_graph(pos, math.inf, batch, max_num_neighbors=k, self_loops=self_loops,
                        max_pairs=max_pairs)


def _pbc_mask(pbc) -> list[bool]:
    if isinstance(pbc, bool):
        return [pbc] * 3
    vals = pbc.tolist() if isinstance(pbc, Tensor) else list(pbc) if isinstance(pbc, Sequence) else None
    if vals is None or len(vals) != 3 or not all(isinstance(v, bool) for v in vals):
        raise ValueError(f"pbc: expected a bool or 3 bools, got {pbc!r}")
    return vals


def periodic_radius_graph(pos: Tensor, r: float, cell: Tensor, batch: Tensor | None = None,
                          pbc=(True, True, True), self_loops: bool = False,
                          max_pairs: int = MAX_PAIRS) -> tuple[Tensor, Tensor]:
    """Radius graph under periodic boundary conditions, with all periodic images.

    An edge ``(j, i, s)`` exists when ``|pos[j] + s @ cell - pos[i]| < r``; images of a node
    itself (``j == i``, ``s != 0``) are included, the zero-shift self pair only with
    ``self_loops``. Positions need not be wrapped into the cell.

    Parameters
    ----------
    pos : Tensor, shape (N, 3)
    r : float, cutoff (> 0)
    cell : Tensor, shape (B, 3, 3) or (3, 3); rows are lattice vectors; must be invertible.
    batch : Tensor, shape (N,), optional sorted graph ids.
    pbc : bool or 3 bools; no shifts along non-periodic axes.

    Returns
    -------
    edge_index : Tensor, shape (2, E), int64, sorted by target, source, then shift.
    edge_shift : Tensor, shape (E, 3), int64 cell offsets of the source image.
    """
    _check_pos_r(pos, r)
    if not math.isfinite(r):
        raise ValueError(f"r: expected a finite cutoff for a periodic graph, got {r!r}")
    periodic = torch.tensor(_pbc_mask(pbc), device=pos.device)
    batch, _, _ = _graph_layout(batch, pos.shape[0], pos.device)
    nb = int(batch[-1]) + 1 if pos.shape[0] else 0
    check_tensor("cell", cell, ("...", 3, 3), "float")
    cell = cell.unsqueeze(0) if cell.dim() == 2 else cell
    if cell.dim() != 3 or (cell.shape[0] != nb and not (cell.shape[0] == 1 or nb == 0)):
        raise ValueError(f"cell: expected shape ({nb}, 3, 3) or (3, 3), got {tuple(cell.shape)}")
    cell = cell.to(pos.dtype).expand(max(nb, 1), 3, 3)
    vol = torch.linalg.det(cell).abs()  # [B]
    if nb and bool((vol <= 1e-12 * cell.norm(dim=(1, 2)) ** 3).any()):
        raise ValueError("cell: singular cell (lattice vectors must be linearly independent)")
    ei, es = [torch.zeros(2, 0, dtype=torch.long, device=pos.device)], [
        torch.zeros(0, 3, dtype=torch.long, device=pos.device)]
    ptr = [0] + torch.cumsum(torch.bincount(batch, minlength=nb), 0).tolist()
    for g in range(nb):
        a, z, c = ptr[g], ptr[g + 1], cell[g]
        if z == a:
            continue
        frac = pos[a:z] @ torch.linalg.inv(c)  # [n, 3]
        # wrap into the cell along periodic axes; edges are found for wrapped positions and
        # the wrap offsets folded back into the shifts
        off = torch.where(periodic, torch.floor(frac), torch.zeros_like(frac))
        pw = (frac - off) @ c
        # distance between lattice planes; a periodic shift reaching beyond floor(r/h) + 1
        # cannot bring a wrapped image within r
        h = vol[g] / torch.linalg.cross(c[[1, 2, 0]], c[[2, 0, 1]]).norm(dim=1)
        reach = torch.where(periodic, torch.floor(r / h) + 1, torch.zeros_like(h)).long().tolist()
        axes = [torch.arange(-m, m + 1, device=pos.device) for m in reach]
        shifts = torch.cartesian_prod(*axes).reshape(-1, 3)  # [S, 3], lexicographic
        sc = shifts.to(pos.dtype) @ c  # [S, 3]
        off = off.long()
        n_g = torch.full((z - a,), z - a, dtype=torch.long, device=pos.device)
        for src, dst in _pair_chunks(n_g * 0, n_g, shifts.shape[0], max_pairs):
            d = (pw[src] - pw[dst]).unsqueeze(1) + sc  # [P, S, 3]
            keep = d.square().sum(-1) < r * r  # [P, S]
            if not self_loops:
                keep &= ~((src == dst).unsqueeze(1) & (shifts == 0).all(1))
            p, s = keep.nonzero(as_tuple=True)  # row-major: (target, source, shift) order
            ei.append(torch.stack([src[p], dst[p]]) + a)
            es.append(shifts[s] - off[src[p]] + off[dst[p]])
    return torch.cat(ei, 1), torch.cat(es, 0)
