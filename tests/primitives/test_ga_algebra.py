"""GA primitives against the ``clifford`` package (independent oracle) and round trips."""

import itertools

import numpy as np
import pytest
import torch
from hypothesis import given, settings, strategies as st

from symformer.primitives import ga

cf = pytest.importorskip("clifford")


@pytest.fixture(autouse=True)
def _keep_torch_threads():
    # clifford computes with numba, whose OpenMP threading layer sets the process-wide OpenMP
    # thread count (torch's intra-op threads) to the number of cores on its first parallel call:
    # later tests of many tiny ops then crawl through thread hand-offs.
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


SIGNATURES = [(3, 0, 0), (3, 0, 1), (1, 3, 0), (2, 1, 1), (0, 2, 0)]


def _layout(alg: ga.Algebra):
    layout, _ = cf.Cl(sig=list(alg.metric), firstIdx=alg.first_index)
    return layout


def test_pga_blade_order_matches_clifford():
    layout, _ = cf.Cl(sig=[0, 1, 1, 1], firstIdx=0)
    assert list(ga.BLADES[1:]) == list(layout.names[1:])
    assert ga.BLADES[0] == "1" and ga.BLADE["e0123"] == 15
    for p, q, r in SIGNATURES:
        layout, _ = cf.Cl(p, q, r) if r else cf.Cl(p, q)
        alg = ga.Algebra.from_signature(p, q, r)
        assert list(alg.names[1:]) == list(layout.names[1:])
        assert list(alg.metric) == list(layout.sig)


@pytest.mark.parametrize("sig", SIGNATURES + ["pga"])
def test_products_match_clifford(sig):
    alg = ga.PGA if sig == "pga" else ga.Algebra.from_signature(*sig)
    layout = _layout(alg)
    rng = np.random.default_rng(0)
    for _ in range(5):
        a, b = rng.standard_normal(alg.dim), rng.standard_normal(alg.dim)
        A, B = layout.MultiVector(value=a), layout.MultiVector(value=b)
        x, y = torch.tensor(a), torch.tensor(b)
        for ours, theirs in ((ga.geometric_product, A * B), (ga.outer_product, A ^ B),
                             (ga.inner_product, A | B), (ga.regressive_product, A.vee(B))):
            np.testing.assert_allclose(ours(x, y, alg).numpy(), theirs.value, atol=1e-12)
        np.testing.assert_allclose(ga.reverse(x, alg).numpy(), (~A).value, atol=1e-12)
        np.testing.assert_allclose(ga.grade_involution(x, alg).numpy(), A.gradeInvol().value,
                                   atol=1e-12)
        for k in range(alg.n + 1):
            np.testing.assert_allclose(ga.grade_project(x, k, alg).numpy(), A(k).value,
                                       atol=1e-12)
        np.testing.assert_allclose(float(ga.scalar_product(x, y, alg)), (~A * B)[()],
                                   atol=1e-12)


def test_join_is_clifford_vee_and_tables_are_cached(dtype):
    layout, _ = cf.Cl(sig=[0, 1, 1, 1], firstIdx=0)
    x, y = torch.randn(2, 16, dtype=torch.float64)
    expect = layout.MultiVector(value=x.numpy()).vee(layout.MultiVector(value=y.numpy())).value
    np.testing.assert_allclose(ga.join(x, y).numpy(), expect, atol=1e-12)
    assert ga.PGA.cayley(dtype) is ga.PGA.cayley(dtype)
    assert ga.PGA.cayley(dtype).dtype == dtype
    out = ga.geometric_product(x.to(dtype)[None], y.to(dtype)[None, None])  # broadcasting
    assert out.shape == (1, 1, 16) and out.dtype == dtype


def test_associativity_and_batch_shapes():
    alg = ga.Algebra.from_signature(2, 1, 1)
    x, y, z = torch.randn(3, 4, 5, alg.dim, dtype=torch.float64)
    gp = lambda a, b: ga.geometric_product(a, b, alg)
    torch.testing.assert_close(gp(gp(x, y), z), gp(x, gp(y, z)))


def test_input_errors():
    with pytest.raises(ValueError, match="metric"):
        ga.Algebra((1, 2))
    with pytest.raises(ValueError, match="x"):
        ga.geometric_product(torch.zeros(15), torch.zeros(16))
    with pytest.raises(ValueError, match="grade"):
        ga.grade_project(torch.zeros(16), 5)
    with pytest.raises(TypeError, match="algebra"):
        ga.reverse(torch.zeros(16), algebra="pga")
    with pytest.raises(ValueError, match="names"):
        ga.blade_index("e4")


def _random_isometry(seed, improper):
    from scipy.spatial.transform import Rotation

    R = torch.tensor(Rotation.random(random_state=seed).as_matrix())
    return (-R if improper else R), torch.randn(3, dtype=torch.float64)


