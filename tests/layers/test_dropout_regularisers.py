"""Equivariance-safe regularisers: stochastic depth per system and dropout on attention weights
(EquiformerAttention, EquiformerBlock, symformer3d)."""

import pytest
import torch

from symformer.groups import E3
from symformer.layers._dropout import drop_path
from symformer.layers.equiformer_attention import EquiformerAttention
from symformer.models._nbody_io import NBODY_IN_TYPES, example_inputs
from symformer.models.symformer3d import Symformer3D
from symformer.testing import assert_equivariant


def test_drop_path_is_identity_in_eval_and_at_zero():
    x = torch.randn(6, 4, 3)
    assert drop_path(x, 0.5, training=False) is x
    assert drop_path(x, 0.0, training=True) is x


def test_drop_path_draws_once_per_system():
    torch.manual_seed(0)
    x = torch.ones(300, 4, 2, dtype=torch.float64)
    batch = torch.arange(100).repeat_interleave(3)
    y = drop_path(x, 0.25, training=True, batch=batch)
    per_node = y[:, 0, 0].view(100, 3)
    assert torch.equal(per_node, per_node[:, :1].expand(100, 3))  # a system is kept or dropped
    assert set(per_node[:, 0].tolist()) == {0.0, 1 / 0.75}
    assert torch.equal(y, y[:, :1, :1].expand_as(y))  # one scalar per row: every type is kept
    dropped = (per_node[:, 0] == 0).float().mean().item()
    assert 0.1 < dropped < 0.4


def test_drop_path_keeps_the_mean():
    torch.manual_seed(1)
    x = torch.randn(20000, 3, dtype=torch.float64)
    y = drop_path(x, 0.3, training=True)  # one draw per node
    assert abs((y / x).mean().item() - 1.0) < 0.03
    assert 0.25 < (y == 0).all(-1).double().mean().item() < 0.35


@pytest.mark.parametrize("bad", [-0.1, 1.0, True, "0.1"])
def test_probabilities_are_checked(bad):
    with pytest.raises(ValueError, match="alpha_drop"):
        EquiformerAttention(lmax=1, channels=4, alpha_drop=bad)
    with pytest.raises(ValueError, match="drop_path"):
        Symformer3D(channels=4, n_layers=1, heads=2, drop_path=bad)


def test_regularised_model_has_the_same_parameters_and_eval_output():
    torch.manual_seed(0)
    plain = Symformer3D(channels=8, n_layers=2, heads=2).double()
    reg = Symformer3D(channels=8, n_layers=2, heads=2, alpha_drop=0.2, drop_path=0.1).double()
    reg.load_state_dict(plain.state_dict())  # strict: no new parameters or buffers
    inputs = example_inputs(plain, torch.Generator().manual_seed(0), torch.float64)
    plain.eval(), reg.eval()
    torch.testing.assert_close(reg(**inputs), plain(**inputs), rtol=0, atol=0)
    reg.train()
    assert not torch.allclose(reg(**inputs), plain(**inputs))


class _Reseeded(torch.nn.Module):
    """The same dropout masks at every call (a fixed draw of the random regulariser)."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, **inputs):
        torch.manual_seed(123)
        return self.model(**inputs)


def test_a_fixed_draw_is_e3_equivariant(dtype):
    model = Symformer3D(channels=8, n_layers=2, heads=2, alpha_drop=0.3, drop_path=0.3)
    model = model.to(dtype).train()
    gen = torch.Generator().manual_seed(0)
    inputs = example_inputs(model, gen, dtype)
    assert_equivariant(_Reseeded(model), E3(), inputs, NBODY_IN_TYPES, "node:point",
                       generator=gen)
