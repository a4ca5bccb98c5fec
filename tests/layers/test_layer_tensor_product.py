"""EquivariantTensorProduct: owns internal weights, takes external ones, checks its backend,
is equivariant for each connection, and rebuilds from its registry config."""

import pytest
import torch

from symformer.groups import O3
from symformer.layers.tensor_product import EquivariantTensorProduct
from symformer.models import create
from symformer.primitives import spherical_harmonics
from symformer.primitives.tp import TensorProductSpec, tensor_product
from symformer.testing import assert_equivariant


def test_internal_weights_are_parameters_and_match_the_function(generator):
    layer = EquivariantTensorProduct().double()
    assert layer.weight.shape == (layer.spec.weight_numel,)
    x = torch.randn(4, layer.irreps_in1.dim, generator=generator, dtype=torch.float64)
    y = torch.randn(4, layer.irreps_in2.dim, generator=generator, dtype=torch.float64)
    torch.testing.assert_close(layer(x, y), tensor_product(x, y, layer.spec, layer.weight, "cg"))
    with pytest.raises(ValueError, match="owns its weights"):
        layer(x, y, layer.weight)
    (layer(x, y) ** 2).sum().backward()
    assert layer.weight.grad is not None and layer.weight.grad.abs().sum() > 0


def test_external_weights_so2_backend_equivariant(dtype, generator):
    u = "2x0e+2x1o+2x2e"
    layer = EquivariantTensorProduct(irreps_in1=u, irreps_in2="1x0e+1x1o+1x2e", irreps_out=u,
                                     connection="channelwise", weight_mode="external",
                                     backend="so2").to(dtype)
    assert layer.weight is None
    w = torch.randn(5, layer.spec.weight_numel, generator=generator, dtype=dtype)

    def fn(x, vec):
        return layer(x, spherical_harmonics(2, vec), w, edge_vec=vec)
    inputs = (torch.randn(5, layer.irreps_in1.dim, generator=generator, dtype=dtype),
              torch.randn(5, 3, generator=generator, dtype=dtype))
    assert_equivariant(fn, O3(), inputs, (u, "vector"), u, n_samples=2, generator=generator)


@pytest.mark.parametrize("backend", ["grid", "gaunt", "cg"])
def test_gaunt_connection(backend, generator):
    u = "2x0e+2x1o+2x2e"
    layer = EquivariantTensorProduct(irreps_in1=u, irreps_in2=u, irreps_out=u,
                                     connection="gaunt", backend=backend).double()
    assert layer.weight is None and layer.spec.normalization == "none"
    x = torch.randn(3, layer.irreps_in1.dim, generator=generator, dtype=torch.float64)
    assert_equivariant(lambda a: layer(a, a), O3(), (x,), (u,), u, n_samples=2,
                       generator=generator)


def test_construction_errors():
    with pytest.raises(ValueError, match="does not apply"):
        EquivariantTensorProduct(backend="so2")
    with pytest.raises(ValueError, match="connection"):
        EquivariantTensorProduct(connection="dense")
    with pytest.raises(TypeError, match="spec"):
        EquivariantTensorProduct("1x0e")


def test_registry_config_round_trip(generator):
    layer = create("equivariant_tensor_product", connection="channelwise",
                   irreps_in1="2x0e+2x1o", irreps_in2="1x0e+1x1o", irreps_out="2x0e+2x1o",
                   weight_mode="internal")
    again = create("equivariant_tensor_product", connection="channelwise",
                   irreps_in1="2x0e+2x1o", irreps_in2="1x0e+1x1o", irreps_out="2x0e+2x1o",
                   weight_mode="internal")
    again.load_state_dict(layer.state_dict())
    x = torch.randn(3, 8, generator=generator)
    y = torch.randn(3, 4, generator=generator)
    torch.testing.assert_close(layer(x, y), again(x, y))
    spec = TensorProductSpec.channelwise("2x0e+2x1o", "1x0e+1x1o", "2x0e+2x1o",
                                         weight_mode="internal")
    assert layer.spec == spec


def test_registered_entry_passes_the_shared_check():
    from symformer.testing import check_registered
    rows = check_registered("equivariant_tensor_product", n_samples=2,
                            generator=torch.Generator().manual_seed(7))
    assert rows and all(r.passed for r in rows)
