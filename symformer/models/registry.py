"""The model registry lives in :mod:`symformer.registry` (below layers and models, so both can
register); this module keeps the ``symformer.models.registry`` import path."""

from ..registry import ModelSpec, available, config_of, create, register, spec, unregister

__all__ = ["ModelSpec", "register", "create", "available", "spec", "config_of", "unregister"]
