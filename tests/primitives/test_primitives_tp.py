import pytest
import torch
from e3nn import o3
from hypothesis import given, settings, strategies as st

from symformer.primitives import (cg_tensor_product, cg_tensor_product_paths, random_rotation,
                                  sh_path_list, spherical_harmonics)
from symformer.reps import uniform_irreps


def test_path_list():
    paths = sh_path_list(1, 1, 2)
    assert paths == [(0, 0, 0), (1, 1, 0), (0, 1, 1), (1, 0, 1), (1, 1, 2)]
    assert (1, 1, 1) in sh_path_list(1, 1, 2, parity=False)
    assert all(l3 <= 1 for _, _, l3 in sh_path_list(3, 3, 1))


def test_matches_e3nn_path(dtype):
    # One path l1 x l2 -> l3 with channel-wise ("uuu") coupling equals e3nn's TensorProduct.
    x, y = torch.randn(5, 9, 4, dtype=dtype), torch.randn(5, 9, 4, dtype=dtype)
    (out,) = cg_tensor_product_paths(x, y, [(2, 1, 1)])
    tp = o3.TensorProduct("4x2e", "4x1o", "4x1o", [(0, 0, 0, "uuu", False)],
                          irrep_normalization="component", path_normalization="none")
    tp = tp.to(dtype)
    ref = tp(x[:, 4:9].transpose(1, 2).reshape(5, -1), y[:, 1:4].transpose(1, 2).reshape(5, -1))
    # e3nn builds its wigner_3j buffers in float32: agreement at float32 precision.
    torch.testing.assert_close(out, ref.reshape(5, 4, 3).transpose(1, 2), atol=1e-5, rtol=0)


@settings(max_examples=8, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), improper=st.booleans())
def test_equivariant(seed, improper):
    g = torch.Generator().manual_seed(seed)
    R = random_rotation(1, g, dtype=torch.float64)[0]
    R = -R if improper else R
    x = torch.randn(6, 9, 3, dtype=torch.float64, generator=g)
    vec = torch.randn(6, 3, dtype=torch.float64, generator=g)
    y = spherical_harmonics(3, vec)[..., None]                   # (6, 16, 1), broadcast over C
    w = torch.randn(6, len(sh_path_list(2, 3, 3)), 3, dtype=torch.float64, generator=g)
    D2, D3 = (uniform_irreps(L, 1).D_from_matrix(R) for L in (2, 3))
    out = cg_tensor_product(x, y, 3, weights=w)
    out_rot = cg_tensor_product(D2 @ x, spherical_harmonics(3, vec @ R.T)[..., None], 3,
                                weights=w)
    torch.testing.assert_close(out_rot, D3 @ out, atol=1e-11, rtol=0)


def test_weights_and_missing_degrees():
    x = torch.randn(2, 4, 5)
    y = torch.randn(2, 4, 5)
    paths = [(1, 1, 0), (0, 0, 0)]
    w = torch.tensor([2.0, -1.0])
    out = cg_tensor_product(x, y, 2, paths=paths, weights=w)
    a, b = cg_tensor_product_paths(x, y, paths)
    assert out.shape == (2, 9, 5)
    torch.testing.assert_close(out[:, :1], 2 * a - b)
    assert out[:, 1:].eq(0).all()


def test_errors():
    x = torch.randn(2, 4, 5)
    with pytest.raises(ValueError):
        cg_tensor_product(torch.randn(2, 5, 5), x, 1)
    with pytest.raises(ValueError):
        cg_tensor_product(x, x, 1, paths=[(2, 1, 1)])
    with pytest.raises(ValueError):
        cg_tensor_product(x, x, 1, paths=[(1, 1, 0)], weights=torch.ones(3))
