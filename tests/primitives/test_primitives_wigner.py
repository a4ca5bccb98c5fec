import pytest
import torch
from e3nn import o3
from hypothesis import given, settings, strategies as st

from symformer.primitives import (edge_align_rotation, random_rotation, rotation_to_y,
                                  spherical_harmonics, wigner_D)

TOL = {torch.float32: 2e-5, torch.float64: 1e-11}


@pytest.mark.parametrize("l", range(9))
def test_matches_e3nn(l, dtype):
    R = random_rotation(8, torch.Generator().manual_seed(l), dtype=dtype)
    R[4:] = -R[4:]
    ours = wigner_D(l, R)
    assert ours.shape == (8, 2 * l + 1, 2 * l + 1) and ours.dtype == dtype
    # e3nn computes its generators in float32: agreement at float32 precision.
    ref = o3.Irrep(l, 1).D_from_matrix(R.double())
    torch.testing.assert_close(ours.double(), ref, atol=2e-5, rtol=0)


def test_l1_is_the_matrix_and_l0_is_one(dtype):
    R = random_rotation(5, dtype=dtype)
    torch.testing.assert_close(wigner_D(1, R), R, atol=TOL[dtype], rtol=0)
    torch.testing.assert_close(wigner_D(0, R), torch.ones(5, 1, 1, dtype=dtype))


@settings(max_examples=10, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), l=st.integers(0, 8))
def test_homomorphism_and_orthogonality(seed, l):
    g, h = random_rotation(2, torch.Generator().manual_seed(seed), dtype=torch.float64)
    Dg, Dh, Dgh = wigner_D(l, g), wigner_D(l, h), wigner_D(l, g @ h)
    torch.testing.assert_close(Dgh, Dg @ Dh, atol=1e-11, rtol=0)
    torch.testing.assert_close(Dg @ Dg.T, torch.eye(2 * l + 1, dtype=torch.float64),
                               atol=1e-11, rtol=0)


def test_batched_shapes_and_grad():
    R = random_rotation(6, dtype=torch.float64).reshape(2, 3, 3, 3).requires_grad_()
    D = wigner_D(3, R)
    assert D.shape == (2, 3, 7, 7)
    D.square().sum().backward()
    assert torch.isfinite(R.grad).all()


def test_random_rotation_is_haar_like(dtype):
    R = random_rotation(4000, torch.Generator().manual_seed(0), dtype=dtype)
    eye = torch.eye(3, dtype=dtype).expand(4000, 3, 3)
    torch.testing.assert_close(R @ R.transpose(1, 2), eye, atol=TOL[dtype] * 10, rtol=0)
    assert torch.allclose(torch.linalg.det(R), torch.ones((), dtype=dtype), atol=1e-4)
    # Haar: E[R] = 0 and E[tr(R)] = 0 (std of the mean ~ 1/sqrt(3n)).
    assert R.mean(0).abs().max() < 0.06
    assert not torch.equal(R, random_rotation(4000, torch.Generator().manual_seed(1), dtype=dtype))


def test_rotation_to_y(dtype):
    v = torch.randn(500, 3, dtype=dtype, generator=torch.Generator().manual_seed(0))
    near = torch.tensor([[0, 1, 0], [0, -1, 0], [1e-7, 1, -1e-7], [1e-7, -1, 1e-8],
                         [1, 0, 0], [0, 0, 1], [1, 1e-9, 0]], dtype=dtype)
    v = torch.cat([v, near, 3.5 * near])
    R = rotation_to_y(v)
    eye = torch.eye(3, dtype=dtype).expand(len(v), 3, 3)
    torch.testing.assert_close(R @ R.transpose(1, 2), eye, atol=TOL[dtype] * 5, rtol=0)
    torch.testing.assert_close(torch.linalg.det(R), torch.ones(len(v), dtype=dtype),
                               atol=TOL[dtype] * 5, rtol=0)
    u = v / v.norm(dim=-1, keepdim=True)
    target = torch.tensor([0, 1, 0], dtype=dtype).expand(len(v), 3)
    torch.testing.assert_close((R @ u[:, :, None])[..., 0], target, atol=TOL[dtype] * 5, rtol=0)


def test_rotation_to_y_degenerate_and_smooth_near_poles():
    v = torch.tensor([[0.0, 0.0, 0.0], [1e-4, 1.0, 2e-4], [1e-4, -1.0, 2e-4]],
                     dtype=torch.float64, requires_grad=True)
    R = rotation_to_y(v)
    torch.testing.assert_close(R[0], torch.eye(3, dtype=torch.float64))
    R.sum().backward()
    assert torch.isfinite(v.grad).all() and v.grad.abs().max() < 10
    near = rotation_to_y(torch.tensor([[0.0, 1.0, 0.0], [1e-6, 1.0, 0.0]], dtype=torch.float64))
    assert (near[0] - near[1]).abs().max() < 1e-5


def test_edge_align_wigner_rotates_sh_onto_y():
    v = torch.randn(10, 3, dtype=torch.float64)
    D = edge_align_rotation(v, lmax=3)
    assert D.shape == (10, 16, 16)
    y_edge = spherical_harmonics(3, v)
    y_axis = spherical_harmonics(3, torch.tensor([0.0, 1.0, 0.0], dtype=torch.float64))
    torch.testing.assert_close((D @ y_edge[..., None])[..., 0], y_axis.expand(10, 16),
                               atol=1e-11, rtol=0)
