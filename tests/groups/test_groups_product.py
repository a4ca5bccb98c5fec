"""ProductGroup: kinds, sampling by kind, splitting, and acting on mixed data."""

import pytest
import torch

from symformer.groups import E3, O3, ProductGroup, Scaling, Symmetric


def test_kinds_and_flattening():
    G = E3() * Symmetric(4)
    assert isinstance(G, ProductGroup)
    assert G.kinds == ("rotation", "reflection", "translation", "permutation", "combined")
    assert G.name == "E(3) x S_4"
    H = (O3() * Symmetric(2)) * Scaling()  # nested products flatten
    assert len(H.groups) == 3


def test_sampling_by_kind_leaves_other_factors_at_identity(dtype):
    G = E3() * Symmetric(4)
    gen = torch.Generator().manual_seed(0)
    p = G.sample(8, gen, dtype=dtype, kind="permutation")
    assert torch.equal(p.matrix, torch.eye(3, dtype=dtype).expand(8, 3, 3))
    assert not bool(p.translation.any())
    r = G.sample(8, gen, dtype=dtype, kind="rotation")
    assert torch.equal(r.perm, torch.arange(4).expand(8, 4))
    c = G.sample(8, gen, dtype=dtype, kind="combined")
    assert bool(c.translation.any()) and not torch.equal(c.perm, torch.arange(4).expand(8, 4))
    with pytest.raises(ValueError, match="no transformation kind"):
        G.sample(1, kind="shift")


def test_acts_on_nodes_and_geometry_together(dtype):
    G = E3() * Symmetric(4)
    g = G.sample(1, torch.Generator().manual_seed(1), dtype=dtype)
    pos = torch.randn(4, 3, dtype=dtype)
    out = G.act(g, {"pos": pos, "e": torch.tensor([[0, 1], [2, 3]])},
                {"pos": "node:point", "e": "edge_index"})
    R, t, perm = g.matrix[0], g.translation[0], g.perm[0]
    torch.testing.assert_close(out["pos"], (pos @ R.T + t)[perm])
    torch.testing.assert_close(out["e"], torch.argsort(perm)[torch.tensor([[0, 1], [2, 3]])])
    with pytest.raises(ValueError, match="share element fields"):
        (E3() * E3()).sample(1)
