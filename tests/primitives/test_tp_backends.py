"""Each backend against the CG product: identical where the mathematics says so (SO(2) with edge
harmonics; grid and Gaunt on Gaunt specs; CP at full rank), measured where it approximates."""

import math

import numpy as np
import pytest
import torch

from symformer.primitives import spherical_harmonics
from symformer.primitives.tp import (TensorProductSpec, available_backends, choose_backend,
                                     cp_residuals, gaunt_path_weight, gaunt_spec, tensor_product)


def _uni(L, c):
    return "+".join(f"{c}x{l}{'e' if l % 2 == 0 else 'o'}" for l in range(L + 1))


def _edge_spec(L, Lout, c=3, weight_mode="external"):
    return TensorProductSpec.channelwise(_uni(L, c), _uni(L, 1), _uni(Lout, c),
                                         weight_mode=weight_mode)


@pytest.mark.parametrize("L,Lout", [(1, 1), (2, 3), (3, 2)])
@pytest.mark.parametrize("weight_mode", ["internal", "external"])
def test_so2_equals_cg_with_edge_harmonics(L, Lout, weight_mode, dtype, generator):
    spec = _edge_spec(L, Lout, weight_mode=weight_mode)
    assert "so2" in available_backends(spec)
    vec = torch.randn(7, 3, generator=generator, dtype=dtype)
    vec[0] = torch.tensor([0.0, 2.0, 0.0])            # along +y and -y: the frame's special axes
    vec[1] = torch.tensor([0.0, -0.5, 0.0])
    x = torch.randn(7, spec.irreps_in1.dim, generator=generator, dtype=dtype)
    y = spherical_harmonics(L, vec)
    shape = (7, spec.weight_numel) if weight_mode == "external" else (spec.weight_numel,)
    w = torch.randn(*shape, generator=generator, dtype=dtype)
    ref = tensor_product(x, y, spec, w, "cg")
    tol = 1e-10 if dtype == torch.float64 else 1e-5
    for out in (tensor_product(x, y, spec, w, "so2"),
                tensor_product(x, None, spec, w, "so2", edge_vec=vec)):
        assert (out - ref).abs().max() <= tol * ref.abs().max()



def test_so2_in_edge_chunks_equals_cg_with_gradients(monkeypatch, generator):
    # Chunks of 3 edges (11 edges: the last chunk is short), per-edge weights, gradients too.
    import symformer.primitives.tp.so2 as so2
    monkeypatch.setattr(so2, "EDGE_CHUNK", 3)
    spec = _edge_spec(3, 3)
    vec = torch.randn(11, 3, generator=generator, dtype=torch.float64)
    x = torch.randn(11, spec.irreps_in1.dim, generator=generator, dtype=torch.float64,
                    requires_grad=True)
    w = torch.randn(11, spec.weight_numel, generator=generator, dtype=torch.float64,
                    requires_grad=True)
    y = spherical_harmonics(3, vec)
    ref = tensor_product(x, y, spec, w, "cg")
    out = tensor_product(x, None, spec, w, "so2", edge_vec=vec)
    torch.testing.assert_close(out, ref)
    g = torch.randn(out.shape, generator=generator, dtype=torch.float64)
    for a, b in zip(torch.autograd.grad(out, (x, w), g), torch.autograd.grad(ref, (x, w), g)):
        torch.testing.assert_close(a, b)


def test_so2_edge_message_antisymmetric_paths_against_direct_contraction(monkeypatch,
                                                                         generator):
    # Paths with l1 + l2 + l3 odd couple m to -m in the edge frame; oracle: the plain
    # contraction sum_p w_p CG_p[m1, m2, m3] x[l1, m1] Y[l2, m2], chunked and with given frames.
    import symformer.primitives.tp.so2 as so2
    from symformer.primitives import clebsch_gordan
    monkeypatch.setattr(so2, "EDGE_CHUNK", 4)
    paths = [(1, 1, 1), (2, 1, 2), (1, 2, 2), (2, 2, 1), (1, 1, 0), (2, 2, 2)]
    n, c = 9, 2
    vec = torch.randn(n, 3, generator=generator, dtype=torch.float64)
    x = torch.randn(n, 9, c, generator=generator, dtype=torch.float64)
    w = torch.randn(n, len(paths), c, generator=generator, dtype=torch.float64)
    y = spherical_harmonics(2, vec)
    ref = torch.zeros(n, 9, c, dtype=torch.float64)
    for p, (l1, l2, l3) in enumerate(paths):
        cg = clebsch_gordan(l1, l2, l3, torch.float64)
        ref[:, l3 * l3:(l3 + 1) ** 2] += torch.einsum(
            "nic,nj,ijk,nc->nkc", x[:, l1 * l1:(l1 + 1) ** 2], y[:, l2 * l2:(l2 + 1) ** 2], cg,
            w[:, p])
    out = so2.so2_edge_message(x, vec, paths, w, 2)
    torch.testing.assert_close(out, ref)
    frames = so2.edge_wigner_blocks(vec, 2)
    torch.testing.assert_close(so2.so2_edge_message(x, vec, paths, w[0], 2, wigner=frames),
                               so2.so2_edge_message(x, vec, paths, w[:1].expand(n, -1, -1), 2))


