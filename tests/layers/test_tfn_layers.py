"""TFN convolution and SE(3)-Transformer attention: reference product, equivariance, parity,
attention normalisation, degenerate graphs, bad inputs."""

import pytest
import torch

from symformer.groups import E3, SE3, Symmetric
from symformer.layers.se3_attention import SE3AttentionBlock
from symformer.layers.tfn import (NormActivation, TFNConv, TFNEdgeKernel, edge_geometry,
                                  graph_example, tfn_tables)
from symformer.primitives import cg_tensor_product, sh_path_list, spherical_harmonics
from symformer.testing import assert_equivariant, check_registered, equivariance_error

TYPES = {"x": "node:uniform:1", "pos": "node:point", "edge_index": "edge_index",
         "edge_attr": "scalar"}


def test_tables_paths_and_parity():
    paths, T, groups = tfn_tables(2, 2, True, torch.float64, torch.device("cpu"))
    assert list(paths) == sh_path_list(2, 4, 2, parity=True) and len(paths) == 14
    assert all((l1 + l2 + l3) % 2 == 0 for l1, l2, l3 in paths)
    assert len(tfn_tables(2, 2, False, torch.float64, torch.device("cpu"))[0]) == 19
    assert T.shape == (25, 9 * sum(2 * l3 + 1 for *_, l3 in paths))
    assert [n for _, _, n in groups] == [3, 5, 6]


def test_kernel_matches_reference_cg_product(dtype):
    torch.manual_seed(0)
    k = TFNEdgeKernel(1, 2, 3, 3, edge_dim=1).to(dtype)
    x = torch.randn(4, 4, 3, dtype=dtype)
    pos = torch.randn(4, 3, dtype=dtype)
    edge_index = torch.tensor([[0, 1, 2, 3, 0], [1, 2, 3, 0, 2]])
    sh, length = edge_geometry(pos, edge_index, 3)
    attr = torch.randn(5, 1, dtype=dtype)
    out = k(x, sh, length, attr, edge_index[0])
    paths, _, _ = tfn_tables(1, 2, True, dtype, torch.device("cpu"))
    w = k.radial(torch.cat([length, attr], -1)).view(5, 3, len(paths)).transpose(1, 2)
    count = {l3: sum(1 for *_, m in paths if m == l3) for *_, l3 in paths}
    w = w / torch.tensor([count[l3] ** 0.5 for *_, l3 in paths], dtype=dtype)[:, None]
    expected = cg_tensor_product(k.pre(x)[edge_index[0]], sh[:, :, None], 2, list(paths), w)
    tol = 1e-12 if dtype == torch.float64 else 1e-5
    torch.testing.assert_close(out, expected, rtol=tol, atol=tol)


@pytest.mark.parametrize("cls", [TFNConv, SE3AttentionBlock])
def test_equivariance_e3_and_permutations(cls, dtype):
    layer = cls().to(dtype)
    gen = torch.Generator().manual_seed(0)
    inputs = graph_example(layer, gen, dtype)
    atol = 1e-10 if dtype == torch.float64 else 1e-5
    errs = assert_equivariant(layer, E3() * Symmetric(6), inputs, TYPES, "node:uniform:2",
                              atol=atol, generator=gen)
    assert {"rotation", "reflection", "translation", "permutation"} <= set(errs)


@pytest.mark.parametrize("cls", [TFNConv, SE3AttentionBlock])
def test_all_paths_are_se3_but_not_reflection_equivariant(cls):
    layer = cls(parity=False).double()
    inputs = graph_example(layer, torch.Generator().manual_seed(0), torch.float64)
    assert_equivariant(layer, SE3() * Symmetric(6), inputs, TYPES, "node:uniform:2")
    errs = equivariance_error(layer, E3(), inputs, TYPES, "node:uniform:2", kinds=("reflection",))
    assert errs["reflection"] > 1e-3


