"""symformer: equivariant transformers for every symmetry.

Subpackages (imported on first access): ``groups``, ``reps``, ``primitives``, ``layers``,
``models``, ``symmetrize``, ``data``, ``testing``, ``train``, ``integrations``.
"""

from __future__ import annotations

import importlib

from ._version import __version__
from .checkpoint import load, save

__all__ = ["__version__", "load", "save"]

_SUBPACKAGES = {"groups", "reps", "primitives", "layers", "models", "symmetrize", "data",
                "testing", "train", "integrations"}


def __getattr__(name: str):
    if name in _SUBPACKAGES:
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module 'symformer' has no attribute {name!r}")
