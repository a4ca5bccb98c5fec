"""The checks every n-body model must pass, as plain functions of a model.

``test_nbody_models.py`` runs them on every registered n-body model; a model's own test file may
call one directly (e.g. on a variant of its config). Models follow the contract of
:mod:`symformer.models._nbody_io`: ``model(pos, vel, charges, batch) -> (N, 3)`` positions.
"""

import pytest
import torch
from torch.nn import functional as F

import symformer
from symformer.models import config_of
from symformer.groups import E3
from symformer.models._nbody_io import NBODY_IN_TYPES, example_inputs
from symformer.testing import default_tolerance, equivariance_errors

__all__ = ["systems", "displacement", "assert_nbody_equivariant", "batch_equals_single",
           "lone_particle_alone", "finite_at_degenerate_inputs", "BAD_INPUTS", "run_bad_inputs",
           "learns_on_simulated_systems", "save_load_roundtrip", "assert_se3_only"]

# Sizes 2, 3 and 1 (no edges), interleaved; system ids 1 and 3 are unused.
MIXED_BATCH = (2, 0, 2, 4, 2, 0)


def systems(S, n=5, dtype=torch.float64, seed=0):
    """``S`` random systems of ``n`` charged particles as flat node tensors (``batch`` sorted)."""
    g = torch.Generator().manual_seed(seed)
    pos = torch.randn(S * n, 3, generator=g, dtype=dtype)
    vel = torch.randn(S * n, 3, generator=g, dtype=dtype) * 0.5
    charges = torch.randint(0, 2, (S * n,), generator=g).to(dtype) * 2 - 1
    return {"pos": pos, "vel": vel, "charges": charges,
            "batch": torch.arange(S).repeat_interleave(n)}


def displacement(model):
    """``model(...) - pos``: the predicted displacement, a vector field."""

    def displacement(pos, vel, charges, batch):
        return model(pos, vel, charges, batch) - pos

    return displacement


def assert_nbody_equivariant(model, group, inputs, n_samples=4, generator=None):
    """Assert that the predicted positions ("node:point") and the displacement
    ``model(...) - pos`` ("node:vector") are equivariant under ``group``.

    The displacement check keeps the large ``pos`` term from hiding an error in a small
    displacement. A model works on absolute positions, so its round-off scales with max|pos|,
    not max|disp|: the displacement's tolerance is the default one, or ``100 eps max|pos|`` over
    max|disp| where that is larger (float32 with a small displacement; never float64, where it
    stays < 1e-11). Returns the worst error per transformation kind.
    """

    def both(pos, vel, charges, batch):
        out = model(pos, vel, charges, batch)
        return {"positions": out, "displacement": out - pos}

    types = {"positions": "node:point", "displacement": "node:vector"}
    errs = equivariance_errors(both, group, inputs, NBODY_IN_TYPES, types, n_samples, generator)
    with torch.no_grad():
        size = both(**inputs)["displacement"].abs().max()
    tol, finfo = default_tolerance(size.dtype), torch.finfo(size.dtype)
    noise = 100 * finfo.eps * float(inputs["pos"].abs().max() / size.clamp_min(finfo.tiny))
    tols = {"positions": tol, "displacement": max(tol, noise)}
    failures = [f"{out} under {kind}: error {err:.3g} > {tols[out]:.3g}"
                for (out, kind), err in errs.items() if not err <= tols[out]]
    assert not failures, f"not equivariant under {group.name}:\n" + "\n".join(failures)
    worst = {}
    for (_, kind), err in errs.items():
        worst[kind] = max(worst.get(kind, 0.0), err)
    return worst


def assert_se3_only(model, group):
    """``model`` (float64) declares ``group`` = SE(3) x S_n, passes it and fails reflections (a
    model that keeps every Clebsch-Gordan path, parity ignored)."""
    assert "SE" in group.name and "reflection" not in group.kinds
    inputs = example_inputs(model, torch.Generator().manual_seed(0), torch.float64)
    assert_nbody_equivariant(model, group, inputs)
    errs = equivariance_errors(displacement(model), E3(), inputs, NBODY_IN_TYPES, "node:vector",
                               kinds=("reflection",))
    assert max(errs.values()) > 1e-3, errs


def _take(data, idx):
    return {k: v[idx] for k, v in data.items()}


def batch_equals_single(model, tol=1e-10):
    """One batch gives what the systems give run one by one: sorted, shuffled, and with
    interleaved systems of sizes 2, 3 and 1 (and unused system ids; the lone particle's own run
    is :func:`lone_particle_alone`)."""
    data = systems(3)
    full = model(**data)
    for s in range(3):
        single = model(**_take(data, slice(5 * s, 5 * s + 5)) | {"batch": torch.zeros(5).long()})
        torch.testing.assert_close(full[5 * s:5 * s + 5], single, rtol=tol, atol=tol)
    perm = torch.randperm(15, generator=torch.Generator().manual_seed(1))
    torch.testing.assert_close(model(**_take(data, perm)), full[perm], rtol=tol, atol=tol)

    data = systems(len(MIXED_BATCH), n=1) | {"batch": torch.tensor(MIXED_BATCH)}
    out = model(**data)
    assert out.shape == (len(MIXED_BATCH), 3) and bool(torch.isfinite(out).all())
    for s in (0, 2):
        idx = (data["batch"] == s).nonzero().squeeze(1)
        single = model(**_take(data, idx) | {"batch": torch.zeros(len(idx)).long()})
        torch.testing.assert_close(out[idx], single, rtol=tol, atol=tol)


