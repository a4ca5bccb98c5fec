"""MACE backbone and potential: invariance, forces, cutoff smoothness, the product basis against
an independent dense reference, and the body order of one interaction."""

import itertools
import math

import numpy as np
import pytest
import torch

from symformer.groups import O3
from symformer.models import create
from symformer.models.mace import (MACE, EdgeConvolution, MACEInteraction, SymmetricContraction,
                                   backbone_group, molecule_example, symmetric_paths)
from symformer.primitives import cg_tensor_product, scatter_sum, spherical_harmonics
from symformer.testing import equivariance_error

from potential_checks import (assert_energy_smooth_at_cutoff,
                              assert_forces_are_minus_energy_gradient,
                              assert_permutation_and_batching, random_molecules)

TINY = dict(channels=8, radial_hidden=[16], num_bessel=6)


def test_backbone_energy_invariant_under_o3(dtype):
    torch.manual_seed(0)
    model = MACE(**TINY).to(dtype)
    inputs = molecule_example(model, torch.Generator().manual_seed(3), dtype)
    errors = equivariance_error(model, backbone_group(), inputs,
                                {"atomic_numbers": "node:scalar", "edge_index": "edge_index",
                                 "edge_vec": "vector", "batch": "node:scalar"}, "node:scalar",
                                n_samples=3)
    tol = 1e-10 if dtype == torch.float64 else 1e-5
    assert all(e < tol for e in errors.values()), errors
    # The check can fail: a frame-dependent input (the raw x component) is caught.
    stretch = torch.tensor([2.0, 1.0, 1.0], dtype=dtype)

    def broken(edge_vec, **kw):
        return model(edge_vec=edge_vec * stretch, **kw)

    errs = equivariance_error(broken, O3(), inputs, {"atomic_numbers": "scalar",
                              "edge_index": "edge_index", "edge_vec": "vector", "batch": "scalar"},
                              "scalar", n_samples=2)
    assert errs["rotation"] > 1e-3


def test_potential_permutation_and_batching(dtype):
    torch.manual_seed(1)
    assert_permutation_and_batching(create("mace", **TINY).to(dtype), dtype, system=1)


def test_forces_are_minus_gradient():
    torch.manual_seed(2)
    pot = create("mace", **TINY).double()
    z, pos, _ = random_molecules(torch.float64, torch.Generator().manual_seed(7), sizes=(6,))
    assert_forces_are_minus_energy_gradient(pot, z, pos, rtol=1e-7)


def test_energy_smooth_as_an_atom_leaves_the_cutoff():
    torch.manual_seed(3)
    assert_energy_smooth_at_cutoff(create("mace", **TINY, cutoff=3.0).double())


def test_edge_convolution_matches_reference_tensor_product(dtype):
    torch.manual_seed(6)
    conv = EdgeConvolution(lmax_in=2, lmax_sh=3, lmax_out=3, channels=4, cutoff=4.0,
                           num_bessel=5, radial_hidden=(8,)).to(dtype)
    x = torch.randn(5, 9, 4, dtype=dtype)
    edge_index = torch.tensor([[0, 1, 2, 3, 4, 4, 1], [1, 0, 0, 2, 2, 3, 4]])
    vec = torch.randn(7, 3, dtype=dtype)
    r, sh = vec.norm(dim=-1), spherical_harmonics(3, vec)
    w = conv.radial(r).unflatten(-1, (len(conv.paths), -1))
    ref = scatter_sum(cg_tensor_product(x[edge_index[0]], sh[:, :, None], 3, conv.paths, w),
                      edge_index[1], 5)
    tol = 1e-12 if dtype == torch.float64 else 1e-5
    torch.testing.assert_close(conv(x, edge_index, sh, r), ref, rtol=tol, atol=tol)


def _reference_tensor(path, L):
    """Dense coupling tensor from e3nn's wigner_3j (independent of symformer's CG code)."""
    o3 = pytest.importorskip("e3nn.o3")
    ls, ks = path
    t = np.eye(2 * ls[0] + 1)
    prev = ls[0]
    for l, k in zip(ls[1:], ks):
        cg = o3.wigner_3j(prev, l, k, dtype=torch.float64).numpy() * math.sqrt(2 * k + 1)
        t = np.tensordot(cg, t, axes=([0], [0]))           # [l, k, i1, ...]
        t = np.moveaxis(t, [0, 1], [-1, 0])                # [k, i1, ..., l]
        prev = k
    assert t.shape[0] == 2 * L + 1
    return t


def test_symmetric_contraction_matches_dense_reference():
    torch.manual_seed(4)
    lmax_in, lmax_out, channels = 2, 2, 3
    sc = SymmetricContraction(lmax_in=lmax_in, lmax_out=lmax_out, channels=channels,
                              correlation=3, num_elements=2).double()
    a = torch.randn(5, (lmax_in + 1) ** 2, channels, dtype=torch.float64)
    onehot = torch.nn.functional.one_hot(torch.tensor([0, 1, 1, 0, 1]), 2).double()
    out = sc(a, onehot)
    for L in range(lmax_out + 1):
        ref = torch.zeros(5, 2 * L + 1, channels, dtype=torch.float64)
        for k, path in enumerate(sc.paths[L]):
            ls = path[0]
            t = torch.from_numpy(_reference_tensor(path, L))
            blocks = [a[:, l * l:(l + 1) ** 2] for l in ls]
            letters = "ijk"[:len(ls)]
            eq = "m" + letters + "," + ",".join(f"n{x}c" for x in letters) + "->nmc"
            w = onehot @ sc.weights[L][:, k, :]                          # [N, C]
            ref = ref + torch.einsum(eq, t, *blocks) * w[:, None, :]
        torch.testing.assert_close(out[:, L * L:(L + 1) ** 2], ref, rtol=1e-10, atol=1e-12)


