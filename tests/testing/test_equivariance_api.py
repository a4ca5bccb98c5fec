"""assert_equivariant / equivariance_error(s): passes for equivariant functions, fails loudly
(naming output and kind) for broken ones, in float32 and float64."""

import e3nn.o3
import pytest
import torch

from symformer.groups import E3, O3, SE3, CyclicShift, Octic, Symmetric
from symformer.testing import (DEFAULT_TOLERANCES, assert_equivariant, default_tolerance,
                               equivariance_error, equivariance_errors)

N = 6


def _pos(dtype, seed=0):
    return torch.randn(N, 3, generator=torch.Generator().manual_seed(seed),
                       dtype=torch.float64).to(dtype)


def test_simple_equivariant_functions_pass(dtype):
    G = E3() * Symmetric(N)
    pos = _pos(dtype)
    errs = assert_equivariant(lambda p: torch.cdist(p, p), G, pos, "node:point", "nodepair:scalar")
    assert set(errs) == set(G.kinds)
    assert_equivariant(lambda p: p - p.mean(0), G, (pos,), ("node:point",), "node:vector")
    tol = DEFAULT_TOLERANCES[dtype]
    assert max(errs.values()) < tol / 10  # well below the tolerance, not just under it


def test_spherical_harmonics_of_vectors(dtype):
    irreps = e3nn.o3.Irreps.spherical_harmonics(3)
    sh = lambda v: e3nn.o3.spherical_harmonics(irreps, v, normalize=True)  # noqa: E731
    v = _pos(dtype)
    assert_equivariant(sh, O3() * Symmetric(N), v, "node:vector", f"node:{irreps}")
    uniform = lambda v: sh(v)[..., None]  # [N, 16, 1]  # noqa: E731
    assert_equivariant(uniform, O3(), v, "vector", "uniform:3")


def test_dict_inputs_and_mixed_dict_outputs(dtype):
    def fn(pos, vel, scale):
        centred = pos - pos.mean(0)
        return {"energy": (centred ** 2).sum() * scale, "momentum": vel.sum(0),
                "spin": torch.cross(centred, vel, dim=-1)}

    inputs = {"pos": _pos(dtype), "vel": _pos(dtype, 1), "scale": 2.0}
    types_in = {"pos": "node:point", "vel": "node:vector"}
    types_out = {"energy": "scalar", "momentum": "vector", "spin": "node:pseudovector"}
    G = E3() * Symmetric(N)
    errs = equivariance_errors(fn, G, inputs, types_in, types_out)
    assert set(errs) == {(o, k) for o in types_out for k in G.kinds}
    assert max(errs.values()) < default_tolerance(dtype)


def test_failure_names_output_and_kind(dtype):
    def fn(pos, vel):  # the cross product is a pseudovector, declared as a vector
        return {"ok": vel * 2, "cross": torch.cross(pos - pos.mean(0), vel, dim=-1)}

    inputs = {"pos": _pos(dtype), "vel": _pos(dtype, 1)}
    types_out = {"ok": "node:vector", "cross": "node:vector"}
    with pytest.raises(AssertionError) as info:
        assert_equivariant(fn, E3() * Symmetric(N), inputs,
                           {"pos": "node:point", "vel": "node:vector"}, types_out)
    msg = str(info.value)
    assert "output 'cross' under 'reflection'" in msg and "tolerance" in msg
    assert "'ok'" not in msg and "'rotation'" not in msg and "'permutation'" not in msg
    errs = equivariance_error(fn, O3(), inputs, {"pos": "point", "vel": "vector"}, types_out)
    assert errs["rotation"] < 1e-4 and errs["reflection"] > 0.5


def test_translation_and_permutation_bugs_are_caught():
    pos = _pos(torch.float64)
    with pytest.raises(AssertionError, match="under 'translation'"):
        assert_equivariant(lambda p: p, SE3(), pos, "point", "vector")
    with pytest.raises(AssertionError, match="under 'permutation'"):
        assert_equivariant(lambda p: p.cumsum(0), E3() * Symmetric(N), pos, "node:vector",
                           "node:vector")


