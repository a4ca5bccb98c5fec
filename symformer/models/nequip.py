"""NequIP / Nequix: interaction blocks of CG convolutions with gates and equivariant RMS norm.

NequIP (Batzner et al., Nat. Commun. 2022) with the equivariant RMS layer norm of Nequix. Per
layer, on the uniform layout ``[N, (L+1)^2, C]`` (degree ``l`` has parity ``(-1)^l``)::

    x   = RMSNorm(h)                                                       (Nequix)
    m_i = W_out sum_j R(r_ij) * (Y(r_ij) (x) W_in x_j) / avg_num_neighbors (CG convolution)
    h  <- h + Gate(m_i + W_{z_i} x_i)                 (self-connection per element; residual
                                                       where the degrees match)

``R`` is an MLP of a Bessel basis times a polynomial cutoff (smooth energies as atoms leave
the cutoff). The per-atom energy is two linear maps of the final scalars (NequIP's output
block). Same backbone contract and graph inputs as :class:`symformer.models.mace.MACE`.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from symformer.layers.gate import Gate
from symformer.layers.linear import EquivariantLinear
from symformer.layers.norm import EquivariantRMSNorm

from ..registry import register
from .mace import (BACKBONE_IN_TYPES, AtomicBackbone, EdgeConvolution, ElementLinear,
                   backbone_group, molecule_example)
from .potential import (FORCES_FLOAT32_TOLERANCE, POTENTIAL_IN_TYPES, POTENTIAL_OUT_TYPES,
                        Potential, potential_example_inputs, potential_group)

__all__ = ["NequIP", "NequIPLayer", "NequIPPotential"]


class NequIPLayer(nn.Module):
    """One interaction block (see the module docstring); ``(N, (lmax_in+1)^2, C) ->
    (N, (lmax_out+1)^2, C)``."""

    def __init__(self, *, lmax_in: int, lmax_out: int, lmax_sh: int, channels: int,
                 num_elements: int, cutoff: float, num_bessel: int,
                 radial_hidden: tuple[int, ...], avg_num_neighbors: float):
        super().__init__()
        self.lmax_in, self.lmax_out, self.avg = lmax_in, lmax_out, float(avg_num_neighbors)
        self.norm = EquivariantRMSNorm(lmax=lmax_in, in_channels=channels)
        self.linear_in = EquivariantLinear(lmax=lmax_in, in_channels=channels,
                                           out_channels=channels, bias=False)
        self.conv = EdgeConvolution(lmax_in=lmax_in, lmax_sh=lmax_sh, lmax_out=lmax_out,
                                    channels=channels, cutoff=cutoff, num_bessel=num_bessel,
                                    radial_hidden=radial_hidden)
        self.linear_out = EquivariantLinear(lmax=lmax_out, in_channels=channels,
                                            out_channels=channels)
        self.self_connection = ElementLinear(lmax=min(lmax_in, lmax_out),
                                             num_elements=num_elements, channels=channels)
        self.gate = Gate(lmax=lmax_out, in_channels=channels)

    def forward(self, h: Tensor, onehot: Tensor, edge_index: Tensor, sh: Tensor,
                r: Tensor) -> Tensor:
        x = self.norm(h)
        m = self.linear_out(self.conv(self.linear_in(x), edge_index, sh, r) / self.avg)
        sc = self.self_connection(x, onehot)                              # [N, rows_sc, C]
        m = torch.cat([m[:, :sc.shape[1]] + sc, m[:, sc.shape[1]:]], dim=1)
        out = self.gate(m)                                                # [N, rows_out, C]
        return h + out if self.lmax_in == self.lmax_out else out


@register("nequip_backbone", group=backbone_group, in_types=BACKBONE_IN_TYPES,
          out_types="node:scalar", example_inputs=molecule_example,
          description="NequIP/Nequix backbone: per-atom energies from atomic numbers and edges",
          tags=("potential-backbone",))
class NequIP(AtomicBackbone):
    """NequIP backbone with equivariant RMS norm; per-atom energies ``(N,)``.

    Parameters
    ----------
    elements : sequence of int
        Atomic numbers the model knows.
    channels : int
        Channels C of every degree (paper: 64; the default is a small CPU config).
    lmax : int
        Degree of the hidden features (paper: up to 3).
    lmax_sh : int, optional
        Degree of the edge harmonics (default ``lmax``).
    num_layers : int
        Interaction blocks (paper: 4-5).
    cutoff, num_bessel, radial_hidden, avg_num_neighbors :
        As in :class:`~symformer.models.mace.MACE`.
    """

    def __init__(self, *, elements=(1, 6, 7, 8), channels: int = 16, lmax: int = 1,
                 lmax_sh: int | None = None, num_layers: int = 3, cutoff: float = 5.0,
                 num_bessel: int = 8, radial_hidden=(32, 32), avg_num_neighbors: float = 8.0):
        lmax_sh = lmax if lmax_sh is None else lmax_sh
        super().__init__(ints=(("channels", channels, 2), ("lmax", lmax, 0),
                               ("lmax_sh", lmax_sh, 0), ("num_layers", num_layers, 1),
                               ("num_bessel", num_bessel, 1)),
                         elements=elements, channels=channels, lmax_sh=lmax_sh, cutoff=cutoff,
                         avg_num_neighbors=avg_num_neighbors)
        ne = len(self.elements)
        self.layers = nn.ModuleList(
            NequIPLayer(lmax_in=0 if t == 0 else lmax, lmax_out=lmax, lmax_sh=lmax_sh,
                        channels=channels, num_elements=ne, cutoff=cutoff, num_bessel=num_bessel,
                        radial_hidden=tuple(radial_hidden), avg_num_neighbors=avg_num_neighbors)
            for t in range(num_layers))
        self.output = nn.Sequential(nn.Linear(channels, channels // 2),
                                    nn.Linear(channels // 2, 1))

    def forward(self, atomic_numbers: Tensor, edge_index: Tensor, edge_vec: Tensor,
                batch: Tensor) -> Tensor:
        """Per-atom energies (N,); inputs as :class:`~symformer.models.mace.MACE`."""
        onehot, r, sh, h = self.embed(atomic_numbers, edge_index, edge_vec, batch)
        for layer in self.layers:
            h = layer(h, onehot, edge_index, sh, r)                           # [N, rows, C]
        return self.output(h[:, 0, :]).squeeze(-1)


@register("nequip", group=potential_group, in_types=POTENTIAL_IN_TYPES,
          out_types=POTENTIAL_OUT_TYPES, example_inputs=potential_example_inputs,
          float32_tolerance=FORCES_FLOAT32_TOLERANCE,
          description="NequIP/Nequix potential: energy, forces = -dE/dpos, stress",
          tags=("potential", "e3"))
class NequIPPotential(Potential):
    """Conservative NequIP potential; keyword config as :class:`NequIP`."""

    def __init__(self, *, elements=(1, 6, 7, 8), channels: int = 16, lmax: int = 1,
                 lmax_sh: int | None = None, num_layers: int = 3, cutoff: float = 5.0,
                 num_bessel: int = 8, radial_hidden=(32, 32), avg_num_neighbors: float = 8.0):
        super().__init__(NequIP(elements=elements, channels=channels, lmax=lmax, lmax_sh=lmax_sh,
                                num_layers=num_layers, cutoff=cutoff, num_bessel=num_bessel,
                                radial_hidden=radial_hidden,
                                avg_num_neighbors=avg_num_neighbors))
