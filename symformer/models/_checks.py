"""Input checks shared by the point-cloud models (the n-body models and the potentials).

Errors name the argument: ``TypeError`` for a wrong type or dtype, ``ValueError`` for a wrong
shape or value.
"""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["check_point_cloud", "check_integer_dtype"]


def check_point_cloud(**tensors) -> int:
    """Every keyword argument must be a tensor, and ``pos`` a floating ``(N, 3)`` one.

    Arguments are checked in the order given (the first non-tensor is named). Returns ``N``.
    """
    for name, x in tensors.items():
        if not isinstance(x, Tensor):
            raise TypeError(f"{name}: expected a torch.Tensor, got {type(x).__name__}")
    pos = tensors["pos"]
    if not pos.is_floating_point():
        raise TypeError(f"pos: expected a floating dtype, got {pos.dtype}")
    if pos.ndim != 2 or pos.shape[1] != 3:
        raise ValueError(f"pos: expected shape (N, 3), got {tuple(pos.shape)}")
    return pos.shape[0]


def check_integer_dtype(name: str, x: Tensor) -> None:
    """``TypeError`` naming ``name`` unless ``x`` has an integer dtype (bool excluded)."""
    if x.is_floating_point() or x.is_complex() or x.dtype == torch.bool:
        raise TypeError(f"{name}: expected an integer dtype, got {x.dtype}")
