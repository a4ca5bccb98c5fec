"""TFN on charged N-body: equivariance (E(3) / SE(3)), batching, learning, errors."""

import pytest
import torch

import symformer.models.tfn  # noqa: F401  (registers "tfn")
from symformer.groups import E3, SE3, Symmetric
from symformer.models import registry
from symformer.models._nbody_io import NBODY_IN_TYPES, example_inputs, fully_connected_edges
from symformer.models.tfn import TFN
from symformer.testing import assert_equivariant, equivariance_error

# Shared n-body checks (also used by test_se3_transformer.py).


def displacement(model):
    """``model(...) - pos``: the predicted displacement, a vector field."""
    return lambda pos, vel, charges, batch: model(pos, vel, charges, batch) - pos


def systems(S, n=5, dtype=torch.float64, seed=0):
    g = torch.Generator().manual_seed(seed)
    pos = torch.randn(S * n, 3, generator=g, dtype=dtype)
    vel = torch.randn(S * n, 3, generator=g, dtype=dtype) * 0.5
    charges = torch.randint(0, 2, (S * n,), generator=g).to(dtype) * 2 - 1
    return {"pos": pos, "vel": vel, "charges": charges,
            "batch": torch.arange(S).repeat_interleave(n)}


def batch_equals_single(model):
    data = systems(3)
    full = model(**data)
    for s in range(3):
        sl = slice(5 * s, 5 * s + 5)
        single = model(data["pos"][sl], data["vel"][sl], data["charges"][sl],
                       torch.zeros(5, dtype=torch.long))
        torch.testing.assert_close(full[sl], single, rtol=1e-10, atol=1e-10)
    perm = torch.randperm(15)
    shuffled = model(**{k: v[perm] for k, v in data.items()})
    torch.testing.assert_close(shuffled, full[perm], rtol=1e-10, atol=1e-10)
    # Systems of different sizes, one of a single particle (no edges), coincident points.
    batch = torch.tensor([2, 0, 2, 1, 2, 0])
    assert fully_connected_edges(batch).shape[1] == 8
    data = systems(6, n=1)
    pos = data["pos"].clone()
    pos[2] = pos[0]
    pos.requires_grad_()
    out = model(pos, data["vel"], data["charges"], batch)
    out.sum().backward()
    assert out.shape == (6, 3) and torch.isfinite(out).all() and torch.isfinite(pos.grad).all()


def learns_on_simulated_systems(model, steps=30):
    from symformer.data import nbody

    sim = nbody.simulate(100, seed=0, n_steps=2000, sample_freq=100)
    pos, vel = torch.tensor(sim["loc"][:, 5]), torch.tensor(sim["vel"][:, 5])
    target = torch.tensor(sim["loc"][:, 15]).float().reshape(-1, 3)
    graph = nbody.to_graph_batch(pos.float(), vel.float(), torch.tensor(sim["charges"]).float())
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    losses = []
    for _ in range(steps):
        opt.zero_grad()
        loss = torch.nn.functional.mse_loss(model(**graph), target)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.6 * losses[0]


BAD = [
    (lambda d: d.update(pos=d["pos"][:, :2]), "pos"),
    (lambda d: d.update(vel=d["vel"][:-1]), "vel"),
    (lambda d: d.update(charges=d["charges"][:, None]), "charges"),
    (lambda d: d.update(batch=d["batch"].double()), "batch"),
    (lambda d: d.update(vel=d["vel"].float()), "vel"),
    (lambda d: d.update(pos=torch.full_like(d["pos"], float("nan"))), "pos"),
]


def run_bad_inputs(model):
    for change, match in BAD:
        data = systems(2)
        change(data)
        with pytest.raises((TypeError, ValueError), match=match):
            model(**data)


def test_equivariance_e3_times_permutations(dtype):
    model = TFN(output_scale=1.0).to(dtype)
    gen = torch.Generator().manual_seed(0)
    inputs = example_inputs(model, gen, dtype)
    atol = 1e-10 if dtype == torch.float64 else 1e-5
    assert_equivariant(model, E3() * Symmetric(15), inputs, NBODY_IN_TYPES, "node:point",
                       atol=atol, generator=gen)
    # The displacement alone (a vector), so that the pos term cannot hide an error.
    errs = assert_equivariant(displacement(model), E3() * Symmetric(15), inputs, NBODY_IN_TYPES,
                              "node:vector", atol=atol, generator=gen)
    assert {"rotation", "reflection", "translation", "permutation"} <= set(errs)


def test_all_paths_declare_se3_only():
    model = registry.create("tfn", parity=False, output_scale=1.0).double()
    group = registry.spec("tfn").make_group(model)
    assert "SE(3)" in group.name or "SE3" in group.name
    inputs = example_inputs(model, torch.Generator().manual_seed(0), torch.float64)
    assert_equivariant(displacement(model), SE3() * Symmetric(15), inputs, NBODY_IN_TYPES,
                       "node:vector")
    errs = equivariance_error(displacement(model), E3(), inputs, NBODY_IN_TYPES, "node:vector",
                              kinds=("reflection",))
    assert errs["reflection"] > 1e-3


def test_registered_spec_and_config_errors():
    s = registry.spec("tfn")
    model = registry.create("tfn", channels=4, n_layers=2)
    inputs = s.example_inputs(model, torch.Generator().manual_seed(0), torch.float32)
    assert model(**inputs).shape == (15, 3)
    with pytest.raises(TypeError, match="chanels"):
        registry.create("tfn", chanels=3)
    with pytest.raises(ValueError, match="channels"):
        TFN(channels=1)
    with pytest.raises(ValueError, match="lmax"):
        TFN(lmax=0)


def test_batch_equals_single_and_unsorted_batch():
    batch_equals_single(TFN(channels=4, n_layers=3, output_scale=1.0).double())


def test_learns_on_simulated_systems():
    torch.manual_seed(0)
    learns_on_simulated_systems(TFN(channels=8, n_layers=2, lmax=1))


def test_bad_inputs():
    run_bad_inputs(TFN(channels=4, n_layers=2).double())
