"""SO2Convolution, SeparableS2Activation and EquiformerAttention layers."""

import pytest
import torch

from symformer.groups import O3
from symformer.layers.equiformer_attention import EquiformerAttention
from symformer.layers.s2_activation import SeparableS2Activation, s2_grid
from symformer.layers.so2_conv import SO2Convolution
from symformer.models import registry
from symformer.primitives import cg_tensor_product, sh_path_list, spherical_harmonics
from symformer.testing import check_registered, equivariance_error


@pytest.mark.parametrize("name", ["so2_convolution", "equiformer_attention"])
def test_registered_layers_pass_their_check(name):
    rows = check_registered(name, n_samples=2)
    assert {r.kind for r in rows} >= {"rotation", "reflection", "permutation"}
    assert all(r.passed for r in rows), rows


def test_so2_convolution_is_a_cg_product_with_edge_harmonics():
    # One channel, no radial network: the layer's weights define a CG product (rank argument
    # in tests/primitives/test_primitives_so2.py); here check the m = 0 part by hand: l = 0
    # input to every output degree is x_0 * w * Y(edge).
    conv = SO2Convolution(lmax_in=0, lmax_out=2, in_channels=1, out_channels=1,
                          edge_channels=0).double()
    e = torch.randn(5, 3, dtype=torch.float64)
    x = torch.randn(5, 1, 1, dtype=torch.float64)
    y = conv(x, e)
    w = conv.w0.view(3)
    expected = cg_tensor_product(x, spherical_harmonics(2, e)[..., None], 2,
                                 sh_path_list(0, 2, 2),
                                 (w / torch.tensor([1.0, 3.0, 5.0], dtype=torch.float64).sqrt()
                                  )[:, None])
    torch.testing.assert_close(y, expected)


def test_so2_convolution_options_and_errors():
    odd = SO2Convolution(parity=False).double()
    gen = torch.Generator().manual_seed(0)
    inputs = {"x": torch.randn(6, 9, 8, generator=gen, dtype=torch.float64),
              "edge_vec": torch.randn(6, 3, generator=gen, dtype=torch.float64),
              "edge_scalars": torch.randn(6, 4, generator=gen, dtype=torch.float64)}
    errs = equivariance_error(odd, O3(), inputs, {"x": "uniform:2", "edge_vec": "vector",
                                                  "edge_scalars": "scalar"}, "uniform:2",
                              generator=gen)
    assert errs["rotation"] < 1e-12 and errs["reflection"] > 1e-3  # SE(3) only
    conv = SO2Convolution(mmax=1, extra_m0_channels=3)
    with torch.no_grad():
        y, extra = conv.edge_frame(torch.randn(6, 7, 8), torch.randn(6, 4))  # m-major rows
        full = conv(torch.randn(6, 9, 8), torch.randn(6, 3), torch.randn(6, 4))
    assert y.shape == (6, 7, 8) and extra.shape == (6, 3) and full.shape == (6, 9, 8)
    with pytest.raises(ValueError, match="mmax"):
        SO2Convolution(lmax_in=1, lmax_out=2, mmax=2)
    with pytest.raises(ValueError, match="edge_scalars"):
        conv.edge_frame(torch.randn(6, 7, 8), None)
    with pytest.raises(ValueError, match="x"):
        conv(torch.randn(6, 4, 8), torch.randn(6, 3), torch.randn(6, 4))


def test_s2_grid_round_trip_is_exact():
    to_grid, from_grid = s2_grid(3, 4, 7)
    torch.testing.assert_close(from_grid @ to_grid, torch.eye(16, dtype=torch.float64))


def test_s2_activation_is_approximately_equivariant_and_converges():
    # A pointwise nonlinearity on a finite grid aliases: the error is not round-off, but it
    # falls quickly with the grid (measured: 4e-2, 3e-3, 3e-5, 2e-8 at k = 2, 4, 8, 16).
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(10, 9, 8, generator=gen, dtype=torch.float64)
    errs = []
    for k in (2, 8, 16):
        act = SeparableS2Activation(lmax=2, in_channels=8, resolution=(3 * k, 5 * k))
        e = equivariance_error(act, O3(), x, "uniform:2", "uniform:2", generator=gen,
                               n_samples=4)
        errs.append(max(e.values()))
    assert errs[0] > 1e-3 and errs[0] > errs[1] > errs[2] and errs[2] < 1e-6
    act = SeparableS2Activation(lmax=2, in_channels=8)
    y = act(x)
    torch.testing.assert_close(y[:, 0], torch.nn.functional.silu(x[:, 0]))
    assert y.dtype == torch.float64 and act(x.float()).dtype == torch.float32
    with pytest.raises(ValueError, match="resolution"):
        SeparableS2Activation(lmax=2, resolution=(2, 9))


def test_attention_weights_sum_to_one_and_isolated_nodes(dtype):
    layer = EquiformerAttention(channels=8, edge_channels=4).to(dtype)
    x = torch.randn(5, 9, 8, dtype=dtype)
    pos = torch.randn(5, 3, dtype=dtype)
    edge_index = torch.tensor([[1, 2, 3, 0], [0, 0, 0, 1]])  # nodes 2..4 receive nothing
    out = layer(x, pos, edge_index, torch.randn(4, 4, dtype=dtype))
    assert out.shape == (5, 9, 8) and torch.isfinite(out).all()
    # Isolated targets get only the bias of the output projection.
    assert float(out[2:, 1:].abs().max()) == 0


def test_attention_s2_activation_runs_and_gradients_flow():
    layer = EquiformerAttention(activation="s2", channels=4, heads=2, head_channels=2)
    x = torch.randn(4, 9, 4, requires_grad=True)
    edge_index = torch.tensor([[0, 1, 2, 3], [1, 2, 3, 0]])
    out = layer(x, torch.randn(4, 3), edge_index, torch.randn(4, 4))
    out.square().sum().backward()
    assert torch.isfinite(x.grad).all() and float(x.grad.abs().max()) > 0
    with pytest.raises(ValueError, match="activation"):
        EquiformerAttention(activation="relu")
    with pytest.raises(ValueError, match="edge_index"):
        layer(x, torch.randn(4, 3), edge_index[0], torch.randn(4, 4))


def test_registry_entries():
    assert {"so2_convolution", "equiformer_attention"} <= set(registry.available("layer"))
