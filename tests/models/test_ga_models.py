"""Model-specific checks of the geometric-algebra n-body models (the shared n-body suite covers
equivariance, batching, degenerate inputs, errors, learning and checkpoints)."""

import pytest
import torch

import symformer.models.cgenn  # noqa: F401  (registers)
import symformer.models.ga_attention  # noqa: F401
import symformer.models.gatr  # noqa: F401
import symformer.models.glgenn  # noqa: F401
from symformer.groups import E3, Symmetric
from symformer.models import create, spec
from symformer.testing import assert_equivariant


def _count(model):
    return sum(p.numel() for p in model.parameters())


@pytest.mark.parametrize("name,config", [
    ("gatr", {"hidden_mv": 4, "hidden_s": 8, "blocks": 2, "heads": 2}),
    ("cgenn", {"channels": 6, "n_layers": 2}),
    ("glgenn", {"channels": 6, "n_layers": 2}),
    ("ga_attention", {"hidden": 8, "n_layers": 2, "heads": 2})])
def test_small_models_are_e3_equivariant_with_reflections(name, config, dtype):
    model = create(name, **config).to(dtype)
    s = spec(name)
    inputs = s.example_inputs(model, torch.Generator().manual_seed(0), dtype)
    errs = assert_equivariant(model, E3() * Symmetric(15), inputs, s.in_types, s.out_types,
                              n_samples=2)
    assert "reflection" in errs
    if dtype == torch.float64:
        assert max(errs.values()) < 1e-12


def test_glgenn_is_parameter_light():
    assert _count(create("glgenn")) < _count(create("cgenn"))


def test_gatr_default_is_the_papers_width():
    net = create("gatr").net
    assert len(net.blocks) == 4 and net.inp.out_mv == 16 and net.inp.out_s == 32


def test_config_errors():
    with pytest.raises(ValueError, match="channels"):
        create("cgenn", channels=0)
    with pytest.raises(ValueError, match="blocks"):
        create("gatr", blocks=-1)
    with pytest.raises(ValueError, match="hidden_mv"):
        create("gatr", hidden_mv=5)


def test_ga_attention_terms_transform_correctly():
    from symformer.models.ga_attention import ga_pair_terms
    from scipy.spatial.transform import Rotation

    r, vi, vj = torch.randn(3, 7, 3, dtype=torch.float64)
    R = -torch.tensor(Rotation.random(random_state=0).as_matrix())  # improper
    inv, vecs = ga_pair_terms(r, vi, vj)
    inv_g, vecs_g = ga_pair_terms(r @ R.T, vi @ R.T, vj @ R.T)
    torch.testing.assert_close(inv_g, inv)
    torch.testing.assert_close(vecs_g, vecs @ R.T)
    # (r ^ v) r = (r . v) r - |r|^2 v: minus |r|^2 times the rejection of v from r
    expect = (r * vj).sum(-1, keepdim=True) * r - (r * r).sum(-1, keepdim=True) * vj
    torch.testing.assert_close(vecs[:, 2], expect)
