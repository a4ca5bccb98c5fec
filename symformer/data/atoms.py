"""Atomistic data sets: ragged (CSR) storage of many structures, memory-mapped files, ASE input.

An :class:`AtomsDataset` holds ``F`` structures with ``A`` atoms in total::

    numbers   (A,)       int      atomic numbers
    positions (A, 3)     float    Angstrom
    ptr       (F + 1,)   int      structure k is rows ptr[k]:ptr[k+1]
    energy    (F,)       float    optional, eV
    forces    (A, 3)     float    optional, eV/Angstrom
    cell      (F, 3, 3)  float    optional, rows are lattice vectors (with ``pbc`` (F, 3) bool)
    targets   (F, T)     float    optional graph-level properties named by ``target_names``

Arrays stay numpy (float64 where the source is) until :meth:`AtomsDataset.batch` makes tensors,
so reference energies can be subtracted in float64 before a float32 model sees them.
:meth:`AtomsDataset.save` writes one ``.npy`` per array and :meth:`AtomsDataset.load` maps them
(``mmap_mode='r'``): a data set larger than memory streams from disk batch by batch.
Every inconsistency (missing key, shape mismatch, NaN/inf) raises ``ValueError`` naming the
file and the key.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

__all__ = ["AtomsDataset", "read_atoms", "iterate_batches", "KCAL_PER_MOL", "HARTREE"]

KCAL_PER_MOL = 4184.0 / (6.02214076e23 * 1.602176634e-19)  # eV, exact SI definitions
HARTREE = 27.211386245988  # eV (CODATA 2018)

_ARRAYS = ("numbers", "positions", "ptr", "energy", "forces", "cell", "pbc", "targets")


def _fail(source: str, key: str, msg: str):
    raise ValueError(f"{source}: key {key!r}: {msg}")


def _check_array(source, key, a, shape, kind):
    if a is None:
        return None
    a = np.asanyarray(a)  # keeps np.memmap (no copy into memory)
    if kind == "float" and not np.issubdtype(a.dtype, np.floating):
        if not np.issubdtype(a.dtype, np.integer):
            _fail(source, key, f"expected floating values, got dtype {a.dtype}")
    if kind == "int" and not np.issubdtype(a.dtype, np.integer):
        _fail(source, key, f"expected integer values, got dtype {a.dtype}")
    if len(a.shape) != len(shape) or any(s is not None and s != g for s, g in zip(shape, a.shape)):
        want = "(" + ", ".join("*" if s is None else str(s) for s in shape) + ")"
        _fail(source, key, f"expected shape {want}, got {tuple(a.shape)}")
    if kind == "float" and a.size and not np.isfinite(a).all():
        bad = np.argwhere(~np.isfinite(a))[0].tolist()
        _fail(source, key, f"contains NaN or inf (first at index {bad})")
    return a


class AtomsDataset:
    """Structures in ragged storage (see the module docstring for the arrays).

    Parameters
    ----------
    numbers, positions, ptr : arrays
    energy, forces, cell, pbc, targets : arrays, optional
    target_names : sequence of str; names of the ``targets`` columns.
    units : dict, optional; unit of each quantity (recorded, not converted).
    source : str; file name used in error messages.
    """

    def __init__(self, numbers, positions, ptr, *, energy=None, forces=None, cell=None, pbc=None,
                 targets=None, target_names=(), units=None, source: str = "<memory>"):
        self.source = str(source)
        s = self.source
        self.ptr = _check_array(s, "ptr", ptr, (None,), "int").astype(np.int64)
        f = self.ptr.shape[0] - 1
        if f < 0 or self.ptr[0] != 0 or (np.diff(self.ptr) < 0).any():
            _fail(s, "ptr", "expected non-decreasing offsets starting at 0")
        a = int(self.ptr[-1])
        self.numbers = _check_array(s, "numbers", numbers, (a,), "int")
        if a and (self.numbers.min() < 1 or self.numbers.max() > 118):
            _fail(s, "numbers", f"atomic numbers must lie in 1..118, got "
                                f"{self.numbers.min()}..{self.numbers.max()}")
        self.positions = _check_array(s, "positions", positions, (a, 3), "float")
        self.energy = _check_array(s, "energy", energy, (f,), "float")
        self.forces = _check_array(s, "forces", forces, (a, 3), "float")
        self.cell = _check_array(s, "cell", cell, (f, 3, 3), "float")
        self.pbc = None if pbc is None else _check_array(s, "pbc", np.asarray(pbc, bool), (f, 3),
                                                         None)
        self.targets = _check_array(s, "targets", targets, (f, None), "float")
        self.target_names = tuple(target_names)
        if self.targets is not None and len(self.target_names) != self.targets.shape[1]:
            _fail(s, "target_names", f"expected {self.targets.shape[1]} names, got "
                                     f"{len(self.target_names)}")
        self.units = dict(units or {})

    def __len__(self) -> int:
        return self.ptr.shape[0] - 1

    @property
    def num_atoms(self) -> np.ndarray:
        """Atoms per structure, shape (F,)."""
        return np.diff(self.ptr)

    def __getitem__(self, k: int) -> dict:
        if not -len(self) <= k < len(self):
            raise IndexError(f"structure {k} out of range for {len(self)} structures")
        return self.batch([k % len(self)], dtype=torch.float64)

    def subset(self, indices) -> "AtomsDataset":
        """A new in-memory data set of the structures ``indices`` (in that order)."""
        idx = np.asarray(indices, dtype=np.int64)
        rows = np.concatenate([np.arange(self.ptr[k], self.ptr[k + 1]) for k in idx]) if len(
            idx) else np.zeros(0, np.int64)
        ptr = np.concatenate([[0], np.cumsum(self.num_atoms[idx])])
        pick = lambda x, r: None if x is None else np.asarray(x[r])  # noqa: E731
        return AtomsDataset(self.numbers[rows], self.positions[rows], ptr,
                            energy=pick(self.energy, idx), forces=pick(self.forces, rows),
                            cell=pick(self.cell, idx), pbc=pick(self.pbc, idx),
                            targets=pick(self.targets, idx), target_names=self.target_names,
                            units=self.units, source=self.source)

    def batch(self, indices, dtype: torch.dtype = torch.float32, energy_offset=None) -> dict:
        """Tensors of the structures ``indices``, ready for a :class:`~symformer.models.potential.Potential`.

        Returns a dict with ``atomic_numbers`` (N,), ``pos`` (N, 3), ``batch`` (N,),
        ``num_atoms`` (B,) and, when present, ``energy`` (B,), ``forces`` (N, 3), ``cell``
        (B, 3, 3), ``pbc`` (B, 3), ``targets`` (B, T). ``energy_offset`` (F,) float64, if given,
        is subtracted from the energies in float64 before the cast to ``dtype``.
        """
        idx = np.asarray(indices, dtype=np.int64)
        counts = self.num_atoms[idx]
        starts = self.ptr[idx]
        rows = np.repeat(starts - np.concatenate([[0], np.cumsum(counts)[:-1]]), counts) + \
            np.arange(int(counts.sum()))
        t = lambda x: torch.as_tensor(np.asarray(x, dtype=np.float64)).to(dtype)  # noqa: E731
        out = {"atomic_numbers": torch.as_tensor(self.numbers[rows].astype(np.int64)),
               "pos": t(self.positions[rows]),
               "batch": torch.repeat_interleave(torch.arange(len(idx)), torch.as_tensor(counts)),
               "num_atoms": torch.as_tensor(counts)}
        if self.energy is not None:
            e = np.asarray(self.energy[idx], dtype=np.float64)
            if energy_offset is not None:
                e = e - np.asarray(energy_offset, dtype=np.float64)[idx]
            out["energy"] = t(e)
        if self.forces is not None:
            out["forces"] = t(self.forces[rows])
        if self.cell is not None:
            out["cell"] = t(self.cell[idx])
            out["pbc"] = torch.as_tensor(np.asarray(self.pbc[idx]) if self.pbc is not None
                                         else np.ones((len(idx), 3), bool))
        if self.targets is not None:
            out["targets"] = t(self.targets[idx])
        return out

    def save(self, folder) -> Path:
        """Write one ``.npy`` per array plus ``meta.json`` into ``folder`` (for :meth:`load`)."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        for key in _ARRAYS:
            value = getattr(self, key)
            if value is not None:
                np.save(folder / f"{key}.npy", np.asarray(value))
        meta = {"target_names": list(self.target_names), "units": self.units}
        (folder / "meta.json").write_text(json.dumps(meta, indent=1) + "\n")
        return folder

    @classmethod
    def load(cls, folder, mmap: bool = True) -> "AtomsDataset":
        """Open a folder written by :meth:`save`; with ``mmap`` the arrays stay on disk."""
        folder = Path(folder)
        if not (folder / "meta.json").is_file():
            raise ValueError(f"{str(folder)!r}: not an AtomsDataset folder (no meta.json)")
        meta = json.loads((folder / "meta.json").read_text())
        arrays = {}
        for key in _ARRAYS:
            path = folder / f"{key}.npy"
            if path.is_file():
                arrays[key] = np.load(path, mmap_mode="r" if mmap else None)
        for key in ("numbers", "positions", "ptr"):
            if key not in arrays:
                _fail(str(folder), key, "missing array file")
        return cls(arrays.pop("numbers"), arrays.pop("positions"), arrays.pop("ptr"), **arrays,
                   target_names=meta.get("target_names", ()), units=meta.get("units"),
                   source=str(folder))


