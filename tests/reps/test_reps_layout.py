import pytest
import torch
from hypothesis import given, settings, strategies as st

from symformer.primitives import random_rotation
from symformer.reps import Irreps, from_uniform, to_uniform, uniform_irreps, uniform_shape


def test_uniform_irreps():
    assert uniform_irreps(3, 4) == Irreps("4x0e+4x1o+4x2e+4x3o")
    assert uniform_shape("4x0e+4x1o+4x2e") == (2, 4)
    with pytest.raises(ValueError):
        uniform_irreps(-1, 2)


def test_layout_matches_definition(dtype):
    irreps = uniform_irreps(2, 3)
    x = irreps.randn(7, dtype=dtype)
    u = to_uniform(x, irreps)
    assert u.shape == (7, 9, 3)
    # mul_ir: the l=1 block is [u, m] (channel-major); uniform row 1 + m, column u.
    l1 = x[:, 3:12].reshape(7, 3, 3)
    torch.testing.assert_close(u[:, 1:4, :], l1.transpose(1, 2))
    torch.testing.assert_close(u[:, 0, :], x[:, :3])


@pytest.mark.parametrize("s", ["2x0e+2x1o+2x2e", "1x0e+2x1o+1x0e+1x2e+1x2e", "3x1o+3x0e"])
def test_round_trips(s, dtype):
    irreps = Irreps(s)
    L, C = uniform_shape(irreps)
    x = irreps.randn(4, 2, dtype=dtype)
    assert torch.equal(from_uniform(to_uniform(x, irreps), irreps), x)
    u = torch.randn(4, (L + 1) ** 2, C, dtype=dtype)
    assert torch.equal(to_uniform(from_uniform(u, irreps), irreps), u)


@pytest.mark.parametrize("bad", ["2x0e+1x1o", "1x0e+1x1e", "1x0e+1x2e", "1x0o"])
def test_rejects_non_uniform(bad):
    with pytest.raises(ValueError):
        to_uniform(torch.zeros(Irreps(bad).dim), bad)


def test_shape_errors():
    with pytest.raises(ValueError):
        to_uniform(torch.zeros(5), "1x0e+1x1o")
    with pytest.raises(ValueError):
        from_uniform(torch.zeros(3, 2), "1x0e+1x1o")


@settings(max_examples=8, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), improper=st.booleans())
def test_converters_commute_with_rotations(seed, improper):
    irreps = Irreps("2x0e+1x1o+1x2e+1x1o+2x3o+1x2e")
    R = random_rotation(1, torch.Generator().manual_seed(seed), dtype=torch.float64)[0]
    R = -R if improper else R
    x = irreps.randn(5, dtype=torch.float64, generator=torch.Generator().manual_seed(seed))
    D_mulir = irreps.D_from_matrix(R)
    D_uniform = uniform_irreps(3, 1).D_from_matrix(R)
    lhs = to_uniform(x @ D_mulir.T, irreps)
    rhs = D_uniform @ to_uniform(x, irreps)
    torch.testing.assert_close(lhs, rhs, atol=1e-10, rtol=0)
