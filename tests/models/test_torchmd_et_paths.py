"""TorchMD-ET on both edge layouts of ``_nbody_io.MessageGraph``: regular graphs (complete
graphs of equal-size systems, k-NN graphs) and the general path give the same predictions, and
the general path is equivariant too."""

import pytest
import torch

from symformer.groups import E3, Symmetric
from symformer.models import _nbody_io
from symformer.models._nbody_io import EXAMPLE_NODES, MessageGraph, example_inputs
from symformer.models.potential import TorchMDETPotential
from symformer.models import torchmd_et
from symformer.models.torchmd_et import ETAttention, TorchMDET

from nbody_model_checks import assert_nbody_equivariant, systems


class _GeneralGraph(MessageGraph):
    def __init__(self, edge_index, num_nodes, **kw):
        super().__init__(edge_index, num_nodes, allow_regular=False)


@pytest.mark.parametrize("neighbors,cutoff,radius",
                         [(None, None, None), (3, None, None), (None, 6.0, None), (None, 2.0, 2.0)])
def test_paths_agree(monkeypatch, neighbors, cutoff, radius):
    torch.manual_seed(0)
    model = TorchMDET(hidden=16, n_layers=2, heads=4, num_rbf=8, cutoff=cutoff,
                      neighbors=neighbors, radius=radius).double()
    for p in model.parameters():  # larger than the init so that every term matters
        p.data.normal_(0, 0.3)
    data = systems(4)
    perm = torch.randperm(20, generator=torch.Generator().manual_seed(1))
    data = {k: v[perm] for k, v in data.items()}  # unsorted batch: the regular path reorders
    fast = model(**data)
    monkeypatch.setattr(_nbody_io, "MessageGraph", _GeneralGraph)
    torch.testing.assert_close(model(**data), fast, rtol=1e-12, atol=1e-12)


def test_general_path_equivariant(monkeypatch, dtype):
    monkeypatch.setattr(_nbody_io, "MessageGraph", _GeneralGraph)
    gen = torch.Generator().manual_seed(0)
    model = TorchMDET(hidden=16, n_layers=2, heads=4, num_rbf=8).to(dtype)
    inputs = example_inputs(model, gen, dtype)
    assert_nbody_equivariant(model, E3() * Symmetric(EXAMPLE_NODES), inputs, generator=gen)


def _grads(out, params):
    return torch.autograd.grad(out, params, allow_unused=True)


@pytest.mark.parametrize("neighbors,cutoff,radius",
                         [(None, None, None), (3, 6.0, None), (None, 2.0, 2.0)])
def test_blocked_messages_match_small_graph_layout(monkeypatch, neighbors, cutoff, radius):
    """The contiguous-block message layout of large graphs gives the per-head layout's
    predictions and gradients (float64); radius graphs also share the filters of mutual
    edges there."""
    torch.manual_seed(0)
    model = TorchMDET(hidden=16, n_layers=2, heads=4, num_rbf=8, cutoff=cutoff,
                      neighbors=neighbors, radius=radius).double()
    for p in model.parameters():
        p.data.normal_(0, 0.3)
    data = systems(4)
    data["pos"].requires_grad_(True)
    params = [data["pos"]] + list(model.parameters())
    outs = []
    for threshold in (10**9, 0):
        monkeypatch.setattr(ETAttention, "BLOCKED_MIN_EDGES", threshold)
        out = model(**data)
        outs.append((out, _grads((out ** 2).sum(), params)))
    torch.testing.assert_close(outs[1][0], outs[0][0], rtol=1e-12, atol=1e-12)
    for a, b in zip(outs[1][1], outs[0][1]):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-10)


def _random_potential() -> TorchMDETPotential:
    """A small float64 potential with weights of a random, non-trivial size (seed 0)."""
    torch.manual_seed(0)
    model = TorchMDETPotential(hidden=16, n_layers=2, heads=4, num_rbf=8, cutoff=3.0).double()
    for p in model.parameters():
        p.data.normal_(0, 0.3)
    return model


