"""Scatter and segment operations with plain torch (``index_add`` / ``scatter_reduce``).

``index`` is a 1-D long tensor that assigns each entry of ``src`` along ``dim`` to a segment in
``0 .. dim_size - 1``. Empty segments give 0 (sum, mean). Inputs are never modified in place.
"""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["scatter_sum", "scatter_mean", "segment_softmax"]


def _check(src: Tensor, index: Tensor, dim: int, size: int, size_name: str) -> int:
    if not isinstance(index, Tensor) or index.dim() != 1 or index.dtype not in (torch.long,
                                                                                 torch.int):
        raise TypeError(f"index must be a 1-D integer tensor, got "
                        f"{getattr(index, 'dtype', type(index).__name__)} "
                        f"with shape {tuple(getattr(index, 'shape', ()))}")
    dim = dim % src.dim()
    if src.shape[dim] != index.shape[0]:
        raise ValueError(f"index has {index.shape[0]} entries but src has {src.shape[dim]} "
                         f"along dim {dim}")
    if not isinstance(size, int) or size < 0:
        raise ValueError(f"{size_name} must be a non-negative int, got {size!r}")
    return dim


def scatter_sum(src: Tensor, index: Tensor, dim_size: int, dim: int = 0) -> Tensor:
    """Sum of ``src`` entries per segment.

    Parameters
    ----------
    src : Tensor, shape (..., E, ...) with E at axis ``dim``
    index : Tensor, shape (E,)
    dim_size : int
        Number of segments N.

    Returns
    -------
    Tensor, shape of ``src`` with axis ``dim`` of size N
    """
    dim = _check(src, index, dim, dim_size, "dim_size")
    shape = list(src.shape)
    shape[dim] = dim_size
    return src.new_zeros(shape).index_add(dim, index, src)


def scatter_mean(src: Tensor, index: Tensor, dim_size: int, dim: int = 0) -> Tensor:
    """Mean of ``src`` entries per segment (0 for empty segments). Shapes as :func:`scatter_sum`."""
    dim = _check(src, index, dim, dim_size, "dim_size")
    total = scatter_sum(src, index, dim_size, dim)
    count = torch.zeros(dim_size, dtype=src.dtype, device=src.device).index_add(
        0, index, torch.ones_like(index, dtype=src.dtype))
    view = [1] * src.dim()
    view[dim] = dim_size
    return total / count.clamp(min=1).reshape(view)


def segment_softmax(logits: Tensor, index: Tensor, num_segments: int, dim: int = 0) -> Tensor:
    """Softmax over the entries of each segment (e.g. the incoming edges of each node).

    Numerically stable: the per-segment maximum (``scatter_reduce`` 'amax', treated as a
    constant for the gradient, which leaves softmax unchanged) is subtracted first.

    Parameters
    ----------
    logits : Tensor, shape (..., E, ...) with E at axis ``dim`` (e.g. (E, heads))
    index : Tensor, shape (E,)
        Segment of each entry.
    num_segments : int

    Returns
    -------
    Tensor, shape of ``logits``; entries of each segment sum to 1 along ``dim``.
    """
    dim = _check(logits, index, dim, num_segments, "num_segments")
    view = [1] * logits.dim()
    view[dim] = -1
    expanded = index.reshape(view).expand_as(logits)
    shape = list(logits.shape)
    shape[dim] = num_segments
    seg_max = torch.full(shape, float("-inf"), dtype=logits.dtype, device=logits.device)
    seg_max = seg_max.scatter_reduce(dim, expanded, logits.detach(), reduce="amax",
                                     include_self=True)
    shifted = logits - seg_max.index_select(dim, index)
    e = shifted.exp()
    denom = scatter_sum(e, index, num_segments, dim).index_select(dim, index)
    return e / denom
