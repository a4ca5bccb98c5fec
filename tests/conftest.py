"""Shared fixtures: every test that takes ``dtype`` runs in float32 and float64."""

import pytest
import torch


@pytest.fixture(params=[torch.float32, torch.float64], ids=["float32", "float64"])
def dtype(request):
    return request.param


@pytest.fixture(autouse=True)
def _seed_and_guard_default_dtype():
    # Deterministic tests; and no test may leave a changed global default dtype behind.
    torch.manual_seed(0)
    before, threads = torch.get_default_dtype(), torch.get_num_threads()
    yield
    assert torch.get_default_dtype() == before, "a test changed torch's default dtype"
    assert torch.get_num_threads() == threads, (
        f"a test changed torch's intra-op threads from {threads} to {torch.get_num_threads()}")


@pytest.fixture
def generator():
    return torch.Generator().manual_seed(1234)
