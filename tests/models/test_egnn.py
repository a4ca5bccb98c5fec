"""EGNN (velocity variant): official-code reference and parameter count.

Equivariance, batching, degenerate inputs, learning and bad inputs are checked for every
n-body model by tests/models/test_nbody_models.py."""

import pytest
import torch

from symformer.models import registry
from symformer.models.egnn import EGNN

from nbody_model_checks import systems


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
        if layer.norm_diff:
            coord_diff = coord_diff / (torch.sqrt(radial) + 1)
        trans = torch.clamp(coord_diff * layer.coord_mlp(m), min=-100, max=100)
        x = x + seg_mean(trans) + layer.coord_mlp_vel(h) * vel
        out = layer.node_mlp(torch.cat([h, seg_sum(m)], dim=1))
        h = h + out if layer.residual else out
    return x


def test_matches_official_forward():
    torch.manual_seed(3)
    model = EGNN().double()
    for p in model.parameters():  # larger weights than the init, so every term matters
        p.data.normal_(0, 0.3)
    data = systems(4)
    expected = _official_forward(model, data["pos"], data["vel"], data["charges"], 4, 5)
    torch.testing.assert_close(model(**data), expected, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("config", [{}, {"residual": False, "tanh": True},
                                    {"norm_diff": True, "n_layers": 2}, {"n_layers": 1}])
def test_gradients_match_official(config):
    # Each layer is one autograd node with a hand-written backward: its gradients (weights,
    # positions, velocities) must be those of the plain autograd reference.
    torch.manual_seed(4)
    model = EGNN(hidden=16, **config).double()
    for p in model.parameters():
        p.data.normal_(0, 0.2)
    data = systems(3, seed=1)
    data["pos"].requires_grad_(True)
    data["vel"].requires_grad_(True)
    weights = torch.randn(15, 3, dtype=torch.float64)
    grads = []
    for forward in (lambda: model(**data),
                    lambda: _official_forward(model, data["pos"], data["vel"], data["charges"],
                                              3, 5)):
        inputs = [data["pos"], data["vel"]] + list(model.parameters())
        out = (forward() * weights).sum()
        grads.append(torch.autograd.grad(out, inputs, allow_unused=True))
    for ours, ref in zip(*grads):
        assert (ours is None) == (ref is None)
        if ref is not None:
            torch.testing.assert_close(ours, ref, rtol=1e-10, atol=1e-12)


def test_second_derivatives_refused():
    model = EGNN(hidden=8, n_layers=1).double()
    data = systems(2)
    data["pos"].requires_grad_(True)
    with pytest.raises(RuntimeError, match="second derivatives"):
        torch.autograd.grad(model(**data).sum(), data["pos"], create_graph=True)


def test_official_parameter_count():
    # EGNN_vel(in_node_nf=1, in_edge_nf=2, hidden_nf=64, n_layers=4)
    layer = 131 * 64 + 64 + 64 * 64 + 64  # edge MLP: (2 * 64 + 1 + 2 -> 64 -> 64)
    layer += 128 * 64 + 64 + 64 * 64 + 64  # node MLP
    layer += 64 * 64 + 64 + 64  # coordinate MLP (no bias at the end)
    layer += 64 * 64 + 64 + 64 + 1  # velocity MLP
    assert sum(p.numel() for p in EGNN().parameters()) == 64 + 64 + 4 * layer


def test_registered_spec():
    s = registry.spec("egnn")
    model = registry.create("egnn", hidden=16, n_layers=2)
    inputs = s.example_inputs(model, torch.Generator().manual_seed(0), torch.float32)
    assert model(**inputs).shape == (15, 3)
    assert "S_15" in s.make_group(model).name
    with pytest.raises(TypeError, match="hiden"):
        registry.create("egnn", hiden=3)


def test_bad_config():
    with pytest.raises(ValueError, match="hidden"):
        EGNN(hidden=0)
    with pytest.raises(TypeError):
        EGNN(64)  # keyword-only
