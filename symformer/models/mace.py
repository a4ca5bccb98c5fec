"""MACE: higher-body-order equivariant message passing (Batatia et al., NeurIPS 2022).

A backbone for interatomic potentials (the ``Potential`` wrapper adds the neighbour graph,
energy scale/shift, forces by autograd and stress). Per interaction ``t``, on the uniform layout
``[N, (L+1)^2, C]`` (degree ``l`` has parity ``(-1)^l``)::

    A_i   = W_A  sum_j R_t(r_ij) * (Y(r_ij) (x) W_up h_j) / avg_num_neighbors    atomic basis
    B_i   = sum_{nu <= correlation} sum_k w_{z_i,k} U_k . A_i^{(x) nu}            product basis
    h_i  <- W_B B_i + W_{z_i} h_i                                                 (skip for t > 0)
    E_i  += readout_t(h_i[l=0])          (linear for t < T-1, MLP for the last layer)

``R_t`` is an MLP of a Bessel basis times a smooth polynomial cutoff (value and two derivatives
vanish at the cutoff, so energies are smooth as atoms leave). ``U_k`` are generalised
Clebsch-Gordan couplings (:mod:`symformer.models._mace_product`); each channel is contracted
with itself (``A_i`` to the power ``nu`` within one channel) and the weights depend on the element
of atom ``i``. Hidden features are ``0e+1o`` (``lmax_hidden=1``) as in the paper's default, and
scalars only after the last interaction.

Backbone contract (shared with :mod:`symformer.models.nequip`)::

    forward(atomic_numbers (N,) long, edge_index (2, E) long [source j, target i],
            edge_vec (E, 3) = pos_i - pos_j (+ shift), batch (N,) long) -> energies (N,)
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from symformer.groups import O3, Symmetric
from symformer.layers.linear import EquivariantLinear
from symformer.primitives import (bessel_basis, clebsch_gordan, polynomial_cutoff,
                                  scatter_sum, sh_path_list, spherical_harmonics)

from ..registry import register
from ._mace_product import SymmetricContraction, path_tensor, symmetric_paths
from .potential import (FORCES_FLOAT32_TOLERANCE, POTENTIAL_IN_TYPES, POTENTIAL_OUT_TYPES,
                        Potential, potential_example_inputs, potential_group)

__all__ = ["MACE", "MACEPotential", "MACEInteraction", "SymmetricContraction", "symmetric_paths",
           "path_tensor", "BACKBONE_IN_TYPES", "RadialEmbedding", "EdgeConvolution", "ElementIndex",
           "ElementLinear", "check_backbone_inputs", "molecule_example", "backbone_group",
           "AtomicBackbone"]

BACKBONE_IN_TYPES = {"atomic_numbers": "node:scalar", "edge_index": "edge_index",
                     "edge_vec": "vector", "batch": "node:scalar"}
EXAMPLE_ATOMS = 6


def backbone_group(module=None):
    """O(3) x S_6: rotations and reflections of the edge vectors, relabelling of the atoms."""
    return O3() * Symmetric(EXAMPLE_ATOMS)


def molecule_example(module, generator: torch.Generator, dtype: torch.dtype) -> dict:
    """One random molecule of 6 atoms of the module's elements, edges within its cutoff."""
    n = EXAMPLE_ATOMS
    elements = torch.tensor(module.elements)
    z = elements[torch.randint(len(elements), (n,), generator=generator)]
    pos = 1.5 * torch.randn(n, 3, generator=generator, dtype=torch.float64)
    src, dst = torch.triu_indices(n, n, 1)
    src, dst = torch.cat([src, dst]), torch.cat([dst, src])
    vec = pos[dst] - pos[src]
    keep = vec.norm(dim=-1) < module.cutoff
    return {"atomic_numbers": z, "edge_index": torch.stack([src[keep], dst[keep]]),
            "edge_vec": vec[keep].to(dtype), "batch": torch.zeros(n, dtype=torch.long)}


