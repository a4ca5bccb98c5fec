"""Fixtures of the training tests: a tiny registered n-body model and a shared data cache."""

import pytest
import torch
from torch import nn

from symformer.groups import E3, Symmetric
from symformer.models import register
from symformer.models._nbody_io import NBODY_IN_TYPES, example_inputs

TOY = "_toy_nbody"


@register(TOY, group=lambda: E3() * Symmetric(15), in_types=NBODY_IN_TYPES,
          out_types="node:point", example_inputs=example_inputs, tags=("test",),
          description="test-only n-body model: pos + f(charge) * vel")
class ToyNBody(nn.Module):
    """E(3) x S_N equivariant by construction: an invariant per-node gain on the velocity."""

    def __init__(self, *, hidden: int = 8):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(2, hidden), nn.SiLU(), nn.Linear(hidden, 1))

    def forward(self, pos, vel, charges, batch):
        feats = torch.stack([charges, vel.norm(dim=-1)], dim=-1)  # [N, 2] invariants
        return pos + self.net(feats) * vel  # [N, 3]


@pytest.fixture(scope="session")
def nbody_cache(tmp_path_factory):
    """A session-wide n-body cache folder, set as SYMFORMER_CACHE (splits generated once)."""
    import os

    root = tmp_path_factory.mktemp("symformer_cache")
    before = os.environ.get("SYMFORMER_CACHE")
    os.environ["SYMFORMER_CACHE"] = str(root)
    yield root
    if before is None:
        os.environ.pop("SYMFORMER_CACHE", None)
    else:
        os.environ["SYMFORMER_CACHE"] = before


@pytest.fixture(scope="session")
def toy_model():
    """Name of the test-only registered model (registered when this conftest is imported)."""
    return TOY
