"""Scale-equivariant Fourier layers commute with ideal (Fourier) downscaling."""

import pytest
import torch
from torch.nn import functional as F

from symformer.layers.image.scale_fourier import (ScaleFourierNet, ScaleGELU, SpectralConv2d,
                                                  band_limit, fourier_downscale)


def _tol(dtype):
    return 1e-12 if dtype == torch.float64 else 2e-5


def test_downscale_composes_keeps_mean_and_band(dtype):
    x = torch.rand(2, 3, 28, 28, dtype=dtype)
    t = _tol(dtype)
    torch.testing.assert_close(fourier_downscale(fourier_downscale(x, 14), 7),
                               fourier_downscale(x, 7), atol=t, rtol=t)
    torch.testing.assert_close(fourier_downscale(x, 14).mean((-2, -1)), x.mean((-2, -1)),
                               atol=t, rtol=t)
    # a band-limited image is kept exactly by its own size
    y = fourier_downscale(x, 28)
    torch.testing.assert_close(fourier_downscale(y, 28), y, atol=t, rtol=t)
    assert band_limit(28) == 13 and band_limit(7) == 3


def test_spectral_conv_and_scale_gelu_commute_with_downscaling(dtype):
    x = torch.randn(2, 3, 28, 28, dtype=dtype)
    conv, act = SpectralConv2d(3, 4, 13).to(dtype), ScaleGELU((7, 14, 28))
    t = _tol(dtype) * 10
    for M in (7, 14):
        torch.testing.assert_close(fourier_downscale(conv(x), M), conv(fourier_downscale(x, M)),
                                   atol=t, rtol=t)
        torch.testing.assert_close(fourier_downscale(act(x), M), act(fourier_downscale(x, M)),
                                   atol=t, rtol=t)


def test_plain_gelu_is_not_scale_equivariant():
    # the property above can fail: a pointwise GELU aliases
    x = torch.randn(2, 3, 28, 28, dtype=torch.float64)
    err = (fourier_downscale(F.gelu(x), 14) - F.gelu(fourier_downscale(x, 14))).abs().max()
    assert err > 1e-2


def test_net_is_invariant_to_downscaling(dtype):
    net = ScaleFourierNet(channels=4, depth=2).to(dtype)
    x = torch.rand(2, 1, 28, 28, dtype=dtype)
    out = net(x)
    assert out.shape == (2, 10)
    for M in (14, 7):
        err = (net(fourier_downscale(x, M)) - out).abs().max() / out.abs().max()
        assert err < _tol(dtype) * 10
    out.sum().backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in net.parameters())


def test_errors():
    with pytest.raises(ValueError, match="size"):
        fourier_downscale(torch.rand(1, 8, 8), 9)
    with pytest.raises(ValueError, match="levels"):
        ScaleGELU((7, 14))(torch.rand(1, 1, 28, 28))
    with pytest.raises(ValueError, match="modes"):
        SpectralConv2d(1, 1, 0)
