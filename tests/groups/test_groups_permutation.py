"""S_N: the perm convention on every node-axis prefix, edge_index relabelling, sampling."""

import pytest
import torch

from symformer.groups import Symmetric


def _perm(p):
    from symformer.groups import Element
    return Element({"perm": torch.tensor([p])})


def test_conventions_on_each_prefix():
    G, g = Symmetric(3), _perm([2, 0, 1])
    x = torch.tensor([10.0, 11.0, 12.0])
    torch.testing.assert_close(G.act(g, x, "node:scalar"), torch.tensor([12.0, 10.0, 11.0]))
    torch.testing.assert_close(G.act(g, x[None], "set:scalar"), torch.tensor([[12.0, 10.0, 11.0]]))
    A = torch.arange(9.0).reshape(3, 3)
    torch.testing.assert_close(G.act(g, A, "nodepair:scalar"), A[[2, 0, 1]][:, [2, 0, 1]])
    torch.testing.assert_close(G.act(g, A[None, ..., None], "pair:scalar"),
                               A[[2, 0, 1]][:, [2, 0, 1]][None, ..., None])
    assert G.act(g, x, "scalar") is x  # graph-level values are not permuted


def test_edge_index_relabelling_preserves_graph():
    G = Symmetric(6)
    gen = torch.Generator().manual_seed(0)
    edges = torch.tensor([[0, 1, 2, 5, 4], [1, 2, 3, 0, 4]])
    feats = torch.randn(6, 2, generator=gen)
    g = G.sample(1, gen, kind="permutation")
    new_edges, new_feats = G.act(g, (edges, feats), ("edge_index", "node:scalar"))
    # Every edge still joins the same two feature vectors.
    torch.testing.assert_close(new_feats[new_edges], feats[edges])
    with pytest.raises(ValueError, match=r"\[0, 6\)"):
        G.act(g, torch.tensor([[0], [6]]), "edge_index")
    with pytest.raises(ValueError, match=r"\[2, E\]"):
        G.act(g, torch.tensor([0, 1]), "edge_index")


def test_sampling_uniform_and_nontrivial():
    G = Symmetric(3)
    g = G.sample(6000, torch.Generator().manual_seed(0))
    counts = torch.unique(g.perm, dim=0, return_counts=True)[1]
    assert len(counts) == 6 and int(counts.min()) > 850  # each of 3! = 6 about 1000 times
    nontrivial = G.sample(500, torch.Generator().manual_seed(1), kind="permutation").perm
    assert not bool((nontrivial == torch.arange(3)).all(-1).any())
    assert Symmetric(1).sample(2, kind="permutation").perm.tolist() == [[0], [0]]


def test_matrix_and_errors():
    G = Symmetric(4)
    g = G.sample(3, torch.Generator().manual_seed(0))
    x = torch.randn(4, 2)
    P = G.matrix(g)
    for i in range(3):
        torch.testing.assert_close(P[i] @ x, G.act(g[i], x, "node:scalar"))
    with pytest.raises(ValueError, match="4 nodes along axis 0"):
        G.act(g[0], torch.randn(5, 2), "node:scalar")
    with pytest.raises(ValueError, match="positive int"):
        Symmetric(0)
