"""Charged N-body generator: original semantics, determinism, physics, caching, predict."""

import numpy as np
import pytest
import torch
from torch import nn

from symformer.data import nbody


def _reference(seed, n_sims, n_steps, sample_freq, n=5):
    """Per-simulation loop written after the original NRI/EGNN ``ChargedParticlesSim``: [3, N]
    layout, Gram-expansion distances, j-ordered force sums, frame counter starting at 0."""
    rs = np.random.RandomState(seed)
    T_save, dt, box = n_steps // sample_freq - 1, 1e-3, 5.0
    out_loc, out_vel, out_q = [], [], []
    for _ in range(n_sims):
        charges = rs.choice(np.array([-1.0, 0.0, 1.0]), size=(n, 1), p=[0.5, 0, 0.5])
        edges = charges.dot(charges.T)
        loc, vel = np.zeros((T_save, 3, n)), np.zeros((T_save, 3, n))
        x = rs.randn(3, n) * 1.0
        v = rs.randn(3, n)
        v = v * 0.5 / np.sqrt((v ** 2).sum(axis=0)).reshape(1, -1)
        over = x > box
        x[over], v[over] = 2 * box - x[over], -np.abs(v[over])
        under = x < -box
        x[under], v[under] = -2 * box - x[under], np.abs(v[under])
        loc[0], vel[0] = x, v

        def force(x):
            a = x.T
            sq = (a ** 2).sum(axis=1)
            d2 = sq.reshape(-1, 1) + sq.reshape(1, -1) - 2 * a.dot(a.T)
            with np.errstate(divide="ignore", invalid="ignore"):
                size = edges / np.power(d2, 1.5)
            np.fill_diagonal(size, 0)
            f = np.stack([size * np.subtract.outer(x[d], x[d]) for d in range(3)]).sum(-1)
            return np.clip(f, -100.0, 100.0)

        v = v + dt * force(x)
        counter = 0
        for i in range(1, n_steps):
            x = x + dt * v
            if i % sample_freq == 0:
                loc[counter], vel[counter] = x, v
                counter += 1
            v = v + dt * force(x)
        rs.randn(T_save, 3, n), rs.randn(T_save, 3, n)  # zero-variance noise of the original
        out_loc.append(loc.transpose(0, 2, 1)), out_vel.append(vel.transpose(0, 2, 1))
        out_q.append(charges[:, 0])
    return np.stack(out_loc), np.stack(out_vel), np.stack(out_q)


def test_matches_per_simulation_reference():
    loc, vel, q = _reference(seed=7, n_sims=3, n_steps=1000, sample_freq=100)
    sim = nbody.simulate(3, seed=7, n_steps=1000, sample_freq=100)
    assert sim["loc"].shape == (3, 9, 5, 3) and sim["charges"].shape == (3, 5)
    np.testing.assert_array_equal(sim["charges"], q)
    np.testing.assert_allclose(sim["loc"], loc, rtol=0, atol=1e-9)
    np.testing.assert_allclose(sim["vel"], vel, rtol=0, atol=1e-9)


def test_skip_selects_later_simulations_of_the_stream():
    full = nbody.initial_conditions(5, seed=3, n_frames=3)  # 400 steps: 3 recorded frames
    part = nbody.simulate(2, seed=3, skip=3, n_steps=400, sample_freq=100)
    ref = nbody.integrate(full["loc"][3:], full["vel"][3:], full["charges"][3:], n_steps=400,
                          sample_freq=100)
    np.testing.assert_array_equal(part["loc"], ref["loc"])


def test_initial_conditions_protocol():
    init = nbody.initial_conditions(500, seed=1)
    assert init["loc"].shape == (500, 5, 3) and init["charges"].shape == (500, 5)
    np.testing.assert_allclose(np.linalg.norm(init["vel"], axis=-1), 0.5, rtol=1e-12)
    assert np.all(np.abs(init["loc"]) <= 5.0)
    assert set(np.unique(init["charges"])) == {-1.0, 1.0}
    assert abs(init["charges"].mean()) < 0.1
    assert abs(init["loc"].std() - 1.0) < 0.05


def test_reflection_into_box_at_init():
    init = nbody.initial_conditions(2000, seed=0, loc_std=3.0)  # some start outside the box
    raw = nbody.initial_conditions(2000, seed=0, loc_std=3.0, box_size=1e9)  # same stream
    assert np.all(np.abs(init["loc"]) <= 5.0)
    moved = np.abs(raw["loc"]) > 5
    assert moved.any()
    sign = np.sign(raw["loc"][moved])
    np.testing.assert_allclose(init["loc"][moved], sign * 10 - raw["loc"][moved])
    np.testing.assert_allclose(init["vel"][moved], -sign * np.abs(raw["vel"][moved]))
    np.testing.assert_array_equal(init["loc"][~moved], raw["loc"][~moved])


def test_determinism_and_seed_dependence():
    a = nbody.simulate(4, seed=11, n_steps=500, sample_freq=100)
    b = nbody.simulate(4, seed=11, n_steps=500, sample_freq=100)
    c = nbody.simulate(4, seed=12, n_steps=500, sample_freq=100)
    np.testing.assert_array_equal(a["loc"], b["loc"])
    assert not np.allclose(a["loc"], c["loc"])


def _energy(loc, vel, q):
    diff = loc[..., :, None, :] - loc[..., None, :, :]
    r = np.linalg.norm(diff, axis=-1)
    iu = np.triu_indices(loc.shape[-2], 1)
    pair = (q[:, None, :, None] * q[:, None, None, :])[..., iu[0], iu[1]]
    return 0.5 * (vel ** 2).sum((-1, -2)) + (pair / r[..., iu[0], iu[1]]).sum(-1)


