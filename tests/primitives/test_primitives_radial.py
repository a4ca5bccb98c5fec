import math

import pytest
import torch

from symformer.primitives import bessel_basis, cosine_cutoff, gaussian_basis, polynomial_cutoff

BASES = [lambda r: gaussian_basis(r, 8, 5.0), lambda r: bessel_basis(r, 8, 5.0),
         lambda r: polynomial_cutoff(r, 5.0), lambda r: cosine_cutoff(r, 5.0)]


@pytest.mark.parametrize("f", BASES)
def test_finite_gradients_including_zero(f, dtype):
    r = torch.tensor([0.0, 1e-8, 0.5, 4.999, 5.0, 7.0], dtype=dtype, requires_grad=True)
    out = f(r)
    assert out.dtype == dtype and torch.isfinite(out).all()
    (g,) = torch.autograd.grad(out.sum(), r)
    assert torch.isfinite(g).all()


def test_bessel_values(dtype):
    r = torch.tensor([0.0, 1.3], dtype=dtype)
    out = bessel_basis(r, 3, 4.0)
    n = torch.arange(1, 4, dtype=dtype)
    c = math.sqrt(2 / 4.0)
    torch.testing.assert_close(out[0], c * n * math.pi / 4.0)
    torch.testing.assert_close(out[1], c * torch.sin(n * math.pi * 1.3 / 4.0) / 1.3)


def test_polynomial_cutoff_smooth_at_cutoff():
    c = 3.0
    r = torch.tensor([0.0, c - 1e-4, c, c + 1.0], dtype=torch.float64, requires_grad=True)
    env = polynomial_cutoff(r, c, p=6)
    assert env[0] == 1 and env[2] == 0 and env[3] == 0 and abs(env[1]) < 1e-11
    (d1,) = torch.autograd.grad(env.sum(), r, create_graph=True)
    (d2,) = torch.autograd.grad(d1.sum(), r)
    assert abs(d1[1]) < 1e-6 and abs(d1[2]) < 1e-12 and abs(d2[2]) < 1e-12
    assert d1[0] == 0


def test_cosine_and_gaussian_values(dtype):
    r = torch.tensor([0.0, 2.5, 5.0, 6.0], dtype=dtype)
    torch.testing.assert_close(cosine_cutoff(r, 5.0), torch.tensor([1.0, 0.5, 0.0, 0.0],
                                                                     dtype=dtype))
    g = gaussian_basis(r, 6, 5.0)
    assert g.shape == (4, 6) and g[0, 0] == 1 and g[2, -1] == 1


def test_errors():
    with pytest.raises(ValueError):
        gaussian_basis(torch.ones(2), 0, 5.0)
    with pytest.raises(ValueError):
        bessel_basis(torch.ones(2), 4, -1.0)
    with pytest.raises(TypeError):
        cosine_cutoff(torch.ones(2, dtype=torch.long), 1.0)


def test_exp_without_subnormals(dtype):
    from symformer.primitives import exp_without_subnormals
    x = torch.tensor([0.0, -1.0, -79.0, -80.5, -120.0, -1e4], dtype=dtype, requires_grad=True)
    y = exp_without_subnormals(x)
    torch.testing.assert_close(y[:3], torch.exp(x[:3]))
    assert torch.equal(y[3:], torch.zeros(3, dtype=dtype))  # no subnormal float32 results
    y.sum().backward()
    torch.testing.assert_close(x.grad[:3], torch.exp(x[:3]).detach())
    assert torch.equal(x.grad[3:], torch.zeros(3, dtype=dtype))
    # a Gaussian basis far from its centres: below the smallest normal float32 only zeros
    g = gaussian_basis(torch.tensor([0.0, 9.5], dtype=torch.float32), 64, 10.0)
    tiny = g[(g > 0) & (g < torch.finfo(torch.float32).tiny)]
    assert tiny.numel() == 0 and g.max() == 1.0
