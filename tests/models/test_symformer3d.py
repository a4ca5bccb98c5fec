"""symformer3d specifics: equivariance with live step weights, the ballistic start, the
no-refinement variant, config errors (the rest: tests/models/test_nbody_models.py)."""

import pytest
import torch

from symformer.groups import E3, Symmetric
from symformer.models._nbody_io import NBODY_IN_TYPES, example_inputs
from symformer.models.symformer3d import Symformer3D
from symformer.testing import assert_equivariant, equivariance_error

from nbody_model_checks import batch_equals_single, displacement, systems


def _small(**kw):
    return Symformer3D(channels=8, n_layers=2, heads=2, **kw)


@pytest.mark.parametrize("options", [{"refine": True}, {"refine": False},
                                     {"short_range": (0.1, 1.0)}])
def test_equivariance_e3_times_permutations(dtype, options):
    model = _small(**options).to(dtype)
    # Trained-like steps: the initial step weights are small, which would hide errors in them.
    with torch.no_grad():
        for step in model.steps:
            step.vector.weight.normal_()
            step.gain.weight.normal_()
    gen = torch.Generator().manual_seed(0)
    inputs = example_inputs(model, gen, dtype)
    errs = assert_equivariant(model, E3() * Symmetric(15), inputs, NBODY_IN_TYPES, "node:point",
                              generator=gen)
    assert {"rotation", "reflection", "translation", "permutation"} <= set(errs)
    disp = equivariance_error(displacement(model), E3() * Symmetric(15), inputs, NBODY_IN_TYPES,
                              "node:vector", generator=gen)
    assert max(disp.values()) < (1e-10 if dtype == torch.float64 else 1e-5), disp


def test_starts_as_constant_velocity_integrator():
    model = _small().double()
    data = systems(2)
    out = model(**data)
    ballistic = data["pos"] + data["vel"]
    # Only the small initial l = 1 steps separate the untrained model from pos + v.
    assert (out - ballistic).abs().max() < 0.2
    assert (out - ballistic).abs().max() > 0  # the learned part is live


def test_batch_equals_single_without_refinement():
    # The default (refine=True) is covered by tests/models/test_nbody_models.py.
    torch.manual_seed(0)
    batch_equals_single(_small(refine=False).double())


def test_bad_config():
    with pytest.raises(ValueError, match="channels"):
        Symformer3D(channels=0)
    with pytest.raises(ValueError, match="n_layers"):
        Symformer3D(n_layers=0)
    with pytest.raises(ValueError, match="cutoff"):
        Symformer3D(cutoff=-1.0)
    with pytest.raises(TypeError, match="refine"):
        Symformer3D(refine=1)
    with pytest.raises(TypeError, match="galilean"):
        Symformer3D(galilean="yes")
    with pytest.raises(ValueError, match="short_range"):
        Symformer3D(short_range=(0.1, -1.0))
    with pytest.raises(TypeError):
        Symformer3D(16)  # keyword-only


def _trained_like(model):
    with torch.no_grad():
        for step in model.steps:
            step.vector.weight.normal_()
            step.gain.weight.normal_()
        if model.horizon is not None:
            model.horizon.fill_(0.7)
    return model


def test_galilean_boost_shifts_the_prediction_by_horizon_times_u():
    model = _trained_like(_small().double())
    data = systems(3)
    n_sys = int(data["batch"].max()) + 1
    u = torch.randn(n_sys, 3, dtype=torch.float64)       # one boost per system
    boosted = dict(data, vel=data["vel"] + u[data["batch"]])
    out, out_boosted = model(**data), model(**boosted)
    torch.testing.assert_close(out_boosted, out + 0.7 * u[data["batch"]], atol=1e-12, rtol=0)


def test_centre_of_mass_moves_with_the_mean_velocity():
    model = _trained_like(_small().double())
    data = systems(3)
    out = model(**data)
    for b in range(int(data["batch"].max()) + 1):
        m = data["batch"] == b
        com_step = out[m].mean(0) - data["pos"][m].mean(0)
        torch.testing.assert_close(com_step, 0.7 * data["vel"][m].mean(0), atol=1e-12, rtol=0)


def test_flipping_every_charge_changes_nothing():
    model = _trained_like(_small(short_range=(0.3,)).double())
    data = systems(3)
    torch.testing.assert_close(model(**dict(data, charges=-data["charges"])), model(**data),
                               atol=1e-12, rtol=0)


def test_symmetry_options_off_is_not_galilean():
    # The options do the work: without them a boost is not a plain shift.
    model = _trained_like(_small(galilean=False, momentum=False, charge_flip=False).double())
    data = systems(3)
    u = torch.randn(3, dtype=torch.float64)
    out_boosted = model(**dict(data, vel=data["vel"] + u))
    assert (out_boosted - model(**data) - u).abs().max() > 1e-6
    flipped = model(**dict(data, charges=-data["charges"]))
    assert (flipped - model(**data)).abs().max() > 1e-6


def test_short_range_features_follow_the_charges_and_distance():
    # c_i c_j w^2 / (r^2 + w^2): two particles at distance r, same and opposite charges.
    model = Symformer3D(channels=4, n_layers=1, heads=1, short_range=(0.5,)).double()
    pos = torch.tensor([[0.0, 0, 0], [0.3, 0.4, 0]], dtype=torch.float64)  # r = 0.5
    src, dst = torch.tensor([1, 0]), torch.tensor([0, 1])
    fixed = torch.zeros(2, 0, dtype=torch.float64)
    dvel = torch.zeros(2, 3, dtype=torch.float64)
    for qq in (1.0, -1.0):
        scalars, _ = model._geometry(pos, fixed, dvel, torch.full((2,), qq, dtype=torch.float64),
                                     src, dst)
        torch.testing.assert_close(scalars[:, -1], torch.full((2,), qq * 0.5, dtype=torch.float64))