def check_backbone_inputs(atomic_numbers: Tensor, edge_index: Tensor, edge_vec: Tensor,
                          batch: Tensor) -> None:
    """Raise ValueError/TypeError naming the argument unless the shapes follow the contract."""
    for name, t in (("atomic_numbers", atomic_numbers), ("edge_index", edge_index),
                    ("batch", batch)):
        if not isinstance(t, Tensor) or t.dtype not in (torch.long, torch.int):
            raise TypeError(f"{name} must be an integer tensor, got "
                            f"{getattr(t, 'dtype', type(t).__name__)}")
    n = atomic_numbers.shape[0]
    if atomic_numbers.dim() != 1 or batch.shape != (n,):
        raise ValueError(f"atomic_numbers and batch must have shape (N,), got "
                         f"{tuple(atomic_numbers.shape)} and {tuple(batch.shape)}")
    if edge_index.dim() != 2 or edge_index.shape[0] != 2:
        raise ValueError(f"edge_index must have shape (2, E), got {tuple(edge_index.shape)}")
    if not isinstance(edge_vec, Tensor) or not edge_vec.is_floating_point():
        raise TypeError(f"edge_vec must be a floating-point tensor, got "
                        f"{getattr(edge_vec, 'dtype', type(edge_vec).__name__)}")
    if edge_vec.shape != (edge_index.shape[1], 3):
        raise ValueError(f"edge_vec must have shape (E, 3) = ({edge_index.shape[1]}, 3), got "
                         f"{tuple(edge_vec.shape)}")


class ElementIndex(nn.Module):
    """Map atomic numbers to indices ``0 .. len(elements) - 1`` (ValueError on others)."""

    def __init__(self, elements):
        super().__init__()
        elements = [int(e) for e in elements]
        if not elements or len(set(elements)) != len(elements) or min(elements) < 1:
            raise ValueError(f"elements must be distinct atomic numbers >= 1, got {elements}")
        self.elements = elements
        table = torch.full((max(elements) + 1,), -1, dtype=torch.long)
        table[torch.tensor(elements)] = torch.arange(len(elements))
        self.register_buffer("table", table, persistent=False)

    def forward(self, atomic_numbers: Tensor) -> Tensor:
        """atomic_numbers : (N,) long -> (N,) long indices."""
        z = atomic_numbers.long()
        ok = (z >= 0) & (z < self.table.shape[0])
        idx = self.table[torch.where(ok, z, torch.zeros_like(z))]
        if bool((~ok | (idx < 0)).any()):
            bad = sorted(set(atomic_numbers[~ok | (idx < 0)].tolist()))
            raise ValueError(f"atomic_numbers holds elements {bad} outside the model's "
                             f"elements {self.elements}")
        return idx


class RadialEmbedding(nn.Module):
    """Bessel basis times polynomial cutoff, then an MLP to per-path, per-channel weights.

    ``forward(r) -> (E, out_features)``; the envelope multiplies the MLP's output, so the
    weights (and everything a far atom contributes) go to 0 smoothly (C^2) at the cutoff.
    """

    def __init__(self, *, cutoff: float, num_basis: int, hidden: tuple[int, ...],
                 out_features: int, p: int = 5):
        super().__init__()
        self.cutoff, self.num_basis, self.p = float(cutoff), num_basis, p
        dims = [num_basis, *hidden]
        layers: list[nn.Module] = []
        for a, b in zip(dims[:-1], dims[1:]):
            layers += [nn.Linear(a, b, bias=False), nn.SiLU()]
        layers.append(nn.Linear(dims[-1], out_features, bias=False))
        linears = [m for m in layers if isinstance(m, nn.Linear)]
        for i, layer in enumerate(linears):
            # Unit-scale outputs at init (torch's default shrinks each layer ~3x): 1 / E[silu(x)^2]
            # = 2.8 for unit normal x, and the Bessel inputs have RMS ~ 0.4 on [0, c].
            gain = (1.0 if i == len(linears) - 1 else 2.8) * (6.0 if i == 0 else 1.0)
            nn.init.normal_(layer.weight, std=math.sqrt(gain / layer.in_features))
        self.mlp = nn.Sequential(*layers)

    def forward(self, r: Tensor) -> Tensor:
        """r : (E,) distances -> (E, out_features)."""
        env = polynomial_cutoff(r, self.cutoff, self.p)[:, None]        # [E, 1]
        return self.mlp(bessel_basis(r, self.num_basis, self.cutoff)) * env


class ElementLinear(nn.Module):
    """Element-dependent channel mixing per degree: ``y_l = x_l W_{z, l}`` (MACE's skip)."""

    def __init__(self, *, lmax: int, num_elements: int, channels: int):
        super().__init__()
        self.lmax = lmax
        self.weight = nn.Parameter(torch.randn(lmax + 1, num_elements, channels, channels)
                                   / math.sqrt(channels))

    def forward(self, x: Tensor, onehot: Tensor) -> Tensor:
        """x : (N, >= (lmax+1)^2, C), onehot : (N, elements) -> (N, (lmax+1)^2, C)."""
        out = []
        for l in range(self.lmax + 1):
            w = (onehot @ self.weight[l].flatten(1)).unflatten(1, self.weight.shape[-2:])
            out.append(x[:, l * l:(l + 1) ** 2] @ w)                       # [N, 2l+1, C]
        return torch.cat(out, dim=1)


