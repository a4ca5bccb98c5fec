"""TFN on charged N-body: equivariance (E(3) / SE(3)), batching, learning, errors."""

import pytest
import torch

import symformer.models.tfn  # noqa: F401  (registers "tfn")
from symformer.groups import E3, SE3, Symmetric
from symformer.models import registry
from symformer.models._nbody_io import NBODY_IN_TYPES, example_inputs
from symformer.models.tfn import TFN
from symformer.testing import assert_equivariant, equivariance_error

from nbody_model_checks import (batch_equals_single, displacement,  # noqa: E402
                                 learns_on_simulated_systems, run_bad_inputs)


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
