"""Small reusable input checkers that name the offending argument.

Every checker raises :class:`TypeError` (wrong Python type or dtype) or :class:`ValueError`
(wrong shape, non-finite values, out-of-range indices) with a message that starts with the
argument name, e.g. ``"pos: expected shape (N, 3), got (5, 2)"``.

Shape specs are tuples whose entries are

* an ``int``: that exact size;
* ``None``: any size;
* a ``str`` such as ``"N"``: any size, but every dimension with the same name must agree, both
  inside one spec and across calls that share a ``dims`` dict;
* ``"..."`` (at most once): any number of dimensions at that place, e.g. ``("...", 3, 3)``
  for leading batch dimensions or ``("N", "...")`` for trailing feature dimensions.

Value checks (:func:`check_finite`, :func:`check_index`) read the data and therefore synchronise
with an accelerator; hot paths use shape/dtype checks only.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Union

import torch
from torch import Tensor

__all__ = [
    "check_tensor",
    "check_shape",
    "check_finite",
    "check_index",
    "check_batch_vector",
    "check_same_length",
    "check_same_dtype",
    "check_same_device",
]

ShapeSpec = Sequence[Union[int, str, None]]
NamedTensors = Union[Mapping[str, Tensor], Iterable[tuple[str, Tensor]]]

_KINDS = {
    "float": lambda dt: dt.is_floating_point,
    "int": lambda dt: not dt.is_floating_point and not dt.is_complex and dt != torch.bool,
    "bool": lambda dt: dt == torch.bool,
    "complex": lambda dt: dt.is_complex,
}


def _fmt_spec(spec: ShapeSpec) -> str:
    parts = ["*" if s is None else str(s) for s in spec]
    return "(" + ", ".join(parts) + ("," if len(parts) == 1 else "") + ")"


def _fmt_shape(shape: Sequence[int]) -> str:
    return _fmt_spec(tuple(shape))


def check_shape(name: str, x: Tensor, shape: ShapeSpec, dims: dict | None = None) -> None:
    """Check ``x.shape`` against ``shape`` (see the module docstring for the spec).

    ``dims`` binds named dimensions across calls: a name already in ``dims`` must match it, and
    new names are added to it.
    """
    spec = tuple(shape)
    if spec.count("...") > 1:
        raise ValueError(f"shape spec for {name}: at most one '...', got {spec}")
    got = tuple(x.shape)
    want = _fmt_spec(spec)
    if "..." in spec:
        cut = spec.index("...")
        head, tail = spec[:cut], spec[cut + 1:]
        ok = len(got) >= len(head) + len(tail)
        pairs = list(zip(head, got)) + list(zip(tail, got[len(got) - len(tail):]))
    else:
        ok, pairs = len(got) == len(spec), list(zip(spec, got))
    if not ok:
        raise ValueError(f"{name}: expected shape {want}, got {_fmt_shape(got)}")
    bound = dict(dims) if dims is not None else {}
    for s, g in pairs:
        if s is None:
            continue
        if isinstance(s, str):
            if s in bound and bound[s] != g:
                raise ValueError(f"{name}: expected shape {want} with {s}={bound[s]}, "
                                 f"got {_fmt_shape(got)}")
            bound[s] = g
        elif s != g:
            raise ValueError(f"{name}: expected shape {want}, got {_fmt_shape(got)}")
    if dims is not None:
        dims.update(bound)


def check_finite(name: str, x: Tensor) -> None:
    """Raise ``ValueError`` if a floating or complex ``x`` contains NaN or infinite entries."""
    if not (x.is_floating_point() or x.is_complex()) or x.numel() == 0:
        return
    bad = ~torch.isfinite(x)
    if bool(bad.any()):
        n_nan = int(torch.isnan(x).sum())
        n_inf = int(bad.sum()) - n_nan
        parts = [f"NaN at {n_nan} entries"] * bool(n_nan) + [f"inf at {n_inf} entries"] * bool(n_inf)
        raise ValueError(f"{name}: contains {' and '.join(parts)}")


def check_tensor(name: str, x, shape: ShapeSpec | None = None, dtype_kind: str | None = None,
                 finite: bool = True, dims: dict | None = None) -> None:
    """Check that ``x`` is a tensor with the given shape spec, dtype kind and finite values.

    Parameters
    ----------
    name : str
        Argument name used in error messages.
    x : object
        The value to check; must be a :class:`torch.Tensor`.
    shape : tuple, optional
        Shape spec (ints, ``None``, names, one ``"..."``).
    dtype_kind : {"float", "int", "bool", "complex"}, optional
        Required dtype kind; ``"int"`` excludes ``bool``.
    finite : bool
        Reject NaN / inf entries (floating and complex tensors only).
    dims : dict, optional
        Named dimensions shared across calls (see :func:`check_shape`).
    """
    if not isinstance(x, Tensor):
        raise TypeError(f"{name}: expected a torch.Tensor, got {type(x).__name__}")
    if dtype_kind is not None:
        if dtype_kind not in _KINDS:
            raise ValueError(f"dtype_kind must be one of {sorted(_KINDS)}, got {dtype_kind!r}")
        if not _KINDS[dtype_kind](x.dtype):
            raise TypeError(f"{name}: expected a {dtype_kind} dtype, got {x.dtype}")
    if shape is not None:
        check_shape(name, x, shape, dims)
    if finite:
        check_finite(name, x)


def check_index(name: str, idx, size: int) -> None:
    """Check an integer index tensor, 1D ``[E]`` or ``[2, E]``, with values in ``[0, size)``."""
    if not isinstance(idx, Tensor):
        raise TypeError(f"{name}: expected a torch.Tensor, got {type(idx).__name__}")
    if not _KINDS["int"](idx.dtype):
        raise TypeError(f"{name}: expected an integer dtype, got {idx.dtype}")
    if not (idx.dim() == 1 or (idx.dim() == 2 and idx.shape[0] == 2)):
        raise ValueError(f"{name}: expected shape (E,) or (2, E), got {_fmt_shape(idx.shape)}")
    if idx.numel() == 0:
        return
    bad = (idx < 0) | (idx >= size)
    if bool(bad.any()):
        first = int(idx[bad].flatten()[0])
        raise ValueError(f"{name}: index {first} out of range for {size} nodes "
                         f"({int(bad.sum())} entries out of range)")


def check_batch_vector(name: str, batch, num_nodes: int, num_graphs: int | None = None) -> None:
    """Check a graph-id vector ``[N]``: integer, non-negative, sorted, below ``num_graphs``."""
    check_tensor(name, batch, (num_nodes,), "int")
    if num_nodes == 0:
        return
    if bool((batch[1:] < batch[:-1]).any()):
        raise ValueError(f"{name}: graph ids must be sorted (nodes of one graph contiguous)")
    lo, hi = int(batch[0]), int(batch[-1])
    if lo < 0:
        raise ValueError(f"{name}: graph id {lo} is negative")
    if num_graphs is not None and hi >= num_graphs:
        raise ValueError(f"{name}: graph id {hi} out of range for {num_graphs} graphs")


def _pairs(named: NamedTensors) -> list[tuple[str, Tensor]]:
    items = list(named.items()) if isinstance(named, Mapping) else list(named)
    for n, t in items:
        if not isinstance(t, Tensor):
            raise TypeError(f"{n}: expected a torch.Tensor, got {type(t).__name__}")
    return items


def check_same_length(named: NamedTensors) -> None:
    """Check that all tensors (``{name: tensor}`` or ``[(name, tensor), ...]``) share ``size(0)``."""
    items = _pairs(named)
    for n, t in items:
        if t.dim() == 0:
            raise ValueError(f"{n}: expected at least one dimension, got a 0-d tensor")
    if items:
        n0, t0 = items[0]
        for n, t in items[1:]:
            if t.shape[0] != t0.shape[0]:
                raise ValueError(f"{n}: expected length {t0.shape[0]} (as {n0}), got {t.shape[0]}")


def check_same_dtype(named: NamedTensors) -> None:
    """Check that all tensors share one dtype."""
    items = _pairs(named)
    if items:
        n0, t0 = items[0]
        for n, t in items[1:]:
            if t.dtype != t0.dtype:
                raise TypeError(f"{n}: expected dtype {t0.dtype} (as {n0}), got {t.dtype}")


def check_same_device(named: NamedTensors) -> None:
    """Check that all tensors live on one device."""
    items = _pairs(named)
    if items:
        n0, t0 = items[0]
        for n, t in items[1:]:
            if t.device != t0.device:
                raise ValueError(f"{n}: expected device {t0.device} (as {n0}), got {t.device}")