class EdgeConvolution(nn.Module):
    """Sum over neighbours of radially weighted CG products ``R_p(r_ij) (Y(r_ij) (x) x_j)_p``.

    Paths ``p = (l1, l2, l3)`` couple degree ``l1`` of ``x`` with degree ``l2`` of the edge
    harmonics into ``l3`` (natural parity only), channel by channel, each scaled per channel by
    the radial MLP. With ``q = (p, i)`` running over the paths and the components of their input
    degree, every edge computes ``msg[k, c] = sum_q T[k, q] (w[p, c] x_j[i, c])``, where
    ``T = Y(r_ij) . CG`` carries no channels: one table product and one batched matrix product
    for all paths.
    """

    def __init__(self, *, lmax_in: int, lmax_sh: int, lmax_out: int, channels: int,
                 cutoff: float, num_bessel: int, radial_hidden: tuple[int, ...]):
        super().__init__()
        self.lmax_out = lmax_out
        self.paths = sh_path_list(lmax_in, lmax_sh, lmax_out, parity=True)
        self.radial = RadialEmbedding(cutoff=cutoff, num_basis=num_bessel, hidden=radial_hidden,
                                      out_features=len(self.paths) * channels)
        rows_sh, rows_out = (lmax_sh + 1) ** 2, (lmax_out + 1) ** 2
        q_path, q_row = [], []
        table = []                                          # per q: [rows_sh, rows_out]
        for p, (l1, l2, l3) in enumerate(self.paths):
            cg = clebsch_gordan(l1, l2, l3, torch.float64) * math.sqrt(2 * l3 + 1)
            for i in range(2 * l1 + 1):
                t = torch.zeros(rows_sh, rows_out, dtype=torch.float64)
                t[l2 * l2:(l2 + 1) ** 2, l3 * l3:(l3 + 1) ** 2] = cg[i]
                table.append(t)
                q_path.append(p)
                q_row.append(l1 * l1 + i)
        self.register_buffer("table", torch.stack(table, -1).flatten(1), persistent=False)
        self.register_buffer("q_path", torch.tensor(q_path), persistent=False)
        self.register_buffer("q_row", torch.tensor(q_row), persistent=False)

    def forward(self, x: Tensor, edge_index: Tensor, sh: Tensor, r: Tensor) -> Tensor:
        """x : (N, (lmax_in+1)^2, C), sh : (E, (lmax_sh+1)^2), r : (E,)
        -> (N, (lmax_out+1)^2, C)."""
        src, dst = edge_index
        w = self.radial(r).unflatten(-1, (len(self.paths), -1))          # [E, P, C]
        # [E, Q, C]; index_select (not x[src]): its backward is an index_add, not an index_put
        u = w.index_select(1, self.q_path) * x.index_select(1, self.q_row).index_select(0, src)
        t = (sh @ self.table.to(sh.dtype)).unflatten(-1, ((self.lmax_out + 1) ** 2, -1))
        return scatter_sum(torch.bmm(t, u), dst, x.shape[0])              # [N, rows_out, C]


