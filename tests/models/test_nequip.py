"""NequIP/Nequix backbone and potential: invariance, permutations, forces, cutoff smoothness."""

import pytest
import torch

from symformer.models import create
from symformer.models.mace import BACKBONE_IN_TYPES, backbone_group, molecule_example
from symformer.models.nequip import NequIP, NequIPLayer
from symformer.testing import equivariance_error

from potential_checks import (assert_energy_smooth_at_cutoff,
                              assert_forces_are_minus_energy_gradient,
                              assert_permutation_and_batching, random_molecules)

TINY = dict(channels=8, lmax=2, radial_hidden=[16], num_bessel=6, num_layers=2)


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
    assert_permutation_and_batching(create("nequip", **TINY).to(dtype), dtype, system=0)


def test_forces_are_minus_gradient():
    torch.manual_seed(3)
    pot = create("nequip", **TINY).double()
    z, pos, _ = random_molecules(torch.float64, torch.Generator().manual_seed(7), sizes=(6,))
    assert_forces_are_minus_energy_gradient(pot, z, pos, rtol=1e-7)


def test_energy_smooth_as_an_atom_leaves_the_cutoff():
    torch.manual_seed(4)
    assert_energy_smooth_at_cutoff(create("nequip", **TINY, cutoff=3.0).double())


def test_input_errors():
    model = NequIP(**TINY)
    inputs = molecule_example(model, torch.Generator().manual_seed(0), torch.float32)
    with pytest.raises(ValueError, match="atomic_numbers"):
        model(**{**inputs, "atomic_numbers": torch.full_like(inputs["atomic_numbers"], 3)})
    with pytest.raises(ValueError, match="edge_index"):
        model(**{**inputs, "edge_index": inputs["edge_index"][:1]})
    with pytest.raises(ValueError, match="num_layers"):
        NequIP(num_layers=0)
