"""EGNN (velocity variant): official-code reference, equivariance, batching, learning, errors."""

import pytest
import torch

from symformer.groups import E3, Symmetric
from symformer.models import registry
from symformer.models._nbody_io import example_inputs, fully_connected_edges
from symformer.models.egnn import EGNN
from symformer.testing import assert_equivariant

IN_TYPES = {"pos": "node:point", "vel": "node:vector", "charges": "node:scalar",
            "batch": "node:scalar"}


def _systems(S, n=5, dtype=torch.float64, seed=0):
    g = torch.Generator().manual_seed(seed)
    pos = torch.randn(S * n, 3, generator=g, dtype=dtype)
    vel = torch.randn(S * n, 3, generator=g, dtype=dtype) * 0.5
    charges = torch.randint(0, 2, (S * n,), generator=g).to(dtype) * 2 - 1
    return {"pos": pos, "vel": vel, "charges": charges,
            "batch": torch.arange(S).repeat_interleave(n)}


def _official_forward(model, pos, vel, charges, S, n):
    """The official EGNN_vel / E_GCL_vel forward (main_nbody.py, models/gcl.py), written out with
    its own edge list (rows = i, cols = j, system after system) and segment sum / mean."""
    rows, cols = [], []
    for s in range(S):
        for i in range(n):
            for j in range(n):
                if i != j:
                    rows.append(i + n * s), cols.append(j + n * s)
    row, col = torch.tensor(rows), torch.tensor(cols)

    def seg_sum(data):
        return data.new_zeros(pos.shape[0], data.shape[1]).index_add_(0, row, data)

    def seg_mean(data):
        count = data.new_zeros(pos.shape[0], data.shape[1])
        count.index_add_(0, row, torch.ones_like(data))
        return seg_sum(data) / count.clamp(min=1)

    edge_attr = torch.cat([(charges[row] * charges[col]).unsqueeze(1),
                           torch.sum((pos[row] - pos[col]) ** 2, 1).unsqueeze(1)], 1)
    h = model.embedding(torch.sqrt(torch.sum(vel ** 2, dim=1)).unsqueeze(1))
    x = pos.clone()
    for layer in model.layers:
        coord_diff = x[row] - x[col]
        radial = torch.sum(coord_diff ** 2, 1).unsqueeze(1)
        m = layer.edge_mlp(torch.cat([h[row], h[col], radial, edge_attr], dim=1))
        trans = torch.clamp(coord_diff * layer.coord_mlp(m), min=-100, max=100)
        x = x + seg_mean(trans) + layer.coord_mlp_vel(h) * vel
        h = h + layer.node_mlp(torch.cat([h, seg_sum(m)], dim=1))
    return x


def test_matches_official_forward():
    torch.manual_seed(3)
    model = EGNN().double()
    for p in model.parameters():  # larger weights than the init, so every term matters
        p.data.normal_(0, 0.3)
    data = _systems(4)
    expected = _official_forward(model, data["pos"], data["vel"], data["charges"], 4, 5)
    torch.testing.assert_close(model(**data), expected, rtol=1e-12, atol=1e-12)


def test_official_parameter_count():
    # EGNN_vel(in_node_nf=1, in_edge_nf=2, hidden_nf=64, n_layers=4)
    layer = 131 * 64 + 64 + 64 * 64 + 64  # edge MLP: (2 * 64 + 1 + 2 -> 64 -> 64)
    layer += 128 * 64 + 64 + 64 * 64 + 64  # node MLP
    layer += 64 * 64 + 64 + 64  # coordinate MLP (no bias at the end)
    layer += 64 * 64 + 64 + 64 + 1  # velocity MLP
    assert sum(p.numel() for p in EGNN().parameters()) == 64 + 64 + 4 * layer


