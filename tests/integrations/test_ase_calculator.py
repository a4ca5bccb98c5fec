"""ASE calculator from a checkpoint (energy, forces, stress against finite differences) and the
NVE integrator's energy drift and bond-integrity report."""

import numpy as np
import pytest
import torch

ase = pytest.importorskip("ase")

from ase.calculators.calculator import Calculator as AseCalc  # noqa: E402
from ase.calculators.fd import calculate_numerical_forces, calculate_numerical_stress  # noqa: E402

from symformer import save  # noqa: E402
from symformer.integrations.ase import Calculator  # noqa: E402
from symformer.integrations.md import bonds_of, run_nve  # noqa: E402
from symformer.models import create  # noqa: E402


@pytest.fixture
def checkpoint(tmp_path):
    torch.manual_seed(0)
    m = create("torchmd_et_potential", hidden=16, n_layers=2, heads=2, num_rbf=8, cutoff=3.5)
    m.set_energy_stats({1: -13.6, 6: -1029.0, 8: -2040.0}, scale=0.5, shift=0.01)
    return save(m.double(), tmp_path / "pot.pt"), m.double().eval()


def _water_methanol():
    return ase.Atoms("COH4", positions=[[0, 0, 0], [1.42, 0, 0], [1.75, 0.9, 0],
                                        [-0.36, 1.02, 0.05], [-0.38, -0.5, 0.88],
                                        [-0.4, -0.5, -0.9]])


def test_energy_forces_match_model_and_finite_differences(checkpoint):
    path, model = checkpoint
    atoms = _water_methanol()
    atoms.calc = Calculator(path)
    e = atoms.get_potential_energy()
    out = model(torch.as_tensor(atoms.numbers), torch.as_tensor(atoms.positions))
    assert abs(e - float(out["energy"])) < 1e-9
    np.testing.assert_allclose(atoms.get_forces(), out["forces"].detach().numpy(), atol=1e-12)
    num = calculate_numerical_forces(atoms, eps=1e-5)
    np.testing.assert_allclose(atoms.get_forces(), num, atol=1e-7)


def test_stress_matches_numerical_stress(checkpoint):
    path, _ = checkpoint
    atoms = ase.Atoms("CO", positions=[[0.1, 0.2, 0.3], [1.3, 0.9, 1.1]],
                      cell=[[2.9, 0.1, 0], [0.2, 3.1, 0], [0, 0.3, 3.0]], pbc=True)
    atoms.calc = Calculator(path)
    s = atoms.get_stress()
    assert s.shape == (6,)
    np.testing.assert_allclose(s, calculate_numerical_stress(atoms, eps=1e-5),
                               atol=1e-7)
    with pytest.raises(ValueError, match="stress"):
        m = _water_methanol()
        m.calc = Calculator(path)
        m.get_stress()


def test_calculator_rejects_wrong_inputs(tmp_path):
    with pytest.raises(ValueError, match="checkpoint_path"):
        Calculator()
    with pytest.raises(FileNotFoundError):
        Calculator(tmp_path / "missing.pt")
    with pytest.raises(TypeError, match="Potential"):
        Calculator(model=torch.nn.Linear(2, 2))


def test_nve_conserves_energy_and_keeps_molecule(checkpoint):
    path, _ = checkpoint
    rep = run_nve(_water_methanol(), Calculator(path), steps=200, timestep_fs=0.25,
                  temperature_K=100, seed=1, log_every=20)
    assert rep["drift_per_atom_eV"] < 1e-3 and len(rep["total"]) == 11
    assert rep["kinetic"][0] > 0 and isinstance(rep["intact"], bool)


class _Repulsive(AseCalc):
    """Pushes every atom away from the centre: the molecule flies apart."""

    implemented_properties = ["energy", "forces"]

    def calculate(self, atoms=None, properties=("energy",), system_changes=()):
        super().calculate(atoms, properties, system_changes)
        d = self.atoms.positions - self.atoms.positions.mean(0)
        self.results["energy"] = float(-5.0 * (d * d).sum())
        self.results["forces"] = 10.0 * d


def test_bond_check_detects_dissociation():
    atoms = _water_methanol()
    assert len(bonds_of(atoms)) == 5
    rep = run_nve(atoms, _Repulsive(), steps=400, timestep_fs=0.5, temperature_K=10,
                  log_every=10)
    assert not rep["intact"] and rep["max_bond_ratio"] > 1.5
