"""Equivariance errors and assertions for any function, module or registered model.

For every transformation kind of the group (``group.kinds``: e.g. rotation, reflection,
translation, permutation; a :class:`~symformer.groups.ProductGroup` adds "combined"), draw
``n_samples`` elements with ``group.sample(n, kind=k)``, transform the inputs with the
independent :mod:`oracle <symformer.testing.oracles>`, and compare ``f(g.x)`` with ``g.f(x)``:

    err = max |f(g.x) - g.f(x)| / max(max |g.f(x)|, tiny)

per output, maximised over the samples (``tiny = torch.finfo(dtype).tiny``). Outputs whose
shapes differ give ``inf``; non-finite values give ``nan`` (which fails every tolerance).

The function is called as ``fn(x)`` for a tensor input, ``fn(*x)`` for a tuple and
``fn(**x)`` for a dict. It must be deterministic (put modules with dropout in ``eval()``).
Nothing runs under ``torch.no_grad`` so that models computing forces by autograd work;
outputs are detached.
"""

from __future__ import annotations

import math
from typing import Any, Callable, Mapping

import torch
from torch import Tensor

from symformer.groups.base import Group

from .oracles import transform

__all__ = ["DEFAULT_TOLERANCES", "default_tolerance", "equivariance_error",
           "equivariance_errors", "assert_equivariant"]

#: Default bounds on the relative error, by dtype. float64 round-off is ~1e-16 and even deep
#: models stay below ~1e-12; float32 round-off (1.2e-7) is amplified up to ~100x by deep
#: stacks of layers and float32 Wigner matrices. A broken symmetry gives errors of order 1.
DEFAULT_TOLERANCES = {torch.float64: 1e-9, torch.float32: 1e-5, torch.float16: 1e-2,
                      torch.bfloat16: 5e-2}


def default_tolerance(dtype: torch.dtype) -> float:
    """The default relative-error tolerance for ``dtype`` (see :data:`DEFAULT_TOLERANCES`)."""
    if dtype not in DEFAULT_TOLERANCES:
        raise ValueError(f"no default tolerance for dtype {dtype}; pass atol explicitly")
    return DEFAULT_TOLERANCES[dtype]


def _leaves(obj: Any, types: Any, name: str) -> list[tuple[str, Any, Any]]:
    """Flatten ``obj`` with its matching ``types`` into (name, value, type) triples."""
    if isinstance(obj, Mapping):
        if isinstance(types, Mapping):
            missing = [k for k, v in obj.items() if k not in types and isinstance(v, Tensor)]
            if missing:
                raise ValueError(f"no field type given for {name} key(s) {missing}; "
                                 f"types were given for {sorted(types)}")
        out = []
        for k, v in obj.items():
            t = types.get(k) if isinstance(types, Mapping) else types
            out += _leaves(v, t, k if name in ("input", "output") else f"{name}.{k}")
        return out
    if isinstance(obj, (list, tuple)):
        if isinstance(types, (list, tuple)):
            if len(types) != len(obj):
                raise ValueError(f"{name} has {len(obj)} entries but {len(types)} field types "
                                 f"were given")
        else:
            types = [types] * len(obj)
        out = []
        for i, (v, t) in enumerate(zip(obj, types)):
            out += _leaves(v, t, f"{name}[{i}]")
        return out
    if isinstance(obj, Tensor) and types is None:
        raise ValueError(f"no field type given for {name}")
    return [(name, obj, types)]


def _call(fn: Callable, inputs: Any) -> Any:
    if isinstance(inputs, Mapping):
        return fn(**inputs)
    if isinstance(inputs, tuple):
        return fn(*inputs)
    return fn(inputs)


def _transform_inputs(g, inputs: Any, types: Any) -> Any:
    if isinstance(inputs, Mapping):
        types = types if isinstance(types, Mapping) else {k: types for k in inputs}
        return {k: _transform_inputs(g, v, types.get(k)) for k, v in inputs.items()}
    if isinstance(inputs, (list, tuple)):
        types = types if isinstance(types, (list, tuple)) else [types] * len(inputs)
        return type(inputs)(_transform_inputs(g, v, t) for v, t in zip(inputs, types))
    if not isinstance(inputs, Tensor):
        return inputs  # configuration values (ints, flags, None) pass through
    return transform(g, inputs, types)


def _float_context(inputs: Any) -> tuple[torch.dtype, torch.device]:
    leaves = [v for _, v, _ in _leaves(inputs, "scalar", "input") if isinstance(v, Tensor)]
    floats = [v for v in leaves if v.is_floating_point()]
    if floats:
        return floats[0].dtype, floats[0].device
    device = leaves[0].device if leaves else torch.device("cpu")
    return torch.float64, device


def _rel_err(actual: Any, expected: Any) -> float:
    if not isinstance(expected, Tensor):
        return 0.0 if actual == expected else math.inf
    if not isinstance(actual, Tensor) or actual.shape != expected.shape:
        return math.inf
    if expected.numel() == 0:
        return 0.0
    tiny = torch.finfo(expected.dtype if expected.is_floating_point() else torch.float64).tiny
    a, b = actual.detach().to(torch.float64), expected.detach().to(torch.float64)
    if not (torch.isfinite(a).all() and torch.isfinite(b).all()):
        return math.nan
    return float((a - b).abs().max()) / max(float(b.abs().max()), tiny)


