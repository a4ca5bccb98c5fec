"""symformer.data.graphs (non-periodic): brute-force references, order, permutations, edge cases."""

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from symformer.data import fully_connected_graph, knn_graph, radius_graph


def _batch(sizes):
    return torch.repeat_interleave(torch.arange(len(sizes)), torch.tensor(sizes, dtype=torch.long))


def _ref_radius(pos, batch, r, self_loops=False):
    p, b = pos.double().numpy(), batch.numpy()
    return {(j, i) for i in range(len(p)) for j in range(len(p))
            if b[i] == b[j] and (self_loops or i != j) and np.linalg.norm(p[j] - p[i]) < r}


def _ref_knn(pos, batch, k):
    p, b = pos.double().numpy(), batch.numpy()
    out = set()
    for i in range(len(p)):
        cand = [j for j in range(len(p)) if b[j] == b[i] and j != i]
        cand.sort(key=lambda j: np.linalg.norm(p[j] - p[i]))
        out |= {(j, i) for j in cand[:k]}
    return out


def _edges(ei):
    return set(map(tuple, ei.t().tolist()))


def _assert_sorted_target_source(ei):
    assert ei.dtype == torch.long and ei.shape[0] == 2
    key = ei[1] * (int(ei.max()) + 1 if ei.numel() else 1) + ei[0]
    assert (key[1:] > key[:-1]).all()  # strictly increasing: sorted and no duplicates


def test_fully_connected():
    b = _batch([3, 1, 0, 2])
    ei = fully_connected_graph(b)
    assert _edges(ei) == _ref_radius(torch.zeros(6, 3), b, math.inf)
    _assert_sorted_target_source(ei)
    assert fully_connected_graph(b, self_loops=True).shape == (2, 9 + 1 + 4)
    assert torch.equal(fully_connected_graph(3), fully_connected_graph(torch.zeros(3, dtype=torch.long)))
    for n in (0, 1):
        ei = fully_connected_graph(n)
        assert ei.shape == (2, 0) and ei.dtype == torch.long
    assert fully_connected_graph(1, self_loops=True).tolist() == [[0], [0]]
    with pytest.raises(TypeError, match="batch_or_num_nodes"):
        fully_connected_graph(2.0)
    with pytest.raises(ValueError, match="batch_or_num_nodes"):
        fully_connected_graph(-1)
    with pytest.raises(ValueError, match="batch_or_num_nodes: graph ids must be sorted"):
        fully_connected_graph(torch.tensor([1, 0]))


@pytest.mark.parametrize("sizes", [[7], [5, 1, 0, 8, 3]])
def test_radius_matches_brute_force(dtype, generator, sizes):
    b = _batch(sizes)
    pos = torch.randn(b.shape[0], 3, dtype=dtype, generator=generator)
    for r in (0.5, 1.2, 10.0):
        for loops in (False, True):
            ei = radius_graph(pos, r, b, self_loops=loops)
            assert _edges(ei) == _ref_radius(pos, b, r, loops)
            _assert_sorted_target_source(ei)


def test_radius_chunking_does_not_change_result(dtype, generator):
    b = _batch([6, 2, 9, 1, 4])
    pos = torch.randn(b.shape[0], 3, dtype=dtype, generator=generator)
    full = radius_graph(pos, 1.5, b)
    for max_pairs in (1, 5, 17, 64):
        assert torch.equal(radius_graph(pos, 1.5, b, max_pairs=max_pairs), full)
        assert torch.equal(radius_graph(pos, 9.0, b, max_num_neighbors=3, max_pairs=max_pairs),
                           knn_graph(pos, 3, b))


def test_max_num_neighbors_keeps_nearest(dtype, generator):
    b = _batch([10, 4])
    pos = torch.randn(14, 3, dtype=dtype, generator=generator)
    r = 1.8
    ei = radius_graph(pos, r, b, max_num_neighbors=3)
    _assert_sorted_target_source(ei)
    within = _ref_radius(pos, b, r)
    got = _edges(ei)
    assert got <= within
    for i in range(14):
        cand = sorted((float((pos[j] - pos[i]).norm()), j) for j, t in within if t == i)
        assert {(j, i) for _, j in cand[:3]} == {e for e in got if e[1] == i}
    assert radius_graph(pos, r, b, max_num_neighbors=0).shape == (2, 0)


def test_knn(dtype, generator):
    b = _batch([6, 2, 1, 0, 5])
    pos = torch.randn(14, 3, dtype=dtype, generator=generator)
    for k in (1, 3, 10):
        ei = knn_graph(pos, k, b)
        assert _edges(ei) == _ref_knn(pos, b, k)
        _assert_sorted_target_source(ei)
    deg = torch.bincount(knn_graph(pos, 3, b)[1], minlength=14)
    assert deg.tolist() == [3] * 6 + [1] * 2 + [0] + [3] * 5  # fewer when the graph is smaller
    with pytest.raises(ValueError, match="k: expected"):
        knn_graph(pos, -1, b)


def test_ties_break_to_lower_index(dtype):
    pos = torch.tensor([[0.0, 0, 0], [1, 0, 0], [-1, 0, 0], [0, 1, 0]], dtype=dtype)
    assert knn_graph(pos, 2)[:, :2].tolist() == [[1, 2], [0, 0]]


