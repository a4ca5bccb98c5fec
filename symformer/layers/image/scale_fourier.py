"""Scale-equivariant Fourier layers, after "Truly Scale-Equivariant Deep Nets with Fourier
Layers" (Rahman & Yeh, 2023).

Scaling is ideal anti-aliased resampling: :func:`fourier_downscale` keeps the frequencies
``|k_x|, |k_y| <= K(M) = (M - 1) // 2`` of an ``N x N`` image and returns an ``M x M`` image (the
mean is kept). It composes exactly (``D_{M->L} D_{N->M} = D_{N->L}``), and the layers here commute
with it exactly (up to round-off) for every size in the network's ``levels``:

* :class:`SpectralConv2d`: ``y_hat[k] = W[k] x_hat[k]`` with one complex channel-mixing matrix per
  absolute frequency ``k``, so an image and its downscaled copy meet the same weights;
* 1 x 1 channel mixing (any per-pixel linear map) commutes with ``D``;
* :class:`ScaleGELU`: a pointwise nonlinearity creates new high frequencies, so it is applied
  per frequency band: band ``(K(M_{j-1}), K(M_j)]`` of the output is taken from
  ``GELU(D_{N->M_j} x)``. Downscaling to ``M_i`` keeps exactly the bands ``j <= i``, which depend
  only on ``D_{N->M_j} x = D_{M_i->M_j} D_{N->M_i} x``;
* the spatial mean (the zero frequency) is invariant, so :class:`ScaleFourierNet` maps an image
  and any of its downscaled copies (sizes in ``levels``) to the same logits.

Pixel-exact nearest-neighbour upsampling (:class:`symformer.groups.Scaling` on images) is a
different action; these layers are exact for Fourier resampling only, and their error under
other resamplings is what a user should measure.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn
from torch.nn import functional as F

__all__ = ["fourier_downscale", "band_limit", "SpectralConv2d", "ScaleGELU", "ScaleFourierNet"]


def band_limit(size: int) -> int:
    """Largest kept frequency ``K = (size - 1) // 2`` of a ``size x size`` image (the Nyquist
    frequency of even sizes is dropped so that real images stay real)."""
    return (size - 1) // 2


def _index(n: int, K: int, device) -> Tensor:
    """Positions of the frequencies -K..K in an FFT axis of length n."""
    return torch.arange(-K, K + 1, device=device) % n


def _crop(X: Tensor, K: int) -> Tensor:
    """Spectrum (..., N, N) -> frequencies -K..K on both axes, (..., 2K+1, 2K+1), k-ordered."""
    i = _index(X.shape[-1], K, X.device)
    return X[..., i, :][..., :, i]


def _place(Xk: Tensor, size: int) -> Tensor:
    """k-ordered (..., 2K+1, 2K+1) -> spectrum (..., size, size) with zeros elsewhere."""
    K = (Xk.shape[-1] - 1) // 2
    out = Xk.new_zeros(*Xk.shape[:-2], size, size)
    i = _index(size, K, Xk.device)
    out[..., i[:, None], i[None, :]] = Xk
    return out


def fourier_downscale(x: Tensor, size: int) -> Tensor:
    """Ideal low-pass resampling of square images ``(..., N, N) -> (..., size, size)``
    (``size <= N``), keeping the mean."""
    N = x.shape[-1]
    if x.shape[-2] != N or not 1 <= size <= N:
        raise ValueError(f"expected square images (..., N, N) and 1 <= size <= N, got "
                         f"{tuple(x.shape)} and size={size}")
    Xk = _crop(torch.fft.fft2(x), band_limit(size))
    return torch.fft.ifft2(_place(Xk, size)).real * (size / N) ** 2


class SpectralConv2d(nn.Module):
    """Fourier-domain convolution with one complex ``out x in`` matrix per frequency
    ``|k_x|, |k_y| <= modes``; frequencies above ``min(modes, K(N))`` are set to zero.

    ``x`` : Tensor, shape (B, in_channels, N, N) -> Tensor, shape (B, out_channels, N, N).
    """

    def __init__(self, in_channels: int, out_channels: int, modes: int):
        super().__init__()
        for name, v in (("in_channels", in_channels), ("out_channels", out_channels),
                        ("modes", modes)):
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ValueError(f"{name} must be a positive int, got {v!r}")
        self.modes = modes
        n = 2 * modes + 1
        scale = 1 / math.sqrt(2 * in_channels)
        self.weight = nn.Parameter(torch.randn(2, out_channels, in_channels, n, n) * scale)

    def forward(self, x: Tensor) -> Tensor:
        N = x.shape[-1]
        K = min(self.modes, band_limit(N))
        W = torch.complex(self.weight[0], self.weight[1])
        W = W[..., self.modes - K:self.modes + K + 1, self.modes - K:self.modes + K + 1]
        Xk = _crop(torch.fft.fft2(x), K)                                   # (B, in, n, n)
        Yk = torch.einsum("oixy,bixy->boxy", W.to(Xk.dtype), Xk)
        return torch.fft.ifft2(_place(Yk, N)).real


class ScaleGELU(nn.Module):
    """GELU applied band by band over the resolution ``levels`` (see the module docstring).

    ``x`` : Tensor, shape (B, C, N, N) with N in ``levels`` -> same shape, band-limited.
    """

    def __init__(self, levels: tuple[int, ...]):
        super().__init__()
        self.levels = tuple(sorted(levels))

    def forward(self, x: Tensor) -> Tensor:
        N = x.shape[-1]
        if N not in self.levels:
            raise ValueError(f"image size {N} is not one of the levels {self.levels}")
        out, low = None, -1
        for M in self.levels[:self.levels.index(N) + 1]:
            K = band_limit(M)
            Zk = _crop(torch.fft.fft2(F.gelu(fourier_downscale(x, M))), K) * (N / M) ** 2
            k = torch.arange(-K, K + 1, device=x.device).abs()
            band = (torch.maximum(k[:, None], k[None, :]) > low).to(Zk.real.dtype)
            part = Zk * band                                               # frequencies in band j
            padded = F.pad(part, [band_limit(N) - K] * 4)                   # to -K(N)..K(N)
            out = padded if out is None else out + padded
            low = K
        return torch.fft.ifft2(_place(out, N)).real


class ScaleFourierNet(nn.Module):
    """Classifier ``(B, C, N, N) -> (B, num_classes)`` invariant to Fourier downscaling between
    the sizes in ``levels``: spectral convolutions + 1 x 1 mixing + :class:`ScaleGELU`, then the
    spatial mean and a linear head."""

    def __init__(self, *, levels: tuple[int, ...] = (7, 14, 28), channels: int = 8,
                 depth: int = 2, modes: int | None = None, num_classes: int = 10,
                 in_channels: int = 1):
        super().__init__()
        self.levels = tuple(sorted(levels))
        modes = modes or band_limit(self.levels[-1])
        self.lift = nn.Conv2d(in_channels, channels, 1)
        self.spectral = nn.ModuleList(SpectralConv2d(channels, channels, modes)
                                      for _ in range(depth))
        self.mix = nn.ModuleList(nn.Conv2d(channels, channels, 1) for _ in range(depth))
        self.act = ScaleGELU(self.levels)
        self.head = nn.Linear(channels, num_classes)

    def forward(self, image: Tensor) -> Tensor:
        """``image`` : Tensor, shape (B, C, N, N), N in ``levels`` -> logits (B, num_classes)."""
        x = self.lift(image)
        for spec, mix in zip(self.spectral, self.mix):
            x = self.act(spec(x) + mix(x))
        return self.head(x.mean(dim=(-2, -1)))
