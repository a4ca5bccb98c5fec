"""NVE molecular dynamics (velocity Verlet) with an energy-drift and bond-integrity report.

::

    from symformer.integrations.ase import Calculator
    from symformer.integrations.md import run_nve
    report = run_nve(atoms, Calculator("ethanol.pt"), steps=10_000, timestep_fs=0.5,
                     temperature_K=300, seed=0)
    report["drift_per_atom_eV"], report["intact"]

Units are ASE's: positions Angstrom, energies eV, masses amu, time ``ase.units.fs``.
"""

from __future__ import annotations

import time

import numpy as np

__all__ = ["run_nve", "bonds_of"]


def bonds_of(atoms, factor: float = 1.2) -> np.ndarray:
    """Pairs ``(i, j)``, ``i < j``, closer than ``factor`` times the sum of covalent radii."""
    from ase.data import covalent_radii

    r = covalent_radii[atoms.numbers]
    d = atoms.get_all_distances()
    i, j = np.triu_indices(len(atoms), k=1)
    keep = d[i, j] < factor * (r[i] + r[j])
    return np.stack([i[keep], j[keep]], axis=1)


def run_nve(atoms, calculator, *, steps: int = 10_000, timestep_fs: float = 0.5,
            temperature_K: float = 300.0, seed: int = 0, log_every: int = 10,
            max_bond_stretch: float = 1.5) -> dict:
    """Integrate Newton's equations with velocity Verlet from Maxwell-Boltzmann velocities.

    Parameters
    ----------
    atoms : ase.Atoms
        Start geometry (copied; the caller's object is not changed).
    calculator : ase Calculator
    steps, timestep_fs : int, float
        Number and length of the steps.
    temperature_K : float
        Initial temperature (momenta drawn with ``seed``; centre-of-mass motion and rotation
        removed).
    log_every : int
        Steps between recorded energies.
    max_bond_stretch : float
        The molecule counts as intact while every bond of the start geometry stays shorter than
        this factor times its initial length and no two atoms come closer than half the sum of
        their covalent radii.

    Returns
    -------
    dict with ``time_fs``, ``total``, ``potential``, ``kinetic`` (eV, logged steps),
    ``drift_per_atom_eV`` (max ``|E(t) - E(0)| / N``), ``drift_slope_per_atom_eV_per_ps``
    (least-squares slope), ``intact`` (bool), ``first_broken_step`` (or None),
    ``max_bond_ratio``, ``seconds``.
    """
    from ase import units
    from ase.data import covalent_radii
    from ase.md import velocitydistribution as vd

    for name, v in (("steps", steps), ("log_every", log_every)):
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise ValueError(f"{name}: expected a positive int, got {v!r}")
    if not timestep_fs > 0:
        raise ValueError(f"timestep_fs: expected a positive number, got {timestep_fs!r}")
    atoms = atoms.copy()
    atoms.calc = calculator
    rng = np.random.default_rng(seed)
    if hasattr(vd, "thermalize_momenta"):  # ase >= 3.29
        vd.thermalize_momenta(atoms, temperature_K, rng=rng)
    else:
        vd.MaxwellBoltzmannDistribution(atoms, temperature_K=temperature_K, rng=rng)
    vd.Stationary(atoms)
    if len(atoms) > 2:
        vd.ZeroRotation(atoms)
    bonds = bonds_of(atoms)
    ref = np.linalg.norm(atoms.positions[bonds[:, 0]] - atoms.positions[bonds[:, 1]], axis=1)
    rad = covalent_radii[atoms.numbers]
    iu = np.triu_indices(len(atoms), k=1)
    min_dist = 0.5 * (rad[iu[0]] + rad[iu[1]])
    dt = timestep_fs * units.fs
    m = atoms.get_masses()[:, None]
    x, p = atoms.positions.copy(), atoms.get_momenta()
    f = atoms.get_forces()
    rec = {"time_fs": [], "total": [], "potential": [], "kinetic": []}
    first_broken, worst = None, 1.0
    t0 = time.perf_counter()
    for step in range(steps + 1):
        if step % log_every == 0 or step == steps:
            epot = atoms.get_potential_energy()
            ekin = float(0.5 * (p * p / m).sum())
            for k, v in (("time_fs", step * timestep_fs), ("total", epot + ekin),
                         ("potential", epot), ("kinetic", ekin)):
                rec[k].append(float(v))
            d = atoms.get_all_distances()
            ratio = float((d[bonds[:, 0], bonds[:, 1]] / ref).max()) if len(bonds) else 1.0
            worst = max(worst, ratio)
            if first_broken is None and (ratio > max_bond_stretch or
                                         bool((d[iu] < min_dist).any())):
                first_broken = step
        if step == steps:
            break
        p = p + 0.5 * dt * f
        x = x + dt * p / m
        atoms.positions = x
        f = atoms.get_forces()
        p = p + 0.5 * dt * f
    tot = np.asarray(rec["total"])
    n = len(atoms)
    t_ps = np.asarray(rec["time_fs"]) / 1000.0
    slope = float(np.polyfit(t_ps, tot, 1)[0]) / n if len(tot) > 1 else 0.0
    return {**rec, "drift_per_atom_eV": float(np.abs(tot - tot[0]).max() / n),
            "drift_slope_per_atom_eV_per_ps": slope, "intact": first_broken is None,
            "first_broken_step": first_broken, "max_bond_ratio": worst,
            "steps": steps, "timestep_fs": timestep_fs, "temperature_K": temperature_K,
            "n_atoms": n, "seconds": time.perf_counter() - t0}
