"""Molecular data: rMD17 in both official forms and its units, QM9 splits / units / reference
energies, ASE files, memory-mapped storage, and errors naming the file and key."""

from pathlib import Path

import numpy as np
import pytest
import torch

from symformer.data.atoms import KCAL_PER_MOL, AtomsDataset, iterate_batches, read_atoms
from symformer.data.qm9 import (Standardizer, fit_reference_energies, load_qm9, qm9_splits,
                                reference_offsets)
from symformer.data.rmd17 import load_rmd17, train_val_split

FIX = Path(__file__).resolve().parents[1] / "fixtures"
RMD17 = FIX / "rmd17_ethanol_train_01.npz"


def test_kcal_constant_matches_ase():
    units = pytest.importorskip("ase.units")
    assert abs(KCAL_PER_MOL - units.kcal / units.mol) < 1e-9


def test_rmd17_splitwise_units_and_batch():
    raw = np.load(RMD17)
    d = load_rmd17(RMD17)
    assert len(d) == 12 and d.num_atoms.tolist() == [9] * 12
    np.testing.assert_allclose(d.energy, raw["energies"] * KCAL_PER_MOL)
    np.testing.assert_allclose(d.forces.reshape(12, 9, 3), raw["forces"] * KCAL_PER_MOL)
    b = d.batch([3, 5], dtype=torch.float64, energy_offset=np.full(12, -4200.0))
    assert b["pos"].shape == (18, 3) and b["batch"].tolist() == [0] * 9 + [1] * 9
    torch.testing.assert_close(b["energy"], torch.tensor(raw["energies"][[3, 5]] * KCAL_PER_MOL
                                                         + 4200.0, dtype=torch.float64))
    # a folder of split-wise files, by molecule name
    assert len(load_rmd17(FIX, "ethanol", "train")) == 12


def test_rmd17_full_release_with_index_csv(tmp_path):
    raw = dict(np.load(RMD17))
    (tmp_path / "npz_data").mkdir()
    (tmp_path / "splits").mkdir()
    np.savez(tmp_path / "npz_data" / "rmd17_ethanol.npz", **raw)
    (tmp_path / "splits" / "index_test_01.csv").write_text("7\n2\n10\n")
    d = load_rmd17(tmp_path, "ethanol", "test")
    np.testing.assert_allclose(d.energy, raw["energies"][[7, 2, 10]] * KCAL_PER_MOL)
    d2 = load_rmd17(tmp_path / "npz_data" / "rmd17_ethanol.npz", split="test")
    np.testing.assert_allclose(d2.positions, d.positions)


def test_rmd17_train_val_split_is_seeded_and_disjoint():
    tr, va = train_val_split(1000, 50, seed=0)
    assert len(tr) == 950 and len(va) == 50 and not set(tr) & set(va)
    assert np.array_equal(va, train_val_split(1000, 50, seed=0)[1])


@pytest.mark.parametrize("key,bad,msg", [
    ("forces", lambda a: a[:, :5], "forces"),
    ("energies", lambda a: np.where(np.arange(len(a)) == 3, np.nan, a), "energy"),
])
def test_rmd17_corrupt_file_names_file_and_key(tmp_path, key, bad, msg):
    raw = dict(np.load(RMD17))
    raw[key] = bad(raw[key])
    path = tmp_path / "rmd17_ethanol_train_01.npz"
    np.savez(path, **raw)
    with pytest.raises(ValueError, match=rf"rmd17_ethanol_train_01.npz.*{msg}"):
        load_rmd17(path)
    del raw[key]
    np.savez(path, **raw)
    with pytest.raises(ValueError, match=rf"rmd17_ethanol_train_01.npz.*{key}.*missing"):
        load_rmd17(path)


