"""check_registered drives a registered entry through equivariance_error in each dtype."""

import pytest
import torch
from torch import nn

from symformer.groups import E3, Symmetric
from symformer import registry
from symformer.testing import check_registered


class _Centred(nn.Module):
    """Centroid-relative positions scaled by a learnable invariant (equivariant)."""

    def __init__(self, *, broken: bool = False):
        super().__init__()
        self.w = nn.Parameter(torch.tensor(1.5))
        self.drop = nn.Dropout(0.5)  # check_registered must switch it off with eval()
        self.broken = broken

    def forward(self, pos, charge):
        out = self.drop(pos - pos.mean(0)) * self.w * charge
        if self.broken:  # a fixed axis breaks rotations, the first node permutations/translations
            out = out + pos[:1] + torch.tensor([1.0, 0.0, 0.0], dtype=pos.dtype)
        return out


def _example(module, generator, dtype):
    pos = torch.randn(4, 3, generator=generator, dtype=torch.float64).to(dtype)
    return {"pos": pos, "charge": torch.rand(4, 1, generator=generator).to(dtype)}


def _spec(name, broken):
    factory = lambda: _Centred(broken=broken)  # noqa: E731
    return registry.ModelSpec(name, factory, lambda: E3() * Symmetric(4),
                              {"pos": "node:point", "charge": "node:scalar"}, "node:vector",
                              _example, kind="layer")


def test_rows_for_each_dtype_and_kind(monkeypatch):
    monkeypatch.setitem(registry._REGISTRY, "_test_centred", _spec("_test_centred", False))
    rows = check_registered("_test_centred")
    kinds = ("rotation", "reflection", "translation", "permutation", "combined")
    assert [(r.dtype, r.kind) for r in rows] == [(d, k) for d in ("float32", "float64")
                                                 for k in kinds]
    assert all(r.passed and r.error <= r.tolerance and r.name == "_test_centred" for r in rows)
    assert {r.tolerance for r in rows if r.dtype == "float64"} == {1e-9}


def test_broken_entry_fails(monkeypatch):
    monkeypatch.setitem(registry._REGISTRY, "_test_broken", _spec("_test_broken", True))
    rows = check_registered("_test_broken", dtypes=(torch.float64,), n_samples=2)
    failed = {r.kind for r in rows if not r.passed}
    assert {"rotation", "reflection", "translation", "permutation"} <= failed


def test_device_argument_moves_module_and_inputs(monkeypatch):
    # the same inputs (drawn on the CPU) give the same report wherever the check runs
    monkeypatch.setitem(registry._REGISTRY, "_test_centred", _spec("_test_centred", False))
    here = check_registered("_test_centred", dtypes=(torch.float64,), device="cpu")
    assert here == check_registered("_test_centred", dtypes=(torch.float64,))
    if torch.cuda.is_available():
        gpu = check_registered("_test_centred", dtypes=(torch.float64,), device="cuda")
        assert all(r.passed for r in gpu)


class _RandomScale(nn.Module):
    """Equivariant with a randomly initialised scale: its report depends on the weights."""

    def __init__(self):
        super().__init__()
        self.w = nn.Parameter(torch.randn(()))

    def forward(self, pos, charge):
        return (pos - pos.mean(0)) * self.w * charge


def test_report_does_not_depend_on_the_global_rng(monkeypatch):
    # the weights come from a fixed seed: an entry checked alone or after others (check --all)
    # reports the same numbers, and the caller's random stream is left where it was
    spec = registry.ModelSpec("_test_random", _RandomScale, lambda: E3() * Symmetric(4),
                              {"pos": "node:point", "charge": "node:scalar"}, "node:vector",
                              _example, kind="layer")
    monkeypatch.setitem(registry._REGISTRY, "_test_random", spec)
    torch.manual_seed(1)
    first = check_registered("_test_random", dtypes=(torch.float32,))
    after_first = torch.rand(3)
    torch.manual_seed(2)
    second = check_registered("_test_random", dtypes=(torch.float32,))
    assert first == second
    torch.manual_seed(1)
    assert torch.equal(torch.rand(3), after_first)


def test_declared_float32_tolerance(monkeypatch):
    # an entry may declare a looser float32 tolerance (round-off it documents); float64 keeps
    # the default
    spec = registry.ModelSpec("_test_tol", _Centred, lambda: E3() * Symmetric(4),
                              {"pos": "node:point", "charge": "node:scalar"}, "node:vector",
                              _example, kind="layer", float32_tolerance=3e-5)
    monkeypatch.setitem(registry._REGISTRY, "_test_tol", spec)
    rows = check_registered("_test_tol", n_samples=1)
    assert {r.tolerance for r in rows if r.dtype == "float32"} == {3e-5}
    assert {r.tolerance for r in rows if r.dtype == "float64"} == {1e-9}
    with pytest.raises(ValueError, match="float32_tolerance"):
        registry.register("_test_bad_tol", group=E3, in_types={}, out_types="vector",
                          example_inputs=_example, float32_tolerance=0.0)


def test_seed_changes_the_draw(monkeypatch):
    monkeypatch.setitem(registry._REGISTRY, "_test_centred", _spec("_test_centred", False))
    one = check_registered("_test_centred", dtypes=(torch.float64,), seed=1)
    assert one == check_registered("_test_centred", dtypes=(torch.float64,), seed=1)
    assert one != check_registered("_test_centred", dtypes=(torch.float64,), seed=2)
