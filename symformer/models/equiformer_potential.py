"""Equiformer-style interatomic potential: the SO(2)-attention blocks of the N-body models
(:class:`symformer.models.equiformer.EquiformerBlock`, shared with the flagship ``symformer3d``)
as a per-atom energy backbone for :class:`symformer.models.potential.Potential`.

With node features in the uniform layout ``x [N, (L+1)^2, C]``::

    x^0_i   = [embed(z_i) ; 0]                                   only l = 0 at the start
    e_ij    = [bessel(r_ij) ; a(z_j) ; b(z_i)]                   invariant edge features
    x      <- EquiformerBlock(x; D(r_ij), e_ij, u(r_ij))          n_layers times
    e_i     = MLP(RMSNorm(x)_i^{l=0})                            per-atom energy

Higher degrees appear in the first block: its SO(2) convolution maps the ``m = 0`` scalars of
the pair to the ``m = 0`` rows of every degree in the edge frame, which rotate back to
spherical harmonics of the bond direction (EquiformerV2's edge-degree embedding does the same
work with a separate layer).

Smoothness. A potential must be continuous (better: differentiable) as atoms cross the cutoff,
or molecular dynamics does not conserve energy. Every edge carries the polynomial envelope
``u(r)`` (zero with its first derivatives at the cutoff) into the attention, which becomes
``alpha_ij = u_ij^2 e^{s_ij} / sum_k u_ik e^{s_ik}``: an entering neighbour adds nothing to the
normaliser and its own weight starts at zero.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ..layers.norm import EquivariantRMSNorm
from ..primitives.radial import bessel_basis, polynomial_cutoff
from ..primitives.wigner import edge_align_rotation
from ..registry import register
from .equiformer import EquiformerBlock
from .mace import BACKBONE_IN_TYPES, ElementIndex, backbone_group, check_backbone_inputs, molecule_example
from .potential import (FORCES_FLOAT32_TOLERANCE, POTENTIAL_IN_TYPES, POTENTIAL_OUT_TYPES,
                        Potential, potential_example_inputs, potential_group)

__all__ = ["EquiformerBackbone", "EquiformerPotential"]


@register("equiformer_backbone", group=backbone_group, in_types=BACKBONE_IN_TYPES,
          out_types="node:scalar", example_inputs=molecule_example,
          description="Equiformer-style backbone (SO(2) attention): per-atom energies",
          tags=("potential-backbone",))
class EquiformerBackbone(nn.Module):
    """Per-atom energies ``(N,)`` from SO(2)-attention blocks (module docstring).

    Parameters (keyword-only)
    ----------
    elements : sequence of int
        Atomic numbers the model knows ((1, 6, 7, 8)).
    lmax : int
        Maximum degree of the node features (2).
    channels : int
        Channels per degree (32).
    n_layers : int
        Number of attention + feed-forward blocks (4).
    heads, head_channels : int
        Attention heads and value channels per head (4, 8).
    num_bessel : int
        Bessel functions of the distance (8).
    type_channels : int
        Width of the source and target element embeddings in the edge features (8).
    cutoff : float
        Radius of the neighbour graph, Angstrom (5.0).
    """

    def __init__(self, *, elements=(1, 6, 7, 8), lmax: int = 2, channels: int = 32,
                 n_layers: int = 4, heads: int = 4, head_channels: int = 8, num_bessel: int = 8,
                 type_channels: int = 8, cutoff: float = 5.0):
        super().__init__()
        for name, v, low in (("lmax", lmax, 1), ("channels", channels, 1),
                             ("n_layers", n_layers, 1), ("heads", heads, 1),
                             ("head_channels", head_channels, 1), ("num_bessel", num_bessel, 1),
                             ("type_channels", type_channels, 1)):
            if isinstance(v, bool) or not isinstance(v, int) or v < low:
                raise ValueError(f"{name}: expected an int >= {low}, got {v!r}")
        if isinstance(cutoff, bool) or not isinstance(cutoff, (int, float)) or not cutoff > 0:
            raise ValueError(f"cutoff: expected a positive number, got {cutoff!r}")
        self.element_index = ElementIndex(elements)
        self.elements = self.element_index.elements
        self.lmax, self.channels, self.num_bessel = lmax, channels, num_bessel
        self.cutoff = float(cutoff)
        n_el = len(self.elements)
        self.embedding = nn.Embedding(n_el, channels)
        self.source_type = nn.Embedding(n_el, type_channels)
        self.target_type = nn.Embedding(n_el, type_channels)
        self.blocks = nn.ModuleList(
            EquiformerBlock(lmax=lmax, mmax=None, channels=channels, heads=heads,
                            head_channels=head_channels,
                            edge_channels=num_bessel + 2 * type_channels,
                            ffn_channels=2 * channels, activation="gate")
            for _ in range(n_layers))
        self.norm = EquivariantRMSNorm(lmax=lmax, in_channels=channels)
        self.head = nn.Sequential(nn.Linear(channels, channels), nn.SiLU(),
                                  nn.Linear(channels, 1))

    def forward(self, atomic_numbers: Tensor, edge_index: Tensor, edge_vec: Tensor,
                batch: Tensor) -> Tensor:
        """Per-atom energies (N,).

        Parameters
        ----------
        atomic_numbers : Tensor, shape (N,), long.
        edge_index : Tensor, shape (2, E); row 0 source j, row 1 target i.
        edge_vec : Tensor, shape (E, 3), ``pos[i] - pos[j]`` (the Potential contract).
        batch : Tensor, shape (N,).
        """
        check_backbone_inputs(atomic_numbers, edge_index, edge_vec, batch)
        species = self.element_index(atomic_numbers)                        # [N]
        src, dst = edge_index
        r = (edge_vec * edge_vec).sum(-1).add(1e-30).sqrt()                 # [E]
        envelope = polynomial_cutoff(r, self.cutoff)                        # [E]
        edge_scalars = torch.cat([bessel_basis(r, self.num_bessel, self.cutoff),
                                  self.source_type(species)[src].to(edge_vec.dtype),
                                  self.target_type(species)[dst].to(edge_vec.dtype)], dim=-1)
        # The blocks' frames point from the target i to the source j.
        wigner = edge_align_rotation(-edge_vec, self.lmax)                   # [E, K, K]
        n, rows = species.shape[0], (self.lmax + 1) ** 2
        x0 = self.embedding(species).to(edge_vec.dtype)[:, None, :]          # [N, 1, C]
        x = torch.cat([x0, x0.new_zeros(n, rows - 1, self.channels)], dim=1)  # [N, K, C]
        for block in self.blocks:
            x = block(x, None, edge_index, edge_scalars, wigner, envelope)
        return self.head(self.norm(x)[:, 0, :]).squeeze(-1)                 # [N]


@register("equiformer_potential", group=potential_group, in_types=POTENTIAL_IN_TYPES,
          out_types=POTENTIAL_OUT_TYPES, example_inputs=potential_example_inputs,
          float32_tolerance=FORCES_FLOAT32_TOLERANCE,
          description="Equiformer-style potential (SO(2) attention): energy, "
                      "forces = -dE/dpos, stress",
          tags=("potential", "e3", "attention"))
class EquiformerPotential(Potential):
    """Conservative Equiformer-style potential; keyword config as :class:`EquiformerBackbone`."""

    def __init__(self, *, elements=(1, 6, 7, 8), lmax: int = 2, channels: int = 32,
                 n_layers: int = 4, heads: int = 4, head_channels: int = 8, num_bessel: int = 8,
                 type_channels: int = 8, cutoff: float = 5.0):
        super().__init__(EquiformerBackbone(
            elements=elements, lmax=lmax, channels=channels, n_layers=n_layers, heads=heads,
            head_channels=head_channels, num_bessel=num_bessel, type_channels=type_channels,
            cutoff=cutoff))
