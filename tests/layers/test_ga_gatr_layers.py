"""GATr layers are E(3)-equivariant (reflections included) on multivector tokens."""

import pytest
import torch

from symformer.groups import E3, Symmetric
from symformer.layers.ga import (EquiLayerNorm, EquiLinear, GAAttention, GATrBlock, GATrNet,
                                 reference_multivector,
                                 GeometricBilinear, ScalarGatedGELU, basis_maps)
from symformer.primitives.ga import NON_E0_BLADES, PGA, action_matrix, scalar_product
from symformer.testing import assert_equivariant

B, N = 2, 5
TYPES = {"x": "set:multivector", "s": "set:scalar"}


def _inputs(dtype, mv=4, s=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    return {"x": torch.randn(B, N, mv, 16, generator=g, dtype=torch.float64).to(dtype),
            "s": torch.randn(B, N, s, generator=g, dtype=torch.float64).to(dtype)}


def _check(module, dtype, inputs=None, in_types=TYPES, out=("set:multivector", "set:scalar")):
    module = module.to(dtype)
    inputs = _inputs(dtype) if inputs is None else inputs
    errs = assert_equivariant(module, E3() * Symmetric(N), inputs, in_types, out, n_samples=2)
    assert set(errs) >= {"rotation", "reflection", "translation", "permutation"}
    if dtype == torch.float64:
        assert max(errs.values()) < 1e-12


def test_basis_maps_commute_with_the_action():
    B9 = basis_maps()
    g = E3().sample(3, torch.Generator().manual_seed(0), dtype=torch.float64)
    for i in range(3):
        M = action_matrix(g.matrix[i], g.translation[i])
        for b in range(9):
            torch.testing.assert_close(M @ B9[b], B9[b] @ M, atol=1e-12, rtol=0)
    assert torch.linalg.matrix_rank(B9.reshape(9, -1)) == 9


def test_inner_product_weights_are_plus_one_on_non_e0_blades():
    eye = torch.eye(16, dtype=torch.float64)
    w = scalar_product(eye, eye, PGA)
    assert torch.equal(w.nonzero().flatten(), torch.tensor(NON_E0_BLADES))
    assert torch.all(w[list(NON_E0_BLADES)] == 1)


def test_equi_linear(dtype):
    _check(EquiLinear(4, 6, 3, 2), dtype)


def test_bilinear_gelu_norm(dtype):
    class Stack(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.bil, self.gelu, self.norm = GeometricBilinear(4, 6, 3, 2), ScalarGatedGELU(), \
                EquiLayerNorm()

        def forward(self, x, s):
            ref = reference_multivector(x)
            return self.norm(*self.gelu(*self.bil(x, s, ref)))

    _check(Stack(), dtype)


@pytest.mark.parametrize("distance_aware", [False, True])
def test_attention_and_masks(dtype, distance_aware):
    attn = GAAttention(4, 4, 3, 3, heads=2, hidden_mv=2, hidden_s=2,
                       distance_aware=distance_aware)
    inputs = _inputs(dtype)
    inputs["mask"] = torch.tensor([[True] * N, [True, True, False, True, False]])
    _check(attn, dtype, inputs, {**TYPES, "mask": "set:scalar"})
    # Masked keys have no influence.
    attn = attn.to(dtype)
    y, _ = attn(**inputs)
    changed = {k: v.clone() for k, v in inputs.items()}
    changed["x"][1, 2] += 5.0
    y2, _ = attn(**changed)
    torch.testing.assert_close(y2[1, [0, 1, 3]], y[1, [0, 1, 3]])


def test_distance_term_is_minus_squared_distance():
    from symformer.layers.ga import distance_features
    from symformer.primitives.ga import embed_point

    p = torch.randn(2, 3, dtype=torch.float64)
    P = embed_point(p) * torch.tensor([[2.0], [-3.0]], dtype=torch.float64)
    phi, psi = distance_features(P[:, None])
    logit = (phi[0, 0] * psi[1, 0]).sum()
    torch.testing.assert_close(logit, -(2.0 * 3.0) ** 2 * (p[0] - p[1]).square().sum())


def test_gatr_net_and_block(dtype):
    _check(GATrNet(4, 2, 3, 1, hidden_mv=4, hidden_s=4, blocks=2, heads=2,
                   distance_aware=True), dtype)
    block = GATrBlock(4, 3, heads=2).to(dtype)
    x, s = _inputs(dtype).values()
    y, t = block(x, s)
    assert y.shape == x.shape and t.shape == s.shape


def test_errors():
    with pytest.raises(ValueError, match="in_mv"):
        EquiLinear(-1, 2)
    with pytest.raises(ValueError, match="x"):
        EquiLinear(2, 2)(torch.zeros(3, 3, 16))
    with pytest.raises(ValueError, match="s"):
        EquiLinear(2, 2, 3, 0)(torch.zeros(3, 2, 16))
    with pytest.raises(ValueError, match="out_mv"):
        GeometricBilinear(2, 3)
    with pytest.raises(ValueError, match="hidden_mv"):
        GATrNet(1, 1, 1, 1, hidden_mv=3)
