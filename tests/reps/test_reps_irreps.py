import pytest
import torch
from e3nn import o3
from hypothesis import given, settings, strategies as st

from symformer.primitives import random_rotation
from symformer.reps import Irrep, Irreps

STRINGS = ["16x0e+8x1o", "1e", "0o+2x1e", "2x2e+0x3o+1o+3x0o+2x1e+1x0e", "4x3o+1x4e", ""]


@pytest.mark.parametrize("s", STRINGS)
def test_matches_e3nn(s):
    ours, ref = Irreps(s), o3.Irreps(s)
    assert ours == ref and str(ours) == str(ref)
    assert ours.dim == ref.dim and ours.num_irreps == ref.num_irreps
    assert ours.slices() == ref.slices()
    assert ours.simplify() == ref.simplify()
    srt, srt_ref = ours.sort(), ref.sort()
    assert srt.irreps == srt_ref.irreps
    assert srt.p == tuple(srt_ref.p) and srt.inv == tuple(srt_ref.inv)
    assert Irreps(ref) == ours and Irreps.from_e3nn(ref) == ours
    assert ours.to_e3nn() == ref and isinstance(ours.to_e3nn(), o3.Irreps)
    if s:
        assert ours.lmax == ref.lmax


def test_descriptor_behaviour():
    a = Irreps("16x0e+8x1o")
    assert hash(a) == hash(Irreps("16x0e + 8x1o")) and a == "16x0e+8x1o"
    assert {a: 1}[Irreps("16x0e+8x1o")] == 1
    assert a + "1e" == Irreps("16x0e+8x1o+1x1e")
    assert 2 * a == a * 2 == Irreps("16x0e+8x1o+16x0e+8x1o")
    assert list(a) == [(16, Irrep(0, 1)), (8, Irrep(1, -1))]
    mul, ir = a[1]
    assert (mul, ir.l, ir.p, ir.dim) == (8, 1, -1, 3)
    assert isinstance(a[1:], Irreps) and a[1:] == "8x1o"
    assert Irreps("1y+2y") == "1o+2e" and Irrep("3y") == Irrep(3, -1)
    assert Irreps.spherical_harmonics(3) == o3.Irreps.spherical_harmonics(3)
    assert Irreps.spherical_harmonics(2, p=1) == o3.Irreps.spherical_harmonics(2, p=1)
    assert Irrep(o3.Irrep("2o")) == Irrep(2, -1) and 3 * Irrep("1o") == Irreps("3x1o")
    assert list(Irrep("1o") * Irrep("1o")) == [Irrep("0e"), Irrep("1e"), Irrep("2e")]
    assert Irreps("").dim == 0 and len(Irreps(None)) == 0


@pytest.mark.parametrize("bad", ["1x", "2q", "x1e", "1e+", "-1x1e"])
def test_parse_errors(bad):
    with pytest.raises(ValueError):
        Irreps(bad)


def test_irrep_errors():
    with pytest.raises(ValueError):
        Irrep(1, 0)
    with pytest.raises(ValueError):
        Irrep(-1, 1)
    with pytest.raises(TypeError):
        Irreps("1e") * 1.5


def test_randn(dtype, generator):
    x = Irreps("3x0e+2x1o").randn(4, 5, dtype=dtype, generator=generator)
    assert x.shape == (4, 5, 9) and x.dtype == dtype


@pytest.mark.parametrize("s", ["16x0e+8x1o+2x2e", "0o+2x1e+1x3o+1x4e", "1x5e+1x6o"])
def test_D_from_matrix_matches_e3nn(s, dtype):
    R = random_rotation(6, torch.Generator().manual_seed(3), dtype=dtype)
    R[3:] = -R[3:]  # improper half
    ours = Irreps(s).D_from_matrix(R)
    # e3nn builds its generators in float32, so agreement is at float32 precision.
    ref = o3.Irreps(s).D_from_matrix(R.double())
    assert ours.shape == (6, Irreps(s).dim, Irreps(s).dim) and ours.dtype == dtype
    torch.testing.assert_close(ours.double(), ref, atol=2e-5, rtol=0)


@settings(max_examples=10, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), flip_g=st.booleans(), flip_h=st.booleans())
def test_D_is_a_representation(seed, flip_g, flip_h):
    irreps = Irreps("2x0e+0o+1o+1e+2e+2o+3o+4e")
    g, h = random_rotation(2, torch.Generator().manual_seed(seed), dtype=torch.float64)
    g, h = (-g if flip_g else g), (-h if flip_h else h)
    Dg, Dh, Dgh = (irreps.D_from_matrix(m) for m in (g, h, g @ h))
    torch.testing.assert_close(Dgh, Dg @ Dh, atol=1e-10, rtol=0)
    torch.testing.assert_close(Dg @ Dg.T, torch.eye(irreps.dim, dtype=torch.float64),
                               atol=1e-10, rtol=0)


def test_parity_of_inversion():
    D = Irreps("0e+0o+1o+1e+2e").D_from_matrix(-torch.eye(3, dtype=torch.float64))
    expected = torch.tensor([1, -1, -1, -1, -1, 1, 1, 1] + [1] * 5, dtype=torch.float64)
    torch.testing.assert_close(D, torch.diag(expected))
