"""Constant tables made on a first call inside ``torch.inference_mode`` must not break a later
training step: every registered model and layer runs once in inference mode from cold caches,
then forward+backward."""

import pytest
import torch

import symformer.models  # noqa: F401  (registers the models)
from symformer._cache import clear_tensor_caches, tensor_cache
from symformer.models.registry import available, create, spec


def _first_tensor(out):
    if torch.is_tensor(out):
        return out
    values = out.values() if isinstance(out, dict) else out
    return next(v for v in values if torch.is_tensor(v))


@pytest.mark.parametrize("name", sorted(available()))
def test_training_after_inference_mode(name):
    s = spec(name)
    torch.manual_seed(0)
    module = create(name).double()
    inputs = s.example_inputs(module, torch.Generator().manual_seed(0), torch.float64)
    clear_tensor_caches()  # other tests may have filled them outside inference mode
    with torch.inference_mode():  # (potentials give no forces here: no autograd)
        module(**inputs)
    out = _first_tensor(module(**inputs))
    if out.requires_grad:  # raised "Inference tensors cannot be saved for backward" before
        out.sum().backward()
        assert any(p.grad is not None for p in module.parameters())


def test_tensor_cache_makes_ordinary_tensors_and_caches():
    calls = []

    @tensor_cache
    def table(n: int) -> torch.Tensor:
        calls.append(n)
        return torch.arange(n, dtype=torch.float64)

    with torch.inference_mode():
        t = table(3)
    assert not t.is_inference() and table(3) is t and calls == [3]
    w = torch.ones(3, dtype=torch.float64, requires_grad=True)
    (w * t).sum().backward()  # autograd may save t
    torch.testing.assert_close(w.grad, t)
    clear_tensor_caches()
    table(3)
    assert calls == [3, 3]
