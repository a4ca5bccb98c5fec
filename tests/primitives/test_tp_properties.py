"""Every backend: O(3) equivariance (float64 tight, float32 loose), backward and double backward,
torch.compile smoke; expressivity measures on small L."""

import pytest
import torch

from symformer.groups import O3
from symformer.primitives import spherical_harmonics
from symformer.primitives.tp import (TensorProductSpec, expressivity, gaunt_spec,
                                     tensor_product)
from symformer.testing import assert_equivariant, equivariance_error


def _uni(L, c):
    return "+".join(f"{c}x{l}{'e' if l % 2 == 0 else 'o'}" for l in range(L + 1))


def _case(backend, generator, dtype, L=2):
    """(fn, inputs, in_types, out_type) with inputs in ``dtype``."""
    if backend == "so2":
        spec = TensorProductSpec.channelwise(_uni(L, 2), _uni(L, 1), _uni(L, 2))
        w = torch.randn(5, spec.weight_numel, generator=generator, dtype=dtype)

        def fn(x, vec):
            return tensor_product(x, spherical_harmonics(L, vec), spec, w, "so2", edge_vec=vec)
        inputs = (torch.randn(5, spec.irreps_in1.dim, generator=generator, dtype=dtype),
                  torch.randn(5, 3, generator=generator, dtype=dtype))
        return fn, inputs, (str(spec.irreps_in1), "vector"), str(spec.irreps_out)
    if backend in ("grid", "gaunt"):
        spec, w = gaunt_spec(L, L, L, 2), None
    elif backend == "cp":
        spec = TensorProductSpec.channelwise(_uni(L, 2), _uni(L, 2), _uni(L, 2), mode="uuu")
        w = torch.randn(5, spec.weight_numel, generator=generator, dtype=dtype)
    elif L == 1:
        spec = TensorProductSpec.fully_connected("2x0e+1x1o", "1x0e+1x1o", "1x0e+2x1o+1x1e")
        w = torch.randn(spec.weight_numel, generator=generator, dtype=dtype)
    else:
        spec = TensorProductSpec.fully_connected("2x0e+1x1o+1x2e", "1x0e+1x1o+1x1e",
                                                 "1x0e+2x1o+1x1e+1x2e+1x0o")
        w = torch.randn(spec.weight_numel, generator=generator, dtype=dtype)

    def fn(x, y):
        return tensor_product(x, y, spec, w, backend)
    inputs = (torch.randn(5, spec.irreps_in1.dim, generator=generator, dtype=dtype),
              torch.randn(5, spec.irreps_in2.dim, generator=generator, dtype=dtype))
    return fn, inputs, (str(spec.irreps_in1), str(spec.irreps_in2)), str(spec.irreps_out)


BACKENDS = ["cg", "so2", "grid", "gaunt", "cp"]


@pytest.mark.parametrize("backend", BACKENDS)
def test_equivariant(backend, dtype, generator):
    fn, inputs, tin, tout = _case(backend, generator, dtype)
    assert_equivariant(fn, O3(), inputs, tin, tout, n_samples=2, generator=generator)



# One spec per kernel of the cg backend: closed forms (degrees <= 1, cross product included),
# fused edge message, component-major uuu (a pair above its degree limit included).
CG_KERNEL_SPECS = {
    "small": lambda: TensorProductSpec.channelwise("2x0e+2x1o", "1x0e+1x1o", "2x0e+2x1o+2x1e"),
    "fused": lambda: TensorProductSpec.channelwise(_uni(2, 2), _uni(2, 1), _uni(2, 2)),
    "componentwise": lambda: TensorProductSpec.channelwise("2x1o+2x6e", "2x1o+2x6e",
                                                           "2x0e+2x1o+2x6e+2x5o", mode="uuu"),
}


@pytest.mark.parametrize("kernel", sorted(CG_KERNEL_SPECS))
def test_cg_kernels_equivariant(kernel, dtype, generator):
    from symformer.primitives.tp.cg import _kernel
    spec = CG_KERNEL_SPECS[kernel]()
    assert _kernel(spec) == kernel
    w = torch.randn(4, spec.weight_numel, generator=generator, dtype=dtype)
    inputs = tuple(torch.randn(4, irreps.dim, generator=generator, dtype=dtype)
                   for irreps in (spec.irreps_in1, spec.irreps_in2))
    assert_equivariant(lambda a, b: tensor_product(a, b, spec, w, "cg"), O3(), inputs,
                       (str(spec.irreps_in1), str(spec.irreps_in2)), str(spec.irreps_out),
                       n_samples=2, generator=generator)

