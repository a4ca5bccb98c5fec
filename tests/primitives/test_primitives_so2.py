"""SO(2)/eSCN convolution: equality with the CG product with edge harmonics, span, equivariance."""

import math

import pytest
import torch

from symformer.groups import E3, Symmetric
from symformer.primitives import (cg_tensor_product, edge_align_rotation, sh_path_list,
                                  spherical_harmonics, wigner_D)
from symformer.primitives.so2 import (cg_to_so2_weights, rotate_from_edge, rotate_to_edge,
                                      so2_convolution, so2_linear, so2_num_coefficients,
                                      so2_rows)
from symformer.testing import equivariance_error

F64 = torch.float64


def _random_weights(L, Lo, mmax, cin, cout, parity, dtype, lead=()):
    w = [torch.randn(*lead, (L + 1) * cin, (Lo + 1) * cout, dtype=dtype)]
    for m in range(1, mmax + 1):
        shape = (*lead, (L - m + 1) * cin, (Lo - m + 1) * cout)
        w.append((torch.randn(shape, dtype=dtype),
                  None if parity else torch.randn(shape, dtype=dtype)))
    return w


def test_row_bookkeeping():
    rows = so2_rows(2, 2)
    assert rows[0] == ((0, 2, 6), (0, 2, 6))             # m = 0 at the centre of each degree
    assert rows[1] == ((3, 7), (1, 5))                   # +1 and -1 of degrees 1, 2
    assert rows[2] == ((8,), (4,))
    assert so2_num_coefficients(2, 2) == 6 and so2_num_coefficients(4, 1) == 9
    with pytest.raises(ValueError, match="mmax"):
        so2_rows(1, 2)


def test_rotation_about_y_turns_each_pair_like_a_phase():
    t = 0.7
    R = torch.tensor([[math.cos(t), 0, math.sin(t)], [0, 1, 0],
                      [-math.sin(t), 0, math.cos(t)]], dtype=F64)
    for l in range(4):
        D = wigner_D(l, R)
        for m in range(1, l + 1):
            p, n = l + m, l - m
            block = D[[p, n]][:, [p, n]]
            c, s = math.cos(m * t), math.sin(m * t)
            assert torch.allclose(block.abs(), torch.tensor([[c, s], [s, c]], dtype=F64).abs(),
                                  atol=1e-12)
            assert torch.allclose(block[0, 0], block[1, 1]) and torch.allclose(block[0, 1],
                                                                               -block[1, 0])


@pytest.mark.parametrize("L, Lo", [(2, 2), (1, 3), (3, 1)])
@pytest.mark.parametrize("parity", [True, False])
def test_equals_cg_product_with_edge_harmonics(L, Lo, parity):
    # Radial-dependent (per edge) path weights, harmonics up to L + Lo: every path.
    E, C = 9, 3
    paths = sh_path_list(L, L + Lo, Lo, parity=parity)
    x = torch.randn(E, (L + 1) ** 2, C, dtype=F64)
    e = torch.randn(E, 3, dtype=F64)
    w = torch.randn(E, len(paths), C, dtype=F64)
    expected = cg_tensor_product(x, spherical_harmonics(L + Lo, e)[..., None], Lo, paths, w)
    weights = cg_to_so2_weights(paths, w, L, Lo)
    torch.testing.assert_close(so2_convolution(x, e, weights, Lo), expected, rtol=0, atol=1e-12)
    if parity:  # parity-allowed paths never need the mirror-odd W2
        assert all(float(w2.abs().max()) == 0 for _, w2 in weights[1:])


@pytest.mark.parametrize("L, Lo", [(2, 2), (3, 2)])
def test_cg_paths_and_so2_weights_span_the_same_maps(L, Lo):
    # The linear map path weights -> SO(2) weights (one channel) is square and invertible, so
    # every SO(2) convolution with mmax = min(L, Lo) is a CG product with edge harmonics.
    for parity in (True, False):
        paths = sh_path_list(L, L + Lo, Lo, parity=parity)
        flat = []
        for p in range(len(paths)):
            onehot = torch.zeros(len(paths), 1, dtype=F64)
            onehot[p] = 1
            ws = cg_to_so2_weights(paths, onehot, L, Lo)
            parts = [ws[0]] + [w for m in ws[1:] for w in (m if not parity else m[:1])]
            flat.append(torch.cat([t.flatten() for t in parts]))
        J = torch.stack(flat)                                       # [P, entries]
        n_so2 = sum((L - m + 1) * (Lo - m + 1) * (1 if m == 0 or parity else 2)
                    for m in range(min(L, Lo) + 1))
        assert len(paths) == n_so2
        assert int(torch.linalg.matrix_rank(J)) == n_so2


def _conv(weights, Lo):
    return lambda x, edge_vec: so2_convolution(x, edge_vec, weights, Lo)


