"""Plain Cartesian transformer specifics: detectably NOT E(3), its attention against torch's,
the declared group and training config, config errors.

The checks every n-body model gets (permutation equivariance, batching, errors, learning,
checkpoints) are in test_nbody_models.py."""

import math

import pytest
import torch

from symformer.groups import E3, Symmetric
from symformer.models import registry
from symformer.models._nbody_io import NBODY_IN_TYPES, example_inputs
from symformer.models.transformer import CartesianTransformer, EncoderLayer
from symformer.testing import assert_equivariant, equivariance_error


def test_e3_equivariance_error_is_measured_and_large(dtype):
    # The harness must tell a non-equivariant model apart: the E(3) error is finite but large.
    model = CartesianTransformer(dim=32, n_layers=2, heads=4).to(dtype)
    gen = torch.Generator().manual_seed(0)
    inputs = example_inputs(model, gen, dtype)
    errs = equivariance_error(model, E3(), inputs, NBODY_IN_TYPES, "node:point", generator=gen)
    assert set(errs) == {"rotation", "reflection", "translation"}
    assert all(math.isfinite(e) for e in errs.values())
    assert min(errs.values()) > 1e-2, errs
    with pytest.raises(AssertionError, match="rotation"):
        assert_equivariant(model, E3() * Symmetric(15), inputs, NBODY_IN_TYPES, "node:point",
                           generator=gen)


def test_encoder_layer_matches_reference_multihead_attention():
    torch.manual_seed(1)
    layer = EncoderLayer(16, 4).double()
    t = torch.randn(2, 5, 16, dtype=torch.float64)
    mask = torch.ones(2, 1, 5, 5, dtype=torch.bool)
    mha = torch.nn.MultiheadAttention(16, 4, batch_first=True).double()
    mha.in_proj_weight.data.copy_(layer.qkv.weight.data)
    mha.in_proj_bias.data.copy_(layer.qkv.bias.data)
    mha.out_proj.weight.data.copy_(layer.proj.weight.data)
    mha.out_proj.bias.data.copy_(layer.proj.bias.data)
    h = layer.norm1(t)
    ref = t + mha(h, h, h, need_weights=False)[0]
    ref = ref + layer.mlp(layer.norm2(ref))
    torch.testing.assert_close(layer(t, mask), ref, rtol=1e-10, atol=1e-10)


def test_registered_spec_and_training_config():
    from symformer.train.config import default_config_path

    s = registry.spec("transformer")
    assert s.make_group().kinds == ("permutation",)
    assert "rotation augmentation" in s.description
    import yaml

    cfg = yaml.safe_load(default_config_path("nbody", "transformer").read_text())
    assert cfg["augment_rotations"] is True


@pytest.mark.parametrize("kwargs, match", [
    ({"dim": 0}, "dim"), ({"dim": 10, "heads": 4}, "heads"), ({"mlp_ratio": 0}, "mlp_ratio"),
])
def test_bad_config(kwargs, match):
    with pytest.raises(ValueError, match=match):
        CartesianTransformer(**kwargs)