def test_equivariance_e3_times_permutations(dtype):
    model = EGNN().to(dtype)
    gen = torch.Generator().manual_seed(0)
    inputs = example_inputs(model, gen, dtype)
    atol = 1e-10 if dtype == torch.float64 else 1e-4
    errs = assert_equivariant(model, E3() * Symmetric(15), inputs, IN_TYPES, "node:point",
                              atol=atol, generator=gen)
    assert {"rotation", "reflection", "translation", "permutation"} <= set(errs)


def test_registered_spec():
    s = registry.spec("egnn")
    model = registry.create("egnn", hidden=16, n_layers=2)
    inputs = s.example_inputs(model, torch.Generator().manual_seed(0), torch.float32)
    assert model(**inputs).shape == (15, 3)
    assert "S_15" in s.make_group(model).name
    with pytest.raises(TypeError, match="hiden"):
        registry.create("egnn", hiden=3)


def test_batch_equals_single_and_unsorted_batch():
    model = EGNN(hidden=32, n_layers=3).double()
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


def test_systems_of_different_sizes_and_single_particles():
    model = EGNN(hidden=8, n_layers=2).double()
    batch = torch.tensor([2, 0, 2, 1, 2, 0])  # sizes 2, 1, 3; system 1 has no edges
    edges = fully_connected_edges(batch)
    assert edges.shape == (2, 2 * 1 + 0 + 3 * 2)
    assert bool((batch[edges[0]] == batch[edges[1]]).all()) and bool((edges[0] != edges[1]).all())
    assert len({tuple(e) for e in edges.T.tolist()}) == edges.shape[1]
    data = _systems(6, n=1)
    out = model(data["pos"], data["vel"], data["charges"], batch)
    assert out.shape == (6, 3) and torch.isfinite(out).all()


def test_gradients_finite_at_coincident_points():
    model = EGNN(hidden=8, n_layers=2).double()
    data = _systems(1)
    data["pos"] = data["pos"].clone()
    data["pos"][1] = data["pos"][0]
    pos = data["pos"].requires_grad_()
    model(**data).sum().backward()
    assert torch.isfinite(pos.grad).all()


def test_learns_on_simulated_systems():
    from symformer.data import nbody

    sim = nbody.simulate(100, seed=0, n_steps=2000, sample_freq=100)
    pos, vel = torch.tensor(sim["loc"][:, 5]), torch.tensor(sim["vel"][:, 5])
    target = torch.tensor(sim["loc"][:, 15]).float()
    graph = nbody.to_graph_batch(pos.float(), vel.float(), torch.tensor(sim["charges"]).float())
    torch.manual_seed(0)
    model = EGNN(hidden=16, n_layers=2)
    opt = torch.optim.Adam(model.parameters(), lr=5e-3)
    losses = []
    for _ in range(50):
        opt.zero_grad()
        loss = torch.nn.functional.mse_loss(model(**graph), target.reshape(-1, 3))
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.6 * losses[0]


@pytest.mark.parametrize("change, match", [
    (lambda d: d.update(pos=d["pos"][:, :2]), "pos"),
    (lambda d: d.update(vel=d["vel"][:-1]), "vel"),
    (lambda d: d.update(charges=d["charges"][:, None]), "charges"),
    (lambda d: d.update(batch=d["batch"].double()), "batch"),
    (lambda d: d.update(batch=d["batch"] - 1), "batch"),
    (lambda d: d.update(vel=d["vel"].float()), "vel"),
    (lambda d: d.update(pos=torch.full_like(d["pos"], float("nan"))), "pos"),
    (lambda d: d.update(charges=d["charges"].numpy()), "charges"),
])
def test_bad_inputs(change, match):
    data = _systems(2)
    change(data)
    with pytest.raises((TypeError, ValueError), match=match):
        EGNN(hidden=8, n_layers=1).double()(**data)


def test_bad_config():
    with pytest.raises(ValueError, match="hidden"):
        EGNN(hidden=0)
    with pytest.raises(TypeError):
        EGNN(64)  # keyword-only