def _value(atoms, key: str, per_atom: bool, source: str, k: int):
    store = atoms.arrays if per_atom else atoms.info
    if key in store:
        return np.asarray(store[key], dtype=np.float64)
    calc = getattr(atoms, "calc", None)
    results = getattr(calc, "results", {}) or {}
    if key in results:
        return np.asarray(results[key], dtype=np.float64)
    known = sorted(store) + sorted(results)
    raise ValueError(f"{source}: key {key!r}: missing in structure {k} (has {known})")


def read_atoms(path, energy_key: str | None = "energy", forces_key: str | None = "forces",
               index: str = ":") -> AtomsDataset:
    """Read any ASE-readable file (extxyz, ASE db, ...) into an :class:`AtomsDataset`.

    Energies and forces are looked up in ``atoms.info``/``atoms.arrays`` under the given keys,
    then in the attached calculator's results; pass ``None`` to skip one. Units are taken as
    eV and eV/Angstrom.
    """
    import ase.io

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"data file {str(path)!r} does not exist")
    try:
        if path.suffix == ".db":
            import ase.db

            with ase.db.connect(str(path)) as db:
                frames = []
                for row in db.select():
                    atoms = row.toatoms(add_additional_information=True)
                    atoms.info.update(atoms.info.pop("key_value_pairs", {}) or {})
                    frames.append(atoms)
        else:
            frames = ase.io.read(str(path), index=index)
    except Exception as e:  # unreadable / corrupt file
        raise ValueError(f"{str(path)!r}: could not be read by ASE: {e}") from e
    frames = frames if isinstance(frames, list) else [frames]
    if not frames:
        raise ValueError(f"{str(path)!r}: holds no structures")
    src = str(path)
    counts = [len(a) for a in frames]
    energy = forces = None
    if energy_key is not None:
        energy = np.array([float(_value(a, energy_key, False, src, k).reshape(-1)[0])
                           for k, a in enumerate(frames)])
    if forces_key is not None:
        parts = []
        for k, a in enumerate(frames):
            f = _value(a, forces_key, True, src, k)
            if f.shape != (len(a), 3):
                _fail(src, forces_key, f"structure {k}: expected shape ({len(a)}, 3), got "
                                       f"{f.shape}")
            parts.append(f)
        forces = np.concatenate(parts)
    periodic = [bool(a.pbc.any()) for a in frames]
    cell = pbc = None
    if any(periodic):
        cell = np.stack([np.asarray(a.cell[:], dtype=np.float64) for a in frames])
        pbc = np.stack([np.asarray(a.pbc, bool) for a in frames])
    return AtomsDataset(np.concatenate([a.numbers for a in frames]),
                        np.concatenate([a.positions for a in frames]),
                        np.concatenate([[0], np.cumsum(counts)]), energy=energy, forces=forces,
                        cell=cell, pbc=pbc, units={"energy": "eV", "forces": "eV/Angstrom"},
                        source=src)


def iterate_batches(n: int, batch_size: int, shuffle: bool = False,
                    generator: torch.Generator | None = None):
    """Index arrays of consecutive (or shuffled) batches of ``range(n)``; the last may be short."""
    if not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size: expected a positive int, got {batch_size!r}")
    order = torch.randperm(n, generator=generator).numpy() if shuffle else np.arange(n)
    for a in range(0, n, batch_size):
        yield order[a:a + batch_size]
