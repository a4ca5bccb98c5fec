"""Conservative interatomic potentials: a wrapper turning per-atom energies into energy, forces
and stress, and the TorchMD-ET energy backbone.

Backbone contract
-----------------
An interatomic-potential backbone is an nn.Module with
`forward(atomic_numbers: Long (N,), edge_index: Long (2, E) [row 0 = source j, row 1 = target i], edge_vec: (E, 3) = pos[i] - pos[j] + shift, batch: Long (N,)) -> per-atom energies (N,)`
(invariant scalars), with attributes `cutoff: float` and `num_elements`/`max_z` as needed. The Potential wrapper builds the
(periodic) radius graph from pos/cell with symformer.data.graphs, computes edge_vec differentiably from pos (and cell through a
strain/displacement for stress), applies per-element reference energies + per-atom scale/shift, sums per system, and returns
energy (B,), forces = -dE/dpos (N,3) (create_graph in training), stress (B,3,3) with a cell.

Here ``shift = -edge_shift @ cell`` for periodic graphs (the source is the image ``pos[j] +
edge_shift @ cell`` of :func:`symformer.data.periodic_radius_graph`), so ``edge_vec`` always
points from the source image to the target: ``edge_vec = pos[i] - (pos[j] + edge_shift @ cell)``.
``batch`` given to a backbone is sorted. Units are the user's (eV and Angstrom for the packaged
data sets and the ASE calculator).

Total energy of system b::

    E_b = sum_{i in b} ( scale * e_i + shift + E0[z_i] )

with ``e_i`` the backbone's output and ``E0``, ``scale``, ``shift`` buffers fitted from training
data (:meth:`Potential.set_energy_stats`); forces are ``-dE/dpos`` and the stress is
``(1/V) dE/d(strain)`` (ASE's sign convention; the pressure is ``-trace(stress) / 3``).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from symformer.data.graphs import periodic_radius_graph, radius_graph
from symformer.groups import E3, Symmetric
from symformer.primitives import cosine_cutoff

from ..registry import register
from ._checks import check_integer_dtype, check_point_cloud
from .torchmd_et import (ETAttention, GatedEquivariantBlock, _safe_norm, _xavier, expnorm_basis,
                         shared_edge_rows)

__all__ = ["Potential", "TorchMDETBackbone", "TorchMDETPotential", "POTENTIAL_IN_TYPES",
           "POTENTIAL_OUT_TYPES", "EXAMPLE_ATOMS", "potential_example_inputs",
           "potential_group", "MAX_Z", "FORCES_FLOAT32_TOLERANCE"]

MAX_Z = 118
POTENTIAL_IN_TYPES = {"atomic_numbers": "node:scalar", "pos": "node:point", "batch": "node:scalar"}
POTENTIAL_OUT_TYPES = {"energy": "scalar", "forces": "node:vector"}
EXAMPLE_ATOMS = (5, 4)  # two small molecules, 9 atoms
# Float32 equivariance tolerance of the conservative potentials. Forces are gradients: each one
# sums per-edge terms that largely cancel at random init, and the relative error is taken
# against max|F|, which is then small (0.02-0.5 against energies of 0.5-2). Measured on the
# example molecules over weight and input seeds: up to 4e-5 for TorchMD-ET (whose steep
# expanded-normal basis also amplifies the rounding of exp(-alpha r)) and 2e-5 for the
# Equiformer potential, on the CPU; float64 stays below 1e-13, so the models are exact.
FORCES_FLOAT32_TOLERANCE = 1e-4


def potential_example_inputs(module, generator: torch.Generator, dtype: torch.dtype) -> dict:
    """Two random molecules (5 and 4 atoms of H, C, N, O) with bond-like spacings."""
    n = sum(EXAMPLE_ATOMS)
    z = torch.tensor([1, 6, 7, 8])[torch.randint(0, 4, (n,), generator=generator)]
    pos = 1.2 * torch.randn(n, 3, generator=generator, dtype=torch.float64)
    batch = torch.repeat_interleave(torch.arange(len(EXAMPLE_ATOMS)), torch.tensor(EXAMPLE_ATOMS))
    return {"atomic_numbers": z, "pos": pos.to(dtype), "batch": batch}


def potential_group():
    """E(3) x S_N on the example inputs (energy invariant, forces equivariant)."""
    return E3() * Symmetric(sum(EXAMPLE_ATOMS))


def _check_inputs(atomic_numbers, pos, batch, cell, max_z) -> None:
    n = check_point_cloud(atomic_numbers=atomic_numbers, pos=pos, batch=batch)
    for name, x in (("atomic_numbers", atomic_numbers), ("batch", batch)):
        check_integer_dtype(name, x)
        if x.shape != (n,):
            raise ValueError(f"{name}: expected shape ({n},) like pos, got {tuple(x.shape)}")
    if n and (int(atomic_numbers.min()) < 1 or int(atomic_numbers.max()) > max_z):
        raise ValueError(f"atomic_numbers: expected values in 1..{max_z}, got "
                         f"{int(atomic_numbers.min())}..{int(atomic_numbers.max())}")
    if n and int(batch.min()) < 0:
        raise ValueError("batch: expected non-negative system indices")
    if not bool(torch.isfinite(pos).all()):
        raise ValueError("pos: contains NaN or infinite values")
    if cell is not None:
        if not isinstance(cell, Tensor) or cell.dtype != pos.dtype:
            raise TypeError(f"cell: expected a tensor of dtype {pos.dtype} like pos")
        if cell.shape[-2:] != (3, 3) or cell.ndim not in (2, 3):
            raise ValueError(f"cell: expected shape (B, 3, 3) or (3, 3), got {tuple(cell.shape)}")


class Potential(nn.Module):
    """Energy, forces and stress from any backbone following the contract above.

    Parameters
    ----------
    backbone : nn.Module
        Per-atom energy model with a ``cutoff`` attribute.
    max_z : int
        Largest atomic number of the reference-energy table (118).
    """

    def __init__(self, backbone: nn.Module, *, max_z: int = MAX_Z):
        super().__init__()
        cutoff = getattr(backbone, "cutoff", None)
        if isinstance(cutoff, bool) or not isinstance(cutoff, (int, float)) or not cutoff > 0:
            raise ValueError(f"backbone: needs a positive float attribute 'cutoff', got {cutoff!r}")
        self.backbone, self.cutoff = backbone, float(cutoff)
        self.max_z = int(getattr(backbone, "max_z", max_z))
        self.register_buffer("atomic_energies", torch.zeros(MAX_Z + 1))
        self.register_buffer("scale", torch.ones(()))
        self.register_buffer("shift", torch.zeros(()))

    @torch.no_grad()
    def set_energy_stats(self, atomic_energies: Tensor | dict | None = None,
                         scale: float | None = None, shift: float | None = None) -> None:
        """Set the reference energies ``E0[z]`` (tensor ``(max_z+1,)`` or ``{z: E0}``) and the
        per-atom ``scale``/``shift`` (fitted on training data, see :mod:`symformer.train.molecules`)."""
        if atomic_energies is not None:
            table = torch.zeros_like(self.atomic_energies)
            if isinstance(atomic_energies, dict):
                for z, e in atomic_energies.items():
                    table[int(z)] = float(e)
            else:
                e = torch.as_tensor(atomic_energies, dtype=table.dtype)
                table[:e.shape[0]] = e
            self.atomic_energies.copy_(table)
        if scale is not None:
            if not scale > 0:
                raise ValueError(f"scale: expected a positive number, got {scale!r}")
            self.scale.fill_(float(scale))
        if shift is not None:
            self.shift.fill_(float(shift))

    def reference_energy(self, atomic_numbers: Tensor, batch: Tensor, num_graphs: int) -> Tensor:
        """``sum_{i in b} E0[z_i]``, shape (B,), in the dtype of the buffers."""
        e0 = self.atomic_energies[atomic_numbers]
        return e0.new_zeros(num_graphs).index_add(0, batch, e0)

    def forward(self, atomic_numbers: Tensor, pos: Tensor, batch: Tensor | None = None,
                cell: Tensor | None = None, pbc=True, compute_forces: bool = True,
                compute_stress: bool | None = None, add_reference: bool = True,
                num_graphs: int | None = None) -> dict[str, Tensor]:
        """
        Parameters
        ----------
        atomic_numbers : Tensor, shape (N,), integer in 1..max_z.
        pos : Tensor, shape (N, 3), Angstrom.
        batch : Tensor, shape (N,), optional system index of each atom (need not be sorted).
        cell : Tensor, shape (B, 3, 3) or (3, 3), optional; rows are lattice vectors.
        pbc : bool or 3 bools; periodic axes when ``cell`` is given.
        compute_forces : bool; compute_stress : bool, default True iff ``cell`` is given.
        add_reference : bool; include ``sum E0[z_i]`` (training compares without it, in float64).
        num_graphs : int, optional; B (default ``batch.max() + 1``).

        Returns
        -------
        dict with ``energy`` (B,), ``forces`` (N, 3) and, with stress, ``stress`` (B, 3, 3).
        """
        n = pos.shape[0] if isinstance(pos, Tensor) and pos.ndim == 2 else 0
        if batch is None:
            batch = torch.zeros(n, dtype=torch.long, device=getattr(pos, "device", None))
        _check_inputs(atomic_numbers, pos, batch, cell, self.max_z)
        batch = batch.long()
        b = int(num_graphs) if num_graphs is not None else (int(batch.max()) + 1 if n else 0)
        compute_stress = cell is not None if compute_stress is None else compute_stress
        if compute_stress and cell is None:
            raise ValueError("compute_stress: needs a cell")
        order = None
        if n > 1 and bool((batch[1:] < batch[:-1]).any()):
            order = torch.argsort(batch, stable=True)  # graph builders need contiguous systems
            atomic_numbers, pos, batch = atomic_numbers[order], pos[order], batch[order]
        need_graph = self.training or pos.requires_grad  # higher derivatives (force loss)
        with torch.enable_grad():
            pos_in = pos if pos.requires_grad else pos.detach().requires_grad_(True)
            cells = None if cell is None else (cell if cell.ndim == 3 else cell.expand(b, 3, 3))
            strain = None
            p, c = pos_in, cells
            if compute_stress:
                strain = torch.zeros(b, 3, 3, dtype=pos.dtype, device=pos.device,
                                     requires_grad=True)
                sym = 0.5 * (strain + strain.transpose(1, 2))
                p = pos_in + torch.einsum("nk,nkd->nd", pos_in, sym[batch])
                c = cells + cells @ sym
            energy = self._energy(atomic_numbers, p, batch, c, pbc, b)  # [B]
            out = {}
            inputs = [pos_in] + ([strain] if strain is not None else [])
            if (compute_forces or compute_stress) and energy.requires_grad:
                grads = torch.autograd.grad(energy.sum(), inputs, create_graph=need_graph,
                                            allow_unused=True)
            else:
                grads = [None] * len(inputs)
        if compute_forces:
            f = -grads[0] if grads[0] is not None else torch.zeros_like(pos)
            out["forces"] = f if order is None else torch.empty_like(f).index_copy(0, order, f)
        if compute_stress:
            vol = torch.linalg.det(cells).abs()
            g = grads[1] if grads[1] is not None else torch.zeros_like(cells)
            out["stress"] = g / vol[:, None, None]
        if add_reference:
            energy = energy + self.reference_energy(atomic_numbers, batch, b).to(energy.dtype)
        out["energy"] = energy
        if not need_graph:  # inference: hand back plain values, not the autograd graph
            out = {k: v.detach() for k, v in out.items()}
        return out

    def _energy(self, z: Tensor, pos: Tensor, batch: Tensor, cell: Tensor | None, pbc,
                b: int) -> Tensor:
        """Per-system energy without reference energies, shape (B,), differentiable."""
        with torch.no_grad():
            if cell is None:
                edge_index = radius_graph(pos.detach(), self.cutoff, batch)
                shift = None
            else:
                edge_index, shift = periodic_radius_graph(pos.detach(), self.cutoff,
                                                          cell.detach(), batch, pbc=pbc)
        src, dst = edge_index
        edge_vec = pos[dst] - pos[src]  # [E, 3]
        if shift is not None:
            edge_vec = edge_vec - torch.einsum("ek,ekd->ed", shift.to(pos.dtype), cell[batch[dst]])
        e = self.backbone(z, edge_index, edge_vec, batch)  # [N]
        e = self.scale.to(e.dtype) * e + self.shift.to(e.dtype)
        return e.new_zeros(b).index_add(0, batch, e)


class TorchMDETBackbone(nn.Module):
    """TorchMD-ET (Thölke & De Fabritiis 2022) per-atom energies following the contract.

    Atom-type embedding plus TorchMD-NET's neighbour embedding, ``n_layers`` of
    :class:`~symformer.models.torchmd_et.ETAttention` on the radius graph, and the gated
    equivariant output head (``EquivariantScalar``). Edge features are the expanded-normal RBF
    times the cosine cutoff; the value filters have no bias so that every message (scalar and
    vector) vanishes smoothly at the cutoff and the energy is continuous in the atom positions.
    """

    def __init__(self, *, hidden: int = 128, n_layers: int = 6, heads: int = 8, num_rbf: int = 32,
                 cutoff: float = 5.0, max_z: int = 100):
        super().__init__()
        for name, val, low in (("hidden", hidden, 1), ("n_layers", n_layers, 0),
                               ("heads", heads, 1), ("num_rbf", num_rbf, 1), ("max_z", max_z, 1)):
            if isinstance(val, bool) or not isinstance(val, int) or val < low:
                raise ValueError(f"{name}: expected an int >= {low}, got {val!r}")
        if hidden % heads:
            raise ValueError(f"heads: must divide hidden={hidden}, got {heads}")
        if isinstance(cutoff, bool) or not isinstance(cutoff, (int, float)) or not cutoff > 0:
            raise ValueError(f"cutoff: expected a positive number, got {cutoff!r}")
        self.cutoff, self.num_rbf, self.max_z = float(cutoff), num_rbf, max_z
        self.embedding = nn.Embedding(max_z + 1, hidden)
        self.neighbor_embedding = nn.Embedding(max_z + 1, hidden)
        self.neighbor_filter = nn.Linear(num_rbf, hidden)
        self.neighbor_combine = nn.Linear(2 * hidden, hidden)
        _xavier(self.neighbor_filter, self.neighbor_combine)
        self.layers = nn.ModuleList(ETAttention(hidden, num_rbf, heads) for _ in range(n_layers))
        for layer in self.layers:
            layer.dv_proj.register_parameter("bias", None)  # silu(W f) -> 0 as f -> 0
        self.out_norm = nn.LayerNorm(hidden)
        self.head = nn.ModuleList([
            GatedEquivariantBlock(hidden, max(hidden // 2, 1), scalar_activation=True),
            GatedEquivariantBlock(max(hidden // 2, 1), 1, scalar_activation=False)])

    def forward(self, atomic_numbers: Tensor, edge_index: Tensor, edge_vec: Tensor,
                batch: Tensor) -> Tensor:
        """Per-atom energies (N,) (see the contract in the module docstring)."""
        src, dst = edge_index
        r = _safe_norm(edge_vec, dim=-1)  # [E]
        # ETAttention's d_ij points from target i to source j
        direction = -edge_vec / torch.where(r > 0, r, torch.ones_like(r))[:, None]  # [E, 3]
        envelope = cosine_cutoff(r, self.cutoff)  # [E]
        edge_attr = expnorm_basis(r, self.num_rbf, self.cutoff) * envelope[:, None]  # [E, R]
        x = self.embedding(atomic_numbers)  # [N, F]
        nb = self.neighbor_embedding(atomic_numbers)[src] * self.neighbor_filter(edge_attr)
        nb = nb * envelope[:, None]  # [E, F]
        x = self.neighbor_combine(torch.cat([x, x.new_zeros(x.shape).index_add(0, dst, nb)], -1))
        vec = x.new_zeros(x.shape[0], 3, x.shape[1])  # [N, 3, F]
        # the layers' distance filters once per node pair when both directions have bitwise
        # equal distances (always without a cell; periodic images of one pair may differ)
        rows, first = shared_edge_rows(src, dst, x.shape[0])
        if rows is not None and torch.equal(r.index_select(0, first)[rows], r):
            edge_attr = edge_attr.index_select(0, first)  # [U, R]
        else:
            rows = None
        for layer in self.layers:
            dx, dvec = layer(x, vec, edge_index, edge_attr, envelope, direction, rows)
            x, vec = x + dx, vec + dvec
        x = self.out_norm(x)
        for block in self.head:
            x, vec = block(x, vec)
        # 0 * vec keeps every parameter in the graph (TorchMD-NET's EquivariantScalar does too)
        return x[:, 0] + 0.0 * vec.sum(dim=(1, 2))  # [N]


@register("torchmd_et_potential", group=potential_group, in_types=POTENTIAL_IN_TYPES,
          out_types=POTENTIAL_OUT_TYPES, example_inputs=potential_example_inputs,
          float32_tolerance=FORCES_FLOAT32_TOLERANCE,
          description="TorchMD-ET energy model (Thölke & De Fabritiis 2022): energy, "
                      "forces = -dE/dpos and stress",
          tags=("potential", "e3", "attention"))
class TorchMDETPotential(Potential):
    """Conservative TorchMD-ET potential (keyword config as :class:`TorchMDETBackbone`)."""

    def __init__(self, *, hidden: int = 128, n_layers: int = 6, heads: int = 8, num_rbf: int = 32,
                 cutoff: float = 5.0, max_z: int = 100):
        super().__init__(TorchMDETBackbone(hidden=hidden, n_layers=n_layers, heads=heads,
                                           num_rbf=num_rbf, cutoff=cutoff, max_z=max_z))
