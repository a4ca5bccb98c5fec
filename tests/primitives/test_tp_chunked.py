"""Chunked dense CG kernel (samples-major, outer product in cache-sized chunks): values against
the dense table, gradients and second derivatives, and the cg backend's float64 kernel choice."""

import pytest
import torch

from symformer.primitives import clebsch_gordan
from symformer.primitives.tp import TensorProductSpec, tensor_product
from symformer.primitives.tp import _chunked, _componentwise
from symformer.primitives.tp._chunked import DenseTable, chunked_product


def _table(l1, l2, l3s):
    return torch.cat([clebsch_gordan(l1, l2, l3, torch.float64) for l3 in l3s], -1)


@pytest.mark.parametrize("l1,l2,l3s", [(2, 2, (2,)), (3, 4, (1, 2, 5)), (4, 4, (4,))])
def test_chunked_product_equals_dense_table(l1, l2, l3s, dtype, generator, monkeypatch):
    t = _table(l1, l2, l3s)
    a = torch.randn(300, 2 * l1 + 1, generator=generator, dtype=torch.float64)
    b = torch.randn(300, 2 * l2 + 1, generator=generator, dtype=torch.float64)
    want = torch.einsum("ijk,ni,nj->nk", t, a, b)
    tol = 1e-12 if dtype == torch.float64 else 1e-5
    for chunk in (1 << 20, 1):    # one chunk; chunks of 64 rows with a ragged last one
        monkeypatch.setattr(_chunked, "CHUNK_BYTES", chunk)
        got = chunked_product(a.to(dtype), b.to(dtype), DenseTable(t))
        assert got.dtype == dtype and got.shape == want.shape
        torch.testing.assert_close(got.double(), want, atol=tol, rtol=tol)


def test_chunked_product_gradcheck_and_gradgradcheck(generator, monkeypatch):
    monkeypatch.setattr(_chunked, "CHUNK_BYTES", 1)   # the backward runs chunked too
    table = DenseTable(_table(3, 2, (1, 4, 5)))
    a = torch.randn(70, 7, generator=generator, dtype=torch.float64, requires_grad=True)
    b = torch.randn(70, 5, generator=generator, dtype=torch.float64, requires_grad=True)
    fn = lambda u, v: chunked_product(u, v, table)  # noqa: E731
    assert torch.autograd.gradcheck(fn, (a, b))
    assert torch.autograd.gradgradcheck(fn, (a, b))


def _siso(L, c=3):
    ir = f"{c}x{L}{'e' if L % 2 == 0 else 'o'}"
    return TensorProductSpec(ir, ir, f"{c}x{L}e", [(0, 0, 0, False)], mode="uuu")


@pytest.mark.parametrize("L", [1, 2, 3, 4, 5])
def test_chunked_kernel_choice(L):
    # float64 single-path pairs of degrees 2..4 take it; float32 keeps the component-major
    # kernel (faster there), degree 5 on the graded one, and pairs with many outputs
    # (single-in multi-out) the dense table.
    ir = f"2x{L}{'e' if L % 2 == 0 else 'o'}"
    simo = TensorProductSpec.channelwise(ir, ir, "+".join(f"2x{l}e" for l in range(2 * L + 1)),
                                         mode="uuu")
    siso = _siso(L)
    assert _componentwise.takes_chunked(siso, 0, 0, torch.float64) == (2 <= L <= 4)
    assert not _componentwise.takes_chunked(siso, 0, 0, torch.float32)
    assert not _componentwise.takes_chunked(simo, 0, 0, torch.float64)
    assert (_componentwise._dense(siso, torch.float64)[0] is not None) == (2 <= L <= 4)


@pytest.mark.parametrize("L", [2, 3, 4])
def test_cg_backend_float64_single_path_equals_dense_contraction(L, generator):
    spec = _siso(L)
    x = torch.randn(4, spec.irreps_in1.dim, generator=generator, dtype=torch.float64)
    y = torch.randn(4, spec.irreps_in2.dim, generator=generator, dtype=torch.float64)
    cg = clebsch_gordan(L, L, L, torch.float64) * spec.coefficients[0]
    want = torch.einsum("nci,ncj,ijk->nck", x.view(4, 3, -1), y.view(4, 3, -1), cg).reshape(4, -1)
    got = tensor_product(x, y, spec, None, "cg")
    torch.testing.assert_close(got, want, atol=1e-12, rtol=1e-12)
    torch.testing.assert_close(tensor_product(x.float(), y.float(), spec, None, "cg").double(),
                               want, atol=1e-5, rtol=1e-5)


def test_cg_backend_chunked_gradients_and_second_derivatives(generator):
    # Weighted product with a chunked pair (3o x 3o -> 3e) beside a small one and a wide one.
    spec = TensorProductSpec("2x1o+2x3o", "2x1o+2x3o", "2x0e+2x1e+2x3e",
                             [(0, 0, 0), (0, 0, 1), (0, 1, 2), (1, 1, 2)], mode="uuu",
                             weight_mode="external")
    assert [d is not None for d in _componentwise._dense(spec, torch.float64)] == \
        [False, False, True]
    x, y = (torch.randn(2, spec.irreps_in1.dim, generator=generator, dtype=torch.float64,
                        requires_grad=True) for _ in range(2))
    w = torch.randn(2, spec.weight_numel, generator=generator, dtype=torch.float64,
                    requires_grad=True)
    fn = lambda a, b, c: tensor_product(a, b, spec, c, "cg")  # noqa: E731
    assert torch.autograd.gradcheck(fn, (x, y, w))
    assert torch.autograd.gradgradcheck(fn, (x, y, w))


def test_cg_backend_chunked_kernel_is_equivariant(dtype, generator):
    """The shared harness on a single-path degree-3 product: float64 runs the chunked kernel,
    float32 the component-major one."""
    from symformer.groups import O3
    from symformer.testing import assert_equivariant

    spec = TensorProductSpec.channelwise("4x3o", "4x3o", "4x3e", mode="uuu")
    assert (_componentwise._dense(spec, dtype)[0] is not None) == (dtype == torch.float64)
    inputs = tuple(torch.randn(5, 4 * 7, generator=generator, dtype=dtype) for _ in range(2))
    w = torch.randn(spec.weight_numel, generator=generator, dtype=dtype)
    assert_equivariant(lambda a, b: tensor_product(a, b, spec, w, "cg"), O3(), inputs,
                       ("4x3o", "4x3o"), "4x3e", n_samples=2, generator=generator)
