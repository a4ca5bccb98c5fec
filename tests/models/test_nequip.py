"""NequIP/Nequix backbone and potential: invariance, permutations, forces, cutoff smoothness."""

import pytest
import torch

from symformer.models import create
from symformer.models.mace import BACKBONE_IN_TYPES, backbone_group, molecule_example
from symformer.models.nequip import NequIP, NequIPLayer
from symformer.testing import equivariance_error

TINY = dict(channels=8, lmax=2, radial_hidden=[16], num_bessel=6, num_layers=2)


def _molecules(dtype, gen, sizes=(5, 4)):
    n = sum(sizes)
    z = torch.tensor([1, 6, 7, 8])[torch.randint(0, 4, (n,), generator=gen)]
    pos = (1.3 * torch.randn(n, 3, generator=gen, dtype=torch.float64)).to(dtype)
    batch = torch.repeat_interleave(torch.arange(len(sizes)), torch.tensor(sizes))
    return z, pos, batch


def test_backbone_energy_invariant_under_o3_and_permutations(dtype):
    torch.manual_seed(0)
    model = NequIP(**TINY).to(dtype)
    inputs = molecule_example(model, torch.Generator().manual_seed(3), dtype)
    errors = equivariance_error(model, backbone_group(), inputs, BACKBONE_IN_TYPES, "node:scalar",
                                n_samples=3)
    tol = 1e-10 if dtype == torch.float64 else 1e-5
    assert all(e < tol for e in errors.values()), errors


def test_layer_features_are_equivariant(dtype):
    # Hidden degree-1 and degree-2 features rotate with the input (the gate and the RMS norm
    # act on whole degree blocks).
    from symformer.groups import O3
    from symformer.primitives import spherical_harmonics

    torch.manual_seed(1)
    layer = NequIPLayer(lmax_in=2, lmax_out=2, lmax_sh=2, channels=4, num_elements=1,
                        cutoff=4.0, num_bessel=4, radial_hidden=(8,),
                        avg_num_neighbors=2.0).to(dtype)
    edge_index = torch.tensor([[0, 1, 2, 2], [1, 0, 0, 1]])
    onehot = torch.ones(3, 1, dtype=dtype)

    def f(h, edge_vec):
        return layer(h, onehot, edge_index, spherical_harmonics(2, edge_vec),
                     edge_vec.norm(dim=-1))

    inputs = {"h": torch.randn(3, 9, 4, dtype=dtype), "edge_vec": torch.randn(4, 3, dtype=dtype)}
    errors = equivariance_error(f, O3(), inputs, {"h": "uniform:2", "edge_vec": "vector"},
                                "uniform:2", n_samples=3)
    tol = 1e-10 if dtype == torch.float64 else 1e-5
    assert all(e < tol for e in errors.values()), errors


def test_potential_permutation_and_batching(dtype):
    torch.manual_seed(2)
    pot = create("nequip", **TINY).to(dtype)
    z, pos, batch = _molecules(dtype, torch.Generator().manual_seed(5))
    out = pot(z, pos, batch)
    perm = torch.randperm(z.shape[0], generator=torch.Generator().manual_seed(2))
    out_p = pot(z[perm], pos[perm], batch[perm])
    tol = dict(rtol=1e-10, atol=1e-10) if dtype == torch.float64 else dict(rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(out_p["energy"], out["energy"], **tol)
    torch.testing.assert_close(out_p["forces"], out["forces"][perm], **tol)
    single = pot(z[batch == 0], pos[batch == 0])
    torch.testing.assert_close(single["energy"][0], out["energy"][0], **tol)


def test_forces_are_minus_gradient():
    torch.manual_seed(3)
    pot = create("nequip", **TINY).double()
    z, pos, batch = _molecules(torch.float64, torch.Generator().manual_seed(7), sizes=(6,))
    forces = pot(z, pos, batch)["forces"].detach()
    h = 1e-5
    for atom, axis in [(0, 0), (3, 1), (5, 2)]:
        dp = torch.zeros_like(pos)
        dp[atom, axis] = h
        e_plus = pot(z, pos + dp, batch, compute_forces=False)["energy"].sum().detach()
        e_minus = pot(z, pos - dp, batch, compute_forces=False)["energy"].sum().detach()
        fd = -(e_plus - e_minus) / (2 * h)
        assert abs(float(fd - forces[atom, axis])) < 1e-7 * max(1.0, abs(float(fd)))


def test_energy_smooth_as_an_atom_leaves_the_cutoff():
    torch.manual_seed(4)
    pot = create("nequip", **TINY, cutoff=3.0).double()
    z = torch.tensor([6, 1, 8])
    base = torch.tensor([[0.0, 0.0, 0.0], [0.0, 1.1, 0.0]], dtype=torch.float64)
    direction = torch.tensor([0.6, -0.3, 0.74], dtype=torch.float64)
    direction = direction / direction.norm()

    def energy(d):
        pos = torch.cat([base, (d * direction)[None]])
        return float(pot(z, pos, compute_forces=False)["energy"].detach())

    assert abs(energy(3.5) - energy(3.6)) < 1e-12
    gaps = [abs(energy(3.0 - delta) - energy(3.0 + delta)) for delta in (0.04, 0.02, 0.01)]
    assert gaps[0] > 0
    assert gaps[0] / gaps[1] > 5 and gaps[1] / gaps[2] > 5, gaps


def test_input_errors():
    model = NequIP(**TINY)
    inputs = molecule_example(model, torch.Generator().manual_seed(0), torch.float32)
    with pytest.raises(ValueError, match="atomic_numbers"):
        model(**{**inputs, "atomic_numbers": torch.full_like(inputs["atomic_numbers"], 3)})
    with pytest.raises(ValueError, match="edge_index"):
        model(**{**inputs, "edge_index": inputs["edge_index"][:1]})
    with pytest.raises(ValueError, match="num_layers"):
        NequIP(num_layers=0)
