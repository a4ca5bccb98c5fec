"""The oracle against outside references: scipy rotations, e3nn Wigner matrices and spherical
harmonics, and torch's own image ops."""

import e3nn.o3
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.spatial.transform import Rotation

from symformer.groups import Element
from symformer.testing import transform
from symformer.testing.oracles import (image_flip, image_rot90, image_shift, image_upsample,
                                       irreps_D, uniform_D_reference)

SEEDS = st.integers(min_value=0, max_value=2**31 - 1)


def _rotations(seed, n=2, reflect=False):
    R = torch.from_numpy(Rotation.random(n, random_state=seed).as_matrix())
    return -R if reflect else R


@settings(max_examples=15, deadline=None)
@given(seed=SEEDS)
def test_vectors_match_scipy(seed):
    rot = Rotation.random(random_state=seed)
    R = torch.from_numpy(rot.as_matrix())
    t = torch.randn(3, dtype=torch.float64)
    x = torch.randn(6, 3, dtype=torch.float64)
    g = Element({"matrix": R[None], "translation": t[None]})
    torch.testing.assert_close(transform(g, x, "vector"), torch.from_numpy(rot.apply(x.numpy())))
    torch.testing.assert_close(transform(g, x, "point"),
                               torch.from_numpy(rot.apply(x.numpy())) + t)
    gi = Element({"matrix": -R[None]})
    torch.testing.assert_close(transform(gi, x, "pseudovector"),
                               torch.from_numpy(rot.apply(x.numpy())))


@settings(max_examples=10, deadline=None)
@given(seed=SEEDS, reflect=st.booleans())
def test_wigner_homomorphism_and_orthogonality(seed, reflect):
    R1, R2 = _rotations(seed, reflect=reflect)
    s = "0e+0o+1o+1e+2e+2o+3o+4e"
    D1, D2, D12 = irreps_D(R1, s), irreps_D(R2, s), irreps_D(R1 @ R2, s)
    torch.testing.assert_close(D1 @ D2, D12, atol=1e-12, rtol=0)
    torch.testing.assert_close(D1 @ D1.T, torch.eye(D1.shape[0], dtype=torch.float64),
                               atol=1e-12, rtol=0)
    torch.testing.assert_close(irreps_D(R1, "1o"), R1, atol=1e-13, rtol=0)  # D^1 = R


@settings(max_examples=10, deadline=None)
@given(seed=SEEDS, reflect=st.booleans())
def test_wigner_matches_e3nn(seed, reflect):
    R = _rotations(seed, n=1, reflect=reflect)[0]
    s = "2x0e+0o+1o+1e+2e+3o+4e"
    # e3nn's D_from_matrix builds on float32 constants: agreement to ~1e-6 only.
    torch.testing.assert_close(irreps_D(R, s), e3nn.o3.Irreps(s).D_from_matrix(R),
                               atol=5e-6, rtol=0)
    U = uniform_D_reference(R, 3)
    ref = torch.block_diag(*[e3nn.o3.Irrep(l, (-1) ** l).D_from_matrix(R) for l in range(4)])
    torch.testing.assert_close(U, ref, atol=5e-6, rtol=0)


@settings(max_examples=10, deadline=None)
@given(seed=SEEDS, reflect=st.booleans())
def test_spherical_harmonics_are_equivariant_under_oracle(seed, reflect):
    # Y(R x) = D(R) Y(x) for e3nn's spherical harmonics (parity (-1)^l): exact convention check.
    R = _rotations(seed, n=1, reflect=reflect)[0]
    g = Element({"matrix": R[None]})
    x = torch.randn(10, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(seed))
    irreps = e3nn.o3.Irreps.spherical_harmonics(4)
    Y = e3nn.o3.spherical_harmonics(irreps, x, normalize=False)
    Y_rot = e3nn.o3.spherical_harmonics(irreps, transform(g, x, "vector"), normalize=False)
    torch.testing.assert_close(Y_rot, transform(g, Y, str(irreps)), atol=1e-10, rtol=1e-10)
    u = Y.reshape(10, 25, 1)  # the same features in the uniform layout with one channel
    torch.testing.assert_close(Y_rot.reshape(10, 25, 1), transform(g, u, "uniform:4"),
                               atol=1e-10, rtol=1e-10)


@pytest.mark.parametrize("shape", [(4, 4), (2, 3, 5)])
def test_image_index_maps_match_torch(shape):
    x = torch.randn(*shape)
    for k in range(5):
        torch.testing.assert_close(image_rot90(x, k), torch.rot90(x, k, dims=(-2, -1)))
    torch.testing.assert_close(image_flip(x), torch.flip(x, dims=(-1,)))
    for s in [(0, 0), (1, 2), (-1, 7)]:
        torch.testing.assert_close(image_shift(x, s), torch.roll(x, s, dims=(-2, -1)))
    torch.testing.assert_close(image_upsample(x, 3),
                               x.repeat_interleave(3, -2).repeat_interleave(3, -1))


def test_permutation_and_edge_index_by_hand():
    perm = torch.tensor([[2, 0, 1]])
    g = Element({"perm": perm})
    x = torch.tensor([[1.0], [2.0], [3.0]])
    torch.testing.assert_close(transform(g, x, "node:scalar"), torch.tensor([[3.0], [1.0], [2.0]]))
    # old node 2 is new node 0, old 0 -> new 1, old 1 -> new 2
    e = torch.tensor([[0, 2], [1, 1]])
    assert transform(g, e, "edge_index").tolist() == [[1, 0], [2, 2]]
    with pytest.raises(ValueError, match="3 nodes on axis 1"):
        transform(g, torch.randn(2, 4), "set:scalar")
    with pytest.raises(ValueError, match="single group element"):
        transform(Element({"perm": perm.expand(2, 3)}), x, "node:scalar")
