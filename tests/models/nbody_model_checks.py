"""Shared checks for n-body models (used by the TFN and SE(3)-Transformer tests)."""

import pytest
import torch

from symformer.models._nbody_io import fully_connected_edges



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
