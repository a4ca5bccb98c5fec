"""Gravity N-body data of the GATr benchmark: shapes, physics, splits, isometry, outliers."""

import pytest
import torch

from symformer.data.gravity import GRAVITY_SPLITS, gravity_split, simulate_gravity


def test_shapes_reproducibility_and_prefixes():
    a = simulate_gravity(6, 3, seed=4)
    b = simulate_gravity(6, 3, seed=4)
    assert a["pos"].shape == (6, 4, 3) and a["masses"].shape == (6, 4)
    for k in a:
        assert torch.equal(a[k], b[k]), k
    # A smaller split is the prefix of a larger one; splits differ from each other.
    torch.testing.assert_close(gravity_split("test", 5)["pos"], gravity_split("test", 9)["pos"][:5])
    assert not torch.equal(gravity_split("train", 4)["pos"], gravity_split("test", 4)["pos"])
    assert gravity_split("objects", 3)["pos"].shape == (3, 6, 3)
    assert set(GRAVITY_SPLITS) == {"train", "valid", "test", "ood", "objects"}


def test_masses_orbits_and_planarity():
    d = simulate_gravity(200, 3, seed=0, shift_std=0.0, dtype=torch.float64)
    m = d["masses"]
    star = m.argmax(dim=1)
    assert torch.all(m.amax(dim=1) >= 1) and torch.all(m.amax(dim=1) <= 10)
    assert len(set(star.tolist())) > 1  # bodies are permuted: the star is not always first
    planets = torch.sort(m, dim=1).values[:, :-1]
    assert torch.all(planets >= 0.01) and torch.all(planets <= 0.1)
    # Log-uniform star masses: the median is near sqrt(10), not 5.5.
    assert abs(float(m.amax(dim=1).median()) - 10 ** 0.5) < 0.6
    idx = torch.arange(200)
    rel = d["pos"] - d["pos"][idx, star][:, None]
    v = d["vel"] - d["vel"][idx, star][:, None]
    planet = m < 1
    cos = (rel * v).sum(-1)[planet] / (rel.norm(dim=-1) * v.norm(dim=-1))[planet]
    assert cos.abs().median() < 0.1  # near-circular orbits
    r = rel.norm(dim=-1)[planet]
    assert r.min() >= 0.1 - 1e-9 and r.max() <= 1 + 1e-9
    # The planets start in one plane through the star (rotated): rank-2 relative positions.
    sv = torch.linalg.svdvals(rel)
    assert torch.all(sv[:, 2] < 1e-9 * sv[:, 0].clamp(min=1))
    step = (d["target"] - d["pos"]).norm(dim=-1)
    assert torch.all(step <= 2.0)  # outliers rejected
    assert torch.all(step[idx, star] < 0.05) and step[planet].median() > 0.01


def test_semi_implicit_euler_step():
    # One step by hand: v' = v + dt a(x), x' = x + dt v'.
    d = simulate_gravity(3, 2, seed=5, steps=1, time=0.01, shift_std=0.0, dtype=torch.float64)
    x, v, m = d["pos"], d["vel"], d["masses"]
    diff = x[:, None, :, :] - x[:, :, None, :]
    dist = diff.norm(dim=-1) + torch.eye(3)
    a = torch.einsum("sij,sj,sijc->sic", (1 - torch.eye(3)) / dist ** 3, m, diff)
    torch.testing.assert_close(d["target"], x + 0.01 * (v + 0.01 * a))


def test_isometry_ood_shift_and_errors():
    base = simulate_gravity(20, 2, seed=1, shift_std=0.0)
    moved = simulate_gravity(20, 2, seed=1)
    dist = lambda p: torch.cdist(p, p)  # noqa: E731
    torch.testing.assert_close(dist(moved["target"]), dist(base["target"]), atol=1e-4, rtol=1e-4)
    ood = gravity_split("ood", 50)
    test = gravity_split("test", 50)
    assert ood["pos"][..., 0].mean() > 150 and test["pos"][..., 0].abs().mean() < 60
    with pytest.raises(ValueError, match="split"):
        gravity_split("validation", 2)
    with pytest.raises(ValueError, match="n_planets"):
        simulate_gravity(2, 0)
    with pytest.raises(ValueError, match="outlier_threshold"):
        simulate_gravity(2, 1, outlier_threshold=0.0)
