"""TorchMD-ET on N-body: reference message passing, equivariance, batching, learning, errors."""

import pytest
import torch
from torch.nn import functional as F

from symformer.groups import E3, Symmetric
from symformer.models import registry
from symformer.models._nbody_io import NBODY_IN_TYPES, example_inputs
from symformer.models.torchmd_et import ETAttention, TorchMDET, expnorm_basis
from symformer.testing import assert_equivariant


def _systems(S, n=5, dtype=torch.float64, seed=0):
    g = torch.Generator().manual_seed(seed)
    pos = torch.randn(S * n, 3, generator=g, dtype=dtype)
    vel = torch.randn(S * n, 3, generator=g, dtype=dtype) * 0.5
    charges = torch.randint(0, 2, (S * n,), generator=g).to(dtype) * 2 - 1
    return {"pos": pos, "vel": vel, "charges": charges,
            "batch": torch.arange(S).repeat_interleave(n)}


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


def test_attention_matches_update_equations():
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
    src, dst = edges
    rel = pos[src] - pos[dst]
    dx, dvec = layer(x, vec, edges, attrs[dst, src], torch.ones(src.shape[0]).double(),
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
def test_equivariance_e3_times_permutations(dtype, cutoff):
    model = TorchMDET(hidden=16, n_layers=2, heads=4, num_rbf=8, cutoff=cutoff).to(dtype)
    for p in model.parameters():  # larger than the init so that every term matters
        p.data.normal_(0, 0.3)
    gen = torch.Generator().manual_seed(0)
    inputs = example_inputs(model, gen, dtype)
    atol = 1e-10 if dtype == torch.float64 else 1e-5
    errs = assert_equivariant(model, E3() * Symmetric(15), inputs, NBODY_IN_TYPES, "node:point",
                              atol=atol, generator=gen)
    assert {"rotation", "reflection", "translation", "permutation"} <= set(errs)


def test_default_model_equivariant_float32():
    model = TorchMDET()
    gen = torch.Generator().manual_seed(2)
    inputs = example_inputs(model, gen, torch.float32)
    assert_equivariant(model, E3() * Symmetric(15), inputs, NBODY_IN_TYPES, "node:point",
                       atol=1e-5, n_samples=2, generator=gen)


def test_registered_spec():
    s = registry.spec("torchmd_et")
    model = registry.create("torchmd_et", hidden=16, n_layers=1, heads=2)
    inputs = s.example_inputs(model, torch.Generator().manual_seed(0), torch.float32)
    assert model(**inputs).shape == (15, 3)
    group = s.make_group(model)
    assert "S_15" in group.name and "reflection" in group.kinds


def test_batch_equals_single_and_unsorted_batch():
    model = TorchMDET(hidden=16, n_layers=2, heads=4).double()
    data = _systems(3)
    full = model(**data)
    for s in range(3):
        sl = slice(5 * s, 5 * s + 5)
        single = model(data["pos"][sl], data["vel"][sl], data["charges"][sl],
                       torch.zeros(5, dtype=torch.long))
        torch.testing.assert_close(full[sl], single, rtol=1e-12, atol=1e-12)
    perm = torch.randperm(15)
    shuffled = model(**{k: v[perm] for k, v in data.items()})
    torch.testing.assert_close(shuffled, full[perm], rtol=1e-12, atol=1e-12)


def test_single_particles_and_coincident_points_have_finite_gradients():
    model = TorchMDET(hidden=8, n_layers=2, heads=2, num_rbf=4).double()
    data = _systems(1, n=4)
    data["batch"] = torch.tensor([0, 0, 1, 2])  # two lone particles, one pair
    data["pos"] = data["pos"].clone()
    data["pos"][1] = data["pos"][0]  # coincident pair
    data["vel"] = data["vel"].clone()
    data["vel"][2] = 0.0  # zero velocity: zero vector features
    pos = data["pos"].requires_grad_()
    vel = data["vel"].requires_grad_()
    out = model(**data)
    out.sum().backward()
    assert torch.isfinite(out).all() and torch.isfinite(pos.grad).all()
    assert torch.isfinite(vel.grad).all()


def test_learns_on_simulated_systems():
    from symformer.data import nbody

    sim = nbody.simulate(100, seed=0, n_steps=2000, sample_freq=100)
    pos, vel = torch.tensor(sim["loc"][:, 5]), torch.tensor(sim["vel"][:, 5])
    target = torch.tensor(sim["loc"][:, 15]).float()
    graph = nbody.to_graph_batch(pos.float(), vel.float(), torch.tensor(sim["charges"]).float())
    torch.manual_seed(0)
    model = TorchMDET(hidden=16, n_layers=2, heads=2, num_rbf=8)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    losses = []
    for _ in range(40):
        opt.zero_grad()
        loss = F.mse_loss(model(**graph), target.reshape(-1, 3))
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.6 * losses[0]


@pytest.mark.parametrize("change, match", [
    (lambda d: d.update(pos=d["pos"][:, :2]), "pos"),
    (lambda d: d.update(vel=d["vel"][:-1]), "vel"),
    (lambda d: d.update(batch=d["batch"].double()), "batch"),
    (lambda d: d.update(vel=d["vel"].float()), "vel"),
    (lambda d: d.update(charges=torch.full_like(d["charges"], float("inf"))), "charges"),
])
def test_bad_inputs(change, match):
    data = _systems(2)
    change(data)
    with pytest.raises((TypeError, ValueError), match=match):
        TorchMDET(hidden=8, n_layers=1, heads=2).double()(**data)


@pytest.mark.parametrize("kwargs, match", [
    ({"hidden": 0}, "hidden"), ({"hidden": 10, "heads": 4}, "heads"),
    ({"cutoff": -1.0}, "cutoff"), ({"rbf_range": 0}, "rbf_range"), ({"num_rbf": 1.5}, "num_rbf"),
])
def test_bad_config(kwargs, match):
    with pytest.raises(ValueError, match=match):
        TorchMDET(**kwargs)
    with pytest.raises(TypeError):
        TorchMDET(64)  # keyword-only
