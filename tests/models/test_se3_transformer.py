"""SE(3)-Transformer specifics: the all-paths (parity=False) variant declares and is only SE(3);
config errors.

The checks every n-body model gets (equivariance, batching, errors, learning, checkpoints) are
in test_nbody_models.py."""

import pytest

from symformer.models import registry
from symformer.models.se3_transformer import SE3Transformer

from nbody_model_checks import assert_se3_only


def test_all_paths_declare_se3_only():
    model = registry.create("se3_transformer", parity=False, output_scale=1.0).double()
    assert_se3_only(model, registry.spec("se3_transformer").make_group(model))


def test_config_errors():
    with pytest.raises(TypeError, match="head"):
        registry.create("se3_transformer", head=2)
    with pytest.raises(ValueError, match="channels"):
        SE3Transformer(channels=6, heads=4)
    with pytest.raises(ValueError, match="heads"):
        SE3Transformer(heads=0)
