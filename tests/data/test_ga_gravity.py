"""Gravity N-body data of the GATr benchmark: shapes, physics, splits, isometry."""

import pytest
import torch

from symformer.data.gravity import gravity_split, simulate_gravity


def test_shapes_and_reproducibility():
    a = simulate_gravity(6, 3, seed=4)
    b = simulate_gravity(6, 3, seed=4)
    assert a["pos"].shape == (6, 4, 3) and a["masses"].shape == (6, 4)
    for k in a:
        assert torch.equal(a[k], b[k]), k
    assert not torch.equal(gravity_split("train", 4)["pos"], gravity_split("test", 4)["pos"])


def test_planets_orbit_and_move_little():
    d = simulate_gravity(50, 4, seed=0, shift_std=0.0, dtype=torch.float64)
    star, planets = d["masses"][:, 0], d["masses"][:, 1:]
    assert torch.all(star >= 1) and torch.all(planets <= 0.1)
    rel = d["pos"][:, 1:] - d["pos"][:, :1]
    v = d["vel"][:, 1:] - d["vel"][:, :1]
    # Near-circular: the velocity is almost perpendicular to the radius at the start.
    cos = (rel * v).sum(-1) / (rel.norm(dim=-1) * v.norm(dim=-1))
    assert cos.abs().median() < 0.1
    step = (d["target"] - d["pos"]).norm(dim=-1)
    assert torch.all(step[:, 0] < 0.05) and step[:, 1:].median() > 0.01


def test_isometry_and_ood_shift():
    base = simulate_gravity(20, 2, seed=1, shift_std=0.0)
    moved = simulate_gravity(20, 2, seed=1)
    # Same dynamics up to the isometry: pairwise distances agree.
    dist = lambda p: torch.cdist(p, p)  # noqa: E731
    torch.testing.assert_close(dist(moved["target"]), dist(base["target"]), atol=1e-4, rtol=1e-4)
    ood = gravity_split("ood", 20)
    assert ood["pos"].mean(dim=1).norm(dim=-1).min() > 100
    with pytest.raises(ValueError, match="split"):
        gravity_split("validation", 2)
    with pytest.raises(ValueError, match="n_planets"):
        simulate_gravity(2, 0)
