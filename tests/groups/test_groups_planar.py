"""Planar groups: image actions agree with the matrices; inexact image actions are refused."""

import pytest
import torch

from symformer.groups import O2, SO2, Cyclic, CyclicShift, Dihedral, Octic


def _pixel_coords(img):
    """(x, y) = (j - c, c - i) of the single non-zero pixel of a square image, c the centre."""
    i, j = (img != 0).nonzero()[0].tolist()
    c = (img.shape[-1] - 1) / 2
    return torch.tensor([j - c, c - i], dtype=torch.float64)


@pytest.mark.parametrize("group", [Octic(), Cyclic(4), Dihedral(2), Cyclic(2), Dihedral(1)],
                         ids=str)
def test_image_action_matches_matrix(group):
    gen = torch.Generator().manual_seed(0)
    img = torch.zeros(5, 5)
    img[0, 3] = 1.0  # off every symmetry axis
    p = _pixel_coords(img)
    for _ in range(12):
        g = group.sample(1, gen, dtype=torch.float64)
        moved = _pixel_coords(group.act(g, img, "image"))
        torch.testing.assert_close(moved, g.matrix[0] @ p)


def test_octic_has_eight_distinct_image_actions():
    img = torch.arange(16.0).reshape(4, 4)
    G = Octic()
    g = G.sample(200, torch.Generator().manual_seed(0))
    seen = {tuple(G.act(g[i], img, "image").flatten().tolist()) for i in range(200)}
    assert len(seen) == 8
    assert G.name == "D_4" and G.kinds == ("rotation", "reflection")


def test_d4_conventions():
    img = torch.arange(6.0).reshape(2, 3)
    G = Dihedral(4)
    quarter = G.sample(50, torch.Generator().manual_seed(0), kind="rotation")
    k1 = next(i for i in range(50) if int(quarter.rot90[i]) == 1)
    torch.testing.assert_close(G.act(quarter[k1], img, "image"), torch.rot90(img, 1, (-2, -1)))
    torch.testing.assert_close(quarter.matrix[k1], torch.tensor([[0.0, -1.0], [1.0, 0.0]]))
    refl = G.sample(50, torch.Generator().manual_seed(0), kind="reflection")
    k0 = next(i for i in range(50) if int(refl.rot90[i]) == 0)
    torch.testing.assert_close(G.act(refl[k0], img, "image"), img.flip(-1))
    torch.testing.assert_close(refl.matrix[k0], torch.tensor([[-1.0, 0.0], [0.0, 1.0]]))
    assert bool(refl.flip.all()) and not bool(quarter.flip.any())
    assert bool((quarter.rot90 != 0).all())  # kind="rotation" never draws the identity


@pytest.mark.parametrize("group", [SO2(), O2(), Cyclic(3), Dihedral(8)], ids=str)
def test_inexact_image_action_refused(group):
    with pytest.raises(ValueError, match="no exact action on images"):
        group.act(group.sample(1), torch.randn(4, 4), "image")


def test_planar_type_errors():
    G = O2()
    with pytest.raises(ValueError, match="last dimension 2"):
        G.act(G.sample(1), torch.randn(4, 3), "point")
    with pytest.raises(ValueError, match="does not act on 'pseudovector'"):
        G.act(G.sample(1), torch.randn(4, 3), "pseudovector")
    with pytest.raises(ValueError, match="positive int"):
        Cyclic(0)


def test_cyclic_rotation_angles():
    G = Cyclic(6)
    g = G.sample(100, torch.Generator().manual_seed(0), dtype=torch.float64)
    theta = torch.atan2(g.matrix[:, 1, 0], g.matrix[:, 0, 0]) * 6 / (2 * torch.pi)
    torch.testing.assert_close(theta, theta.round())
    assert len(set(theta.round().tolist())) == 6
    assert "rot90" not in g.data  # C_6 has no exact image action


def test_cyclic_shift():
    G = CyclicShift(3, 4)
    img = torch.arange(24.0).reshape(2, 3, 4)
    g = G.sample(30, torch.Generator().manual_seed(0), kind="shift")
    assert bool((g.shift.abs().sum(-1) > 0).all())
    assert bool((g.shift[:, 0] < 3).all() and (g.shift[:, 1] < 4).all())
    s = g.shift[0].tolist()
    torch.testing.assert_close(G.act(g[0], img, "image"), torch.roll(img, s, dims=(-2, -1)))
    assert G.matrix(g) is None
    with pytest.raises(ValueError, match=r"\[\.\.\., 3, 4\]"):
        G.act(g[0], torch.randn(4, 4), "image")
    with pytest.raises(ValueError, match="acts only on images"):
        G.act(g[0], torch.randn(4, 2), "point")
