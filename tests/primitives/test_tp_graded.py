"""Graded CG kernel (four dense blocks by the Z2 x Z2 grading of real harmonics): values against
the dense table, gradients and second derivatives, chunking, the grading law itself, and its use
by the cg backend for channel-wise products of high degree (SISO, SIMO)."""

import pytest
import torch
from hypothesis import given, settings, strategies as st

from symformer.groups import O3
from symformer.primitives import clebsch_gordan
from symformer.primitives.tp import TensorProductSpec, tensor_product
from symformer.primitives.tp import _componentwise, _graded
from symformer.primitives.tp._graded import GradedTable, graded_product, grades
from symformer.testing import assert_equivariant


def _table(l1, l2, l3s):
    return torch.cat([clebsch_gordan(l1, l2, l3, torch.float64) for l3 in l3s], -1)


# Odd degrees pad the grade groups, even ones move the m = 0 pairs to the leftover list;
# several outputs per pair (SIMO-like) and unequal input degrees.
CASES = [(2, 2, (2,)), (5, 5, (5,)), (6, 6, (6,)), (1, 2, (1, 2, 3)), (3, 4, (1, 2, 5, 6, 7)),
         (4, 4, tuple(range(9)))]


@pytest.mark.parametrize("l1,l2,l3s", CASES)
def test_graded_product_equals_dense_table(l1, l2, l3s, dtype, generator, monkeypatch):
    t = _table(l1, l2, l3s)
    table = GradedTable(t, grades(l1), grades(l2))
    a = torch.randn(2 * l1 + 1, 300, generator=generator, dtype=torch.float64)
    b = torch.randn(2 * l2 + 1, 300, generator=generator, dtype=torch.float64)
    want = torch.einsum("ijk,in,jn->kn", t, a, b)
    tol = 1e-12 if dtype == torch.float64 else 1e-5
    for chunk in (1 << 20, 1):    # one chunk; chunks of 256 columns with a ragged last one
        monkeypatch.setattr(_graded, "CHUNK_BYTES", chunk)
        got = graded_product(a.to(dtype), b.to(dtype), table)
        assert got.dtype == dtype
        torch.testing.assert_close(got.double(), want, atol=tol, rtol=tol)


@pytest.mark.parametrize("l1,l2,l3s", [(2, 2, (2,)), (3, 2, (1, 4, 5))])
def test_graded_product_gradcheck_and_gradgradcheck(l1, l2, l3s, generator):
    table = GradedTable(_table(l1, l2, l3s), grades(l1), grades(l2))
    a = torch.randn(2 * l1 + 1, 5, generator=generator, dtype=torch.float64, requires_grad=True)
    b = torch.randn(2 * l2 + 1, 5, generator=generator, dtype=torch.float64, requires_grad=True)
    fn = lambda u, v: graded_product(u, v, table)  # noqa: E731
    assert torch.autograd.gradcheck(fn, (a, b))
    assert torch.autograd.gradgradcheck(fn, (a, b))


@settings(max_examples=25, deadline=None)
@given(l1=st.integers(0, 7), l2=st.integers(0, 7), data=st.data())
def test_every_cg_table_obeys_the_grading(l1, l2, data):
    # The selection rule the kernel rests on: x_i y_j feeds output k only if g(i) xor g(j) is
    # the same for every such pair (the constructor raises otherwise).
    l3 = data.draw(st.integers(abs(l1 - l2), l1 + l2))
    t = clebsch_gordan(l1, l2, l3, torch.float64)
    table = GradedTable(t, grades(l1), grades(l2))
    g1, g2, g3 = table.grades
    for i, j, k in (t.abs() > 1e-12).nonzero().tolist():
        assert g1[i] ^ g2[j] == g3[k]


def test_table_breaking_the_grading_is_rejected():
    t = clebsch_gordan(1, 1, 1, torch.float64).clone()
    t[1, 1, 0] = 0.5          # m = 0 x m = 0 -> m = -1: a pair of the wrong class
    with pytest.raises(ValueError, match="grading"):
        GradedTable(t, grades(1), grades(1))