@pytest.mark.parametrize("build", ["radius", "knn", "full"])
def test_empty_and_single_node(dtype, build):
    f = {"radius": lambda p, b: radius_graph(p, 1.0, b), "knn": lambda p, b: knn_graph(p, 2, b),
         "full": lambda p, b: fully_connected_graph(b)}[build]
    for n in (0, 1):
        ei = f(torch.zeros(n, 3, dtype=dtype), torch.zeros(n, dtype=torch.long))
        assert ei.shape == (2, 0) and ei.dtype == torch.long
    # isolated single-node graphs inside a batch get no edges
    pos = torch.zeros(3, 3, dtype=dtype)
    ei = f(pos, torch.tensor([0, 1, 1]))
    assert ei.tolist() == [[2, 1], [1, 2]]


def test_input_errors(dtype):
    pos = torch.randn(4, 3, dtype=dtype)
    with pytest.raises(ValueError, match="r: expected a positive number"):
        radius_graph(pos, -1.0)
    with pytest.raises(ValueError, match="r: expected a positive number"):
        radius_graph(pos, float("nan"))
    with pytest.raises(ValueError, match=r"pos: expected shape \(\*, 3\)"):
        radius_graph(pos[:, :2], 1.0)
    bad = pos.clone()
    bad[0, 0] = float("nan")
    with pytest.raises(ValueError, match="pos: contains NaN"):
        radius_graph(bad, 1.0)
    with pytest.raises(ValueError, match="batch: graph ids must be sorted"):
        radius_graph(pos, 1.0, torch.tensor([0, 1, 0, 1]))
    with pytest.raises(ValueError, match="batch: expected shape"):
        knn_graph(pos, 1, torch.tensor([0, 0]))
    with pytest.raises(ValueError, match="max_num_neighbors"):
        radius_graph(pos, 1.0, max_num_neighbors=-2)


@settings(max_examples=20, deadline=None)
@given(sizes=st.lists(st.integers(0, 7), min_size=1, max_size=4), seed=st.integers(0, 2**16),
       build=st.sampled_from(["radius", "knn", "radius_max", "full"]))
def test_permutation_equivariance(sizes, seed, build):
    """Relabelling nodes (within their graphs) relabels the edge set the same way."""
    g = torch.Generator().manual_seed(seed)
    b = _batch(sizes)
    n = b.shape[0]
    pos = torch.randn(n, 3, dtype=torch.float64, generator=g)
    f = {"radius": lambda p: radius_graph(p, 1.3, b),
         "knn": lambda p: knn_graph(p, 2, b),
         "radius_max": lambda p: radius_graph(p, 2.0, b, max_num_neighbors=2),
         "full": lambda p: fully_connected_graph(b)}[build]
    perm = torch.cat([torch.randperm(m, generator=g) + o for m, o in
                      zip(sizes, np.cumsum([0] + sizes[:-1]).tolist())]).long()
    inv = torch.empty_like(perm)
    inv[perm] = torch.arange(n)
    ei, ei_p = f(pos), f(pos[perm])  # new node k is old node perm[k]
    assert _edges(ei_p) == _edges(inv[ei])
    _assert_sorted_target_source(ei_p)


def test_knn_mixed_graph_sizes(dtype, generator):
    """Many tiny graphs beside a big one (the sparse selection path) still match the reference."""
    sizes = [1] * 12 + [2] * 5 + [15]
    b = _batch(sizes)
    pos = torch.randn(b.shape[0], 3, dtype=dtype, generator=generator)
    for k in (1, 4):
        ei = knn_graph(pos, k, b)
        assert _edges(ei) == _ref_knn(pos, b, k)
        _assert_sorted_target_source(ei)
    ei = radius_graph(pos, 1.1, b, max_num_neighbors=2)
    assert _edges(ei) <= _ref_radius(pos, b, 1.1)
    assert torch.bincount(ei[1], minlength=b.shape[0]).max() <= 2


@settings(max_examples=15, deadline=None)
@given(size=st.integers(1, 12), graphs=st.integers(1, 3), seed=st.integers(0, 2**16),
       grid=st.booleans(), max_pairs=st.sampled_from([5, 40, 1 << 21]))
def test_equal_size_dense_path_matches_general_path(size, graphs, seed, grid, max_pairs):
    """Equal-size graphs (dense distance blocks) give exactly the edges of the general path,
    which a trailing one-node graph forces; grid points make ties at the k-th distance."""
    g = torch.Generator().manual_seed(seed)
    n = size * graphs
    pos = (torch.randint(-2, 3, (n, 3), generator=g).double() if grid
           else torch.randn(n, 3, dtype=torch.float64, generator=g))
    b = _batch([size] * graphs)
    pos_x, b_x = torch.cat([pos, pos.new_zeros(1, 3)]), _batch([size] * graphs + [1])
    for r, k in ((1.5, None), (math.inf, 1), (math.inf, 4), (2.5, 3), (2.5, 30)):
        for loops in (False, True):
            dense = radius_graph(pos, r, b, max_num_neighbors=k, self_loops=loops,
                                 max_pairs=max_pairs)
            general = radius_graph(pos_x, r, b_x, max_num_neighbors=k, self_loops=loops,
                                   max_pairs=max_pairs)
            general = general[:, general[1] < n]  # the extra node's self loop
            assert torch.equal(dense, general)
