"""Published architectures, registered by stable name.

``create(name, **config)`` builds one; ``available()`` lists them; ``spec(name)`` tells its group
and input/output types.
"""

from ..registry import ModelSpec, available, config_of, create, register, spec

# Importing a model module registers it. 3D (n-body):
from . import (  # noqa: E402,F401
    egnn, equiformer, se3_transformer, symformer3d, tfn, torchmd_et, transformer)
from . import cgenn, ga_attention, gatr, glgenn  # noqa: E402,F401  geometric algebra
from . import equiformer_potential, mace, nequip, potential  # noqa: E402,F401  interatomic potentials
from . import cnn, etn, octic_vit, p4m_cnn, polyphase_vit, vit  # noqa: E402,F401  images

__all__ = ["ModelSpec", "available", "config_of", "create", "register", "spec"]
