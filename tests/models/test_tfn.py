"""TFN specifics: the all-paths (parity=False) variant declares and is only SE(3); config errors.

The checks every n-body model gets (equivariance, batching, errors, learning, checkpoints) are
in test_nbody_models.py."""

import pytest

from symformer.models import registry
from symformer.models.tfn import TFN

from nbody_model_checks import assert_se3_only


def test_all_paths_declare_se3_only():
    model = registry.create("tfn", parity=False, output_scale=1.0).double()
    assert_se3_only(model, registry.spec("tfn").make_group(model))


def test_config_errors():
    with pytest.raises(TypeError, match="chanels"):
        registry.create("tfn", chanels=3)
    with pytest.raises(ValueError, match="channels"):
        TFN(channels=1)
    with pytest.raises(ValueError, match="lmax"):
        TFN(lmax=0)
