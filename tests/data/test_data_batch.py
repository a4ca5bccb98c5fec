"""symformer.data.batch: GraphBatch construction, collation, split, dense views, edge vectors."""

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from symformer.data import (GraphBatch, collate, edge_vectors, from_dense,
                            fully_connected_graph, to_dense)


def _sample(n, dtype, g=None, edges=True):
    s = {"pos": torch.randn(n, 3, dtype=dtype, generator=g), "z": torch.arange(n) % 3,
         "feat": torch.randn(n, 4, 2, dtype=dtype, generator=g),
         "energy": torch.randn((), dtype=dtype, generator=g), "dipole": torch.randn(3, dtype=dtype)}
    if edges:
        s["edge_index"] = fully_connected_graph(n)
    return s


def _assert_batches_equal(a, b):
    assert a.num_graphs == b.num_graphs
    for k in ("pos", "batch", "ptr", "edge_index", "cell", "edge_shift"):
        x, y = getattr(a, k), getattr(b, k)
        assert (x is None) == (y is None), k
        if x is not None:
            assert x.dtype == y.dtype and torch.equal(x, y), k
    assert a.node.keys() == b.node.keys() and a.graph.keys() == b.graph.keys()
    for k in a.node:
        assert torch.equal(a.node[k], b.node[k]), k
    for k in a.graph:
        assert torch.equal(a.graph[k], b.graph[k]), k


def test_collate_variable_sizes(dtype, generator):
    sizes = [4, 1, 0, 3]
    samples = [_sample(n, dtype, generator) for n in sizes]
    b = collate(samples, graph_keys=["dipole"])
    assert b.num_graphs == 4 and b.num_nodes == 8
    assert b.ptr.tolist() == [0, 4, 5, 5, 8]
    assert b.batch.tolist() == [0, 0, 0, 0, 1, 3, 3, 3]
    assert b.pos.dtype == dtype and b.batch.dtype == torch.long
    assert b.node["feat"].shape == (8, 4, 2) and b.node["z"].dtype == samples[0]["z"].dtype
    assert b.graph["energy"].shape == (4,) and b.graph["dipole"].shape == (4, 3)
    # edges are offset into the flat numbering and never cross graphs
    assert b.num_edges == 4 * 3 + 3 * 2
    assert torch.equal(b.batch[b.edge_index[0]], b.batch[b.edge_index[1]])
    assert torch.equal(b.edge_index[:, -6:], fully_connected_graph(3) + 5)
    # split then collate rebuilds the batch, including the empty graph
    parts = b.split()
    assert [p["pos"].shape[0] for p in parts] == sizes
    for p, s in zip(parts, samples):
        for k in s:
            assert torch.equal(p[k], s[k]), k
    _assert_batches_equal(collate(parts, graph_keys=["dipole"]), b)


def test_collate_shape_rule_and_key_declarations(dtype):
    s = [{"pos": torch.zeros(3, 3, dtype=dtype), "q": torch.zeros(3), "y": torch.zeros(3)},
         {"pos": torch.zeros(2, 3, dtype=dtype), "q": torch.zeros(2), "y": torch.zeros(3)}]
    b = collate(s)
    assert "q" in b.node and "y" in b.graph  # y has length 3 on a 2-node graph: graph-level
    b = collate(s, node_keys=["q"], graph_keys=["y"])
    assert b.node["q"].shape == (5,) and b.graph["y"].shape == (2, 3)
    with pytest.raises(ValueError, match="overlap"):
        collate(s, node_keys=["q"], graph_keys=["q"])
    with pytest.raises(ValueError, match="'y'"):
        collate(s, node_keys=["y"])  # cannot concatenate: wrong lengths
    # python numbers become graph fields
    b = collate([{"pos": torch.zeros(1, 3, dtype=dtype), "e": 1.5},
                 {"pos": torch.zeros(2, 3, dtype=dtype), "e": -2.0}])
    assert b.graph["e"].tolist() == [1.5, -2.0]


def test_collate_errors_name_the_field(dtype):
    good = {"pos": torch.zeros(2, 3, dtype=dtype)}
    with pytest.raises(ValueError, match=r"samples\[1\]: missing key 'pos'"):
        collate([good, {"x": torch.zeros(2)}])
    with pytest.raises(ValueError, match=r"samples\[1\]\['pos'\]: expected shape"):
        collate([good, {"pos": torch.zeros(2, 2, dtype=dtype)}])
    with pytest.raises(ValueError, match=r"samples\[0\]\['edge_index'\]: index 2 out of range"):
        collate([{"pos": torch.zeros(2, 3, dtype=dtype), "edge_index": torch.tensor([[2], [0]])}])
    with pytest.raises(TypeError, match="samples: expected a list"):
        collate(good)
    bad = {"pos": torch.tensor([[0.0, float("nan"), 0.0]], dtype=dtype)}
    with pytest.raises(ValueError, match="pos: contains NaN"):
        collate([bad])