def test_dtype_aware_tolerances():
    def nearly(p):  # equivariant up to a 1e-7 relative perturbation along a fixed axis
        return p + 1e-7 * p.norm() * torch.tensor([1.0, 0.0, 0.0], dtype=p.dtype)

    assert_equivariant(nearly, O3(), _pos(torch.float32), "vector", "vector")
    with pytest.raises(AssertionError, match="tolerance 1e-09"):
        assert_equivariant(nearly, O3(), _pos(torch.float64), "vector", "vector")
    assert_equivariant(nearly, O3(), _pos(torch.float64), "vector", "vector", atol=1e-5)
    assert default_tolerance(torch.float64) == 1e-9 and default_tolerance(torch.float32) == 1e-5


def test_forces_by_autograd_inside_forward(dtype):
    class Potential(torch.nn.Module):
        def forward(self, pos):
            pos = pos.detach().requires_grad_(True)
            d = torch.cdist(pos, pos) + torch.eye(len(pos), dtype=pos.dtype)
            energy = (1 / d).triu(1).sum()
            (grad,) = torch.autograd.grad(energy, pos)
            return energy, -grad

    assert_equivariant(Potential(), E3() * Symmetric(N), _pos(dtype), "node:point",
                       ("scalar", "node:vector"))


def test_edge_index_inputs(dtype):
    x = torch.randn(N, 2, dtype=dtype)
    edges = torch.tensor([[0, 1, 2, 3, 5, 5], [1, 2, 3, 4, 0, 2]])

    def message_sum(x, edge_index):
        return torch.zeros_like(x).index_add(0, edge_index[1], x[edge_index[0]])

    assert_equivariant(message_sum, Symmetric(N), (x, edges), ("node:scalar", "edge_index"),
                       "node:scalar")
    with pytest.raises(AssertionError, match="'permutation'"):  # edges treated as fixed
        assert_equivariant(message_sum, Symmetric(N), (x, edges), ("node:scalar", "scalar"),
                           "node:scalar")


def test_images_d4_and_shifts(dtype):
    G = Octic() * CyclicShift(5, 5)
    img = torch.randn(2, 5, 5, dtype=dtype)

    def circular_conv(x, kernel):
        out = torch.zeros_like(x)
        for (a, b), w in kernel.items():
            out = out + w * torch.roll(x, (a, b), dims=(-2, -1))
        return out

    symmetric = {(0, 0): 1.0, (0, 1): 0.5, (1, 0): 0.5, (0, -1): 0.5, (-1, 0): 0.5}
    skewed = {(0, 0): 1.0, (0, 1): 0.7}
    assert_equivariant(lambda x: circular_conv(x, symmetric), G, img, "image", "image")
    errs = equivariance_error(lambda x: circular_conv(x, skewed), G, img, "image", "image")
    assert errs["shift"] < 1e-5 and errs["rotation"] > 0.1 and errs["combined"] > 0.1
    assert_equivariant(lambda x: x.mean((-2, -1)), G, img, "image", "scalar")


def test_bad_outputs_and_arguments():
    pos = _pos(torch.float64)
    with pytest.raises(AssertionError, match="error inf"):  # shape changes with the input
        assert_equivariant(lambda p: p[: int(p[0, 0] > 0) + 1], O3(), pos, "vector", "vector")
    with pytest.raises(AssertionError, match="error nan"):
        assert_equivariant(lambda p: p * float("nan"), O3(), pos, "vector", "vector")
    with pytest.raises(ValueError, match="not transformation kinds"):
        equivariance_error(lambda p: p, O3(), pos, "vector", "vector", kinds=("shift",))
    with pytest.raises(ValueError, match="no field type given for"):
        equivariance_error(lambda p, q: p, O3(), {"p": pos, "q": pos}, {"p": "vector"}, "vector")
    with pytest.raises(ValueError, match="n_samples"):
        equivariance_error(lambda p: p, O3(), pos, "vector", "vector", n_samples=0)


def test_reproducible_and_kind_subset():
    pos = _pos(torch.float32)
    f = lambda p: p * p.norm(dim=-1, keepdim=True)  # noqa: E731
    a = equivariance_error(f, E3(), pos, "vector", "vector")
    b = equivariance_error(f, E3(), pos, "vector", "vector")
    assert a == b
    c = equivariance_error(f, E3(), pos, "vector", "vector", kinds=("reflection",),
                           generator=torch.Generator().manual_seed(3))
    assert list(c) == ["reflection"]
