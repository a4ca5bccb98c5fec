"""QM9 (Ramakrishnan et al. 2014) from the ragged npz: standard splits, paper units, target
standardisation and least-squares per-element reference energies.

File layout (CSR-like): ``Z`` (atoms,), ``R`` (atoms, 3) Angstrom, ``atom_ptr`` (mols + 1,),
``props`` (mols, 15) in the original QM9 units with column names ``prop_names``
(A, B, C GHz; mu D; alpha bohr^3; homo, lumo, gap Ha; r2 bohr^2; zpve, U0, U, H, G Ha;
Cv cal/mol/K). :func:`load_qm9` converts the Hartree columns to meV, the unit papers report;
the others keep theirs (D, bohr^3, bohr^2, GHz, cal/mol/K).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ._npz import read_npz
from .atoms import HARTREE, AtomsDataset

__all__ = ["PROPERTIES", "UNITS", "ENERGY_TARGETS", "PUBLISHED", "load_qm9", "qm9_splits",
           "fit_reference_energies", "reference_offsets", "Standardizer"]

PROPERTIES = ("A", "B", "C", "mu", "alpha", "homo", "lumo", "gap", "r2", "zpve", "U0", "U", "H",
              "G", "Cv")
_HARTREE_COLUMNS = ("homo", "lumo", "gap", "zpve", "U0", "U", "H", "G")
UNITS = {p: ("meV" if p in _HARTREE_COLUMNS else {"A": "GHz", "B": "GHz", "C": "GHz", "mu": "D",
         "alpha": "bohr^3", "r2": "bohr^2", "Cv": "cal/mol/K"}[p]) for p in PROPERTIES}
#: Extensive total energies: fitted with per-element reference energies.
ENERGY_TARGETS = ("U0", "U", "H", "G")
#: Published full-data test MAE in the units above (EGNN, Satorras et al. 2021, Cormorant split).
PUBLISHED = {"EGNN": {"U0": 11.0, "homo": 29.0, "lumo": 25.0, "gap": 48.0, "mu": 0.029,
                      "alpha": 0.071}}

_KEYS = ("Z", "R", "atom_ptr", "props")


def load_qm9(path) -> AtomsDataset:
    """Read the ragged QM9 npz (full set or a subset) into an :class:`AtomsDataset` whose
    ``targets`` (mols, 15) are in :data:`UNITS` (Hartree columns as meV)."""
    path = Path(path)
    if path.is_dir():
        path = path / "qm9_full_f32.npz"
    if not path.is_file():
        raise FileNotFoundError(f"QM9 file {str(path)!r} does not exist")
    raw = read_npz(path, _KEYS, optional=("prop_names",))
    z, r, ptr, props = (raw[k] for k in _KEYS)
    names = tuple(str(s) for s in raw["prop_names"]) if "prop_names" in raw else PROPERTIES
    if props.ndim != 2 or props.shape[1] != len(names):
        raise ValueError(f"{str(path)!r}: key 'props': expected shape (mols, {len(names)}), "
                         f"got {props.shape}")
    if ptr.shape != (props.shape[0] + 1,):
        raise ValueError(f"{str(path)!r}: key 'atom_ptr': expected shape ({props.shape[0] + 1},) "
                         f"(mols + 1), got {ptr.shape}")
    props = props.astype(np.float64)
    for j, name in enumerate(names):
        if name in _HARTREE_COLUMNS:
            props[:, j] = props[:, j] * HARTREE * 1000.0
    return AtomsDataset(z.astype(np.int64), r.astype(np.float64), ptr, targets=props,
                        target_names=names, units={n: UNITS.get(n, "?") for n in names},
                        source=str(path))


def qm9_splits(n: int, kind: str = "110k", seed: int = 0) -> dict[str, np.ndarray]:
    """Seeded random splits of ``n`` molecules.

    ``"110k"``: 110,000 / 10,000 / rest (TorchMD-Net, Equiformer, DimeNet);
    ``"cormorant"``: 100,000 / 17,748 / 13,083 (Cormorant, EGNN, SEGNN). On a smaller file the
    sizes shrink in proportion (same fractions of ``n``).
    """
    sizes = {"110k": (110_000, 10_000), "cormorant": (100_000, 17_748)}
    if kind not in sizes:
        raise ValueError(f"kind: expected one of {sorted(sizes)}, got {kind!r}")
    n_tr, n_va = sizes[kind]
    total = 130_831
    if n != total:
        n_tr, n_va = int(n * n_tr / total), int(n * n_va / total)
    perm = np.random.default_rng(seed).permutation(n)
    return {"train": perm[:n_tr], "val": perm[n_tr:n_tr + n_va], "test": perm[n_tr + n_va:]}


def _composition(data: AtomsDataset, elements: np.ndarray) -> np.ndarray:
    """Counts of each element per structure, shape (F, len(elements))."""
    mol = np.repeat(np.arange(len(data)), data.num_atoms)
    col = np.searchsorted(elements, np.asarray(data.numbers))
    counts = np.zeros((len(data), len(elements)))
    np.add.at(counts, (mol, col), 1.0)
    return counts


def fit_reference_energies(data: AtomsDataset, values: np.ndarray) -> dict[int, float]:
    """Least-squares per-element energies ``E0`` with ``values[k] ~ sum_i E0[z_i]``.

    ``values`` (F,) float64, e.g. total energies of the training structures.
    """
    values = np.asarray(values, dtype=np.float64)
    if values.shape != (len(data),):
        raise ValueError(f"values: expected shape ({len(data)},), got {values.shape}")
    elements = np.unique(np.asarray(data.numbers))
    coef, *_ = np.linalg.lstsq(_composition(data, elements), values, rcond=None)
    return {int(z): float(c) for z, c in zip(elements, coef)}


def reference_offsets(data: AtomsDataset, e0: dict[int, float]) -> np.ndarray:
    """``sum_i E0[z_i]`` per structure, shape (F,) float64 (elements missing from ``e0``: 0)."""
    table = np.zeros(119)
    for z, e in e0.items():
        table[z] = e
    mol = np.repeat(np.arange(len(data)), data.num_atoms)
    return np.bincount(mol, weights=table[np.asarray(data.numbers)], minlength=len(data))


class Standardizer:
    """``(y - mean) / std`` with statistics of the training targets; ``inverse`` undoes it."""

    def __init__(self, values):
        values = np.asarray(values, dtype=np.float64)
        self.mean = values.mean(axis=0)
        self.std = np.where(values.std(axis=0) > 0, values.std(axis=0), 1.0)

    def __call__(self, y):
        return (np.asarray(y, dtype=np.float64) - self.mean) / self.std

    def inverse(self, y):
        return np.asarray(y, dtype=np.float64) * self.std + self.mean