def test_energy_roughly_conserved_without_close_encounters():
    sim = nbody.simulate(200, seed=5, n_steps=2000, sample_freq=100)
    loc, vel, q = sim["loc"], sim["vel"], sim["charges"]
    diff = loc[:, :, :, None] - loc[:, :, None, :]
    r = np.linalg.norm(diff, axis=-1) + np.eye(5) * 1e9
    calm = r.min(axis=(1, 2, 3)) > 0.5  # forces far below the clip all along
    assert calm.sum() > 50
    e = _energy(loc[calm], vel[calm], q[calm])
    drift = np.abs(e - e[:, :1]).max(axis=1)
    assert np.median(drift) < 5e-3


def test_load_split_cache_and_corruption(tmp_path, monkeypatch):
    monkeypatch.setitem(nbody.SPLITS, "test", (0, 6))
    monkeypatch.setattr(nbody, "_CACHE_VERSION", 999)  # never the real cache file name
    data = nbody.load_split("test", cache_dir=tmp_path)
    assert data["pos"].shape == (6, 5, 3) and data["target"].shape == (6, 5, 3)
    assert data["pos"].dtype == np.float64
    files = list(tmp_path.glob("*.npz"))
    assert len(files) == 1 and not list(tmp_path.glob("*.tmp"))
    sim = nbody.simulate(6, seed=nbody.SEED)
    np.testing.assert_array_equal(data["pos"], sim["loc"][:, 30])
    np.testing.assert_array_equal(data["target"], sim["loc"][:, 40])
    np.testing.assert_array_equal(data["vel"], sim["vel"][:, 30])
    again = nbody.load_split("test", n=4, cache_dir=tmp_path, dtype=torch.float32)
    assert again["pos"].dtype == torch.float32 and again["pos"].shape == (4, 5, 3)
    files[0].write_bytes(b"not a zip file")
    with pytest.warns(RuntimeWarning, match="unreadable"):
        fixed = nbody.load_split("test", cache_dir=tmp_path)
    np.testing.assert_array_equal(fixed["pos"], data["pos"])
    monkeypatch.setenv("SYMFORMER_CACHE", str(tmp_path / "env"))
    nbody.load_split("test", n=1)
    assert list((tmp_path / "env" / "nbody").glob("*.npz"))


def test_load_split_bad_arguments(tmp_path):
    with pytest.raises(ValueError, match="split"):
        nbody.load_split("val", cache_dir=tmp_path)
    with pytest.raises(ValueError, match="n:"):
        nbody.load_split("test", n=0, cache_dir=tmp_path)


def test_to_graph_batch():
    pos, vel, q = torch.randn(3, 5, 3), torch.randn(3, 5, 3), torch.ones(3, 5)
    g = nbody.to_graph_batch(pos, vel, q)
    assert g["pos"].shape == (15, 3) and g["charges"].shape == (15,)
    assert g["batch"].dtype == torch.long
    assert g["batch"].tolist() == [0] * 5 + [1] * 5 + [2] * 5
    torch.testing.assert_close(g["pos"][5:10], pos[1])


class _Drift(nn.Module):
    """x + t v with a learnable t (EGNN's ``Linear_dynamics``)."""

    def __init__(self):
        super().__init__()
        self.t = nn.Parameter(torch.ones((), dtype=torch.float64))

    def forward(self, pos, vel, charges, batch):
        return pos + self.t * vel


def test_predict_linear_dynamics_and_mode():
    model = _Drift().train()
    pos, vel = np.random.randn(4, 5, 3), np.random.randn(4, 5, 3)
    out = nbody.predict(model, pos, vel, np.ones((4, 5)))
    assert out.dtype == torch.float64 and out.shape == (4, 5, 3) and not out.requires_grad
    np.testing.assert_allclose(out.numpy(), pos + vel)
    assert model.training


@pytest.mark.parametrize("args, match", [
    ((np.zeros((4, 5, 2)), np.zeros((4, 5, 3)), np.zeros((4, 5))), "loc"),
    ((np.zeros((4, 5, 3)), np.zeros((4, 4, 3)), np.zeros((4, 5))), "vel"),
    ((np.zeros((4, 5, 3)), np.zeros((4, 5, 3)), np.zeros((4, 4))), "charges"),
    ((np.zeros((0, 5, 3)), np.zeros((0, 5, 3)), np.zeros((0, 5))), "loc"),
    ((np.full((1, 5, 3), np.nan), np.zeros((1, 5, 3)), np.zeros((1, 5))), "loc"),
    ((np.zeros((1, 5, 3)), np.zeros((1, 5, 3)), [[1.0] * 5]), "charges"),
])
def test_predict_rejects_bad_inputs(args, match):
    with pytest.raises((ValueError, TypeError), match=match):
        nbody.predict(_Drift(), *args)


def test_published_table():
    assert nbody.PUBLISHED_MSE["egnn"] == 0.0071
    assert min(nbody.PUBLISHED_MSE, key=nbody.PUBLISHED_MSE.get) == "cgenn"


def test_generation_is_bitwise_reproducible():
    # Elementwise IEEE operations in a fixed order: these bytes on every machine and BLAS (a
    # last-bit change in the force sum moves dozens of test systems by more than 1e-3).
    import hashlib

    from symformer.data.nbody import SPLITS, simulate

    sim = simulate(4, skip=SPLITS["test"][0])
    digest = hashlib.sha256(np.ascontiguousarray(sim["loc"]).tobytes()
                            + np.ascontiguousarray(sim["vel"]).tobytes()).hexdigest()
    assert digest == "8f1a2ce89723dc3f5ada0b4b5965ebab218690a69f9527ce7cc03b180bbb7633"