@pytest.mark.parametrize("name", ["tfn_conv", "se3_attention"])
def test_registered_layers_pass_check(name):
    rows = check_registered(name, n_samples=2)
    assert rows and all(r.passed for r in rows)


def test_attention_weights_sum_to_one_and_heads_differ():
    torch.manual_seed(0)
    block = SE3AttentionBlock(lmax_in=2, in_channels=8, out_channels=8, heads=4, skip=False,
                              activation=False).double()
    inputs = graph_example(block, torch.Generator().manual_seed(1), torch.float64)
    # With constant values, attention-weighted sums of v equal v: compare with one-hot values.
    src, dst = inputs["edge_index"]
    sh, length = edge_geometry(inputs["pos"], inputs["edge_index"], 4)
    from symformer.primitives import segment_softmax
    q = block.query(inputs["x"])[dst]
    k = block.kv(inputs["x"], sh, length, inputs["edge_attr"], src)[:, :9, :8]
    logits = (k * q).view(-1, 9, 4, 2).sum((1, 3))
    a = segment_softmax(logits / 18 ** 0.5, dst, 6)
    sums = torch.zeros(6, 4, dtype=torch.float64).index_add(0, dst, a)
    torch.testing.assert_close(sums, torch.ones(6, 4, dtype=torch.float64))
    assert not torch.allclose(a[:, 0], a[:, 1])


def test_isolated_node_and_zero_length_edge_are_finite():
    layer = SE3AttentionBlock().double()
    x = torch.randn(3, 4, 4, dtype=torch.float64)
    pos = torch.tensor([[0.0, 0, 0], [0.0, 0, 0], [1.0, 2, 3]], dtype=torch.float64,
                       requires_grad=True)
    edge_index = torch.tensor([[0, 1], [1, 0]])  # node 2 isolated, edge of zero length
    out = layer(x, pos, edge_index, torch.ones(2, 1, dtype=torch.float64))
    out.sum().backward()
    assert torch.isfinite(out).all() and torch.isfinite(pos.grad).all()


def test_norm_activation_keeps_directions():
    act = NormActivation(2, 4).double()
    x = torch.randn(5, 9, 4, dtype=torch.float64)
    y = act(x)
    # Each degree block of each channel is a non-negative multiple of the input block.
    for l in range(3):
        xb, yb = x[:, l * l:(l + 1) ** 2], y[:, l * l:(l + 1) ** 2]
        cos = (xb * yb).sum(1) / (xb.norm(dim=1) * yb.norm(dim=1)).clamp_min(1e-30)
        assert bool(((cos > 1 - 1e-9) | (yb.norm(dim=1) == 0)).all())


def test_bad_inputs_and_config():
    layer = TFNConv()
    inputs = graph_example(layer, torch.Generator().manual_seed(0), torch.float32)
    with pytest.raises(ValueError, match="x"):
        layer(inputs["x"][:, :1], inputs["pos"], inputs["edge_index"], inputs["edge_attr"])
    with pytest.raises(ValueError, match="edge_attr"):
        layer(inputs["x"], inputs["pos"], inputs["edge_index"], None)
    with pytest.raises(ValueError, match="aggregate"):
        TFNConv(aggregate="max")
    with pytest.raises(ValueError, match="heads"):
        SE3AttentionBlock(out_channels=6, heads=4)
    with pytest.raises(ValueError, match="channels"):
        NormActivation(2, 1)
    with pytest.raises(ValueError, match="lmax_in"):
        TFNEdgeKernel(-1, 2, 3, 3)


def test_sh_of_edges_match_primitive():
    pos = torch.randn(4, 3, dtype=torch.float64)
    ei = torch.tensor([[0, 1], [2, 3]])
    sh, length = edge_geometry(pos, ei, 2)
    torch.testing.assert_close(sh, spherical_harmonics(2, pos[ei[1]] - pos[ei[0]]))
    torch.testing.assert_close(length[:, 0], (pos[ei[1]] - pos[ei[0]]).norm(dim=-1))
