"""Module forms of the spherical primitives: equivariance and agreement with the primitives."""

import pytest
import torch

from symformer.models import create, spec
from symformer.primitives import cg_tensor_product, spherical_harmonics
from symformer.testing import assert_equivariant


@pytest.mark.parametrize("name", ["spherical_harmonics", "tensor_product"])
def test_equivariant(name, dtype, generator):
    s = spec(name)
    layer = create(name).to(dtype)
    inputs = s.example_inputs(layer, generator, dtype)
    assert_equivariant(layer, s.make_group(layer), inputs, s.in_types, s.out_types,
                       generator=generator)


def test_modules_match_primitives(dtype):
    v = torch.randn(5, 3, dtype=dtype)
    sh = create("spherical_harmonics", lmax=4)
    torch.testing.assert_close(sh(v)[..., 0], spherical_harmonics(4, v))
    tp = create("tensor_product", lmax=1, channels=3).to(dtype)
    x, y = torch.randn(2, 4, 3, dtype=dtype), torch.randn(2, 4, 3, dtype=dtype)
    torch.testing.assert_close(tp(x, y), cg_tensor_product(x, y, 1, tp.paths, tp.weight))


def test_bad_shapes_name_the_argument():
    with pytest.raises(ValueError, match="vectors"):
        create("spherical_harmonics")(torch.randn(4, 2))
    tp = create("tensor_product", lmax=1, channels=2)
    with pytest.raises(ValueError, match="y: expected shape"):
        tp(torch.randn(3, 4, 2), torch.randn(3, 9, 2))
