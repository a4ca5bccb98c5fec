"""SE(3)-Transformer on charged N-body: equivariance (E(3) / SE(3)), batching, learning,
errors."""

import pytest
import torch

import symformer.models.se3_transformer  # noqa: F401  (registers "se3_transformer")
from symformer.groups import E3, SE3, Symmetric
from symformer.models import registry
from symformer.models._nbody_io import NBODY_IN_TYPES, example_inputs
from symformer.models.se3_transformer import SE3Transformer
from symformer.testing import assert_equivariant, equivariance_error
from nbody_model_checks import batch_equals_single, displacement, learns_on_simulated_systems, run_bad_inputs


def test_equivariance_e3_times_permutations(dtype):
    model = SE3Transformer(output_scale=1.0).to(dtype)
    gen = torch.Generator().manual_seed(0)
    inputs = example_inputs(model, gen, dtype)
    atol = 1e-10 if dtype == torch.float64 else 1e-5
    assert_equivariant(model, E3() * Symmetric(15), inputs, NBODY_IN_TYPES, "node:point",
                       atol=atol, generator=gen)
    errs = assert_equivariant(displacement(model), E3() * Symmetric(15), inputs, NBODY_IN_TYPES,
                              "node:vector", atol=atol, generator=gen)
    assert {"rotation", "reflection", "translation", "permutation"} <= set(errs)


def test_all_paths_declare_se3_only():
    model = registry.create("se3_transformer", parity=False, output_scale=1.0).double()
    assert "SE" in registry.spec("se3_transformer").make_group(model).name
    inputs = example_inputs(model, torch.Generator().manual_seed(0), torch.float64)
    assert_equivariant(displacement(model), SE3() * Symmetric(15), inputs, NBODY_IN_TYPES,
                       "node:vector")
    errs = equivariance_error(displacement(model), E3(), inputs, NBODY_IN_TYPES, "node:vector",
                              kinds=("reflection",))
    assert errs["reflection"] > 1e-3


def test_registered_spec_and_config_errors():
    s = registry.spec("se3_transformer")
    model = registry.create("se3_transformer", channels=4, n_layers=1)
    inputs = s.example_inputs(model, torch.Generator().manual_seed(0), torch.float32)
    assert model(**inputs).shape == (15, 3)
    with pytest.raises(TypeError, match="head"):
        registry.create("se3_transformer", head=2)
    with pytest.raises(ValueError, match="channels"):
        SE3Transformer(channels=6, heads=4)
    with pytest.raises(ValueError, match="heads"):
        SE3Transformer(heads=0)


def test_batch_equals_single_and_unsorted_batch():
    batch_equals_single(SE3Transformer(channels=4, n_layers=2, output_scale=1.0).double())


def test_learns_on_simulated_systems():
    torch.manual_seed(0)
    learns_on_simulated_systems(SE3Transformer(channels=8, n_layers=1, lmax=1))


def test_bad_inputs():
    run_bad_inputs(SE3Transformer(channels=4, n_layers=1).double())