def _compound_action(R, t):
    """Independent plain-matrix reference: minors of the 4x4 action on planes."""
    A = torch.zeros(4, 4, dtype=torch.float64)
    A[0, 0], A[0, 1:], A[1:, 1:] = 1, -(t @ R), R
    blades = [c for k in range(5) for c in itertools.combinations(range(4), k)]
    M = torch.zeros(16, 16, dtype=torch.float64)
    for i, I in enumerate(blades):
        for j, J in enumerate(blades):
            if len(I) == len(J):
                M[i, j] = torch.linalg.det(A[list(I)][:, list(J)]) if I else 1.0
    return M


@pytest.mark.parametrize("improper", [False, True])
def test_versor_action_is_the_compound_matrix_and_a_homomorphism(improper):
    R, t = _random_isometry(3, improper)
    M = ga.action_matrix(R, t)
    torch.testing.assert_close(M, _compound_action(R, t), atol=1e-12, rtol=0)
    x, y = torch.randn(2, 16, dtype=torch.float64)
    torch.testing.assert_close(M @ ga.geometric_product(x, y),
                               ga.geometric_product(M @ x, M @ y), atol=1e-12, rtol=0)
    torch.testing.assert_close(ga.invariant_inner(M @ x, M @ y), ga.invariant_inner(x, y))
    ref = torch.randn(16, dtype=torch.float64)
    torch.testing.assert_close(M @ ga.equi_join(x, y, ref),
                               ga.equi_join(M @ x, M @ y, M @ ref), atol=1e-12, rtol=0)


@pytest.mark.parametrize("improper", [False, True])
def test_embedded_objects_transform_geometrically(improper):
    R, t = _random_isometry(5, improper)
    M = ga.action_matrix(R, t)
    p, v = torch.randn(2, 3, dtype=torch.float64)
    det = -1.0 if improper else 1.0
    torch.testing.assert_close(M @ ga.embed_point(p), det * ga.embed_point(R @ p + t))
    torch.testing.assert_close(ga.extract_point(M @ ga.embed_point(p)), R @ p + t)
    torch.testing.assert_close(M @ ga.embed_direction(v), ga.embed_direction(R @ v))
    n, d = R @ v, torch.tensor(0.7, dtype=torch.float64)
    torch.testing.assert_close(M @ ga.embed_plane(v, d), ga.embed_plane(n, d - n @ t))
    direction, moment = ga.extract_line(M @ ga.embed_line(p, v))
    torch.testing.assert_close(det * direction, R @ v)
    torch.testing.assert_close(det * moment, torch.linalg.cross(R @ p + t, R @ v))


@settings(max_examples=10, deadline=None)
@given(st.integers(0, 10_000))
def test_round_trips(seed):
    g = torch.Generator().manual_seed(seed)
    p, v = torch.randn(2, 4, 3, generator=g, dtype=torch.float64)
    s = torch.randn(4, generator=g, dtype=torch.float64)
    torch.testing.assert_close(ga.extract_point(ga.embed_point(p)), p)
    torch.testing.assert_close(ga.extract_point(3.0 * ga.embed_point(p)), p)
    torch.testing.assert_close(ga.extract_direction(ga.embed_direction(v)), v)
    torch.testing.assert_close(ga.extract_scalar(ga.embed_scalar(s)), s)
    torch.testing.assert_close(ga.extract_pseudoscalar(ga.embed_pseudoscalar(s)), s)
    n, d = ga.extract_plane(ga.embed_plane(v, s))
    torch.testing.assert_close((n, d), (v, s))
    direction, moment = ga.extract_line(ga.embed_line(p, v))
    torch.testing.assert_close((direction, moment), (v, torch.linalg.cross(p, v)))
    torch.testing.assert_close(ga.extract_translation(ga.embed_translation(v)), v)
    q = torch.randn(4, 4, generator=g, dtype=torch.float64)
    q = q / q.norm(dim=-1, keepdim=True) * torch.sign(q[:, :1])
    torch.testing.assert_close(ga.extract_rotation(ga.embed_rotation(q)), q)
    normal, offset = ga.extract_reflection(ga.embed_reflection(v, s))
    torch.testing.assert_close(normal, v / v.norm(dim=-1, keepdim=True))


def test_versors_act_as_their_transformations():
    from scipy.spatial.transform import Rotation

    p, t = torch.randn(2, 3, dtype=torch.float64)
    rot = Rotation.random(random_state=2)
    R = torch.tensor(rot.as_matrix())
    x, y, z, w = rot.as_quat()
    q = torch.tensor([w, x, y, z])
    torch.testing.assert_close(ga.quaternion_from_matrix(R).abs(), q.abs())
    P = ga.embed_point(p)
    torch.testing.assert_close(ga.extract_point(ga.sandwich(ga.embed_rotation(q), P)), R @ p)
    torch.testing.assert_close(ga.extract_point(ga.sandwich(ga.embed_translation(t), P)), p + t)
    n = torch.tensor([0.0, 0.0, 1.0], dtype=torch.float64)
    mirror = ga.embed_reflection(n, torch.tensor(-1.0, dtype=torch.float64))  # plane z = 1
    expect = p * torch.tensor([1.0, 1.0, -1.0], dtype=torch.float64) + torch.tensor([0, 0, 2.0])
    torch.testing.assert_close(ga.extract_point(ga.sandwich(mirror, P)), expect.double())