def lone_particle_alone(model, tol=1e-10):
    """A batch holding only one one-particle system (no edges at all) gives what that particle
    gives inside a batch of several systems."""
    data = systems(len(MIXED_BATCH), n=1) | {"batch": torch.tensor(MIXED_BATCH)}
    lone = MIXED_BATCH.index(4)
    alone = model(**_take(data, slice(lone, lone + 1)) | {"batch": torch.zeros(1).long()})
    assert alone.shape == (1, 3) and bool(torch.isfinite(alone).all())
    torch.testing.assert_close(alone, model(**data)[lone:lone + 1], rtol=tol, atol=tol)


def finite_at_degenerate_inputs(model):
    """Finite outputs and gradients (inputs and parameters) with two coincident particles, a
    particle at rest and a lone particle."""
    data = systems(len(MIXED_BATCH), n=1) | {"batch": torch.tensor(MIXED_BATCH)}
    data["pos"][2] = data["pos"][0]  # coincident pair in system 2
    data["vel"][1] = 0.0  # at rest
    data["vel"][3] = 0.0  # lone and at rest
    leaves = {k: data[k].requires_grad_() for k in ("pos", "vel", "charges")}
    out = model(**data)
    weights = torch.randn(out.shape, generator=torch.Generator().manual_seed(2), dtype=out.dtype)
    (out * weights).sum().backward()
    assert bool(torch.isfinite(out).all())
    for name, x in leaves.items():
        assert x.grad is not None and bool(torch.isfinite(x.grad).all()), name
    for name, p in model.named_parameters():
        assert p.grad is None or bool(torch.isfinite(p.grad).all()), name


BAD_INPUTS = {  # id: (change to float64 inputs of 2 systems, name the error must give)
    "pos-shape": (lambda d: d.update(pos=d["pos"][:, :2]), "pos"),
    "pos-int": (lambda d: d.update(pos=d["pos"].long()), "pos"),
    "pos-nan": (lambda d: d.update(pos=torch.full_like(d["pos"], float("nan"))), "pos"),
    "vel-length": (lambda d: d.update(vel=d["vel"][:-1]), "vel"),
    "vel-dtype": (lambda d: d.update(vel=d["vel"].float()), "vel"),
    "vel-nan": (lambda d: d.update(vel=torch.full_like(d["vel"], float("nan"))), "vel"),
    "charges-shape": (lambda d: d.update(charges=d["charges"][:, None]), "charges"),
    "charges-length": (lambda d: d.update(charges=d["charges"][:-1]), "charges"),
    "charges-dtype": (lambda d: d.update(charges=d["charges"].float()), "charges"),
    "charges-inf": (lambda d: d.update(charges=torch.full_like(d["charges"], float("inf"))),
                    "charges"),
    "charges-numpy": (lambda d: d.update(charges=d["charges"].numpy()), "charges"),
    "batch-float": (lambda d: d.update(batch=d["batch"].double()), "batch"),
    "batch-negative": (lambda d: d.update(batch=d["batch"] - 1), "batch"),
    "batch-length": (lambda d: d.update(batch=d["batch"][:-1]), "batch"),
}


def run_bad_inputs(model, cases=tuple(BAD_INPUTS)):
    """Each bad input raises ``TypeError``/``ValueError`` naming the argument (float64 model)."""
    for case in cases:
        change, match = BAD_INPUTS[case]
        data = systems(2)
        change(data)
        with pytest.raises((TypeError, ValueError), match=match):
            model(**data)


def learns_on_simulated_systems(model, steps=20, lr=5e-3):
    """A few Adam steps on 100 training systems of the benchmark (frame 30 -> 40): the loss falls
    by 40% and ends well below that of predicting no motion."""
    from symformer.data import nbody

    data = nbody.load_split("train", n=100, dtype=torch.float32)
    graph = nbody.to_graph_batch(data["pos"], data["vel"], data["charges"])
    target = data["target"].reshape(-1, 3)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    losses = []
    for _ in range(steps):
        opt.zero_grad()
        loss = F.mse_loss(model(**graph), target)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    no_motion = F.mse_loss(graph["pos"], target).item()
    assert losses[-1] < 0.6 * losses[0] and losses[-1] < 0.6 * no_motion, (losses, no_motion)


def save_load_roundtrip(model, inputs, path):
    """``symformer.save`` then ``symformer.load`` rebuilds the model: same config, eval mode,
    identical outputs."""
    model = model.eval()
    loaded = symformer.load(symformer.save(model, path))
    assert config_of(loaded) == config_of(model) and not loaded.training
    with torch.no_grad():
        torch.testing.assert_close(loaded(**inputs), model(**inputs), rtol=0, atol=0)