def test_cp_low_rank_equivariance_error_within_bound(generator):
    # Measured, not exact: the bound is twice the relative CP residual (module docstring).
    L = 2
    spec = TensorProductSpec.channelwise(_uni(L, 2), _uni(L, 2), _uni(L, 2), mode="uuu")
    x = torch.randn(5, spec.irreps_in1.dim, generator=generator, dtype=torch.float64)
    y = torch.randn(5, spec.irreps_in2.dim, generator=generator, dtype=torch.float64)
    w = torch.ones(spec.weight_numel, dtype=torch.float64)
    err = equivariance_error(lambda a, b: tensor_product(a, b, spec, w, "cp", rank=5), O3(),
                             (x, y), (str(spec.irreps_in1), str(spec.irreps_in2)),
                             str(spec.irreps_out), n_samples=2, generator=generator)
    assert 1e-6 < err["rotation"] < 1.0


@pytest.mark.parametrize("backend", BACKENDS)
def test_backward_and_double_backward(backend, generator):
    fn, inputs, _, _ = _case(backend, generator, torch.float64)
    inputs = tuple(t.clone().requires_grad_(True) for t in inputs)
    out = fn(*inputs)
    g = torch.autograd.grad((out ** 2).sum(), inputs, create_graph=True)
    gg = torch.autograd.grad(sum((t ** 2).sum() for t in g), inputs)
    assert all(torch.isfinite(t).all() and t.abs().sum() > 0 for t in gg)
    # First derivatives agree with finite differences along a random direction.
    d = [torch.randn(t.shape, generator=generator, dtype=t.dtype) for t in inputs]
    eps = 1e-6
    with torch.no_grad():
        plus = (fn(*[t + eps * v for t, v in zip(inputs, d)]) ** 2).sum()
        minus = (fn(*[t - eps * v for t, v in zip(inputs, d)]) ** 2).sum()
    fd = (plus - minus) / (2 * eps)
    an = sum((gi * v).sum() for gi, v in zip(g, d))
    assert abs(float(fd - an)) <= 1e-5 * max(1.0, abs(float(an)))


def test_so2_forces_equal_cg_forces(generator):
    # Gradients with respect to the edge vectors (forces) agree between so2 and cg.
    L = 2
    spec = TensorProductSpec.channelwise(_uni(L, 2), _uni(L, 1), _uni(L, 2))
    x = torch.randn(4, spec.irreps_in1.dim, generator=generator, dtype=torch.float64)
    w = torch.randn(4, spec.weight_numel, generator=generator, dtype=torch.float64)
    vec = torch.randn(4, 3, generator=generator, dtype=torch.float64, requires_grad=True)
    grads = []
    for backend in ("cg", "so2"):
        out = tensor_product(x, spherical_harmonics(L, vec), spec, w, backend,
                             edge_vec=vec if backend == "so2" else None)
        grads.append(torch.autograd.grad(out.pow(2).sum(), vec)[0])
    torch.testing.assert_close(grads[0], grads[1], atol=1e-10, rtol=1e-10)


def test_compile_smoke(generator):
    # One compiled function running every backend (one small case each, L = 1: tracing time).
    cases = [_case(b, generator, torch.float32, L=1) for b in BACKENDS]

    def run_all(*inputs):
        return [fn(*inp) for (fn, _, _, _), inp in zip(cases, inputs)]
    compiled = torch.compile(run_all, backend="eager", fullgraph=False)
    inputs = [c[1] for c in cases]
    for got, want in zip(compiled(*inputs), run_all(*inputs)):
        torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-5)


def test_expressivity_of_each_backend():
    L = 2
    full = TensorProductSpec.channelwise(_uni(L, 1), _uni(L, 1), _uni(L, 1) + "+1x1e",
                                         mode="uuu")
    cg = expressivity(full, "cg")
    gaunt = expressivity(gaunt_spec(L, L, L, 1), "grid")
    assert ("1o", "1o", "1e") in cg["reachable_paths"]            # the cross product
    assert ("1o", "1o", "1e") not in gaunt["reachable_paths"]     # antisymmetric: unreachable
    assert set(gaunt["reachable_paths"]) < set(cg["reachable_paths"])
    assert gaunt == expressivity(gaunt_spec(L, L, L, 1), "gaunt")
    assert cg["bilinear_rank"] == 12 and gaunt["bilinear_rank"] == 9
    edge = TensorProductSpec.channelwise(_uni(L, 1), _uni(L, 1), _uni(L, 1))
    so2 = expressivity(edge, "so2", generator=torch.Generator().manual_seed(0))
    assert so2["x_rank"] == expressivity(edge, "cg", generator=torch.Generator().manual_seed(0))[
        "x_rank"] == 9
    low = expressivity(TensorProductSpec.channelwise(_uni(L, 1), _uni(L, 1), _uni(L, 1),
                                                     mode="uuu"), "cp", rank=1)
    assert low["bilinear_rank"] <= 9
