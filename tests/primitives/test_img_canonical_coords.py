"""Canonical coordinates: each transformation is a shift of u; sampling conventions."""

import math

import pytest
import torch

from symformer.primitives.canonical_coords import (KINDS, apply_homography, canonical_grid,
                                                    pixel_grid, sample_image, to_cartesian,
                                                    transform_matrix)


@pytest.mark.parametrize("kind", KINDS)
def test_transformation_is_a_shift_of_u(kind):
    g = torch.Generator().manual_seed(0)
    u = 1 + torch.rand(20, generator=g, dtype=torch.float64)
    v = torch.rand(20, generator=g, dtype=torch.float64) - 0.5
    t = torch.rand(20, generator=g, dtype=torch.float64) - 0.5
    moved = apply_homography(transform_matrix(kind, t), to_cartesian(kind, u, v)[:, None])[:, 0]
    torch.testing.assert_close(moved, to_cartesian(kind, u + t, v))
    torch.testing.assert_close(transform_matrix(kind, torch.zeros(1, dtype=torch.float64))[0],
                               torch.eye(3, dtype=torch.float64))


def test_transform_group_law():
    for kind in KINDS:
        a, b = torch.tensor([0.2]), torch.tensor([-0.7])
        torch.testing.assert_close(transform_matrix(kind, a) @ transform_matrix(kind, b),
                                   transform_matrix(kind, a + b), atol=1e-6, rtol=1e-6)


def test_polar_grid_quarter_turn_is_a_quarter_shift():
    pts, u = canonical_grid("rotation", (16, 5), dtype=torch.float64)
    assert pts.shape == (16, 5, 2) and u.shape == (16,)
    R = torch.tensor([[0.0, -1.0], [1.0, 0.0]], dtype=torch.float64)
    torch.testing.assert_close(pts @ R.T, pts.roll(-4, 0))


def test_sample_image_reads_pixel_centres_exactly(dtype):
    img = torch.rand(2, 3, 6, 6, dtype=dtype)
    pts = pixel_grid(6, dtype=dtype).expand(2, 6, 6, 2)
    torch.testing.assert_close(sample_image(img, pts), img)
    # y is up: the top row has y > 0
    assert pixel_grid(6)[0, 0, 1] > 0 and pixel_grid(6)[0, 0, 0] < 0


def test_unknown_kind():
    with pytest.raises(ValueError, match="kind"):
        canonical_grid("affine", (4, 4))
    with pytest.raises(ValueError, match="kind"):
        transform_matrix("affine", torch.zeros(1))


def test_angles_are_periodic():
    _, u = canonical_grid("rotation", (8, 2))
    assert u[0] == pytest.approx(-math.pi) and u[-1] < math.pi


def test_warp_sample_matches_sample_image_of_apply_homography(dtype):
    from symformer.primitives.canonical_coords import warp_sample
    g = torch.Generator().manual_seed(1)
    img = torch.rand(3, 2, 12, 10, generator=g, dtype=dtype)
    H = torch.eye(3, dtype=torch.float64) + 0.3 * torch.randn(3, 3, 3, generator=g,
                                                              dtype=torch.float64)
    for kind in KINDS:
        pts, _ = canonical_grid(kind, (8, 5), dtype=torch.float64)
        ref = sample_image(img, apply_homography(H, pts.expand(3, 8, 5, 2)))
        torch.testing.assert_close(warp_sample(img, H, pts), ref)
    # gradients reach the homography
    Hg = H.clone().requires_grad_()
    warp_sample(img, Hg, pixel_grid(6, dtype=torch.float64)).sum().backward()
    assert Hg.grad is not None and Hg.grad.abs().sum() > 0
