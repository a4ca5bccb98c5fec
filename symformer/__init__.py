"""symformer: equivariant transformers for every symmetry.

Subpackages (imported on first access): ``groups``, ``reps``, ``primitives``, ``layers``,
``models``, ``symmetrize``, ``data``, ``testing``, ``train``, ``integrations``.
"""

from __future__ import annotations

import importlib

from ._version import __version__
__all__ = ["__version__", "load", "save"]

_SUBPACKAGES = {"groups", "reps", "primitives", "layers", "models", "symmetrize", "data",
                "testing", "train", "integrations"}


def load(path, map_location="cpu"):
    """Checkpoint path -> ready model (see :func:`symformer.checkpoint.load`)."""
    from .checkpoint import load as _load

    return _load(path, map_location)


def save(model, path, *, extra=None):
    """Write a model built by ``symformer.models.create`` (see :func:`symformer.checkpoint.save`)."""
    from .checkpoint import save as _save

    return _save(model, path, extra=extra)


def __getattr__(name: str):
    # Subpackages load on first use so that `symformer --version` does not import torch.
    if name in _SUBPACKAGES:
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module 'symformer' has no attribute {name!r}")
