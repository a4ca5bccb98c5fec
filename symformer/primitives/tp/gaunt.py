"""Gaunt tensor product through 2D Fourier series (Luo et al., 2024).

What it computes: the same Gaunt product as :mod:`.grid` (``out_k = (1/4 pi) integral f g Y_k``,
i.e. the CG product on the symmetric paths with :func:`~.grid.gaunt_path_weight`), by another
route. With polar angle ``theta`` from +y and azimuth ``phi`` (``z + i x = sin(theta)
e^{i phi}``), every harmonic of degree ``l`` is a trigonometric polynomial
``sum_{|u|, |v| <= l} F[u, v] e^{i (u theta + v phi)}``. So

1. coefficients -> Fourier coefficients (a fixed matrix per degree, ``F_x``, ``F_y``);
2. product of the functions = 2D convolution of the coefficient grids, done by FFT on an
   ``M x M`` torus, ``M = 2 (L1 + L2) + 1`` (no aliasing);
3. back to harmonics: ``out_k = sum_{u,v} F_h[u, v] B_k[u, v]`` with
   ``B_k[u, v] = (1/4 pi) integral_{S^2} e^{i (u theta + v phi)} Y_k``.

The conversion matrices are stored dense (``[(L+1)^2, M^2]``), so steps 1 and 3 cost
O(L^4) per channel like the grid product; step 2 is O(L^2 log L).
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import Tensor

from symformer._cache import tensor_cache

from ._eager import run_eagerly
from ..spherical_harmonics import spherical_harmonics
from ._uniform import from_u, to_u, uniform_shape_of
from .grid import grid_available
from .spec import TensorProductSpec

__all__ = ["gaunt_available", "gaunt_product", "gaunt_tensor_product"]

gaunt_available = grid_available


def _torus_points(theta: np.ndarray, phi: np.ndarray) -> Tensor:
    t, p = np.meshgrid(theta, phi, indexing="ij")
    pts = np.stack([np.sin(t) * np.sin(p), np.cos(t), np.sin(t) * np.cos(p)], -1)
    return torch.from_numpy(pts.reshape(-1, 3))


@tensor_cache
def _to_fourier64(L: int, M: int) -> np.ndarray:
    """``A [(L+1)^2, M, M]`` complex: Fourier coefficients of each harmonic, at ``(u mod M,
    v mod M)``."""
    m0 = 2 * L + 1
    ang = 2 * np.pi * np.arange(m0) / m0
    y = spherical_harmonics(L, _torus_points(ang, ang)).numpy().reshape(m0, m0, -1)
    f = np.fft.fft2(y, axes=(0, 1)) / m0 ** 2                            # [m0, m0, K]
    out = np.zeros(((L + 1) ** 2, M, M), dtype=np.complex128)
    for u in range(-L, L + 1):
        for v in range(-L, L + 1):
            out[:, u % M, v % M] = f[u % m0, v % m0]
    return out


@tensor_cache
def _from_fourier64(Lout: int, D: int, M: int) -> np.ndarray:
    """``B [(Lout+1)^2, M, M]``: ``(1/4 pi) integral e^{i (u theta + v phi)} Y_k`` for
    ``|u|, |v| <= D``, at ``(u mod M, v mod M)``."""
    n_t = 2 * (D + Lout) + 40        # Gauss-Legendre on [0, pi]: converged to round-off
    t, wt = np.polynomial.legendre.leggauss(n_t)
    theta, wt = (t + 1) * np.pi / 2, wt * np.pi / 2
    n_p = 2 * (D + Lout) + 2
    phi = 2 * np.pi * np.arange(n_p) / n_p
    y = spherical_harmonics(Lout, _torus_points(theta, phi)).numpy().reshape(n_t, n_p, -1)
    w = (wt * np.sin(theta))[:, None] * (2 * np.pi / n_p) / (4 * np.pi)
    out = np.zeros(((Lout + 1) ** 2, M, M), dtype=np.complex128)
    for u in range(-D, D + 1):
        eu = np.exp(1j * u * theta)[:, None]
        for v in range(-min(D, Lout), min(D, Lout) + 1):   # integral over phi kills |v| > Lout
            ker = w * eu * np.exp(1j * v * phi)[None, :]
            out[:, u % M, v % M] = np.einsum("tp,tpk->k", ker, y)
    return out


@run_eagerly  # constant tables: built once, opaque to the compiler
@tensor_cache
def _tables(L1: int, L2: int, Lout: int, dtype: torch.dtype, device: torch.device):
    M = 2 * (L1 + L2) + 1
    cdtype = torch.complex128 if dtype == torch.float64 else torch.complex64

    def conv(a: np.ndarray) -> Tensor:
        return torch.from_numpy(a.reshape(a.shape[0], -1)).to(dtype=cdtype, device=device)

    b = conv(_from_fourier64(Lout, L1 + L2, M))
    return M, conv(_to_fourier64(L1, M)), conv(_to_fourier64(L2, M)), b.real.T.contiguous().to(
        dtype), b.imag.T.contiguous().to(dtype)


def gaunt_product(x: Tensor, y: Tensor, lmax_out: int) -> Tensor:
    """Gaunt product of uniform features by FFT.

    x : (..., (L1+1)^2, C); y : (..., (L2+1)^2, C or 1). Returns (..., (lmax_out+1)^2, C).
    """
    L1, L2 = math.isqrt(x.shape[-2]) - 1, math.isqrt(y.shape[-2]) - 1
    M, a1, a2, br, bi = _tables(L1, L2, lmax_out, x.dtype, x.device)
    fx = torch.matmul(x.transpose(-1, -2).to(a1.dtype), a1).unflatten(-1, (M, M))  # [..., C, M, M]
    fy = torch.matmul(y.transpose(-1, -2).to(a2.dtype), a2).unflatten(-1, (M, M))
    # Function values on the M x M torus grid; their product; its Fourier coefficients.
    h = torch.fft.ifft2(fx) * torch.fft.ifft2(fy) * (M * M)
    fh = torch.fft.fft2(h).flatten(-2)                                   # [..., C, M^2]
    out = torch.matmul(fh.real, br) - torch.matmul(fh.imag, bi)          # [..., C, K_out]
    return out.transpose(-1, -2)


def gaunt_tensor_product(x: Tensor, y: Tensor, spec: TensorProductSpec,
                         weights: Tensor | None = None) -> Tensor:
    """The Gaunt spec's product on ``mul_ir`` features: (N, dim1), (N, dim2) -> (N, dim_out)."""
    u = uniform_shape_of(spec)
    return from_u(gaunt_product(to_u(x, u.L1, u.C), to_u(y, u.L2, u.C2), u.Lout), u.Lout)