@pytest.mark.parametrize("irreps", ["2x0e+2x1o+2x2e", "1x1o+1x6e"])
def test_cg_channelwise_kernel_gradients(irreps, generator):
    # The component-major uuu kernel has a hand-written backward: check it and its derivative
    # against finite differences, for pairs below and above its degree limit.
    spec = TensorProductSpec.channelwise(irreps, irreps, irreps, mode="uuu",
                                         weight_mode="external")
    x, y = (torch.randn(3, spec.irreps_in1.dim, generator=generator, dtype=torch.float64,
                        requires_grad=True) for _ in range(2))
    w = torch.randn(3, spec.weight_numel, generator=generator, dtype=torch.float64,
                    requires_grad=True)
    fn = lambda a, b, c: tensor_product(a, b, spec, c, "cg")  # noqa: E731
    assert torch.autograd.gradcheck(fn, (x, y, w))
    assert torch.autograd.gradgradcheck(fn, (x, y, w))

def test_gaunt_path_weight_is_the_integral_of_three_harmonics():
    # Independent quadrature: midpoint rule in (theta, phi) with many points.
    n = 400
    theta = (np.arange(n) + 0.5) * np.pi / n
    phi = (np.arange(2 * n) + 0.5) * np.pi / n
    t, p = np.meshgrid(theta, phi, indexing="ij")
    pts = np.stack([np.sin(t) * np.sin(p), np.cos(t), np.sin(t) * np.cos(p)], -1).reshape(-1, 3)
    area = (np.sin(t) * (np.pi / n) ** 2).reshape(-1)
    y = spherical_harmonics(3, torch.from_numpy(pts)).numpy()
    for l1, l2, l3, i, j, k in [(1, 1, 0, 0, 0, 0), (1, 1, 2, 0, 2, 0), (2, 3, 1, 1, 4, 2)]:
        from symformer.primitives import clebsch_gordan
        cg = clebsch_gordan(l1, l2, l3, torch.float64)
        integral = (area * y[:, l1 * l1 + i] * y[:, l2 * l2 + j] * y[:, l3 * l3 + k]).sum()
        assert abs(integral / (4 * math.pi) - gaunt_path_weight(l1, l2, l3) * cg[i, j, k]) < 1e-4
    assert gaunt_path_weight(1, 1, 1) == 0.0
    assert math.isclose(gaunt_path_weight(1, 1, 0), math.sqrt(3))


@pytest.mark.parametrize("backend", ["grid", "gaunt"])
@pytest.mark.parametrize("L1,L2,Lout,cy", [(1, 1, 2, 3), (2, 3, 2, 1), (3, 2, 4, 3)])
def test_grid_and_gaunt_equal_cg_on_symmetric_paths(backend, L1, L2, Lout, cy, dtype, generator):
    spec = gaunt_spec(L1, L2, Lout, 3, channels_y=cy)
    assert all((a + b + c) % 2 == 0 for a, b, c in spec.paths())
    assert {"grid", "gaunt"} <= set(available_backends(spec))
    x = torch.randn(4, spec.irreps_in1.dim, generator=generator, dtype=dtype)
    y = torch.randn(4, spec.irreps_in2.dim, generator=generator, dtype=dtype)
    ref = tensor_product(x, y, spec, None, "cg")
    out = tensor_product(x, y, spec, None, backend)
    tol = 1e-10 if dtype == torch.float64 else 1e-5
    assert (out - ref).abs().max() <= tol * ref.abs().max()


