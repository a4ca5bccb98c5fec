"""Equivariant Transformer layers: pose estimates follow the transformation."""

import math

import pytest
import torch

from symformer.layers.image.etn import ETLayer


def _wrap(a):
    return (a + math.pi) % (2 * math.pi) - math.pi


def test_rotation_estimate_follows_quarter_turns(dtype):
    layer = ETLayer("rotation", grid=16, channels=4, depth=2).to(dtype)
    x = torch.rand(3, 1, 20, 20, dtype=dtype)
    G = torch.eye(3, dtype=torch.float64).expand(3, 3, 3)
    t0 = layer.estimate(x, G)
    assert t0.dtype == torch.float64
    for k in (1, 2, 3):
        tk = layer.estimate(torch.rot90(x, k, (-2, -1)), G)
        err = _wrap(tk - t0 - k * math.pi / 2).abs().max()
        assert err < (1e-9 if dtype == torch.float64 else 1e-4)


def test_other_kinds_return_finite_poses_and_refine_the_homography():
    x = torch.rand(2, 1, 16, 16)
    G = torch.eye(3, dtype=torch.float64).expand(2, 3, 3)
    for kind in ("scale", "shear", "hyperbolic", "perspective"):
        layer = ETLayer(kind, grid=8, channels=4, depth=2)
        H = layer(x, G)
        assert H.shape == (2, 3, 3) and torch.isfinite(H).all()
        t = layer.estimate(x, G)
        assert t.shape == (2,) and torch.isfinite(t).all()


def test_gradients_reach_the_pose_network():
    layer = ETLayer("rotation", grid=8, channels=4, depth=2)
    x = torch.rand(2, 1, 16, 16)
    layer.estimate(x, torch.eye(3, dtype=torch.float64).expand(2, 3, 3)).sum().backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all()
               for p in layer.parameters())


def test_errors():
    with pytest.raises(ValueError, match="kind"):
        ETLayer("affine")
    with pytest.raises(ValueError, match="grid"):
        ETLayer("rotation", grid=2)
