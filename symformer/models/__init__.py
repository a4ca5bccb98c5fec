"""Published architectures, registered by stable name.

``create(name, **config)`` builds one; ``available()`` lists them; ``spec(name)`` tells its group
and input/output types.
"""

from .registry import ModelSpec, available, config_of, create, register, spec

# Importing a model module registers it.
from . import egnn, equiformer, torchmd_et, transformer  # noqa: E402,F401

__all__ = ["ModelSpec", "available", "config_of", "create", "register", "spec"]