def test_qm9_units_splits_reference_energies():
    q = load_qm9(FIX / "qm9_tiny.npz")
    raw = np.load(FIX / "qm9_tiny.npz")
    j = q.target_names.index("U0")
    np.testing.assert_allclose(q.targets[:, j], raw["props"][:, j] * 27211.386245988)
    assert q.units["mu"] == "D" and q.units["alpha"] == "bohr^3" and q.units["gap"] == "meV"
    s = qm9_splits(130_831, "cormorant")
    assert [len(s[k]) for k in ("train", "val", "test")] == [100_000, 17_748, 13_083]
    s = qm9_splits(130_831, "110k", seed=0)
    assert [len(s[k]) for k in ("train", "val", "test")] == [110_000, 10_000, 10_831]
    assert np.array_equal(s["test"], qm9_splits(130_831, "110k", seed=0)["test"])
    # exact per-element energies are recovered from synthetic totals
    truth = {1: -10.0, 6: -1000.0, 7: -1500.0, 8: -2000.0, 9: -2700.0}
    present = {z: e for z, e in truth.items() if z in set(q.numbers.tolist())}
    totals = reference_offsets(q, present)
    fitted = fit_reference_energies(q, totals)
    for z, e in present.items():
        assert abs(fitted[z] - e) < 1e-6
    st = Standardizer(q.targets)
    np.testing.assert_allclose(st.inverse(st(q.targets)), q.targets)


def test_ase_extxyz_and_db(tmp_path):
    ase = pytest.importorskip("ase")
    import ase.io
    from ase.calculators.singlepoint import SinglePointCalculator

    frames = []
    for k in range(3):
        a = ase.Atoms("H2O", positions=np.random.default_rng(k).normal(size=(3, 3)))
        a.calc = SinglePointCalculator(a, energy=-1.5 * k, forces=np.full((3, 3), 0.1 * k))
        frames.append(a)
    cryst = ase.Atoms("Cu", positions=[[0, 0, 0]], cell=np.eye(3) * 2.5, pbc=True)
    cryst.info["my_energy"] = -3.0
    cryst.arrays["my_forces"] = np.zeros((1, 3))
    ase.io.write(tmp_path / "a.extxyz", frames)
    d = read_atoms(tmp_path / "a.extxyz")
    np.testing.assert_allclose(d.energy, [0.0, -1.5, -3.0])
    assert d.forces.shape == (9, 3) and d.cell is None
    ase.io.write(tmp_path / "c.extxyz", [cryst])
    c = read_atoms(tmp_path / "c.extxyz", energy_key="my_energy", forces_key="my_forces")
    assert c.cell.shape == (1, 3, 3) and c.batch([0])["cell"].shape == (1, 3, 3)
    with pytest.raises(ValueError, match=r"a.extxyz.*'dft_energy'"):
        read_atoms(tmp_path / "a.extxyz", energy_key="dft_energy")
    import ase.db

    with ase.db.connect(str(tmp_path / "s.db")) as db:
        for a in frames:
            db.write(a)
    np.testing.assert_allclose(read_atoms(tmp_path / "s.db").energy, [0.0, -1.5, -3.0])


def test_mmap_roundtrip_subset_and_batches(tmp_path):
    d = load_rmd17(RMD17)
    d.save(tmp_path / "ds")
    m = AtomsDataset.load(tmp_path / "ds")
    assert isinstance(m.positions, np.memmap)
    sub = m.subset([4, 1])
    np.testing.assert_allclose(sub.energy, d.energy[[4, 1]])
    np.testing.assert_allclose(sub.forces, d.forces[36:45].tolist() + d.forces[9:18].tolist())
    batches = list(iterate_batches(12, 5, shuffle=True, generator=torch.Generator().manual_seed(0)))
    assert [len(b) for b in batches] == [5, 5, 2]
    assert sorted(np.concatenate(batches).tolist()) == list(range(12))


def test_dataset_rejects_inconsistent_arrays():
    with pytest.raises(ValueError, match=r"<memory>.*'positions'.*shape"):
        AtomsDataset(np.ones(3, int), np.zeros((2, 3)), [0, 3])
    with pytest.raises(ValueError, match=r"'numbers'"):
        AtomsDataset(np.zeros(3, int), np.zeros((3, 3)), [0, 3])
    with pytest.raises(ValueError, match=r"'forces'.*NaN"):
        AtomsDataset(np.ones(3, int), np.zeros((3, 3)), [0, 3], forces=np.full((3, 3), np.nan))