def _worse(a: float, b: float) -> float:
    return math.nan if math.isnan(a) or math.isnan(b) else max(a, b)


def _detach(obj: Any) -> Any:
    if isinstance(obj, Tensor):
        return obj.detach()
    if isinstance(obj, Mapping):
        return {k: _detach(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(_detach(v) for v in obj)
    return obj


def equivariance_errors(fn: Callable, group: Group, inputs: Any, in_types: Any, out_types: Any,
                        n_samples: int = 4, generator: torch.Generator | None = None,
                        kinds: tuple[str, ...] | None = None) -> dict[tuple[str, str], float]:
    """Relative equivariance error of every output under every transformation kind.

    Parameters
    ----------
    fn : callable or nn.Module
        Deterministic function of ``inputs``.
    group : Group
        The symmetry to test.
    inputs : Tensor, tuple or dict
        Passed as ``fn(x)``, ``fn(*x)`` or ``fn(**x)``.
    in_types, out_types :
        Field types (strings, see :mod:`symformer.groups.types`) in the structure of the inputs
        and outputs; a single type applies to every entry. Non-tensor inputs need no type.
    n_samples : int
        Elements drawn per kind.
    generator : torch.Generator, optional
        Source of randomness (default: a CPU generator seeded with 0, so results repeat).
    kinds : tuple of str, optional
        Subset of ``group.kinds`` to test (default: all).

    Returns
    -------
    dict
        ``{(output_name, kind): error}``; output names are ``"output"`` for a single tensor,
        ``"output[i]"`` for tuples and the keys of dict outputs.
    """
    if isinstance(n_samples, bool) or not isinstance(n_samples, int) or n_samples < 1:
        raise ValueError(f"n_samples must be a positive int, got {n_samples!r}")
    kinds = tuple(group.kinds) if kinds is None else tuple(kinds)
    unknown = [k for k in kinds if k not in group.kinds]
    if unknown:
        raise ValueError(f"kinds {unknown} are not transformation kinds of {group.name}; "
                         f"it has {group.kinds}")
    if not kinds:
        raise ValueError(f"{group.name} declares no transformation kinds to test")
    generator = torch.Generator().manual_seed(0) if generator is None else generator
    dtype, device = _float_context(inputs)
    _leaves(inputs, in_types, "input")  # validate the structure of the types up front
    expected_out = _leaves(_detach(_call(fn, inputs)), out_types, "output")
    errors: dict[tuple[str, str], float] = {}
    for kind in kinds:
        elements = group.sample(n_samples, generator, dtype=dtype, device=device, kind=kind)
        for i in range(n_samples):
            g = elements[i:i + 1]
            actual = _leaves(_detach(_call(fn, _transform_inputs(g, inputs, in_types))),
                             out_types, "output")
            if [n for n, _, _ in actual] != [n for n, _, _ in expected_out]:
                raise ValueError(f"the outputs' structure changed under {kind!r}: "
                                 f"{[n for n, _, _ in actual]} vs {[n for n, _, _ in expected_out]}")
            for (name, y_g, _), (_, y, t) in zip(actual, expected_out):
                gy = transform(g, y, t) if isinstance(y, Tensor) else y
                key = (name, kind)
                errors[key] = _worse(errors.get(key, 0.0), _rel_err(y_g, gy))
    return errors


def equivariance_error(fn: Callable, group: Group, inputs: Any, in_types: Any, out_types: Any,
                       n_samples: int = 4, generator: torch.Generator | None = None,
                       kinds: tuple[str, ...] | None = None) -> dict[str, float]:
    """Maximum relative error over all outputs, per transformation kind: ``{kind: error}``.

    Same arguments as :func:`equivariance_errors`.
    """
    detailed = equivariance_errors(fn, group, inputs, in_types, out_types, n_samples,
                                   generator, kinds)
    out: dict[str, float] = {}
    for (_, kind), err in detailed.items():
        out[kind] = _worse(out.get(kind, 0.0), err)
    return out


def assert_equivariant(fn: Callable, group: Group, inputs: Any, in_types: Any, out_types: Any,
                       atol: float | None = None, n_samples: int = 4,
                       generator: torch.Generator | None = None,
                       kinds: tuple[str, ...] | None = None) -> dict[str, float]:
    """Raise ``AssertionError`` unless every output is equivariant under every kind.

    ``atol`` bounds the relative error of :func:`equivariance_errors` (default
    :func:`default_tolerance` of the inputs' dtype: 1e-9 for float64, 1e-5 for float32). The
    message names each failing output, transformation kind, error and tolerance.

    Returns
    -------
    dict
        ``{kind: error}`` as :func:`equivariance_error`.
    """
    detailed = equivariance_errors(fn, group, inputs, in_types, out_types, n_samples,
                                   generator, kinds)
    dtype, _ = _float_context(inputs)
    tol = default_tolerance(dtype) if atol is None else float(atol)
    failures = [f"output {name!r} under {kind!r}: error {err:.3g} > tolerance {tol:.3g}"
                for (name, kind), err in detailed.items() if not err <= tol]
    if failures:
        raise AssertionError(f"{getattr(fn, '__name__', type(fn).__name__)} is not equivariant "
                             f"under {group.name} ({dtype}):\n  " + "\n  ".join(failures))
    out: dict[str, float] = {}
    for (_, kind), err in detailed.items():
        out[kind] = max(out.get(kind, 0.0), err)
    return out
