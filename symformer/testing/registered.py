"""Equivariance check of registered models and layers (used by ``symformer check NAME``)."""

from __future__ import annotations

from typing import NamedTuple

import torch

from .equivariance import default_tolerance, equivariance_error

__all__ = ["CheckRow", "check_registered"]


class CheckRow(NamedTuple):
    """One line of a :func:`check_registered` report."""

    name: str
    dtype: str  # "float32", "float64", ...
    kind: str
    error: float
    tolerance: float
    passed: bool


def check_registered(name: str, dtypes: tuple[torch.dtype, ...] = (torch.float32, torch.float64),
                     n_samples: int = 4, generator: torch.Generator | None = None,
                     device: str | torch.device = "cpu", seed: int = 0) -> list[CheckRow]:
    """Check the registered model or layer ``name`` (default config) in each dtype.

    The module is built with ``symformer.models.registry.create(name)`` with the global RNG
    seeded with 0 (and restored after), cast to the dtype and put in ``eval()`` mode (dropout
    off); inputs come from the spec's ``example_inputs(module,
    generator, dtype)``; the group from ``spec.make_group(module)``.

    Parameters
    ----------
    generator : torch.Generator, optional
        Randomness for inputs and group elements (default: a CPU generator seeded with
        ``seed`` for each dtype, so reports repeat).
    device : str or torch.device
        Where the module and its inputs live (inputs are drawn on the CPU and moved, so a
        ``"cuda"`` report checks the same inputs as the CPU one).
    seed : int
        Seed of the default generator (0).

    The tolerance is :func:`default_tolerance` of the dtype (1e-5 relative in float32, 1e-9 in
    float64) unless the spec declares its own ``float32_tolerance``.

    Returns
    -------
    list of CheckRow
        ``(name, dtype, kind, error, tolerance, passed)`` per dtype and transformation kind.
    """
    from symformer.models.registry import create, spec

    s = spec(name)
    rows: list[CheckRow] = []
    for dtype in dtypes:
        gen = torch.Generator().manual_seed(seed) if generator is None else generator
        # weights from a fixed seed, not from whatever the global RNG holds: one entry's report
        # is the same alone and within `check --all`, and both dtypes check the same weights
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(0)
            module = create(name).to(dtype).eval()
        inputs = _to_device(s.example_inputs(module, gen, dtype), torch.device(device))
        module.to(device)
        errors = equivariance_error(module, s.make_group(module), inputs, s.in_types,
                                    s.out_types, n_samples=n_samples, generator=gen)
        tol = (s.float32_tolerance if dtype == torch.float32 and s.float32_tolerance
               else default_tolerance(dtype))
        for kind, err in errors.items():
            rows.append(CheckRow(name, str(dtype).removeprefix("torch."), kind, err, tol,
                                 bool(err <= tol)))
    return rows


def _to_device(obj, device: torch.device):
    if isinstance(obj, torch.Tensor):
        return obj.to(device)
    if isinstance(obj, dict):
        return {k: _to_device(v, device) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(_to_device(v, device) for v in obj)
    return obj
