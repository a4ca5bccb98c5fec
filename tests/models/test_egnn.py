"""EGNN (velocity variant): official-code reference and parameter count.

Equivariance, batching, degenerate inputs, learning and bad inputs are checked for every
n-body model by tests/models/test_nbody_models.py."""

import pytest
import torch

from symformer.models import registry
from symformer.models.egnn import EGNN

from nbody_model_checks import assert_nbody_equivariant, systems


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


@pytest.mark.parametrize("fused", [True, False])
def test_matches_official_forward(fused):
    torch.manual_seed(3)
    model = EGNN(fused_backward=fused).double()
    for p in model.parameters():  # larger weights than the init, so every term matters
        p.data.normal_(0, 0.3)
    data = systems(4)
    expected = _official_forward(model, data["pos"], data["vel"], data["charges"], 4, 5)
    torch.testing.assert_close(model(**data), expected, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("fused", [True, False])
@pytest.mark.parametrize("config", [{}, {"residual": False, "tanh": True},
                                    {"norm_diff": True, "n_layers": 2}, {"n_layers": 1}])
def test_gradients_match_official(config, fused):
    # With fused_backward each layer is one autograd node with a hand-written backward; either
    # way the gradients (weights, positions, velocities) must be those of the plain autograd
    # reference.
    torch.manual_seed(4)
    model = EGNN(hidden=16, fused_backward=fused, **config).double()
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
    model = EGNN(hidden=8, n_layers=1, fused_backward=True).double()
    data = systems(2)
    data["pos"].requires_grad_(True)
    with pytest.raises(RuntimeError, match="fused_backward=False"):
        torch.autograd.grad(model(**data).sum(), data["pos"], create_graph=True)


def test_second_derivatives_without_fused_backward():
    # The plain-autograd layers differentiate twice: d/dvel of (d/dpos of a loss) matches finite
    # differences of the first derivative.
    torch.manual_seed(5)
    model = EGNN(hidden=8, n_layers=2, fused_backward=False).double()
    data = systems(2, seed=2)
    pos, vel = data["pos"].requires_grad_(True), data["vel"].requires_grad_(True)

    def grad_pos(v):
        out = model(pos, v, data["charges"], data["batch"])
        return torch.autograd.grad((out ** 2).sum(), pos, create_graph=True)[0]

    g = grad_pos(vel)
    direction = torch.randn_like(vel)
    (hvp,) = torch.autograd.grad((g * g).sum(), vel)
    eps = 1e-6
    fd = (((grad_pos(vel + eps * direction) ** 2).sum()
           - (grad_pos(vel - eps * direction) ** 2).sum()) / (2 * eps)).detach()
    torch.testing.assert_close((hvp * direction).sum(), fd, rtol=1e-6, atol=1e-9)


def test_fused_backward_option():
    data = systems(2)
    model = EGNN(hidden=8, n_layers=2).double()
    assert model.fused_backward is None  # auto: hand-written on the CPU
    plain = EGNN(hidden=8, n_layers=2, fused_backward=False).double()
    plain.load_state_dict(model.state_dict())
    out, ref = model(**data), plain(**data)
    fused = ("_LayerBackward", "_CompiledLayerBackward")
    assert out.grad_fn.name() in fused and ref.grad_fn.name() not in fused
    torch.testing.assert_close(out, ref, rtol=1e-12, atol=1e-12)
    with pytest.raises(ValueError, match="fused_backward"):
        EGNN(fused_backward="yes")


def _shuffled(data, seed):
    perm = torch.randperm(data["pos"].shape[0], generator=torch.Generator().manual_seed(seed))
    return {k: v[perm] for k, v in data.items()}


@pytest.mark.parametrize("case", ["sorted", "shuffled", "single nodes", "unequal sizes"])
def test_dense_layout_matches_edge_lists(case):
    # The dense (B, n, n) layout computes self-pairs and masks them out of every sum; values and
    # gradients must equal the edge-list model's, also for unsorted batches (permuted back) and
    # single-node systems. Systems of unequal size fall back to edge lists.
    torch.manual_seed(8)
    ref = EGNN(hidden=16, n_layers=3, fused_backward=False, dense=False).double()
    for p in ref.parameters():
        p.data.normal_(0, 0.2)
    dense = EGNN(hidden=16, n_layers=3, dense=True).double()
    dense.load_state_dict(ref.state_dict())
    data = systems(4, n=1 if case == "single nodes" else 5, seed=4)
    if case == "unequal sizes":
        data["batch"][:3] = 4  # sizes 5, 5, 5, 2 and 3 (a new system of 3)
    if case != "sorted":
        data = _shuffled(data, 5)
    assert (ref._dense_layout(data["pos"], data["batch"]) is None
            and (dense._dense_layout(data["pos"], data["batch"]) is None)
            == (case == "unequal sizes"))
    data["pos"].requires_grad_(True)
    weights = torch.randn_like(data["pos"])
    grads = []
    for model in (dense, ref):
        out = model(**data)
        inputs = [data["pos"]] + list(model.parameters())
        grads.append((out, torch.autograd.grad((out * weights).sum(), inputs,
                                               allow_unused=True)))
    torch.testing.assert_close(grads[0][0], grads[1][0], rtol=1e-12, atol=1e-12)
    for a, b in zip(grads[0][1], grads[1][1]):
        assert (a is None) == (b is None)
        if a is not None:
            torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("mode", [{"fused_backward": False, "dense": False}, {"dense": True}])
def test_gpu_default_modes_equivariant(mode, dtype):
    # The registered checks cover the CPU default (fused edge lists); the modes other devices
    # use are checked here with the same harness, E(3) x S_15. It permutes the nodes, so the
    # dense layout also sees unsorted batches.
    model = EGNN(hidden=16, n_layers=3, **mode).to(dtype)
    spec = registry.spec("egnn")
    gen = torch.Generator().manual_seed(7)
    inputs = spec.example_inputs(model, gen, dtype)
    assert_nbody_equivariant(model, spec.make_group(model), inputs, generator=gen)


def test_dense_option_checks():
    for bad in ({"dense": 1}, {"dense": True, "neighbors": 3}, {"dense": True, "radius": 2.0},
                {"dense": True, "fused_backward": True}):
        with pytest.raises(ValueError, match="dense"):
            EGNN(**bad)
    batch = torch.zeros(5, dtype=torch.long)
    assert EGNN()._dense_layout(torch.zeros(5, 3), batch) is None  # CPU default: edge lists
    meta = torch.zeros(5, 3, device="meta")  # any device other than the CPU: dense by default
    assert EGNN()._dense_layout(meta, batch) == (1, 5, None)
    assert EGNN(fused_backward=True)._dense_layout(meta, batch) is None


@pytest.mark.parametrize("graph", [{"radius": 1.5}, {"neighbors": 2, "radius": 2.0}])
def test_fused_and_plain_agree_on_local_graphs(graph):
    # Irregular graphs (isolated nodes, unequal degrees) take the index_select / index_add paths.
    torch.manual_seed(6)
    fused = EGNN(hidden=16, n_layers=3, fused_backward=True, **graph).double()
    for p in fused.parameters():
        p.data.normal_(0, 0.2)
    plain = EGNN(hidden=16, n_layers=3, fused_backward=False, **graph).double()
    plain.load_state_dict(fused.state_dict())
    data = systems(3, seed=3)
    data["pos"].requires_grad_(True)
    weights = torch.randn(15, 3, dtype=torch.float64)
    grads = []
    for model in (fused, plain):
        inputs = [data["pos"]] + list(model.parameters())
        grads.append(torch.autograd.grad((model(**data) * weights).sum(), inputs,
                                         allow_unused=True))  # the last node MLP is unused
    for a, b in zip(*grads):
        assert (a is None) == (b is None)
        if a is not None:
            torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12)


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
