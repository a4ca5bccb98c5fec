"""Per-node layers on the uniform layout: equivariance, shapes, init statistics, bad input."""

import pytest
import torch

from symformer.models import create, spec
from symformer.testing import assert_equivariant

LAYERS = ["equivariant_linear", "gate", "equivariant_rms_norm"]


@pytest.mark.parametrize("name", LAYERS)
def test_equivariant(name, dtype, generator):
    s = spec(name)
    layer = create(name).to(dtype)
    inputs = s.example_inputs(layer, generator, dtype)
    assert_equivariant(layer, s.make_group(layer), inputs, s.in_types, s.out_types,
                       generator=generator)


@pytest.mark.parametrize("name", LAYERS)
def test_shapes_and_bad_input(name):
    layer = create(name, lmax=3, in_channels=5)
    x = torch.randn(2, 7, 16, 5)
    assert layer(x).shape[:-1] == (2, 7, 16)
    with pytest.raises(ValueError, match="x: expected shape"):
        layer(torch.randn(7, 9, 5))


def test_linear_preserves_variance():
    layer = create("equivariant_linear", lmax=2, in_channels=64, out_channels=64, bias=False)
    y = layer(torch.randn(4000, 9, 64))
    assert 0.8 < y.var().item() < 1.2


def test_rms_norm_unit_scale():
    layer = create("equivariant_rms_norm", lmax=2, in_channels=16, center=False)
    y = layer(10 * torch.randn(100, 9, 16))
    balance = layer.balance.float()
    ms = (y.pow(2).mean(-1) * balance).sum(-1)
    torch.testing.assert_close(ms, torch.ones_like(ms), rtol=1e-4, atol=1e-4)


def test_unknown_config_key_names_it():
    with pytest.raises(TypeError, match="chanels"):
        create("gate", chanels=3)