def test_empty_and_single_node(dtype):
    e = collate([])
    assert e.num_graphs == 0 and e.num_nodes == 0 and e.ptr.tolist() == [0] and e.split() == []
    dense, mask = e.to_dense(e.pos)
    assert dense.shape == (0, 0, 3) and mask.shape == (0, 0)
    e2 = GraphBatch(pos=torch.zeros(0, 3, dtype=dtype), edge_index=torch.zeros(2, 0, dtype=torch.long))
    assert e2.num_graphs == 0 and e2.edge_vec.shape == (0, 3) and e2.edge_vec.dtype == dtype
    one = collate([{"pos": torch.ones(1, 3, dtype=dtype), "edge_index": fully_connected_graph(1)}])
    assert one.num_graphs == 1 and one.num_edges == 0 and one.edge_vec.shape == (0, 3)
    assert GraphBatch(pos=torch.ones(1, 3, dtype=dtype)).batch.tolist() == [0]


def test_construction_errors_name_the_field(dtype):
    pos = torch.randn(5, 3, dtype=dtype)
    batch = torch.tensor([0, 0, 0, 1, 1])
    with pytest.raises(ValueError, match=r"pos: expected shape \(N, 3\), got \(5, 2\)"):
        GraphBatch(pos=torch.zeros(5, 2, dtype=dtype))
    with pytest.raises(TypeError, match="pos: expected a float dtype"):
        GraphBatch(pos=torch.zeros(5, 3, dtype=torch.long))
    with pytest.raises(ValueError, match=r"node\['z'\]: expected shape \(5, \.\.\.\)"):
        GraphBatch(pos=pos, batch=batch, node={"z": torch.zeros(4)})
    with pytest.raises(ValueError, match=r"node\['f'\]: contains inf"):
        GraphBatch(pos=pos, batch=batch, node={"f": torch.full((5,), float("inf"))})
    with pytest.raises(ValueError, match=r"graph\['y'\]: expected shape \(2, \.\.\.\)"):
        GraphBatch(pos=pos, batch=batch, graph={"y": torch.zeros(3)}, num_graphs=2)
    with pytest.raises(ValueError, match="edge_index: index 7 out of range for 5 nodes"):
        GraphBatch(pos=pos, batch=batch, edge_index=torch.tensor([[7], [0]]))
    with pytest.raises(ValueError, match="edge_index: an edge joins nodes of two different graphs"):
        GraphBatch(pos=pos, batch=batch, edge_index=torch.tensor([[0], [4]]))
    with pytest.raises(ValueError, match=r"cell: expected shape \(2, 3, 3\)"):
        GraphBatch(pos=pos, batch=batch, cell=torch.eye(3, dtype=dtype), num_graphs=2)
    with pytest.raises(ValueError, match="edge_shift: needs edge_index and cell"):
        GraphBatch(pos=pos, edge_shift=torch.zeros(1, 3, dtype=torch.long))
    with pytest.raises(ValueError, match="batch: graph ids must be sorted"):
        GraphBatch(pos=pos, batch=torch.tensor([1, 1, 0, 0, 0]))
    with pytest.raises(ValueError, match="batch: required"):
        GraphBatch(pos=pos, num_graphs=3)
    with pytest.raises(ValueError, match="node: invalid field name 'pos'"):
        GraphBatch(pos=pos, node={"pos": pos})


def test_graphs_without_nodes_and_inferred_num_graphs(dtype):
    pos = torch.randn(3, 3, dtype=dtype)
    b = GraphBatch(pos=pos, batch=torch.tensor([0, 2, 2]), graph={"y": torch.zeros(4)})
    assert b.num_graphs == 4 and b.ptr.tolist() == [0, 1, 1, 3, 3]
    assert [len(s["pos"]) for s in b.split()] == [1, 0, 2, 0]
    assert GraphBatch(pos=pos, batch=torch.tensor([0, 2, 2])).num_graphs == 3


