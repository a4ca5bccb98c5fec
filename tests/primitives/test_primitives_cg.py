import pytest
import torch
from e3nn import o3
from hypothesis import given, settings, strategies as st

from symformer.primitives import clebsch_gordan, random_rotation, wigner_D

PATHS = [(l1, l2, l3) for l1 in range(5) for l2 in range(5)
         for l3 in range(abs(l1 - l2), l1 + l2 + 1)]


@pytest.mark.parametrize("l1,l2,l3", PATHS + [(6, 6, 6), (2, 7, 8), (8, 8, 1)])
def test_matches_e3nn_wigner_3j(l1, l2, l3):
    ours = clebsch_gordan(l1, l2, l3, torch.float64)
    ref = o3.wigner_3j(l1, l2, l3, dtype=torch.float64)
    assert ours.shape == (2 * l1 + 1, 2 * l2 + 1, 2 * l3 + 1)
    torch.testing.assert_close(ours, ref, atol=1e-13, rtol=0)  # same values, same sign


def test_dtype_device_and_cache(dtype):
    c = clebsch_gordan(1, 2, 3, dtype)
    assert c.dtype == dtype and c.device.type == "cpu"
    assert clebsch_gordan(1, 2, 3, dtype) is c
    torch.testing.assert_close(c.double().norm(), torch.tensor(1.0, dtype=torch.float64))


@settings(max_examples=12, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), l1=st.integers(0, 5), l2=st.integers(0, 5),
       data=st.data())
def test_intertwines_wigner_D(seed, l1, l2, data):
    l3 = data.draw(st.integers(abs(l1 - l2), l1 + l2))
    R = random_rotation(1, torch.Generator().manual_seed(seed), dtype=torch.float64)[0]
    C = clebsch_gordan(l1, l2, l3, torch.float64)
    rotated = torch.einsum("ijk,ai,bj,ck->abc", C, wigner_D(l1, R), wigner_D(l2, R),
                           wigner_D(l3, R))
    torch.testing.assert_close(rotated, C, atol=1e-11, rtol=0)


def test_known_values():
    # 1 x 1 -> 0 is the invariant dot product; 1 x 1 -> 1 is the cross product.
    c0 = clebsch_gordan(1, 1, 0, torch.float64)[..., 0]
    torch.testing.assert_close(c0, torch.eye(3, dtype=torch.float64) / 3 ** 0.5)
    c1 = clebsch_gordan(1, 1, 1, torch.float64)
    a, b = torch.randn(3, dtype=torch.float64), torch.randn(3, dtype=torch.float64)
    cross = torch.einsum("i,j,ijk->k", a, b, c1)
    torch.testing.assert_close(cross, torch.linalg.cross(a, b) / 6 ** 0.5)


@pytest.mark.parametrize("args", [(1, 1, 3), (-1, 1, 1), (1.0, 1, 1)])
def test_errors(args):
    with pytest.raises(ValueError):
        clebsch_gordan(*args)
