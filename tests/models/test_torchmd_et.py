"""TorchMD-ET specifics: the attention layer against its update equations, the expnorm basis,
equivariance with large weights and a cutoff, the declared group, config errors.

The checks every n-body model gets (equivariance, batching, errors, learning, checkpoints) are
in test_nbody_models.py."""

import pytest
import torch
from torch.nn import functional as F

from symformer.groups import E3, Symmetric
from symformer.models import registry
from symformer.models._nbody_io import MessageGraph, example_inputs
from symformer.models.torchmd_et import ETAttention, TorchMDET, expnorm_basis

from nbody_model_checks import assert_nbody_equivariant


def _loop_attention(layer, x, vec, pos, edge_attr_fn):
    """The layer's update equations written per node with explicit loops over neighbours j."""
    n, H, D, Fh = x.shape[0], layer.heads, layer.head_dim, layer.hidden
    xn = layer.layernorm(x)
    q, k, v = layer.q_proj(xn), layer.k_proj(xn), layer.v_proj(xn)
    U = layer.vec_proj(vec)
    u1, u2, u3 = U[..., :Fh], U[..., Fh:2 * Fh], U[..., 2 * Fh:]
    dx, dvec = torch.zeros_like(x), torch.zeros_like(vec)
    for i in range(n):
        y, w = torch.zeros(Fh, dtype=x.dtype), torch.zeros(3, Fh, dtype=x.dtype)
        for j in range(n):
            if i == j:
                continue
            r = pos[j] - pos[i]
            f = edge_attr_fn(i, j)
            dk, dv = F.silu(layer.dk_proj(f)), F.silu(layer.dv_proj(f))
            for h in range(H):
                sl = slice(h * D, (h + 1) * D)
                a = F.silu((q[i, sl] * k[j, sl] * dk[sl]).sum())
                vv = v[j, 3 * h * D:3 * (h + 1) * D] * dv[3 * h * D:3 * (h + 1) * D]
                y[sl] += a * vv[:D]
                w[:, sl] += vec[j, :, sl] * vv[D:2 * D] + (r / r.norm())[:, None] * vv[2 * D:]
        o = layer.o_proj(y)
        dx[i] = (u1[i] * u2[i]).sum(0) * o[Fh:2 * Fh] + o[2 * Fh:]
        dvec[i] = u3[i] * o[:Fh] + w
    return dx, dvec


@pytest.mark.parametrize("blocked", [True, False])
@pytest.mark.parametrize("regular", [True, False])
def test_attention_matches_update_equations(monkeypatch, regular, blocked):
    # both message layouts: per-head value blocks (small graphs), contiguous blocks (large)
    monkeypatch.setattr(ETAttention, "BLOCKED_MIN_EDGES", 0 if blocked else 10**9)
    torch.manual_seed(1)
    layer = ETAttention(8, 5, 2).double()
    for p in layer.parameters():
        p.data.normal_(0, 0.4)
    n = 4
    x, vec = torch.randn(n, 8).double(), torch.randn(n, 3, 8).double()
    pos = torch.randn(n, 3).double()
    attrs = torch.randn(n, n, 5).double()
    edges = torch.tensor([[j for i in range(n) for j in range(n) if i != j],
                          [i for i in range(n) for j in range(n) if i != j]])
    edges = edges[:, torch.randperm(edges.shape[1])]  # the regular layout reorders them
    graph = MessageGraph(edges, n, allow_regular=regular)
    assert graph.regular == regular
    src, dst = graph.src, graph.dst
    rel = pos[src] - pos[dst]
    dx, dvec = layer(x, vec, graph, attrs[dst, src], torch.ones(src.shape[0]).double(),
                     rel / rel.norm(dim=-1, keepdim=True))
    ref_dx, ref_dvec = _loop_attention(layer, x, vec, pos, lambda i, j: attrs[i, j])
    torch.testing.assert_close(dx, ref_dx, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(dvec, ref_dvec, rtol=1e-12, atol=1e-12)


def test_expnorm_basis_matches_torchmd_definition():
    r = torch.linspace(0, 12, 7, dtype=torch.float64)
    out = expnorm_basis(r, 4, 5.0)
    start = torch.exp(torch.tensor(-5.0, dtype=torch.float64))
    mu = torch.linspace(float(start), 1, 4, dtype=torch.float64)
    beta = (2 / 4 * (1 - start)) ** -2
    expected = torch.exp(-beta * (torch.exp(-r[:, None]) - mu) ** 2)  # alpha = 5 / 5
    torch.testing.assert_close(out, expected)


@pytest.mark.parametrize("cutoff", [None, 6.0])
def test_equivariance_with_large_weights(dtype, cutoff):
    model = TorchMDET(hidden=16, n_layers=2, heads=4, num_rbf=8, cutoff=cutoff).to(dtype)
    for p in model.parameters():  # larger than the init so that every term matters
        p.data.normal_(0, 0.3)
    gen = torch.Generator().manual_seed(0)
    inputs = example_inputs(model, gen, dtype)
    assert_nbody_equivariant(model, E3() * Symmetric(15), inputs, generator=gen)


def test_declares_e3():
    assert "reflection" in registry.spec("torchmd_et").make_group().kinds


@pytest.mark.parametrize("kwargs, match", [
    ({"hidden": 0}, "hidden"), ({"hidden": 10, "heads": 4}, "heads"),
    ({"cutoff": -1.0}, "cutoff"), ({"rbf_range": 0}, "rbf_range"), ({"num_rbf": 1.5}, "num_rbf"),
])
def test_bad_config(kwargs, match):
    with pytest.raises(ValueError, match=match):
        TorchMDET(**kwargs)
    with pytest.raises(TypeError):
        TorchMDET(64)  # keyword-only
