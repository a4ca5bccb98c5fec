"""p4m (D_4 x translations) group convolutions, after "Rotation Equivariant CNNs for Digital
Pathology" (Veeling et al. 2018) and Cohen & Welling's group-equivariant CNNs.

Feature maps on p4m have shape ``(B, C, 8, H, W)``: axis 2 indexes the octic group elements
``e = 2 k + f`` of :mod:`._d4`. Rotating or mirroring the input image by ``h`` maps a feature map
``f`` to ``f'[:, :, g] = A(h) f[:, :, h^{-1} g]`` (spatial action A and a permutation of the group
axis). Filters are shared across the group by transforming one filter bank per output element:

* lifting: ``out[g] = x * A(g) W``;
* group conv: ``out[g] = sum_u f[u] * A(g) W[g^{-1} u]``.

'Same' zero padding with an odd kernel keeps exactness on square maps.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from . import _d4

__all__ = ["P4MLift", "P4MConv", "p4m_act", "p4m_pool"]


def p4m_act(f: Tensor, e: int) -> Tensor:
    """How element ``e`` transforms a p4m feature map ``f`` (B, C, 8, H, W)."""
    inv, table = _d4.inverse_table(), _d4.cayley_table()
    idx = [table[inv[e]][g] for g in range(_d4.ORDER)]
    return _d4.act_image(f[:, :, idx], e)


def p4m_pool(f: Tensor) -> Tensor:
    """Invariant pooling: mean over the group axis and space, ``(B, C, 8, H, W) -> (B, C)``."""
    return f.mean(dim=(2, 3, 4))


def _check_conv_args(in_channels, out_channels, kernel_size):
    for name, v in (("in_channels", in_channels), ("out_channels", out_channels),
                    ("kernel_size", kernel_size)):
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise ValueError(f"{name} must be a positive int, got {v!r}")
    if kernel_size % 2 == 0:
        raise ValueError(f"kernel_size must be odd (centred 'same' padding), got {kernel_size}")


class P4MLift(nn.Module):
    """Lifting convolution ``(B, C_in, H, W) -> (B, C_out, 8, H, W)``."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 3,
                 bias: bool = True):
        super().__init__()
        _check_conv_args(in_channels, out_channels, kernel_size)
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels, kernel_size,
                                               kernel_size)
                                   * math.sqrt(2 / (in_channels * kernel_size ** 2)))
        self.bias = nn.Parameter(torch.zeros(out_channels)) if bias else None

    def forward(self, x: Tensor) -> Tensor:
        """``x`` : Tensor, shape (B, C_in, H, W) -> Tensor, shape (B, C_out, 8, H, W)."""
        C = self.weight.shape[0]
        W = torch.stack([_d4.act_image(self.weight, e) for e in range(_d4.ORDER)], 1)
        b = None if self.bias is None else self.bias.repeat_interleave(_d4.ORDER)
        y = F.conv2d(x, W.flatten(0, 1), b, padding=self.weight.shape[-1] // 2)
        return y.unflatten(1, (C, _d4.ORDER))


class P4MConv(nn.Module):
    """Group convolution ``(B, C_in, 8, H, W) -> (B, C_out, 8, H, W)``."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 3,
                 bias: bool = True):
        super().__init__()
        _check_conv_args(in_channels, out_channels, kernel_size)
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels, _d4.ORDER,
                                               kernel_size, kernel_size)
                                   * math.sqrt(2 / (8 * in_channels * kernel_size ** 2)))
        self.bias = nn.Parameter(torch.zeros(out_channels)) if bias else None
        inv, table = _d4.inverse_table(), _d4.cayley_table()
        self.register_buffer("_index", torch.tensor(
            [[table[inv[g]][u] for u in range(_d4.ORDER)] for g in range(_d4.ORDER)]),
            persistent=False)

    def forward(self, f: Tensor) -> Tensor:
        """``f`` : Tensor, shape (B, C_in, 8, H, W) -> Tensor, shape (B, C_out, 8, H, W)."""
        if f.ndim != 5 or f.shape[1:3] != self.weight.shape[1:3]:
            raise ValueError(f"f must have shape (B, {self.weight.shape[1]}, 8, H, W), got "
                             f"{tuple(f.shape)}")
        Co, Ci, k = self.weight.shape[0], self.weight.shape[1], self.weight.shape[-1]
        W = torch.stack([_d4.act_image(self.weight[:, :, self._index[g]], g)
                         for g in range(_d4.ORDER)], 1)            # (Co, 8, Ci, 8, k, k)
        b = None if self.bias is None else self.bias.repeat_interleave(_d4.ORDER)
        y = F.conv2d(f.flatten(1, 2), W.reshape(Co * 8, Ci * 8, k, k), b, padding=k // 2)
        return y.unflatten(1, (Co, _d4.ORDER))
