"""Equiformer n-body model: E(3) x S_n equivariance, batching, learning, errors."""

import pytest
import torch

from symformer.groups import E3, Symmetric
from symformer.models import registry
from symformer.models._nbody_io import NBODY_IN_TYPES, example_inputs
from symformer.models.equiformer import Equiformer
from symformer.testing import assert_equivariant, equivariance_error


def _systems(S, n=5, dtype=torch.float64, seed=0):
    g = torch.Generator().manual_seed(seed)
    return {"pos": torch.randn(S * n, 3, generator=g, dtype=dtype),
            "vel": torch.randn(S * n, 3, generator=g, dtype=dtype) * 0.5,
            "charges": torch.randint(0, 2, (S * n,), generator=g).to(dtype) * 2 - 1,
            "batch": torch.arange(S).repeat_interleave(n)}


def test_equivariance_e3_times_permutations(dtype):
    model = Equiformer(channels=8, n_layers=2, heads=2).to(dtype)
    gen = torch.Generator().manual_seed(0)
    inputs = example_inputs(model, gen, dtype)
    errs = assert_equivariant(model, E3() * Symmetric(15), inputs, NBODY_IN_TYPES, "node:point",
                              generator=gen)
    assert {"rotation", "reflection", "translation", "permutation"} <= set(errs)
    # The displacement alone (no pos added back) is equivariant too, as a vector.
    disp = equivariance_error(lambda **kw: model(**kw) - kw["pos"], E3() * Symmetric(15),
                              inputs, NBODY_IN_TYPES, "node:vector", generator=gen)
    assert max(disp.values()) < (1e-10 if dtype == torch.float64 else 1e-4), disp


def test_registered_spec():
    s = registry.spec("equiformer")
    model = registry.create("equiformer", channels=8, n_layers=1)
    inputs = s.example_inputs(model, torch.Generator().manual_seed(0), torch.float32)
    assert model(**inputs).shape == (15, 3)
    assert "S_15" in s.make_group(model).name
    with pytest.raises(TypeError, match="chanels"):
        registry.create("equiformer", chanels=3)


def test_batch_equals_single_and_unsorted_batch():
    model = Equiformer(channels=8, n_layers=2, heads=2).double()
    data = _systems(3)
    full = model(**data)
    for s in range(3):
        sl = slice(5 * s, 5 * s + 5)
        single = model(data["pos"][sl], data["vel"][sl], data["charges"][sl],
                       torch.zeros(5, dtype=torch.long))
        torch.testing.assert_close(full[sl], single, rtol=1e-12, atol=1e-12)
    perm = torch.randperm(15)
    torch.testing.assert_close(model(**{k: v[perm] for k, v in data.items()}), full[perm],
                               rtol=1e-12, atol=1e-12)


def test_single_particles_and_finite_gradients_at_coincident_points():
    model = Equiformer(channels=8, n_layers=1, heads=2).double()
    data = _systems(1)
    out = model(data["pos"], data["vel"], data["charges"], torch.arange(5))  # no edges
    assert torch.isfinite(out).all()
    data["pos"] = data["pos"].clone()
    data["pos"][1] = data["pos"][0]
    pos = data["pos"].requires_grad_()
    model(**data).sum().backward()
    assert torch.isfinite(pos.grad).all()


def test_learns_on_simulated_systems():
    from symformer.data import nbody

    sim = nbody.simulate(100, seed=0, n_steps=2000, sample_freq=100)
    pos, vel = torch.tensor(sim["loc"][:, 5]), torch.tensor(sim["vel"][:, 5])
    target = torch.tensor(sim["loc"][:, 15]).float().reshape(-1, 3)
    graph = nbody.to_graph_batch(pos.float(), vel.float(), torch.tensor(sim["charges"]).float())
    torch.manual_seed(0)
    model = Equiformer(channels=8, n_layers=1, heads=2)
    opt = torch.optim.Adam(model.parameters(), lr=5e-3)
    losses = []
    for _ in range(30):
        opt.zero_grad()
        loss = torch.nn.functional.mse_loss(model(**graph), target)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.6 * losses[0]


@pytest.mark.parametrize("change, match", [
    (lambda d: d.update(pos=d["pos"][:, :2]), "pos"),
    (lambda d: d.update(vel=d["vel"][:-1]), "vel"),
    (lambda d: d.update(batch=d["batch"].double()), "batch"),
    (lambda d: d.update(charges=torch.full_like(d["charges"], float("nan"))), "charges"),
])
def test_bad_inputs(change, match):
    data = _systems(2)
    change(data)
    with pytest.raises((TypeError, ValueError), match=match):
        Equiformer(channels=4, n_layers=1, heads=1).double()(**data)


def test_bad_config():
    with pytest.raises(ValueError, match="channels"):
        Equiformer(channels=0)
    with pytest.raises(ValueError, match="activation"):
        Equiformer(activation="relu")
    with pytest.raises(TypeError):
        Equiformer(16)  # keyword-only
