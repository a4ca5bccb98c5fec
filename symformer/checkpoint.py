"""Checkpoints: config + state_dict + library version, written atomically, read safely.

A checkpoint is a plain dict of tensors and JSON-able values, so it loads with
``torch.load(..., weights_only=True)``::

    {"format": "symformer", "version": "0.1.0", "model": "egnn", "config": {...},
     "state_dict": {...}, "extra": {...}}
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ._io import atomic_write
from ._version import __version__

__all__ = ["save", "load", "load_checkpoint", "atomic_save"]

FORMAT = "symformer"


def atomic_save(obj: Any, path: str | os.PathLike) -> Path:
    """``torch.save`` to a temporary file in the same folder, then rename: never half-written."""
    return atomic_write(path, lambda f: torch.save(obj, f))


def save(model: nn.Module, path: str | os.PathLike, *, extra: dict | None = None) -> Path:
    """Write ``model`` (built by :func:`symformer.models.create`) with optional JSON-able extras."""
    from .registry import config_of

    cfg = config_of(model)
    extra = dict(extra or {})
    json.dumps(cfg["config"]), json.dumps(extra)  # fail early on values weights_only cannot load
    return atomic_save({"format": FORMAT, "version": __version__, "model": cfg["name"],
                        "config": cfg["config"], "state_dict": model.state_dict(),
                        "extra": extra}, path)


def load_checkpoint(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> dict:
    """Read and validate a checkpoint dict (``weights_only=True``)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {str(path)!r} does not exist")
    try:
        ckpt = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as e:  # corrupt / truncated / not a torch file
        raise ValueError(f"checkpoint {str(path)!r} could not be read: {e}") from e
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT:
        raise ValueError(f"{str(path)!r} is not a symformer checkpoint (missing format marker)")
    for key in ("model", "config", "state_dict"):
        if key not in ckpt:
            raise ValueError(f"checkpoint {str(path)!r} lacks the key {key!r}")
    return ckpt


def load(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> nn.Module:
    """Checkpoint path -> ready model in eval mode, on ``map_location``, in the saved dtype."""
    from .registry import create

    ckpt = load_checkpoint(path, map_location)
    model = create(ckpt["model"], **ckpt["config"])
    state = ckpt["state_dict"]
    dtypes = {v.dtype for v in state.values() if torch.is_tensor(v) and v.is_floating_point()}
    if len(dtypes) == 1:
        model = model.to(dtypes.pop())
    model.load_state_dict(state)
    model.checkpoint_extra = ckpt.get("extra", {})
    return model.to(map_location).eval()
