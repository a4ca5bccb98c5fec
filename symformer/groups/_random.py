"""Random draws shared by the group families.

Draws happen on the generator's device in float64 (so that float32 elements are as orthogonal
as float32 allows) and are then moved to the requested device and dtype.
"""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["randn", "rand", "randint", "rotation_2d", "check_n"]


def _src(generator: torch.Generator | None, device) -> torch.device:
    if generator is not None:
        return generator.device
    return torch.device(device) if device is not None else torch.device("cpu")


def check_n(n: int) -> int:
    """Validate a batch size ``n`` of group elements."""
    if isinstance(n, bool) or not isinstance(n, int) or n < 0:
        raise ValueError(f"n must be a non-negative int, got {n!r}")
    return n


def randn(shape, generator, dtype, device) -> Tensor:
    """Standard normal draws of ``shape`` in ``dtype`` on ``device``."""
    x = torch.randn(shape, generator=generator, dtype=torch.float64, device=_src(generator, device))
    return x.to(device=device, dtype=dtype)


def rand(shape, generator, dtype, device) -> Tensor:
    """Uniform draws in [0, 1) of ``shape``."""
    x = torch.rand(shape, generator=generator, dtype=torch.float64, device=_src(generator, device))
    return x.to(device=device, dtype=dtype)


def randint(low: int, high: int, shape, generator, device) -> Tensor:
    """Uniform integers in [low, high) of ``shape`` (dtype long)."""
    x = torch.randint(low, high, shape, generator=generator, device=_src(generator, device))
    return x.to(device=device)


def rotation_2d(theta: Tensor) -> Tensor:
    """Counter-clockwise rotation matrices for angles ``theta`` of shape (n,): (n, 2, 2)."""
    c, s = torch.cos(theta), torch.sin(theta)
    return torch.stack([c, -s, s, c], dim=-1).reshape(*theta.shape, 2, 2)

