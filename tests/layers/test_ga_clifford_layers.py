"""CGENN / GLGENN layers commute with the orthogonal group of the metric, in Cl(3,0),
Cl(3,0,1) (degenerate) and Cl(1,3) (Lorentz), reflections included."""

import itertools

import pytest
import torch

from symformer.layers.ga import (CliffordBlock, CliffordGeometricProduct, CliffordLayerNorm,
                                 CliffordLinear, CliffordSiLU, subspace_index)
from symformer.primitives.ga import Algebra

SIGNATURES = {"Cl(3,0)": (3, 0, 0), "Cl(3,0,1)": (3, 0, 1), "Cl(1,3)": (1, 3, 0)}


def _orthogonal(metric, gen, improper):
    """A random A with A^T G A = G (G = diag(metric)), built without any GA code."""
    n = len(metric)
    G = torch.diag(torch.tensor(metric, dtype=torch.float64))
    nondeg = [i for i, m in enumerate(metric) if m != 0]
    S = torch.randn(n, n, generator=gen, dtype=torch.float64)
    S = (S - S.T)[nondeg][:, nondeg]
    Gn = G[nondeg][:, nondeg]
    A = torch.eye(n, dtype=torch.float64)
    A[[[i] for i in nondeg], nondeg] = torch.linalg.matrix_exp(Gn @ S * 0.5)
    if improper:
        A[:, nondeg[-1]] *= -1
    for i, m in enumerate(metric):  # null generators: any scale plus any combination
        if m == 0:
            A[i, :] = torch.randn(n, generator=gen, dtype=torch.float64)
            A[i, i] = 1.5
    assert torch.allclose(A.T @ G @ A, G, atol=1e-9)
    return A


def _outermorphism(A):
    n = A.shape[0]
    blades = [c for k in range(n + 1) for c in itertools.combinations(range(n), k)]
    M = torch.zeros(len(blades), len(blades), dtype=torch.float64)
    for i, I in enumerate(blades):
        for j, J in enumerate(blades):
            if len(I) == len(J):
                M[i, j] = torch.linalg.det(A[list(I)][:, list(J)]) if I else 1.0
    return M


def _layers(alg, subspaces):
    return [CliffordLinear(alg, 3, 4, subspaces=subspaces),
            CliffordSiLU(alg, 3, subspaces=subspaces),
            CliffordLayerNorm(alg, 3, subspaces=subspaces),
            CliffordGeometricProduct(alg, 3, subspaces=subspaces,
                                     shared_weights=subspaces == "quaternion"),
            CliffordBlock(alg, 3, 2, subspaces=subspaces)]


@pytest.mark.parametrize("subspaces", ["grade", "quaternion"])
@pytest.mark.parametrize("sig", list(SIGNATURES), ids=list(SIGNATURES))
def test_layers_commute_with_the_orthogonal_group(sig, subspaces, dtype):
    alg = Algebra.from_signature(*SIGNATURES[sig])
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(5, 3, alg.dim, generator=gen, dtype=torch.float64).to(dtype)
    tol = 1e-11 if dtype == torch.float64 else 2e-4
    for improper in (False, True):
        M = _outermorphism(_orthogonal(alg.metric, gen, improper)).to(dtype)
        for layer in _layers(alg, subspaces):
            layer = layer.to(dtype)
            y, y_g = layer(x) @ M.T, layer(x @ M.T)
            scale = y.abs().max()
            assert (y - y_g).abs().max() <= tol * scale, (type(layer).__name__, improper)


def test_quaternion_types_are_lighter():
    alg = Algebra.from_signature(5, 0, 0)
    assert max(subspace_index(alg, "quaternion")) == 3 and max(subspace_index(alg, "grade")) == 5
    count = lambda m: sum(p.numel() for p in m.parameters())
    light = CliffordGeometricProduct(alg, 8, subspaces="quaternion", shared_weights=True)
    full = CliffordGeometricProduct(alg, 8, subspaces="grade")
    assert count(light) < count(full) / 4


def test_errors():
    alg = Algebra.from_signature(3)
    with pytest.raises(ValueError, match="subspaces"):
        CliffordLinear(alg, 2, 2, subspaces="blades")
    with pytest.raises(ValueError, match="x"):
        CliffordLinear(alg, 2, 2)(torch.zeros(4, 3, 8))
    with pytest.raises(TypeError, match="algebra"):
        CliffordSiLU("Cl(3)", 2)
