"""ASE calculator for symformer potentials (a thin adapter; needs ``ase``).

::

    from symformer.integrations.ase import Calculator
    atoms.calc = Calculator("benchmarks/checkpoints/rmd17/ethanol.pt")
    atoms.get_potential_energy()  # eV
    atoms.get_forces()            # eV/Angstrom
    atoms.get_stress()            # eV/Angstrom^3, Voigt order, when atoms has a cell and pbc

The model part of the energy is computed in the model's dtype; the per-element reference
energies are added in float64 so that total energies keep their precision.
"""

from __future__ import annotations

import numpy as np
import torch
from ase.calculators.calculator import Calculator as _AseCalculator
from ase.calculators.calculator import all_changes
from ase.stress import full_3x3_to_voigt_6_stress

__all__ = ["Calculator"]


class Calculator(_AseCalculator):
    """Energy (eV), forces (eV/Angstrom) and stress (eV/Angstrom^3) from a symformer potential.

    Parameters
    ----------
    checkpoint_path : path, optional
        A checkpoint written by ``symformer train`` (``model.pt``) or :func:`symformer.save`.
    model : Potential, optional
        An already built potential instead of a checkpoint.
    device : str or torch.device
        Where the model runs ("cpu", "cuda", ...).
    dtype : torch.dtype, optional
        Cast the model (e.g. ``torch.float64`` for finite-difference checks).
    """

    implemented_properties = ["energy", "free_energy", "forces", "stress"]

    def __init__(self, checkpoint_path=None, *, model=None, device="cpu", dtype=None, **kwargs):
        super().__init__(**kwargs)
        from ..models.potential import Potential

        if (checkpoint_path is None) == (model is None):
            raise ValueError("checkpoint_path: give a checkpoint path or model=, not both")
        if model is None:
            from ..checkpoint import load

            model = load(checkpoint_path, map_location=device)
        if not isinstance(model, Potential):
            raise TypeError(f"checkpoint_path: expected a symformer Potential model, got "
                            f"{type(model).__name__}")
        model = model.to(device).eval()
        if dtype is not None:
            model = model.to(dtype)
        self.model, self.device = model, torch.device(device)
        self.dtype = next(model.parameters()).dtype
        self._e0 = model.atomic_energies.detach().cpu().double().numpy()

    def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes):
        super().calculate(atoms, properties, system_changes)
        a = self.atoms
        z = torch.as_tensor(a.numbers, dtype=torch.long, device=self.device)
        pos = torch.as_tensor(a.positions, dtype=self.dtype, device=self.device)
        periodic = bool(a.pbc.any())
        cell = (torch.as_tensor(np.asarray(a.cell[:]), dtype=self.dtype, device=self.device)
                if periodic else None)
        want_stress = periodic and "stress" in properties
        if "stress" in properties and not periodic:
            raise ValueError("atoms: stress needs a cell with periodic boundary conditions")
        out = self.model(z, pos, cell=cell, pbc=[bool(p) for p in a.pbc],
                         compute_forces=True, compute_stress=want_stress, add_reference=False)
        energy = float(out["energy"].detach().double().sum()) + float(self._e0[a.numbers].sum())
        self.results["energy"] = self.results["free_energy"] = energy
        self.results["forces"] = out["forces"].detach().double().cpu().numpy()
        if want_stress:
            s = out["stress"].detach().double().cpu().numpy()[0]
            self.results["stress"] = full_3x3_to_voigt_6_stress(s)
