"""GLGENN: generalized Lipschitz group equivariant networks (Filimoshina & Shirokov 2025) for
the charged N-body benchmark.

The architecture of :class:`~symformer.models.cgenn.CGENN` with GLGENN's parameter-light weight
sharing: linear maps, gates and norms share weights over the quaternion types (grades ``k mod
4``) instead of grades, and every geometric-product layer has one ``(i, j, k)`` weight tensor for
all channels. In Cl(3,0) the quaternion types coincide with the grades, so the saving here comes
from the shared product weights; in algebras with n >= 4 generators the layers
(:mod:`symformer.layers.ga.clifford`) also merge grades.
"""

from __future__ import annotations

from symformer.groups import E3, Symmetric

from . import _nbody_io
from .cgenn import CGENN
from ..registry import register

__all__ = ["GLGENN"]


@register("glgenn", group=lambda: E3() * Symmetric(_nbody_io.EXAMPLE_NODES),
          in_types=_nbody_io.NBODY_IN_TYPES, out_types="node:point",
          example_inputs=_nbody_io.example_inputs,
          description="GLGENN (Filimoshina & Shirokov 2025): parameter-light Clifford GNN",
          tags=("nbody", "e3", "geometric-algebra"))
class GLGENN(CGENN):
    """Parameter-light Clifford group equivariant message passing (see module docstring).

    Parameters (keyword-only)
    ----------
    channels : int
        Multivector channels (28).
    n_layers : int
        Message-passing layers (4).
    """

    subspaces = "quaternion"
    shared_weights = True

    def __init__(self, *, channels: int = 28, n_layers: int = 4):
        super().__init__(channels=channels, n_layers=n_layers)
