"""SO(3), O(3), SE(3), E(3): sampling statistics, kinds, actions and their errors."""

import pytest
import torch

from symformer.groups import E3, O3, SE3, SO3


def test_haar_rotation_statistics():
    # For Haar-uniform R: E[R] = 0 and E[R_ij^2] = 1/3; traces have E[tr R] = 0, E[tr^2] = 1.
    R = SO3().sample(20000, torch.Generator().manual_seed(0), dtype=torch.float64).matrix
    assert R.mean(0).abs().max() < 0.02
    assert ((R ** 2).mean(0) - 1 / 3).abs().max() < 0.02
    tr = R.diagonal(dim1=-2, dim2=-1).sum(-1)
    assert abs(float(tr.mean())) < 0.03 and abs(float((tr ** 2).mean()) - 1) < 0.05


@pytest.mark.parametrize("group", [SO3(), O3(), SE3(), E3()], ids=str)
def test_det_signs_and_translations_by_kind(group, dtype):
    gen = torch.Generator().manual_seed(3)
    for kind in group.kinds:
        g = group.sample(64, gen, dtype=dtype, kind=kind)
        det = torch.linalg.det(g.matrix.double())
        expect = -1.0 if kind == "reflection" else 1.0
        assert torch.allclose(det, torch.full_like(det, expect), atol=1e-5)
        if "translation" in g.data:
            moved = g.translation.abs().amax(-1) > 0
            assert bool(moved.all()) == (kind == "translation")
            assert not moved.any() or kind == "translation"
        if kind == "translation":
            assert torch.equal(g.matrix, torch.eye(3, dtype=dtype).expand(64, 3, 3))
    g = group.sample(400, gen, dtype=dtype)
    det = torch.linalg.det(g.matrix.double())
    if "reflection" in group.kinds:
        assert 100 < int((det < 0).sum()) < 300  # about half improper
    else:
        assert bool((det > 0).all())


def test_translation_scale():
    t = SE3(translation_scale=3.0).sample(4000, torch.Generator().manual_seed(0),
                                          dtype=torch.float64, kind="translation").translation
    assert abs(float(t.std()) - 3.0) < 0.1
    with pytest.raises(ValueError, match="translation_scale"):
        E3(translation_scale=0.0)


def test_actions_by_type(dtype):
    G = E3()
    g = G.sample(1, torch.Generator().manual_seed(1), dtype=dtype, kind="reflection")
    R = g.matrix[0]
    x = torch.randn(5, 3, dtype=dtype)
    torch.testing.assert_close(G.act(g, x, "vector"), x @ R.T)
    torch.testing.assert_close(G.act(g, x, "pseudovector"), -(x @ R.T))  # det = -1
    t = G.sample(1, torch.Generator().manual_seed(2), dtype=dtype, kind="translation")
    torch.testing.assert_close(G.act(t, x, "point"), x + t.translation[0])
    torch.testing.assert_close(G.act(t, x, "vector"), x)
    assert G.act(g, x, "scalar") is x
    # '1o' is a vector and '1e' a pseudovector; '0o' flips sign under reflections.
    y = torch.cat([x, x, x[:, :1]], dim=-1)
    out = G.act(g, y, "1o+1e+0o")
    torch.testing.assert_close(out, torch.cat([x @ R.T, -(x @ R.T), -x[:, :1]], -1),
                               atol=1e-5, rtol=1e-5)
    # uniform layout: row 0 invariant, rows 1..3 = degree 1 (a vector with e3nn's (y, z, x)
    # ordering is handled by the Wigner matrix, so compare with the '1o' irreps action).
    u = torch.randn(5, 4, 2, dtype=dtype)
    out = G.act(g, u, "uniform:1")
    torch.testing.assert_close(out[:, 0], u[:, 0])
    v = G.act(g, u[:, 1:].transpose(-1, -2), "1o").transpose(-1, -2)
    torch.testing.assert_close(out[:, 1:], v, atol=1e-5, rtol=1e-5)


def test_shape_and_type_errors():
    G = E3()
    g = G.sample(1)
    with pytest.raises(ValueError, match="last dimension 3"):
        G.act(g, torch.randn(4, 2), "point")
    with pytest.raises(ValueError, match="last dimension 8"):
        G.act(g, torch.randn(4, 7), "1x0e+1x1o+1x1e+1x0o")
    with pytest.raises(ValueError, match=r"\[\.\.\., 9, C\]"):
        G.act(g, torch.randn(4, 4, 2), "uniform:2")
    with pytest.raises(ValueError, match="does not act on 'image'"):
        G.act(g, torch.randn(4, 4), "image")
    with pytest.raises(TypeError, match="floating point"):
        G.act(g, torch.ones(4, 3, dtype=torch.long), "vector")
    with pytest.raises(ValueError, match="single group element"):
        G.act(G.sample(2), torch.randn(4, 3), "vector")