class AtomicBackbone(nn.Module):
    """Shared stem of the MACE and NequIP backbones: checked config, element one-hot embedding
    and the edge lengths and harmonics of the backbone contract.

    Parameters (keyword-only)
    ----------
    ints : sequence of (name, value, lowest allowed)
        Integer hyper-parameters, checked in order (ValueError naming the first bad one).
    elements, channels, lmax_sh, cutoff, avg_num_neighbors :
        As in :class:`MACE`; ``avg_num_neighbors`` is only checked here.
    """

    def __init__(self, *, ints, elements, channels: int, lmax_sh: int, cutoff: float,
                 avg_num_neighbors: float):
        super().__init__()
        for name, v, low in ints:
            if isinstance(v, bool) or not isinstance(v, int) or v < low:
                raise ValueError(f"{name}: expected an int >= {low}, got {v!r}")
        if not cutoff > 0 or not avg_num_neighbors > 0:
            raise ValueError(f"cutoff and avg_num_neighbors must be positive, got {cutoff!r} "
                             f"and {avg_num_neighbors!r}")
        self.element_index = ElementIndex(elements)
        self.elements = self.element_index.elements
        self.cutoff, self.lmax_sh = float(cutoff), lmax_sh
        self.embedding = nn.Linear(len(self.elements), channels, bias=False)
        nn.init.normal_(self.embedding.weight)      # unit-scale scalar features per element

    def embed(self, atomic_numbers: Tensor, edge_index: Tensor, edge_vec: Tensor,
              batch: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """Checked contract inputs -> ``onehot`` (N, elements), ``r`` (E,), ``sh``
        (E, (lmax_sh+1)^2) and the embedded features ``h`` (N, 1, C)."""
        check_backbone_inputs(atomic_numbers, edge_index, edge_vec, batch)
        onehot = nn.functional.one_hot(self.element_index(atomic_numbers),
                                       len(self.elements)).to(edge_vec.dtype)   # [N, elements]
        r = (edge_vec * edge_vec).sum(-1).clamp_min(0).add(1e-30).sqrt()       # [E]
        sh = spherical_harmonics(self.lmax_sh, edge_vec)                      # [E, (Lsh+1)^2]
        h = self.embedding(onehot)[:, None, :]                                # [N, 1, C]
        return onehot, r, sh, h


class MACEInteraction(nn.Module):
    """Atomic basis ``A`` from neighbours, symmetric contraction ``B``, linear update + skip."""

    def __init__(self, *, lmax_in: int, lmax_out: int, lmax_sh: int, lmax_a: int,
                 channels: int, correlation: int, num_elements: int, cutoff: float,
                 num_bessel: int, radial_hidden: tuple[int, ...], avg_num_neighbors: float,
                 skip: bool):
        super().__init__()
        self.lmax_sh, self.lmax_a, self.avg = lmax_sh, lmax_a, float(avg_num_neighbors)
        self.up = EquivariantLinear(lmax=lmax_in, in_channels=channels, out_channels=channels,
                                    bias=False)
        self.conv = EdgeConvolution(lmax_in=lmax_in, lmax_sh=lmax_sh, lmax_out=lmax_a,
                                    channels=channels, cutoff=cutoff, num_bessel=num_bessel,
                                    radial_hidden=radial_hidden)
        self.linear_a = EquivariantLinear(lmax=lmax_a, in_channels=channels,
                                          out_channels=channels, bias=False)
        self.product = SymmetricContraction(lmax_in=lmax_a, lmax_out=lmax_out,
                                            channels=channels, correlation=correlation,
                                            num_elements=num_elements)
        self.linear_b = EquivariantLinear(lmax=lmax_out, in_channels=channels,
                                          out_channels=channels, bias=False)
        self.skip = ElementLinear(lmax=min(lmax_in, lmax_out), num_elements=num_elements,
                                  channels=channels) if skip else None
        self.lmax_out = lmax_out

    def atomic_basis(self, h: Tensor, edge_index: Tensor, sh: Tensor, r: Tensor) -> Tensor:
        """h : (N, (lmax_in+1)^2, C) -> A : (N, (lmax_a+1)^2, C)."""
        a = self.conv(self.up(h), edge_index, sh, r) / self.avg           # [N, (La+1)^2, C]
        return self.linear_a(a)

    def forward(self, h: Tensor, onehot: Tensor, edge_index: Tensor, sh: Tensor,
                r: Tensor) -> Tensor:
        """h : (N, (lmax_in+1)^2, C) -> (N, (lmax_out+1)^2, C)."""
        a = self.atomic_basis(h, edge_index, sh, r)
        out = self.linear_b(self.product(a, onehot))                      # [N, (Lo+1)^2, C]
        if self.skip is not None:
            sc = self.skip(h, onehot)
            out = torch.cat([out[:, :sc.shape[1]] + sc, out[:, sc.shape[1]:]], dim=1)
        return out


@register("mace_backbone", group=backbone_group, in_types=BACKBONE_IN_TYPES,
          out_types="node:scalar", example_inputs=molecule_example,
          description="MACE backbone: per-atom energies from atomic numbers and edge vectors",
          tags=("potential-backbone",))
class MACE(AtomicBackbone):
    """MACE backbone (see the module docstring); per-atom energies ``(N,)``.

    Parameters
    ----------
    elements : sequence of int
        Atomic numbers the model knows (one-hot embedding; element-dependent weights).
    channels : int
        Channels C of every degree (paper: 128; the default is a small CPU config).
    lmax_sh : int
        Degree of the edge spherical harmonics (paper: 3).
    lmax_a : int, optional
        Degree of the atomic basis A (default ``lmax_sh``).
    lmax_hidden : int
        Degree of the hidden features between interactions (1: ``0e+1o``; 2: ``+2e``).
    correlation : int
        Body order of the product basis minus one (paper: 3).
    num_interactions : int
        Interaction blocks (paper: 2).
    cutoff : float
        Radial cutoff in Angstrom.
    num_bessel : int
        Bessel functions of the radial basis.
    radial_hidden : sequence of int
        Hidden widths of the radial MLPs (paper: 64, 64, 64).
    readout_hidden : int
        Hidden width of the last, non-linear readout (paper: 16).
    avg_num_neighbors : float
        Divides the neighbour sums (set it from the training data).
    """

    def __init__(self, *, elements=(1, 6, 7, 8), channels: int = 16, lmax_sh: int = 3,
                 lmax_a: int | None = None, lmax_hidden: int = 1, correlation: int = 3,
                 num_interactions: int = 2, cutoff: float = 5.0, num_bessel: int = 8,
                 radial_hidden=(32, 32), readout_hidden: int = 16,
                 avg_num_neighbors: float = 8.0):
        lmax_a = lmax_sh if lmax_a is None else lmax_a
        super().__init__(ints=(("channels", channels, 1), ("lmax_sh", lmax_sh, 0),
                               ("lmax_a", lmax_a, 0), ("lmax_hidden", lmax_hidden, 0),
                               ("correlation", correlation, 1),
                               ("num_interactions", num_interactions, 1),
                               ("num_bessel", num_bessel, 1),
                               ("readout_hidden", readout_hidden, 1)),
                         elements=elements, channels=channels, lmax_sh=lmax_sh, cutoff=cutoff,
                         avg_num_neighbors=avg_num_neighbors)
        ne = len(self.elements)
        self.interactions = nn.ModuleList()
        self.readouts = nn.ModuleList()
        for t in range(num_interactions):
            last = t == num_interactions - 1
            self.interactions.append(MACEInteraction(
                lmax_in=0 if t == 0 else lmax_hidden, lmax_out=0 if last else lmax_hidden,
                lmax_sh=lmax_sh, lmax_a=lmax_a, channels=channels, correlation=correlation,
                num_elements=ne, cutoff=cutoff, num_bessel=num_bessel,
                radial_hidden=tuple(radial_hidden), avg_num_neighbors=avg_num_neighbors,
                skip=t > 0))
            self.readouts.append(
                nn.Sequential(nn.Linear(channels, readout_hidden), nn.SiLU(),
                              nn.Linear(readout_hidden, 1)) if last
                else nn.Linear(channels, 1, bias=False))

    def forward(self, atomic_numbers: Tensor, edge_index: Tensor, edge_vec: Tensor,
                batch: Tensor) -> Tensor:
        """Per-atom energies (N,); see the module docstring for the inputs."""
        onehot, r, sh, h = self.embed(atomic_numbers, edge_index, edge_vec, batch)
        energy = edge_vec.new_zeros(atomic_numbers.shape[0])
        for interaction, readout in zip(self.interactions, self.readouts):
            h = interaction(h, onehot, edge_index, sh, r)                      # [N, rows, C]
            energy = energy + readout(h[:, 0, :]).squeeze(-1)
        return energy


@register("mace", group=potential_group, in_types=POTENTIAL_IN_TYPES,
          out_types=POTENTIAL_OUT_TYPES, example_inputs=potential_example_inputs,
          float32_tolerance=FORCES_FLOAT32_TOLERANCE,
          description="MACE potential (Batatia et al. 2022): energy, forces = -dE/dpos, stress",
          tags=("potential", "e3", "body-order"))
class MACEPotential(Potential):
    """Conservative MACE potential; keyword config as :class:`MACE`."""

    def __init__(self, *, elements=(1, 6, 7, 8), channels: int = 16, lmax_sh: int = 3,
                 lmax_a: int | None = None, lmax_hidden: int = 1, correlation: int = 3,
                 num_interactions: int = 2, cutoff: float = 5.0, num_bessel: int = 8,
                 radial_hidden=(32, 32), readout_hidden: int = 16,
                 avg_num_neighbors: float = 8.0):
        super().__init__(MACE(elements=elements, channels=channels, lmax_sh=lmax_sh,
                              lmax_a=lmax_a, lmax_hidden=lmax_hidden, correlation=correlation,
                              num_interactions=num_interactions, cutoff=cutoff,
                              num_bessel=num_bessel, radial_hidden=radial_hidden,
                              readout_hidden=readout_hidden,
                              avg_num_neighbors=avg_num_neighbors))
