import pytest
import torch
from e3nn import o3
from hypothesis import given, settings, strategies as st

from symformer.primitives import random_rotation, spherical_harmonics, wigner_D

TOL = {torch.float32: 1e-5, torch.float64: 1e-11}


@pytest.mark.parametrize("normalization", ["component", "norm", "integral"])
@pytest.mark.parametrize("normalize", [True, False])
def test_matches_e3nn(normalization, normalize, dtype):
    x = torch.randn(200, 3, dtype=dtype, generator=torch.Generator().manual_seed(0))
    ours = spherical_harmonics(8, x, normalize, normalization)
    ref = o3.spherical_harmonics(list(range(9)), x, normalize, normalization=normalization)
    assert ours.shape == (200, 81) and ours.dtype == dtype
    # Unnormalised values grow like |x|^8: compare relative to the largest entry per degree.
    scale = 1.0 if normalize else ref.abs().amax(0).clamp(min=1)
    torch.testing.assert_close(ours / scale, ref / scale, atol=TOL[dtype], rtol=0)


def test_known_values(dtype):
    x = torch.tensor([[0.3, -0.5, 0.7]], dtype=dtype)
    y = spherical_harmonics(1, x, normalize=False)
    torch.testing.assert_close(y[0], torch.tensor([1.0, 0.3, -0.5, 0.7], dtype=dtype)
                               * torch.tensor([1.0, 3 ** 0.5, 3 ** 0.5, 3 ** 0.5], dtype=dtype))


@pytest.mark.parametrize("normalization,expected", [("component", lambda l: 2 * l + 1),
                                                    ("norm", lambda l: 1.0)])
def test_normalization(normalization, expected, dtype):
    y = spherical_harmonics(6, torch.randn(50, 3, dtype=dtype), True, normalization)
    for l in range(7):
        sq = y[:, l * l:(l + 1) ** 2].pow(2).sum(-1)
        torch.testing.assert_close(sq, torch.full_like(sq, expected(l)), atol=TOL[dtype] * 10,
                                   rtol=0)


def test_parity(dtype):
    x = torch.randn(30, 3, dtype=dtype)
    a, b = spherical_harmonics(7, x), spherical_harmonics(7, -x)
    sign = torch.cat([torch.full((2 * l + 1,), (-1.0) ** l, dtype=dtype) for l in range(8)])
    torch.testing.assert_close(b, a * sign, atol=TOL[dtype], rtol=0)


@settings(max_examples=10, deadline=None)
@given(seed=st.integers(0, 2**31 - 1))
def test_equivariance(seed):
    g = torch.Generator().manual_seed(seed)
    R = random_rotation(1, g, dtype=torch.float64)[0]
    x = torch.randn(20, 3, dtype=torch.float64, generator=g)
    y, y_rot = spherical_harmonics(6, x), spherical_harmonics(6, x @ R.T)
    for l in range(7):
        s = slice(l * l, (l + 1) ** 2)
        torch.testing.assert_close(y_rot[:, s], y[:, s] @ wigner_D(l, R).T, atol=1e-11, rtol=0)


def test_zero_vector_is_finite(dtype):
    x = torch.zeros(2, 3, dtype=dtype, requires_grad=True)
    y = spherical_harmonics(4, x)
    assert torch.isfinite(y).all()
    assert y[:, 0].eq(1).all() and y[:, 1:].eq(0).all()
    y.sum().backward()
    assert torch.isfinite(x.grad).all()


def test_gradcheck():
    x = torch.randn(4, 3, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda v: spherical_harmonics(4, v), (x,))
    assert torch.autograd.gradcheck(lambda v: spherical_harmonics(3, v, normalize=False), (x,))


def test_errors():
    with pytest.raises(ValueError):
        spherical_harmonics(-1, torch.zeros(3))
    with pytest.raises(ValueError):
        spherical_harmonics(2, torch.zeros(4))
    with pytest.raises(ValueError):
        spherical_harmonics(2, torch.zeros(3), normalization="unit")
    with pytest.raises(TypeError):
        spherical_harmonics(2, torch.zeros(3, dtype=torch.long))
