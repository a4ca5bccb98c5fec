"""Potential wrapper and TorchMD-ET energy backbone: forces and stress against finite differences,
E(3) symmetry, periodic images, smooth cutoff, batching, reference energies, input errors."""

import pytest
import torch

from symformer.groups import E3, Symmetric
from symformer.models import create
from symformer.models.potential import (Potential, TorchMDETBackbone, potential_example_inputs)
from symformer.testing import assert_equivariant
from potential_checks import assert_forces_are_minus_energy_gradient


def _model(dtype, **kw):
    cfg = dict(hidden=16, n_layers=2, heads=2, num_rbf=8, cutoff=3.0)
    cfg.update(kw)
    torch.manual_seed(0)
    return create("torchmd_et_potential", **cfg).to(dtype).eval()


def _molecule(n=6, dtype=torch.float64, seed=0):
    g = torch.Generator().manual_seed(seed)
    z = torch.tensor([1, 6, 8])[torch.randint(0, 3, (n,), generator=g)]
    return z, (1.0 * torch.randn(n, 3, generator=g, dtype=torch.float64)).to(dtype)


def test_forces_are_minus_energy_gradient_by_finite_differences():
    m = _model(torch.float64)
    z, pos = _molecule()
    assert_forces_are_minus_energy_gradient(m, z, pos)


def test_energy_invariant_forces_equivariant(dtype):
    m = _model(dtype)
    inputs = potential_example_inputs(m, torch.Generator().manual_seed(3), dtype)
    assert_equivariant(m, E3() * Symmetric(inputs["pos"].shape[0]), inputs,
                       {"atomic_numbers": "node:scalar", "pos": "node:point",
                        "batch": "node:scalar"},
                       {"energy": "scalar", "forces": "node:vector"}, n_samples=2)


def _crystal(dtype=torch.float64):
    g = torch.Generator().manual_seed(5)
    cell = (torch.eye(3, dtype=torch.float64) * 3.2
            + 0.3 * torch.randn(3, 3, generator=g, dtype=torch.float64)).to(dtype)
    frac = torch.rand(4, 3, generator=g, dtype=torch.float64).to(dtype)
    return torch.tensor([1, 6, 8, 6]), frac @ cell, cell


def test_stress_matches_strain_derivative():
    m = _model(torch.float64)
    z, pos, cell = _crystal()
    stress = m(z, pos, cell=cell)["stress"][0]
    vol = torch.linalg.det(cell).abs()
    h, fd = 1e-5, torch.zeros(3, 3, dtype=torch.float64)
    for a in range(3):
        for b in range(3):
            e = torch.zeros(3, 3, dtype=torch.float64)
            e[a, b] = e[b, a] = h / 2 if a != b else h
            ep = m(z, pos + pos @ e, cell=cell + cell @ e, compute_forces=False)["energy"]
            em = m(z, pos - pos @ e, cell=cell - cell @ e, compute_forces=False)["energy"]
            fd[a, b] = (ep - em).sum() / (2 * h) / vol
    torch.testing.assert_close(stress, fd, atol=1e-7, rtol=1e-5)


def test_stress_rotates_as_a_tensor():
    m = _model(torch.float64)
    z, pos, cell = _crystal()
    R = torch.linalg.qr(torch.randn(3, 3, dtype=torch.float64))[0]
    s = m(z, pos, cell=cell)["stress"][0]
    s_rot = m(z, pos @ R.T, cell=cell @ R.T)["stress"][0]
    torch.testing.assert_close(s_rot, R @ s @ R.T, atol=1e-10, rtol=1e-8)


def test_periodic_supercell_is_extensive():
    m = _model(torch.float64)
    z, pos, cell = _crystal()
    one = m(z, pos, cell=cell)
    sup_pos = torch.cat([pos, pos + cell[0]])
    sup_cell = torch.stack([2 * cell[0], cell[1], cell[2]])
    two = m(torch.cat([z, z]), sup_pos, cell=sup_cell)
    torch.testing.assert_close(two["energy"], 2 * one["energy"], rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(two["forces"], torch.cat([one["forces"]] * 2), rtol=1e-8, atol=1e-10)
    torch.testing.assert_close(two["stress"], one["stress"], rtol=1e-8, atol=1e-10)


def test_big_box_equals_open_molecule():
    m = _model(torch.float64)
    z, pos = _molecule()
    box = torch.eye(3, dtype=torch.float64) * 50.0
    torch.testing.assert_close(m(z, pos, cell=box)["energy"], m(z, pos)["energy"])


def test_energy_smooth_at_cutoff():
    m = _model(torch.float64)
    z = torch.tensor([6, 8])
    e = [m(z, torch.tensor([[0.0, 0, 0], [d, 0, 0]], dtype=torch.float64))["energy"]
         for d in (3.0 - 1e-7, 3.0 + 1e-7)]
    torch.testing.assert_close(e[0], e[1], atol=1e-9, rtol=0)


def test_batch_equals_single_and_reference_energies(dtype):
    m = _model(dtype)
    m.set_energy_stats({1: -0.5, 6: -38.0, 8: -75.0}, scale=2.0, shift=0.1)
    z1, p1 = _molecule(5, dtype, seed=1)
    z2, p2 = _molecule(3, dtype, seed=2)
    both = m(torch.cat([z1, z2]), torch.cat([p1, p2]), torch.tensor([0] * 5 + [1] * 3))
    singles = [m(z1, p1), m(z2, p2)]
    tol = dict(atol=1e-4, rtol=1e-5) if dtype == torch.float32 else {}
    torch.testing.assert_close(both["energy"], torch.cat([s["energy"] for s in singles]), **tol)
    torch.testing.assert_close(both["forces"], torch.cat([s["forces"] for s in singles]), **tol)
    no_ref = m(z2, p2, add_reference=False)["energy"]
    ref = {1: -0.5, 6: -38.0, 8: -75.0}
    expected = sum(ref[int(a)] for a in z2)
    torch.testing.assert_close(singles[1]["energy"] - no_ref,
                               torch.tensor([expected], dtype=dtype), **tol)


def test_lone_atom_and_training_graph():
    m = _model(torch.float64)
    out = m(torch.tensor([8]), torch.zeros(1, 3, dtype=torch.float64))
    assert out["forces"].abs().max() == 0 and torch.isfinite(out["energy"]).all()
    m.train()
    z, pos = _molecule()
    f = m(z, pos)["forces"]
    assert f.requires_grad  # create_graph in training: a force loss reaches the weights
    f.square().sum().backward()
    assert m.backbone.embedding.weight.grad is not None


def test_input_errors():
    m = _model(torch.float64)
    z, pos = _molecule()
    with pytest.raises(ValueError, match="pos"):
        m(z, pos[:, :2])
    with pytest.raises(ValueError, match="atomic_numbers"):
        m(z * 0, pos)
    with pytest.raises(TypeError, match="atomic_numbers"):
        m(z.double(), pos)
    with pytest.raises(ValueError, match="pos"):
        m(z, pos.clone().fill_(float("nan")))
    with pytest.raises(ValueError, match="compute_stress"):
        m(z, pos, compute_stress=True)
    with pytest.raises(ValueError, match="cutoff"):
        Potential(torch.nn.Linear(2, 2))
    with pytest.raises(ValueError, match="heads"):
        TorchMDETBackbone(hidden=10, heads=3)
