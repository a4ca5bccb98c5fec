"""Helpers for the uniform spherical layout ``[..., (L+1)^2, C]``."""

from __future__ import annotations

import math

import torch
from torch import Tensor

from symformer._cache import tensor_cache

__all__ = ["degree_index", "lmax_of", "check_uniform", "uniform_example"]


@tensor_cache
def _degree_index(lmax: int) -> tuple[int, ...]:
    return tuple(l for l in range(lmax + 1) for _ in range(2 * l + 1))


def degree_index(lmax: int, device: torch.device | str | None = None) -> Tensor:
    """Degree l of each row of the layout: shape ((L+1)^2,), long."""
    return torch.tensor(_degree_index(lmax), dtype=torch.long, device=device)


def lmax_of(rows: int) -> int:
    """L such that (L+1)^2 == rows; ValueError otherwise."""
    lmax = math.isqrt(rows) - 1
    if (lmax + 1) ** 2 != rows:
        raise ValueError(f"expected (L+1)^2 spherical rows, got {rows}")
    return lmax


def check_uniform(name: str, x: Tensor, lmax: int, channels: int) -> None:
    """Raise ValueError naming ``name`` unless ``x`` has shape [..., (lmax+1)^2, channels]."""
    if not torch.is_tensor(x):
        raise TypeError(f"{name}: expected a tensor, got {type(x).__name__}")
    if x.dim() < 2 or x.shape[-2] != (lmax + 1) ** 2 or x.shape[-1] != channels:
        raise ValueError(f"{name}: expected shape [..., {(lmax + 1) ** 2}, {channels}] "
                         f"(lmax={lmax}, channels={channels}), got {tuple(x.shape)}")


def uniform_example(module, generator: torch.Generator, dtype: torch.dtype, n: int = 6) -> dict:
    """Example inputs ``{"x": [n, (L+1)^2, C]}`` for layers with ``lmax``/``in_channels``."""
    rows = (module.lmax + 1) ** 2
    return {"x": torch.randn(n, rows, module.in_channels, generator=generator, dtype=dtype)}
