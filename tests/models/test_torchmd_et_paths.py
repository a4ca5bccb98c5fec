"""TorchMD-ET on both edge layouts of ``_nbody_io.MessageGraph``: regular graphs (complete
graphs of equal-size systems, k-NN graphs) and the general path give the same predictions, and
the general path is equivariant too."""

import pytest
import torch

from symformer.groups import E3, Symmetric
from symformer.models import _nbody_io
from symformer.models._nbody_io import EXAMPLE_NODES, MessageGraph, example_inputs
from symformer.models.torchmd_et import TorchMDET

from nbody_model_checks import assert_nbody_equivariant, systems


class _GeneralGraph(MessageGraph):
    def __init__(self, edge_index, num_nodes, **kw):
        super().__init__(edge_index, num_nodes, allow_regular=False)


@pytest.mark.parametrize("neighbors,cutoff", [(None, None), (3, None), (None, 6.0)])
def test_paths_agree(monkeypatch, neighbors, cutoff):
    torch.manual_seed(0)
    model = TorchMDET(hidden=16, n_layers=2, heads=4, num_rbf=8, cutoff=cutoff,
                      neighbors=neighbors).double()
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
