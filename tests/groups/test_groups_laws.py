"""Group axioms and consistency of the group law with the actions, for every group."""

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from groups_cases import CASE_IDS, CASES, elements_close

SEEDS = st.integers(min_value=0, max_value=2**31 - 1)
# dtype is a parameter, not state: reusing it across examples is intended.
LAW = settings(max_examples=5, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def _tol(dtype):
    return 1e-5 if dtype == torch.float32 else 1e-12


def _draw(group, n, seed, dtype):
    gen = torch.Generator().manual_seed(seed)
    return [group.sample(n, gen, dtype=dtype) for _ in range(3)]


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
@LAW
@given(seed=SEEDS)
def test_associativity_identity_inverse(case, seed, dtype):
    group = case[1]()
    g, h, k = _draw(group, 4, seed, dtype)
    tol = _tol(dtype)
    left = group.compose(group.compose(g, h), k)
    right = group.compose(g, group.compose(h, k))
    assert elements_close(left, right, tol)
    e = group.identity(4, dtype=dtype)
    assert elements_close(group.compose(e, g), g, tol)
    assert elements_close(group.compose(g, e), g, tol)
    assert elements_close(group.compose(g, group.inverse(g)), e, tol)
    assert elements_close(group.compose(group.inverse(g), g), e, tol)


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
@LAW
@given(seed=SEEDS)
def test_compose_matches_action(case, seed, dtype):
    """act(g, act(h, x)) == act(gh, x) and act(g^-1, act(g, x)) == x for every type."""
    _, make_group, make_data = case
    group = make_group()
    g, h, _ = _draw(group, 1, seed, dtype)
    gh, g_inv = group.compose(g, h), group.inverse(g)
    tol = _tol(dtype) * 10
    for ftype, x in make_data(dtype, torch.Generator().manual_seed(seed)):
        two_steps = group.act(g, group.act(h, x, ftype), ftype)
        torch.testing.assert_close(two_steps, group.act(gh, x, ftype), atol=tol, rtol=tol)
        if not (ftype == "image" and "Scaling" in group.name):  # 1/s upsampling is not exact
            back = group.act(g_inv, group.act(g, x, ftype), ftype)
            torch.testing.assert_close(back, x, atol=tol, rtol=tol)


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_identity_acts_trivially_and_kinds_sample(case, dtype):
    _, make_group, make_data = case
    group = make_group()
    e = group.identity(1, dtype=dtype)
    for ftype, x in make_data(dtype, torch.Generator().manual_seed(0)):
        # Wigner matrices are computed, so the identity is exact only to round-off.
        torch.testing.assert_close(group.act(e, x, ftype), x, atol=_tol(dtype), rtol=0)
    for kind in group.kinds:
        g = group.sample(3, torch.Generator().manual_seed(1), dtype=dtype, kind=kind)
        assert len(g) == 3 and g.kind == kind
        for v in g.data.values():
            assert v.dtype == dtype or not v.is_floating_point()
    with pytest.raises(ValueError, match="kind"):
        group.sample(1, kind="no-such-kind")


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_sampling_is_reproducible(case):
    group = case[1]()
    a = group.sample(5, torch.Generator().manual_seed(7))
    b = group.sample(5, torch.Generator().manual_seed(7))
    assert elements_close(a, b, 0.0)


@pytest.mark.parametrize("case", [c for c in CASES if c[0] not in ("Shift", "S5") and
                                  "Scaling" not in c[0]], ids=lambda c: c[0])
@LAW
@given(seed=SEEDS)
def test_matrices_orthogonal_and_homomorphic(case, seed, dtype):
    group = case[1]()
    g, h, _ = _draw(group, 6, seed, dtype)
    Mg, Mh = group.matrix(g), group.matrix(h)
    eye = torch.eye(Mg.shape[-1], dtype=dtype)
    tol = _tol(dtype)
    torch.testing.assert_close(Mg @ Mg.transpose(-1, -2), eye.expand_as(Mg), atol=tol, rtol=0)
    torch.testing.assert_close(group.matrix(group.compose(g, h)), Mg @ Mh, atol=tol, rtol=0)
    torch.testing.assert_close(group.matrix(group.inverse(g)), Mg.transpose(-1, -2), atol=tol,
                               rtol=0)
