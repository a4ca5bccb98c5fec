"""Octic (D_4) layers: group tables, equivariance of each layer, FLOP count."""

import pytest
import torch

from symformer.groups import Octic
from symformer.layers.image import _d4
from symformer.layers.image.octic import (OcticAttention, OcticBlock, OcticGELU, OcticLayerNorm,
                                          OcticLinear, OcticPatchEmbed, octic_linear_flops,
                                          symmetrize)


def _rho(x, e):
    """Channel action on (..., m, 8)."""
    return x @ _d4.irreps_matrices(x.dtype)[e].T


def _tokens_act(t, e, g):
    """Action on tokens (B, g*g, m, 8): spatial permutation of the grid and D(e) per copy."""
    B, N, m, _ = t.shape
    grid = t.reshape(B, g, g, m * 8).permute(0, 3, 1, 2)
    grid = _d4.act_image(grid, e).permute(0, 2, 3, 1).reshape(B, N, m, 8)
    return _rho(grid, e)


def test_tables_are_a_representation_matching_the_octic_group():
    D, t = _d4.irreps_matrices(), _d4.cayley_table()
    for a in range(8):
        for b in range(8):
            torch.testing.assert_close(D[a] @ D[b], D[t[a][b]])
    Q = _d4.regular_basis()
    torch.testing.assert_close(Q @ Q.T, torch.eye(8, dtype=torch.float64))
    x = torch.rand(1, 1, 6, 6, dtype=torch.float64)
    G = Octic()
    for e, (k, f) in enumerate(_d4.elements()):
        g = G.identity(1)
        g = type(g)({"matrix": g.matrix, "rot90": torch.tensor([k]),
                     "flip": torch.tensor([bool(f)])})
        assert torch.equal(_d4.act_image(x, e), G.act(g, x, "image"))
        torch.testing.assert_close(_d4.matrices()[e], G._from_index(
            torch.tensor([k]), torch.tensor([bool(f)]), torch.float64, None, "x").matrix[0])


@pytest.mark.parametrize("layer", [lambda: OcticLinear(3, 5), lambda: OcticLayerNorm(3),
                                   lambda: OcticGELU()])
def test_channel_layers_commute_with_the_group(layer, dtype):
    m = layer().to(dtype)
    if isinstance(m, OcticLinear):
        m.bias.data.normal_()
    x = torch.randn(4, 3, 8, dtype=dtype)
    tol = 1e-12 if dtype == torch.float64 else 1e-5
    for e in range(8):
        torch.testing.assert_close(m(_rho(x, e)), _rho(m(x), e), atol=tol, rtol=tol)


def test_linear_is_not_a_dense_map_and_counts_flops():
    assert octic_linear_flops(8, 8) == (768, 4096)
    assert 4096 / 768 == pytest.approx(16 / 3)
    m = OcticLinear(2, 2)
    assert sum(p.numel() for p in m.parameters()) == 4 * 4 + 16 + 2


def test_symmetrize_projects_onto_invariant_tensors():
    t = torch.randn(3, 8, 2, 5, 5, dtype=torch.float64)
    s = symmetrize(t)
    for e in range(8):
        acted = torch.einsum("ab,mb...->ma...", _d4.irreps_matrices()[e], _d4.act_image(s, e))
        torch.testing.assert_close(acted, s)
    torch.testing.assert_close(symmetrize(s), s)
    with pytest.raises(ValueError, match="shape"):
        symmetrize(torch.randn(3, 7, 5, 5))


def test_patch_embed_attention_block_are_equivariant(dtype):
    g = 3
    embed, attn, blk = (OcticPatchEmbed(4, 4).to(dtype), OcticAttention(4, 2).to(dtype),
                        OcticBlock(4, 2).to(dtype))
    img = torch.rand(2, 1, 4 * g, 4 * g, dtype=dtype)
    tol = 1e-12 if dtype == torch.float64 else 2e-5
    for e in range(8):
        torch.testing.assert_close(embed(_d4.act_image(img, e)), _tokens_act(embed(img), e, g),
                                   atol=tol, rtol=tol)
        t = torch.randn(2, g * g, 4, 8, dtype=dtype)
        for m in (attn, blk):
            torch.testing.assert_close(m(_tokens_act(t, e, g)), _tokens_act(m(t), e, g),
                                       atol=tol, rtol=tol)


def test_unsymmetrized_patch_weights_break_equivariance():
    # the check above can fail: a raw (not group-averaged) filter bank is not equivariant
    embed = OcticPatchEmbed(4, 2).double()
    img = torch.rand(1, 1, 8, 8, dtype=torch.float64)
    raw = torch.nn.functional.conv2d(_d4.act_image(img, 2), embed.weight.flatten(0, 1),
                                     stride=4)
    ref = torch.nn.functional.conv2d(img, embed.weight.flatten(0, 1), stride=4)
    assert (raw.flatten(2).sort().values - ref.flatten(2).sort().values).abs().max() > 1e-3


def test_input_errors():
    with pytest.raises(ValueError, match="in_copies"):
        OcticLinear(0, 2)
    with pytest.raises(ValueError, match=r"\(\.\.\., 3, 8\)"):
        OcticLinear(3, 2)(torch.randn(2, 4, 8))
    with pytest.raises(ValueError, match="heads"):
        OcticAttention(4, 3)
    with pytest.raises(ValueError, match="square"):
        OcticPatchEmbed(4, 2)(torch.rand(1, 1, 8, 12))