@pytest.mark.parametrize("L, Lo, mmax", [(2, 2, 2), (3, 2, 1), (1, 2, 1)])
def test_equivariant_under_e3_with_parity_weights(L, Lo, mmax, dtype):
    gen = torch.Generator().manual_seed(1)
    weights = _random_weights(L, Lo, mmax, 4, 3, True, dtype)
    inputs = {"x": torch.randn(8, (L + 1) ** 2, 4, generator=gen, dtype=dtype),
              "edge_vec": torch.randn(8, 3, generator=gen, dtype=dtype)}
    errs = equivariance_error(_conv(weights, Lo), E3() * Symmetric(8), inputs,
                              {"x": f"node:uniform:{L}", "edge_vec": "node:vector"},
                              f"node:uniform:{Lo}", generator=gen)
    tol = 1e-12 if dtype == F64 else 1e-5
    assert {"rotation", "reflection", "permutation"} <= set(errs)
    assert max(errs.values()) < tol, errs


def test_mirror_odd_weights_break_reflections_only():
    gen = torch.Generator().manual_seed(2)
    weights = _random_weights(2, 2, 2, 3, 3, False, F64)
    inputs = {"x": torch.randn(6, 9, 3, generator=gen, dtype=F64),
              "edge_vec": torch.randn(6, 3, generator=gen, dtype=F64)}
    errs = equivariance_error(_conv(weights, 2), E3(), inputs,
                              {"x": "uniform:2", "edge_vec": "vector"}, "uniform:2",
                              generator=gen)
    assert errs["rotation"] < 1e-12
    assert errs["reflection"] > 1e-2


def test_radial_scales_inputs_and_shared_equals_per_edge(dtype):
    L, Lo, mmax, E = 2, 2, 2, 5
    weights = _random_weights(L, Lo, mmax, 2, 3, False, dtype)
    x = torch.randn(E, 9, 2, dtype=dtype)
    radial = torch.randn(E, so2_num_coefficients(L, mmax), 2, dtype=dtype)
    # Expand the radial scales to the uniform rows by hand: (l, |m|) -> rows l^2 + l +- m.
    scale = torch.ones(E, 9, 2, dtype=dtype)
    k = 0
    for m in range(mmax + 1):
        for l in range(m, L + 1):
            scale[:, l * l + l + m] = radial[:, k]
            scale[:, l * l + l - m] = radial[:, k]
            k += 1
    expected = so2_linear(x * scale, weights, Lo)
    torch.testing.assert_close(so2_linear(x, weights, Lo, radial), expected)
    per_edge = [weights[0].expand(E, -1, -1)] + [(a.expand(E, -1, -1), b.expand(E, -1, -1))
                                                 for a, b in weights[1:]]
    torch.testing.assert_close(so2_linear(x, per_edge, Lo), so2_linear(x, weights, Lo))


def test_rows_beyond_mmax_are_zero_and_rotations_invert():
    weights = _random_weights(3, 3, 1, 2, 2, True, F64)
    y = so2_linear(torch.randn(4, 16, 2, dtype=F64), weights, 3)
    assert float(y[:, [4, 8, 9, 10, 14, 15]].abs().max()) == 0 and float(y[:, [11, 13]].abs().max()) > 0
    e = torch.randn(4, 3, dtype=F64)
    D = edge_align_rotation(e, 3)
    x = torch.randn(4, 16, 2, dtype=F64)
    torch.testing.assert_close(rotate_from_edge(rotate_to_edge(x, D), D), x)
    # The edge harmonics are nonzero only at m = 0 in the edge frame.
    y_sh = rotate_to_edge(spherical_harmonics(3, e)[..., None], D)[..., 0]
    mask = torch.ones(16, dtype=torch.bool)
    mask[[0, 2, 6, 12]] = False
    assert float(y_sh[:, mask].abs().max()) < 1e-12


def test_bad_arguments():
    x = torch.randn(3, 9, 2)
    with pytest.raises(ValueError, match="weights"):
        so2_linear(x, _random_weights(2, 2, 2, 2, 2, True, torch.float32) * 2, 2)
    with pytest.raises(ValueError, match="weights\\[0\\]"):
        so2_linear(x, [torch.randn(5, 6)], 2)
    with pytest.raises(ValueError, match="radial"):
        so2_linear(x, _random_weights(2, 2, 1, 2, 2, True, torch.float32), 2,
                   radial=torch.randn(3, 4, 2))
    with pytest.raises(ValueError, match="x"):
        so2_linear(torch.randn(3, 8, 2), [torch.randn(4, 6)], 2)
    with pytest.raises(ValueError, match="path_weights"):
        cg_to_so2_weights([(0, 0, 0)], torch.randn(2, 3), 1, 1)
