"""Data of the molecular tasks, prepared for training: splits, float64 reference offsets, scale.

``MolData.batch(split, idx, dtype)`` gives the keyword inputs of a potential plus ``energy`` with
the per-structure reference offset already subtracted in float64.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..data.atoms import AtomsDataset, read_atoms
from ..data.qm9 import (ENERGY_TARGETS, PUBLISHED as QM9_PUBLISHED, fit_reference_energies,
                        load_qm9, qm9_splits, reference_offsets)
from ..data.rmd17 import PUBLISHED as RMD17_PUBLISHED, load_rmd17, train_val_split

__all__ = ["MolData", "load_task_data"]


@dataclass
class MolData:
    """Splits (``train``/``val``/``test``) with offsets (F,) float64 and energy statistics."""

    name: str
    splits: dict
    offsets: dict
    atomic_energies: dict
    scale: float
    shift: float
    has_forces: bool
    energy_to_report: float  # factor from training units to the reported unit
    report_unit: str
    published: dict = field(default_factory=dict)

    def batch(self, which: str, idx, dtype) -> dict:
        return self.splits[which].batch(idx, dtype=dtype, energy_offset=self.offsets[which])


def _with_energy(ds: AtomsDataset, energy) -> AtomsDataset:
    return AtomsDataset(ds.numbers, ds.positions, ds.ptr, energy=energy, forces=ds.forces,
                        cell=ds.cell, pbc=ds.pbc, units=ds.units, source=ds.source)


def _finish(name, splits, *, per_element: bool, has_forces, to_report, unit, published):
    train = splits["train"]
    if per_element:
        e0 = fit_reference_energies(train, train.energy)
    else:
        e0 = {}
    offsets = {k: reference_offsets(v, e0) for k, v in splits.items()}
    per_atom = (np.asarray(train.energy) - offsets["train"]) / train.num_atoms
    shift = float(per_atom.mean())
    if has_forces:
        scale = float(np.sqrt(np.mean(np.square(train.forces))))
    else:
        scale = float(per_atom.std()) or 1.0
    return MolData(name, splits, offsets, e0, scale or 1.0, shift, has_forces, to_report, unit,
                   published)


def load_task_data(cfg: dict) -> MolData:
    """The train/val/test data of ``cfg['task']`` (``rmd17``, ``qm9`` or ``atoms``)."""
    task, seed = cfg["task"], cfg["seed"]
    if task == "rmd17":
        mol, root = cfg["molecule"], Path(cfg["data_dir"])
        full = load_rmd17(root, mol, "train")
        tr, va = train_val_split(len(full), cfg["n_val"], seed=seed)
        tr = tr[:cfg["n_train"]]
        test = load_rmd17(root, mol, "test")
        if cfg["n_test"]:
            test = test.subset(np.arange(min(cfg["n_test"], len(test))))
        splits = {"train": full.subset(tr), "val": full.subset(va), "test": test}
        pub = {m: v[mol] for m, v in RMD17_PUBLISHED.items() if mol in v}
        return _finish(f"rmd17/{mol}", splits, per_element=True, has_forces=True, to_report=1000.0,
                       unit="meV", published=pub)
    if task == "qm9":
        q = load_qm9(cfg["data_dir"])
        target = cfg["target"]
        if target not in q.target_names:
            raise ValueError(f"target: expected one of {q.target_names}, got {target!r}")
        q = _with_energy(q, q.targets[:, q.target_names.index(target)])
        idx = qm9_splits(len(q), cfg["split"], seed=seed)
        idx["train"] = idx["train"][:cfg["n_train"]]
        idx["val"] = idx["val"][:cfg["n_val"]]
        if cfg["n_test"]:
            idx["test"] = idx["test"][:cfg["n_test"]]
        splits = {k: q.subset(v) for k, v in idx.items()}
        pub = {m: v[target] for m, v in QM9_PUBLISHED.items() if target in v}
        return _finish(f"qm9/{target}", splits, per_element=target in ENERGY_TARGETS,
                       has_forces=False, to_report=1.0, unit=q.units[target], published=pub)
    if task == "atoms":
        ds = read_atoms(cfg["data"], cfg["energy_key"], cfg["forces_key"])
        perm = np.random.default_rng(seed).permutation(len(ds))
        n_tr, n_va = min(cfg["n_train"], len(ds)), cfg["n_val"]
        parts = {"train": perm[:n_tr], "val": perm[n_tr:n_tr + n_va],
                 "test": perm[n_tr + n_va:][:cfg["n_test"] or None]}
        for k, v in parts.items():
            if len(v) == 0:
                raise ValueError(f"data: {str(cfg['data'])!r} has {len(ds)} structures, too few "
                                 f"for n_train={cfg['n_train']} and n_val={n_va} (no {k} split)")
        splits = {k: ds.subset(v) for k, v in parts.items()}
        return _finish(Path(cfg["data"]).name, splits, per_element=True,
                       has_forces=ds.forces is not None, to_report=1000.0, unit="meV",
                       published={})
    raise ValueError(f"task: expected one of rmd17, qm9, atoms, got {task!r}")