def test_symmetric_contraction_atom_blocks_change_nothing():
    # Blocks of 2 atoms (3 blocks, the last one short) against one block: values and the
    # first and second derivatives (forces and the force loss) agree.
    torch.manual_seed(5)
    sc = SymmetricContraction(lmax_in=2, lmax_out=1, channels=3, correlation=3,
                              num_elements=2).double()
    onehot = torch.nn.functional.one_hot(torch.tensor([0, 1, 1, 0, 1]), 2).double()
    a0 = torch.randn(5, 9, 3, dtype=torch.float64)
    results = []
    for columns in (6, 10 ** 6):
        sc.CHUNK_COLUMNS = columns
        a = a0.clone().requires_grad_(True)
        out = sc(a, onehot)
        (g,) = torch.autograd.grad(out.pow(2).sum(), a, create_graph=True)
        sc.zero_grad()
        g.pow(2).sum().backward()
        results.append([out, g, *(w.grad.clone() for w in sc.weights)])
    for x, y in zip(*results):
        torch.testing.assert_close(x, y, rtol=1e-12, atol=1e-12)


def _o3_multiplicity(lmax_in, L, nu, points=400):
    """Multiplicity of V_L (parity (-1)^L) in Sym^nu(V_0 + V_1 + ... + V_lmax_in) by integrating
    characters over O(3) (Weyl: class function of the rotation angle, weight (1 - cos t) / pi)."""
    t = np.linspace(0, np.pi, points + 1)[1:] - np.pi / (2 * points)

    def chi(l, k=1):      # character of V_l at the rotation angle k t
        return np.sin((2 * l + 1) * k * t / 2) / np.sin(k * t / 2)

    def chi_a(k, inversion):  # the inversion acts as (-1)^l on V_l, k-th power of the element
        return sum(((-1) ** l if inversion and k % 2 else 1) * chi(l, k)
                   for l in range(lmax_in + 1))

    def chi_sym(inversion):   # Newton's identities for the symmetric power
        h = [np.ones_like(t)]
        for n in range(1, nu + 1):
            h.append(sum(chi_a(k, inversion) * h[n - k] for k in range(1, n + 1)) / n)
        return h[nu]

    weight = (1 - np.cos(t)) / np.pi * (np.pi / points)
    total = (chi_sym(False) * chi(L)).dot(weight) + ((-1) ** L * chi_sym(True) * chi(L)).dot(weight)
    return total / 2


@pytest.mark.parametrize("lmax_in,L,nu", [(1, 0, 2), (2, 1, 2), (3, 0, 3), (3, 1, 3), (2, 2, 3),
                                          (2, 0, 4)])
def test_product_basis_size_is_the_multiplicity(lmax_in, L, nu):
    assert len(symmetric_paths(lmax_in, L, nu)) == round(_o3_multiplicity(lmax_in, L, nu))


@pytest.mark.parametrize("correlation", [3, 4])
def test_one_interaction_has_body_order_correlation_plus_one(correlation):
    # Energy of atom 0 read linearly from one interaction: a polynomial of degree `correlation`
    # in its neighbours' contributions, so the inclusion-exclusion over 4 neighbours (the
    # fourth mixed difference) vanishes for correlation 3 and not for 4.
    torch.manual_seed(5)
    block = MACEInteraction(lmax_in=0, lmax_out=1, lmax_sh=2, lmax_a=2, channels=4,
                            correlation=correlation, num_elements=1, cutoff=4.0, num_bessel=6,
                            radial_hidden=(8,), avg_num_neighbors=1.0, skip=False).double()
    vec = torch.randn(4, 3, generator=torch.Generator().manual_seed(6), dtype=torch.float64)
    h = torch.randn(5, 1, 4, dtype=torch.float64)
    onehot = torch.ones(5, 1, dtype=torch.float64)
    total = 0.0
    for subset in itertools.chain.from_iterable(itertools.combinations(range(4), k)
                                                for k in range(5)):
        idx = torch.tensor(subset, dtype=torch.long)
        edges = torch.stack([idx + 1, torch.zeros_like(idx)])
        out = block(h, onehot, edges, spherical_harmonics(2, vec[idx]), vec[idx].norm(dim=-1))
        total += (-1) ** len(subset) * float(out[0, 0].sum().detach())
    if correlation == 3:
        assert abs(total) < 1e-12
    else:
        assert abs(total) > 1e-6


def test_input_errors():
    model = MACE(**TINY)
    inputs = molecule_example(model, torch.Generator().manual_seed(0), torch.float32)
    with pytest.raises(ValueError, match="atomic_numbers"):
        model(**{**inputs, "atomic_numbers": torch.full_like(inputs["atomic_numbers"], 9)})
    with pytest.raises(ValueError, match="edge_vec"):
        model(**{**inputs, "edge_vec": inputs["edge_vec"][:, :2]})
    with pytest.raises(TypeError, match="edge_index"):
        model(**{**inputs, "edge_index": inputs["edge_index"].float()})
    with pytest.raises(ValueError, match="correlation"):
        MACE(correlation=0)
    with pytest.raises(ValueError, match="elements"):
        MACE(elements=[1, 1])


def test_checkpoint_round_trip(tmp_path):
    from symformer.checkpoint import load, save

    torch.manual_seed(7)
    pot = create("mace", **TINY, elements=[1, 6, 8])
    save(pot, tmp_path / "mace.pt")
    again = load(tmp_path / "mace.pt")
    z, pos, batch = torch.tensor([1, 6, 8, 1]), torch.randn(4, 3), torch.zeros(4, dtype=torch.long)
    torch.testing.assert_close(again(z, pos, batch)["forces"], pot(z, pos, batch)["forces"])
