"""``run_eagerly``: keep a function out of ``torch.compile`` graphs without paying at import."""

from __future__ import annotations

import functools

import torch

__all__ = ["run_eagerly"]


def run_eagerly(fn):
    """``torch.compiler.disable(fn)``, applied at the first call.

    Applying it as a plain decorator imports ``torch._dynamo`` (about 1.7 s) in every process
    that imports ``symformer.primitives``, compiled or not.
    """
    disabled = None

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        nonlocal disabled
        if disabled is None:
            disabled = torch.compiler.disable(fn)
        return disabled(*args, **kwargs)
    return wrapper
