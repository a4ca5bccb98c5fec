"""The spec's CG backend equals e3nn's TensorProduct (uvu, uvw, uuu; internal and external
weights) and the uniform reference product keeps its values after the restructuring.

e3nn builds its Wigner-3j constants in the default dtype (float32) even when the module is cast
to float64; the float64 comparison therefore refills those buffers with
``e3nn.o3.wigner_3j(..., dtype=float64)`` (no global default dtype is touched). The unpatched
module is compared at float32 accuracy too.
"""

import math

import pytest
import torch

from symformer.primitives import clebsch_gordan, cg_tensor_product, sh_path_list
from symformer.primitives.tp import TensorProductSpec, tensor_product

o3 = pytest.importorskip("e3nn.o3")

SPECS = {
    "uvw": lambda wm: TensorProductSpec.fully_connected(
        "3x0e+2x1o+2x2e", "2x0e+1x1o+1x2e", "2x0e+3x1o+1x1e+2x2e", weight_mode=wm),
    "uvu_sh": lambda wm: TensorProductSpec.channelwise(
        "3x0e+3x1o+3x2e", "1x0e+1x1o+1x2e", "3x0e+3x1o+3x2e+3x1e", weight_mode=wm),
    "uvu_multi": lambda wm: TensorProductSpec.channelwise(
        "3x0e+3x1o+3x2e", "2x0e+2x1o", "3x0e+3x1o+3x2e+3x1e", weight_mode=wm),
    "uuu": lambda wm: TensorProductSpec.channelwise(
        "3x0e+3x1o+3x2e", "3x0e+3x1o", "3x0e+3x1o+3x2e+3x1e", weight_mode=wm, mode="uuu"),
    # Degrees <= 1 (the closed-form kernel): every pattern incl. the cross product 1o x 1o -> 1e,
    # mixed multiplicities, odd-parity inputs.
    "uvu_small": lambda wm: TensorProductSpec.channelwise(
        "3x0e+2x1o+2x0o", "1x0e+1x1o", "3x0e+2x1o+2x1e+2x0o+3x1o", weight_mode=wm),
    # Component-major kernel with one pair above its degree limit (samples-major there).
    "uuu_mixed": lambda wm: TensorProductSpec.channelwise(
        "2x0e+2x1o+2x6e", "2x0e+2x1o+2x6e", "2x0e+2x1o+2x6e+2x5o", weight_mode=wm, mode="uuu"),
    "uuu_small": lambda wm: TensorProductSpec.channelwise(
        "2x0e+2x1o", "2x0e+2x1o", "2x0e+2x1o+2x1e", weight_mode=wm, mode="uuu"),
}


def _e3nn(spec, dtype, exact):
    tp = o3.TensorProduct(str(spec.irreps_in1), str(spec.irreps_in2), str(spec.irreps_out),
                          spec.to_e3nn_instructions(), internal_weights=False,
                          shared_weights=spec.weight_mode == "internal").to(dtype)
    if exact:
        for name, buf in tp.named_buffers():
            if "_w3j_" in name:
                l1, l2, l3 = map(int, name.rsplit("_w3j_", 1)[1].split("_"))
                buf.copy_(o3.wigner_3j(l1, l2, l3, dtype=torch.float64))
    return tp


@pytest.mark.parametrize("weight_mode", ["internal", "external"])
@pytest.mark.parametrize("name", sorted(SPECS))
def test_cg_backend_equals_e3nn(name, weight_mode, dtype, generator):
    spec = SPECS[name](weight_mode)
    x = torch.randn(6, spec.irreps_in1.dim, generator=generator, dtype=dtype)
    y = torch.randn(6, spec.irreps_in2.dim, generator=generator, dtype=dtype)
    shape = (6, spec.weight_numel) if weight_mode == "external" else (spec.weight_numel,)
    w = torch.randn(*shape, generator=generator, dtype=dtype)
    ours = tensor_product(x, y, spec, w, "cg")
    ref = _e3nn(spec, dtype, exact=dtype == torch.float64)(x, y, w)
    tol = 1e-10 if dtype == torch.float64 else 2e-5
    assert (ours - ref).abs().max() <= tol * max(1.0, ref.abs().max())


def test_cg_backend_equals_fully_connected_tensor_product(generator):
    i1, i2, io = "2x0e+2x1o+1x2e", "1x0e+1x1o+1x1e", "2x0e+2x1o+2x1e+1x2e+1x2o"
    tp = o3.FullyConnectedTensorProduct(i1, i2, io).to(torch.float32)
    spec = TensorProductSpec.fully_connected(i1, i2, io)
    assert spec.weight_numel == tp.weight_numel
    x = torch.randn(5, spec.irreps_in1.dim, generator=generator)
    y = torch.randn(5, spec.irreps_in2.dim, generator=generator)
    with torch.no_grad():
        torch.testing.assert_close(tensor_product(x, y, spec, tp.weight, "cg"), tp(x, y),
                                   atol=2e-5, rtol=1e-5)


def test_cg_backend_broadcasts_leading_axes(generator):
    spec = SPECS["uvu_sh"]("external")
    x = torch.randn(2, 1, spec.irreps_in1.dim, generator=generator, dtype=torch.float64)
    y = torch.randn(3, spec.irreps_in2.dim, generator=generator, dtype=torch.float64)
    w = torch.randn(2, 3, spec.weight_numel, generator=generator, dtype=torch.float64)
    out = tensor_product(x, y, spec, w, "cg")
    assert out.shape == (2, 3, spec.irreps_out.dim)
    one = tensor_product(x[1, 0], y[2], spec, w[1, 2], "cg")
    torch.testing.assert_close(out[1, 2], one)


def _old_reference(x, y, lout, paths, w):
    # The definition (module docstring of primitives.tensor_product), one einsum per path.
    out = x.new_zeros(*x.shape[:-2], (lout + 1) ** 2, x.shape[-1])
    for p, (l1, l2, l3) in enumerate(paths):
        cg = clebsch_gordan(l1, l2, l3, x.dtype) * math.sqrt(2 * l3 + 1)
        o = torch.einsum("...ic,...jc,ijk->...kc", x[..., l1 * l1:(l1 + 1) ** 2, :],
                         y[..., l2 * l2:(l2 + 1) ** 2, :], cg)
        out[..., l3 * l3:(l3 + 1) ** 2, :] += o * w[..., p:p + 1, :]
    return out


@pytest.mark.parametrize("y_channels", [1, 4])
def test_reference_uniform_product_unchanged(y_channels, dtype, generator):
    L = 3
    paths = sh_path_list(L, 2, L, parity=False)
    x = torch.randn(5, (L + 1) ** 2, 4, generator=generator, dtype=dtype)
    y = torch.randn(5, 9, y_channels, generator=generator, dtype=dtype)
    w = torch.randn(5, len(paths), 4, generator=generator, dtype=dtype)
    ref = _old_reference(x, y.expand(5, 9, 4), L, paths, w)
    out = cg_tensor_product(x, y, L, paths, w)
    tol = 1e-12 if dtype == torch.float64 else 1e-5
    assert (out - ref).abs().max() <= tol * ref.abs().max()