def test_to_device_dtype_and_no_aliasing(dtype):
    node = {"f": torch.randn(4, 2, dtype=dtype), "z": torch.arange(4)}
    b = collate([{"pos": torch.randn(2, 3, dtype=dtype), "f": node["f"][:2], "z": node["z"][:2],
                  "edge_index": fully_connected_graph(2), "cell": torch.eye(3, dtype=dtype),
                  "edge_shift": torch.zeros(2, 3, dtype=torch.long)}] * 2)
    other = torch.float64 if dtype == torch.float32 else torch.float32
    c = b.to("cpu", dtype=other)
    assert c.pos.dtype == other and c.node["f"].dtype == other and c.cell.dtype == other
    assert c.batch.dtype == torch.long and c.node["z"].dtype == torch.long
    assert c.edge_shift.dtype == torch.long and c.num_graphs == b.num_graphs
    assert b.pos.dtype == dtype  # original untouched
    d = {"f": node["f"]}
    g = GraphBatch(pos=torch.zeros(4, 3, dtype=dtype), node=d)
    d["extra"] = torch.zeros(4)
    assert "extra" not in g.node  # the caller's dict is copied, not aliased


def test_edge_vectors_periodic_and_gradients(dtype):
    pos = torch.randn(4, 3, dtype=dtype, requires_grad=True)
    cell = (torch.eye(3, dtype=dtype) * 2 + 0.1 * torch.randn(2, 3, 3, dtype=dtype)).requires_grad_()
    batch = torch.tensor([0, 0, 1, 1])
    ei = torch.tensor([[1, 0, 3], [0, 1, 2]])
    shift = torch.tensor([[1, 0, -1], [0, 0, 0], [0, 2, 0]])
    vec = edge_vectors(pos, ei, cell, shift, batch)
    expected = torch.stack([pos[1] + shift[0].to(dtype) @ cell[0] - pos[0], pos[0] - pos[1],
                            pos[3] + shift[2].to(dtype) @ cell[1] - pos[2]])
    torch.testing.assert_close(vec, expected)
    vec.square().sum().backward()
    assert torch.isfinite(pos.grad).all() and cell.grad.abs().sum() > 0
    b = GraphBatch(pos=pos.detach(), batch=batch, edge_index=ei, cell=cell.detach(), edge_shift=shift)
    torch.testing.assert_close(b.edge_vec, expected.detach())
    with pytest.raises(ValueError, match="cell and edge_shift"):
        edge_vectors(pos, ei, cell=cell)
    with pytest.raises(ValueError, match="batch: required"):
        edge_vectors(pos, ei, cell, shift)
    with pytest.raises(ValueError, match="edge_shift: expected shape"):
        edge_vectors(pos, ei, cell, shift[:2], batch)


@settings(max_examples=25, deadline=None)
@given(sizes=st.lists(st.integers(0, 5), min_size=0, max_size=5), feat=st.integers(0, 2))
def test_dense_round_trip(sizes, feat):
    counts = torch.tensor(sizes, dtype=torch.long)
    batch = torch.repeat_interleave(torch.arange(len(sizes)), counts)
    x = torch.randn(int(counts.sum()), *([2] * feat))
    dense, mask = to_dense(x, batch, num_graphs=len(sizes))
    nmax = max(sizes, default=0)
    assert dense.shape == (len(sizes), nmax) + x.shape[1:] and mask.dtype == torch.bool
    assert mask.sum(1).tolist() == sizes
    assert torch.equal(from_dense(dense, mask), x)
    assert (dense[~mask] == 0).all()
    for g, n in enumerate(sizes):  # the prefix of each row holds that graph's nodes, in order
        assert torch.equal(dense[g, :n], x[batch == g])


def test_dense_options_and_errors(dtype):
    x = torch.randn(5, 2, dtype=dtype)
    batch = torch.tensor([0, 0, 0, 1, 1])
    dense, mask = to_dense(x, batch, max_nodes=4, fill_value=-1.0)
    assert dense.shape == (2, 4, 2) and dense.dtype == dtype and (dense[~mask] == -1).all()
    with pytest.raises(ValueError, match="max_nodes: a graph has 3 nodes"):
        to_dense(x, batch, max_nodes=2)
    with pytest.raises(ValueError, match="batch: expected shape"):
        to_dense(x, batch[:4])
    with pytest.raises(TypeError, match="mask: expected a bool dtype"):
        from_dense(dense, mask.float())
    with pytest.raises(ValueError, match=r"dense: expected shape \(B, Nmax, \.\.\.\) with B=2"):
        from_dense(dense[:1], mask)