def test_blocked_messages_match_in_the_potential(monkeypatch):
    """Energy, forces and the force-loss gradient (second derivatives, value filters without
    bias) agree between the two layouts."""
    model = _random_potential()
    gen = torch.Generator().manual_seed(2)
    z = torch.tensor([1, 6, 7, 8])[torch.randint(0, 4, (12,), generator=gen)]
    pos = 1.3 * torch.randn(12, 3, generator=gen, dtype=torch.float64)
    batch = torch.tensor([0] * 7 + [1] * 5)
    outs = []
    for threshold in (10**9, 0):
        monkeypatch.setattr(ETAttention, "BLOCKED_MIN_EDGES", threshold)
        out = model(z, pos, batch)
        loss = (out["energy"] ** 2).sum() + (out["forces"] ** 2).sum()
        outs.append([out["energy"], out["forces"], *_grads(loss, list(model.parameters()))])
    for a, b in zip(outs[1], outs[0]):
        if a is None or b is None:
            assert a is None and b is None
            continue
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("blocked", [True, False])
def test_shared_filter_rows(monkeypatch, blocked):
    """Edges given as shared feature rows (``edge_rows``) give the per-edge result, in the layer
    and in the model (which shares the rows of j -> i and i -> j on large graphs)."""
    monkeypatch.setattr(ETAttention, "BLOCKED_MIN_EDGES", 0 if blocked else 10**9)
    torch.manual_seed(0)
    layer = ETAttention(8, 5, 2).double()
    n, E = 6, 30
    edges = torch.tensor([[j for i in range(n) for j in range(n) if i != j],
                          [i for i in range(n) for j in range(n) if i != j]])
    graph = MessageGraph(edges, n)
    x, vec = torch.randn(n, 8).double(), torch.randn(n, 3, 8).double()
    attr, rows = torch.randn(9, 5).double(), torch.randint(0, 9, (E,))
    direction = torch.nn.functional.normalize(torch.randn(E, 3).double(), dim=-1)
    shared = layer(x, vec, graph, attr, None, direction, rows)
    per_edge = layer(x, vec, graph, attr[rows], None, direction)
    for a, b in zip(shared, per_edge):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)

    model = TorchMDET(hidden=16, n_layers=2, heads=4, num_rbf=8, neighbors=3).double()
    for p in model.parameters():
        p.data.normal_(0, 0.3)
    data = systems(4)
    data["pos"].requires_grad_(True)
    outs = []
    for limit in (-1.0, 1.0):  # never share, always share
        monkeypatch.setattr(torchmd_et, "_SHARED_ROWS_MAX", limit)
        out = model(**data)
        outs.append((out, _grads((out ** 2).sum(), [data["pos"]] + list(model.parameters()))))
    torch.testing.assert_close(outs[1][0], outs[0][0], rtol=1e-12, atol=1e-12)
    for a, b in zip(outs[1][1], outs[0][1]):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("periodic", [False, True])
def test_shared_filter_rows_in_the_potential(monkeypatch, periodic):
    """The potential shares filter rows between the directions of a pair only where their
    distances agree bitwise; energy, forces, stress and the force-loss gradient are unchanged."""
    monkeypatch.setattr(ETAttention, "BLOCKED_MIN_EDGES", 0)
    model = _random_potential()
    gen = torch.Generator().manual_seed(3)
    z = torch.tensor([1, 6, 7, 8])[torch.randint(0, 4, (10,), generator=gen)]
    pos = 1.3 * torch.randn(10, 3, generator=gen, dtype=torch.float64)
    cell = 3.5 * torch.eye(3, dtype=torch.float64) if periodic else None  # several images
    outs = []
    for limit in (-1.0, 1.0):
        monkeypatch.setattr(torchmd_et, "_SHARED_ROWS_MAX", limit)
        out = model(z, pos, None, cell=cell)
        loss = (out["energy"] ** 2).sum() + (out["forces"] ** 2).sum()
        outs.append([v for _, v in sorted(out.items())]
                    + list(_grads(loss, list(model.parameters()))))
    for a, b in zip(outs[1], outs[0]):
        if a is None or b is None:
            assert a is None and b is None
            continue
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-10)
