"""The edge layouts of the n-body models (``_nbody_io.MessageGraph``): regular graphs
(broadcast targets, sums over a (N, k) view) and general ones (index_select / index_add) give
the same values, and EGNN gives the same predictions on either path; ``DenseGraph`` (complete
graphs as (B, n, n) edge tensors) against explicit loops."""

import pytest
import torch

from symformer.groups import E3, Symmetric
from symformer.models import _nbody_io
from symformer.models._nbody_io import (EXAMPLE_NODES, MessageGraph, example_inputs,
                                        fully_connected_edges, system_edges)
from symformer.models.egnn import EGNN

from nbody_model_checks import assert_nbody_equivariant, systems


def _shuffled(edge_index, seed=0):
    perm = torch.randperm(edge_index.shape[1], generator=torch.Generator().manual_seed(seed))
    return edge_index[:, perm]


@pytest.mark.parametrize("kind", ["complete", "knn", "unequal"])
def test_layouts_agree(kind):
    g = torch.Generator().manual_seed(1)
    if kind == "unequal":  # systems of 5 and 3 nodes: not regular
        batch = torch.tensor([0] * 5 + [1] * 3)
    else:
        batch = torch.arange(3).repeat_interleave(6)[torch.randperm(18, generator=g)]
    pos = torch.randn(batch.shape[0], 3, generator=g, dtype=torch.float64)
    edges = _shuffled(system_edges(pos, batch, 3 if kind == "knn" else None))
    fast, slow = MessageGraph(edges, pos.shape[0]), MessageGraph(edges, pos.shape[0], False)
    assert fast.regular == (kind != "unequal") and not slow.regular
    h = torch.randn(pos.shape[0], 4, generator=g, dtype=torch.float64)
    for graph in (fast, slow):  # each layout against explicit per-edge loops
        pairs = graph.pairwise(torch.sub, h, h * 2)
        expected = torch.stack([h[i] - 2 * h[j] for j, i in zip(graph.src, graph.dst)])
        torch.testing.assert_close(pairs, expected, rtol=0, atol=1e-12)
        torch.testing.assert_close(graph.target(h), h[graph.dst], rtol=0, atol=0)
        torch.testing.assert_close(graph.source(h), h[graph.src], rtol=0, atol=0)
        sums = graph.sum(pairs)
        expected = torch.stack([pairs[graph.dst == i].sum(0) for i in range(pos.shape[0])])
        torch.testing.assert_close(sums, expected, rtol=0, atol=1e-12)
    # Both layouts list the same edges, possibly in another order.
    key = lambda gr: sorted(zip(gr.src.tolist(), gr.dst.tolist()))  # noqa: E731
    assert key(fast) == key(slow) == sorted(zip(*edges.tolist()))


def test_inv_degree():
    graph = MessageGraph(fully_connected_edges(torch.tensor([0, 0, 0, 1])), 4)
    assert not graph.regular
    torch.testing.assert_close(graph.inv_degree(torch.float64),
                               torch.tensor([0.5, 0.5, 0.5, 1.0], dtype=torch.float64))


class _GeneralGraph(MessageGraph):
    def __init__(self, edge_index, num_nodes):
        super().__init__(edge_index, num_nodes, allow_regular=False)


@pytest.mark.parametrize("neighbors", [None, 3])
def test_egnn_paths_agree(monkeypatch, neighbors):
    torch.manual_seed(0)
    model = EGNN(hidden=16, n_layers=3, neighbors=neighbors).double()
    for p in model.parameters():  # larger than the init so that every term matters
        p.data.normal_(0, 0.3)
    data = systems(4)
    fast = model(**data)
    monkeypatch.setattr(_nbody_io, "MessageGraph", _GeneralGraph)
    torch.testing.assert_close(model(**data), fast, rtol=1e-12, atol=1e-12)


def test_egnn_general_path_equivariant(monkeypatch, dtype):
    monkeypatch.setattr(_nbody_io, "MessageGraph", _GeneralGraph)
    gen = torch.Generator().manual_seed(0)
    model = EGNN(hidden=16, n_layers=2).to(dtype)
    inputs = example_inputs(model, gen, dtype)
    assert_nbody_equivariant(model, E3() * Symmetric(EXAMPLE_NODES), inputs, generator=gen)


def test_egnn_unequal_systems_match_separate_runs():
    # Systems of 5 and 3 particles take the general path; each alone is regular.
    torch.manual_seed(2)
    model = EGNN(hidden=16, n_layers=2).double()
    data = systems(2)
    keep = torch.ones(10, dtype=torch.bool)
    keep[[7, 8]] = False
    data = {k: v[keep] for k, v in data.items()}
    joint = model(**data)
    for s in (0, 1):
        m = data["batch"] == s
        alone = model(**{k: v[m] for k, v in data.items()})
        torch.testing.assert_close(joint[m], alone, rtol=1e-12, atol=1e-12)


def test_dense_graph_against_explicit_loops():
    # DenseGraph: node b n + i is node i of system b; edge row (b, i, j) is j -> i, self-pairs
    # included but left out of every sum.
    from symformer.models._nbody_io import DenseGraph
    B, n = 3, 4
    g = torch.Generator().manual_seed(2)
    graph = DenseGraph(B, n, torch.float64)
    h = torch.randn(B * n, 2, generator=g, dtype=torch.float64)
    row = lambda b, i, j: (b * n + i) * n + j  # noqa: E731
    pairs = graph.pairwise(torch.sub, h, 3 * h)
    src = graph.source(h)
    for b in range(B):
        for i in range(n):
            for j in range(n):
                torch.testing.assert_close(pairs[row(b, i, j)], h[b * n + i] - 3 * h[b * n + j])
                torch.testing.assert_close(src[row(b, i, j)], h[b * n + j])
    added = graph.with_target(torch.add, h, src)
    sums = graph.sum(added)
    for b in range(B):
        for i in range(n):
            expected = sum(h[b * n + i] + h[b * n + j] for j in range(n) if j != i)
            torch.testing.assert_close(sums[b * n + i], expected, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(graph.inv_degree(torch.float64),
                               torch.full((B * n,), 1 / (n - 1), dtype=torch.float64))
    assert DenseGraph(2, 1).inv_degree(torch.float32).tolist() == [1.0, 1.0]


@pytest.mark.parametrize("batch, expected", [
    ([0, 0, 1, 1], (2, 2, False)), ([1, 0, 1, 0], (2, 2, True)), ([0, 0, 2, 2], (2, 2, False)),
    ([0, 0, 0, 1], None), ([3], (1, 1, False))])
def test_dense_layout_of_batches(batch, expected):
    from symformer.models._nbody_io import DenseGraph
    layout = DenseGraph.layout(torch.tensor(batch))
    if expected is None:
        assert layout is None
        return
    systems_, n, order = layout
    assert (systems_, n, order is not None) == expected
    if order is not None:
        assert torch.tensor(batch)[order].tolist() == sorted(batch)
