"""The revised MD17 data set (Christensen & von Lilienfeld 2020) in both official forms.

* split-wise files ``rmd17_<molecule>_<train|test>_<split>.npz`` (1000 configurations each);
* the figshare release: ``npz_data/rmd17_<molecule>.npz`` (100,000 frames) with the index files
  ``splits/index_<train|test>_<split>.csv`` (one frame index per line).

Keys: ``nuclear_charges`` (n,), ``coords`` (F, n, 3) Angstrom, ``energies`` (F,) kcal/mol,
``forces`` (F, n, 3) kcal/mol/Angstrom. Loaders convert to eV and eV/Angstrom (the units of
:class:`~symformer.data.atoms.AtomsDataset` and the ASE calculator); results are reported in meV
and meV/Angstrom like the papers.

Published protocol: 1000 training configurations of split 01, of which 950 train and 50
validate (:func:`train_val_split`), tested on the 1000 test configurations of split 01.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ._npz import read_npz
from .atoms import KCAL_PER_MOL, AtomsDataset

__all__ = ["MOLECULES", "PUBLISHED", "load_rmd17", "train_val_split", "find_rmd17_file"]

MOLECULES = ("aspirin", "azobenzene", "benzene", "ethanol", "malonaldehyde", "naphthalene",
             "paracetamol", "salicylic", "toluene", "uracil")

#: Published energy / force MAE (meV, meV/Angstrom), 1000 training configurations.
PUBLISHED = {
    "MACE": {"aspirin": (2.2, 6.6), "ethanol": (0.4, 2.1), "azobenzene": (1.2, 3.0),
             "benzene": (0.4, 0.3), "malonaldehyde": (0.8, 4.1), "naphthalene": (0.5, 1.6),
             "paracetamol": (1.3, 4.8), "salicylic": (0.9, 3.1), "toluene": (0.5, 1.5),
             "uracil": (0.5, 2.1)},
    "NequIP": {"aspirin": (2.3, 8.2), "ethanol": (0.4, 2.8), "azobenzene": (0.7, 2.9),
               "benzene": (0.04, 0.3), "malonaldehyde": (0.8, 5.1), "naphthalene": (0.9, 1.3),
               "paracetamol": (1.4, 5.9), "salicylic": (0.7, 4.0), "toluene": (0.3, 1.6),
               "uracil": (0.4, 3.1)},
}

_KEYS = ("nuclear_charges", "coords", "energies", "forces")


def find_rmd17_file(root, molecule: str, split: str = "train", index: int = 1) -> Path:
    """The split-wise file of ``molecule`` under ``root`` (a folder), or ``root`` itself."""
    root = Path(root)
    if root.is_file():
        return root
    name = f"rmd17_{molecule}_{split}_{index:02d}.npz"
    for cand in (root / name, root / "rmd17" / name):
        if cand.is_file():
            return cand
    raise FileNotFoundError(f"no rMD17 file {name!r} under {str(root)!r}")


def _to_dataset(raw: dict, frames, source: str) -> AtomsDataset:
    z, coords, e, f = (raw[k] for k in _KEYS)
    if z.ndim != 1:
        raise ValueError(f"{source}: key 'nuclear_charges': expected shape (n,), got {z.shape}")
    n, nf = z.shape[0], coords.shape[0]
    for key, arr, shape in (("coords", coords, (nf, n, 3)), ("energies", e, (nf,)),
                            ("forces", f, (nf, n, 3))):
        if arr.shape != shape:
            raise ValueError(f"{source}: key {key!r}: expected shape {shape}, got {arr.shape}")
    if frames is not None:
        frames = np.asarray(frames, dtype=np.int64)
        if frames.size and (frames.min() < 0 or frames.max() >= nf):
            raise ValueError(f"{source}: frame index out of range for {nf} frames")
        coords, e, f = coords[frames], e[frames], f[frames]
        nf = len(frames)
    return AtomsDataset(np.tile(z.astype(np.int64), nf), coords.reshape(-1, 3),
                        np.arange(nf + 1) * n, energy=e.astype(np.float64) * KCAL_PER_MOL,
                        forces=f.reshape(-1, 3).astype(np.float64) * KCAL_PER_MOL,
                        units={"energy": "eV", "forces": "eV/Angstrom"}, source=source)


def load_rmd17(path, molecule: str | None = None, split: str = "train", index: int = 1,
               frames=None) -> AtomsDataset:
    """Load rMD17 in either official form, in eV and eV/Angstrom.

    Parameters
    ----------
    path : path
        A split-wise ``.npz`` file; a folder holding them (``molecule`` required); or a
        100k-frame ``rmd17_<molecule>.npz`` (or a release folder with ``npz_data/`` and
        ``splits/``), whose frames are chosen by ``splits/index_<split>_<index>.csv`` unless
        ``frames`` is given.
    split : "train" or "test"; index : split number (1 to 5).
    frames : sequence of int, optional; explicit frame indices into the file.
    """
    if split not in ("train", "test"):
        raise ValueError(f"split: expected 'train' or 'test', got {split!r}")
    if molecule is not None and molecule not in MOLECULES:
        raise ValueError(f"molecule: expected one of {MOLECULES}, got {molecule!r}")
    path = Path(path)
    full = None
    if path.is_dir() and molecule is not None:
        cand = path / "npz_data" / f"rmd17_{molecule}.npz"
        if cand.is_file():
            full = cand
    elif path.is_file() and not any(path.name.endswith(f"_{s}_{index:02d}.npz")
                                    for s in ("train", "test")) and frames is None:
        full = path
    if full is None:
        if path.is_dir() and molecule is None:
            raise ValueError("molecule: required when path is a folder")
        file = path if path.is_file() else find_rmd17_file(path, molecule, split, index)
        return _to_dataset(read_npz(file, _KEYS), frames, str(file))
    raw = read_npz(full, _KEYS)
    if frames is None:
        csv = full.parent.parent / "splits" / f"index_{split}_{index:02d}.csv"
        if not csv.is_file():
            csv = full.parent / "splits" / f"index_{split}_{index:02d}.csv"
        if not csv.is_file():
            raise FileNotFoundError(f"{str(full)!r}: no split file index_{split}_{index:02d}.csv "
                                    "in splits/ beside it; pass frames=")
        try:
            frames = np.loadtxt(csv, dtype=np.int64, ndmin=1)
        except ValueError as e:
            raise ValueError(f"{str(csv)!r}: expected one integer frame index per line ({e})") \
                from None
    return _to_dataset(raw, frames, str(full))


def train_val_split(n: int = 1000, n_val: int = 50, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Indices of a seeded random ``n - n_val`` / ``n_val`` split of ``n`` configurations."""
    if not 0 <= n_val <= n:
        raise ValueError(f"n_val: expected 0..{n}, got {n_val}")
    perm = np.random.default_rng(seed).permutation(n)
    return np.sort(perm[n_val:]), np.sort(perm[:n_val])