def test_grid_product_is_the_pointwise_product_of_functions(generator):
    # f * g evaluated at points equals the product's expansion when nothing is truncated.
    spec = gaunt_spec(1, 2, 3, 1)
    x = torch.randn(1, spec.irreps_in1.dim, generator=generator, dtype=torch.float64)
    y = torch.randn(1, spec.irreps_in2.dim, generator=generator, dtype=torch.float64)
    out = tensor_product(x, y, spec, None, "grid")
    pts = torch.randn(10, 3, generator=generator, dtype=torch.float64)
    sh = spherical_harmonics(3, pts)
    f, g = sh[:, :4] @ x[0], sh[:, :9] @ y[0]
    torch.testing.assert_close(sh @ out[0], f * g)


def test_cp_is_exact_at_full_rank_and_approximate_below(generator):
    L = 2
    spec = TensorProductSpec.channelwise(_uni(L, 2), _uni(L, 2), _uni(L, 2), mode="uuu")
    assert "cp" in available_backends(spec) and "so2" not in available_backends(spec)
    x = torch.randn(20, spec.irreps_in1.dim, generator=generator, dtype=torch.float64)
    y = torch.randn(20, spec.irreps_in2.dim, generator=generator, dtype=torch.float64)
    w = torch.randn(20, spec.weight_numel, generator=generator, dtype=torch.float64)
    ref = tensor_product(x, y, spec, w, "cg")
    torch.testing.assert_close(tensor_product(x, y, spec, w, "cp"), ref)
    errs = []
    for rank in (3, 5, 9):
        approx = tensor_product(x, y, spec, w, "cp", rank=rank)
        errs.append(float((approx - ref).norm() / ref.norm()))
    assert errs[0] > 1e-3 and errs[-1] < errs[0]
    assert max(cp_residuals(spec.paths(), 3)) > 0.01 and max(cp_residuals(spec.paths())) == 0


def test_auto_choice_and_backend_errors(generator):
    edge = _edge_spec(2, 2)
    assert choose_backend(edge) == "cg" and choose_backend(edge, has_edge_vec=True) == "so2"
    assert choose_backend(_edge_spec(1, 1), has_edge_vec=True) == "cg"
    assert choose_backend(gaunt_spec(2, 2, 2, 2)) == "grid"
    fc = TensorProductSpec.fully_connected("2x0e+1x1o", "1x1o", "1x1e+1x0e")
    assert available_backends(fc) == ["cg"]
    x = torch.randn(3, fc.irreps_in1.dim)
    y = torch.randn(3, fc.irreps_in2.dim)
    w = torch.randn(fc.weight_numel)
    with pytest.raises(ValueError, match="does not apply"):
        tensor_product(x, y, fc, w, "so2")
    with pytest.raises(ValueError, match="backend must be"):
        tensor_product(x, y, fc, w, "fast")
    with pytest.raises(ValueError, match="weights are required"):
        tensor_product(x, y, fc)
    with pytest.raises(ValueError, match="x must have shape"):
        tensor_product(y, y, fc, w)
    with pytest.raises(ValueError, match="internal"):
        tensor_product(x, y, fc, w.expand(3, -1))
    with pytest.raises(TypeError, match="spec"):
        tensor_product(x, y, "1x0e", w)
    with pytest.raises(ValueError, match="rank"):
        tensor_product(torch.randn(2, edge.irreps_in1.dim), torch.randn(2, edge.irreps_in2.dim),
                       edge, torch.randn(2, edge.weight_numel), "cp", rank=0)


def test_spec_validation_names_the_problem():
    with pytest.raises(ValueError, match="mode"):
        TensorProductSpec("1x0e", "1x0e", "1x0e", [(0, 0, 0)], mode="uvx")
    with pytest.raises(ValueError, match="cannot give"):
        TensorProductSpec("1x1o", "1x1o", "1x1o", [(0, 0, 0)])
    with pytest.raises(ValueError, match="mul_in1 == mul_out"):
        TensorProductSpec("2x0e", "1x0e", "3x0e", [(0, 0, 0)], mode="uvu")
    with pytest.raises(ValueError, match="indexes terms"):
        TensorProductSpec("1x0e", "1x0e", "1x0e", [(0, 1, 0)])
    with pytest.raises(ValueError, match="weight_mode"):
        TensorProductSpec("1x0e", "1x0e", "1x0e", [(0, 0, 0)], weight_mode="shared")
    a = TensorProductSpec.fully_connected("1x0e+1x1o", "1x1o", "1x1o+1x0e")
    assert a == TensorProductSpec.fully_connected("1x0e+1x1o", "1x1o", "1x1o+1x0e")
    assert hash(a) == hash(TensorProductSpec.fully_connected("1x0e+1x1o", "1x1o", "1x1o+1x0e"))