def _siso(L, c=3):
    ir = f"{c}x{L}{'e' if L % 2 == 0 else 'o'}"
    return TensorProductSpec(ir, ir, f"{c}x{L}e", [(0, 0, 0, False)], mode="uuu")


@pytest.mark.parametrize("L", [5, 6, 7, 8])
def test_cg_backend_single_path_products_equal_the_dense_contraction(L, dtype, generator):
    # The benchmark's single-in single-out product: the graded kernel equals the dense CG sum.
    spec = _siso(L)
    assert _componentwise._graded(spec)[0] is not None
    x = torch.randn(4, spec.irreps_in1.dim, generator=generator, dtype=torch.float64)
    y = torch.randn(4, spec.irreps_in2.dim, generator=generator, dtype=torch.float64)
    cg = clebsch_gordan(L, L, L, torch.float64) * spec.coefficients[0]
    want = torch.einsum("nci,ncj,ijk->nck", x.view(4, 3, -1), y.view(4, 3, -1), cg).reshape(4, -1)
    got = tensor_product(x.to(dtype), y.to(dtype), spec, None, "cg")
    tol = 1e-12 if dtype == torch.float64 else 1e-5
    torch.testing.assert_close(got.double(), want, atol=tol, rtol=tol)


def test_cg_backend_graded_gradients_and_second_derivatives(generator):
    # Weighted product through the cg backend with a graded pair (5o x 5o -> 5e) beside dense
    # ones (a low degree; and 5o x 5o -> 0e..10e, too many outputs for the graded kernel):
    # gradcheck and gradgradcheck (forces need the double backward).
    spec = TensorProductSpec("2x1o+2x5o", "2x1o+2x5o", "2x0e+2x1e+2x5e",
                             [(0, 0, 0), (0, 0, 1), (0, 1, 2), (1, 1, 2)], mode="uuu",
                             weight_mode="external")
    wide = TensorProductSpec.channelwise("1x5o", "1x5o", "+".join(f"1x{l}e" for l in range(11)),
                                         mode="uuu")
    assert [g is not None for g in _componentwise._graded(spec)] == [False, False, True]
    assert _componentwise._graded(wide) == (None,)
    for sp in (spec, wide):
        x, y = (torch.randn(2, sp.irreps_in1.dim, generator=generator, dtype=torch.float64,
                            requires_grad=True) for _ in range(2))
        w = torch.randn(2, sp.weight_numel, generator=generator, dtype=torch.float64,
                        requires_grad=True)
        fn = lambda a, b, c, sp=sp: tensor_product(a, b, sp, c, "cg")  # noqa: E731
        assert torch.autograd.gradcheck(fn, (x, y, w))
        if sp is spec:   # the dense kernels' second derivatives are tested with their own specs
            assert torch.autograd.gradgradcheck(fn, (x, y, w))


def test_cg_backend_graded_kernel_is_equivariant(dtype, generator):
    spec = _siso(6, c=2)
    inputs = tuple(torch.randn(3, irreps.dim, generator=generator, dtype=dtype)
                   for irreps in (spec.irreps_in1, spec.irreps_in2))
    assert_equivariant(lambda a, b: tensor_product(a, b, spec, None, "cg"), O3(), inputs,
                       (str(spec.irreps_in1), str(spec.irreps_in2)), str(spec.irreps_out),
                       n_samples=2, generator=generator)


@pytest.mark.parametrize("L", [2, 5, 8])
def test_graded_kernel_choice(L):
    # Single-path products from degree 5 take it; below, and for pairs with many outputs
    # (single-in multi-out, multi-in multi-out), the dense kernels keep their measured speed.
    uni = "+".join(f"2x{l}{'e' if l % 2 == 0 else 'o'}" for l in range(L + 1))
    ir = f"2x{L}{'e' if L % 2 == 0 else 'o'}"
    simo = TensorProductSpec.channelwise(ir, ir, "+".join(f"2x{l}e" for l in range(2 * L + 1)),
                                         mode="uuu")
    mimo = TensorProductSpec.channelwise(uni, uni, uni, mode="uuu")
    assert (_componentwise._graded(_siso(L))[0] is not None) == (L >= 5)
    assert all(g is None for g in _componentwise._graded(simo) + _componentwise._graded(mimo))
