"""Plain Cartesian transformer: permutation equivariance, detectably NOT E(3), batching, errors."""

import math

import pytest
import torch
from torch.nn import functional as F

from symformer.groups import E3, Symmetric
from symformer.models import registry
from symformer.models._nbody_io import NBODY_IN_TYPES, example_inputs
from symformer.models.transformer import CartesianTransformer, EncoderLayer
from symformer.testing import assert_equivariant, equivariance_error


def _systems(S, n=5, dtype=torch.float64, seed=0):
    g = torch.Generator().manual_seed(seed)
    pos = torch.randn(S * n, 3, generator=g, dtype=dtype)
    vel = torch.randn(S * n, 3, generator=g, dtype=dtype) * 0.5
    charges = torch.randint(0, 2, (S * n,), generator=g).to(dtype) * 2 - 1
    return {"pos": pos, "vel": vel, "charges": charges,
            "batch": torch.arange(S).repeat_interleave(n)}


def test_permutation_equivariance(dtype):
    model = CartesianTransformer(dim=32, n_layers=2, heads=4).to(dtype)
    gen = torch.Generator().manual_seed(0)
    inputs = example_inputs(model, gen, dtype)
    errs = assert_equivariant(model, Symmetric(15), inputs, NBODY_IN_TYPES, "node:point",
                              generator=gen)
    assert set(errs) == {"permutation"}


def test_e3_equivariance_error_is_measured_and_large(dtype):
    # The harness must tell a non-equivariant model apart: the E(3) error is finite but large.
    model = CartesianTransformer(dim=32, n_layers=2, heads=4).to(dtype)
    gen = torch.Generator().manual_seed(0)
    inputs = example_inputs(model, gen, dtype)
    errs = equivariance_error(model, E3(), inputs, NBODY_IN_TYPES, "node:point", generator=gen)
    assert set(errs) == {"rotation", "reflection", "translation"}
    assert all(math.isfinite(e) for e in errs.values())
    assert min(errs.values()) > 1e-2, errs
    with pytest.raises(AssertionError, match="rotation"):
        assert_equivariant(model, E3() * Symmetric(15), inputs, NBODY_IN_TYPES, "node:point",
                           generator=gen)


def test_encoder_layer_matches_reference_multihead_attention():
    torch.manual_seed(1)
    layer = EncoderLayer(16, 4).double()
    t = torch.randn(2, 5, 16, dtype=torch.float64)
    mask = torch.ones(2, 1, 5, 5, dtype=torch.bool)
    mha = torch.nn.MultiheadAttention(16, 4, batch_first=True).double()
    mha.in_proj_weight.data.copy_(layer.qkv.weight.data)
    mha.in_proj_bias.data.copy_(layer.qkv.bias.data)
    mha.out_proj.weight.data.copy_(layer.proj.weight.data)
    mha.out_proj.bias.data.copy_(layer.proj.bias.data)
    h = layer.norm1(t)
    ref = t + mha(h, h, h, need_weights=False)[0]
    ref = ref + layer.mlp(layer.norm2(ref))
    torch.testing.assert_close(layer(t, mask), ref, rtol=1e-10, atol=1e-10)


def test_registered_spec_and_training_config():
    from symformer.train.config import default_config_path

    s = registry.spec("transformer")
    model = registry.create("transformer", dim=16, n_layers=1, heads=2)
    inputs = s.example_inputs(model, torch.Generator().manual_seed(0), torch.float32)
    assert model(**inputs).shape == (15, 3)
    group = s.make_group(model)
    assert group.kinds == ("permutation",)
    assert "rotation augmentation" in s.description
    import yaml

    cfg = yaml.safe_load(default_config_path("nbody", "transformer").read_text())
    assert cfg["augment_rotations"] is True


def test_batch_equals_single_unsorted_and_ragged():
    model = CartesianTransformer(dim=16, n_layers=2, heads=2).double()
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
    # Systems of sizes 2, 1 (and an empty id 3) padded together; gradients stay finite.
    batch = torch.tensor([2, 0, 2, 4, 2, 0])
    sub = _systems(6, n=1)
    pos = sub["pos"].requires_grad_()
    out = model(pos, sub["vel"], sub["charges"], batch)
    out.sum().backward()
    assert torch.isfinite(out).all() and torch.isfinite(pos.grad).all()
    alone = model(sub["pos"][3:4], sub["vel"][3:4], sub["charges"][3:4], torch.zeros(1).long())
    torch.testing.assert_close(out[3:4], alone, rtol=1e-12, atol=1e-12)


def test_learns_on_simulated_systems():
    from symformer.data import nbody

    sim = nbody.simulate(100, seed=0, n_steps=2000, sample_freq=100)
    pos, vel = torch.tensor(sim["loc"][:, 5]), torch.tensor(sim["vel"][:, 5])
    target = torch.tensor(sim["loc"][:, 15]).float()
    graph = nbody.to_graph_batch(pos.float(), vel.float(), torch.tensor(sim["charges"]).float())
    torch.manual_seed(0)
    model = CartesianTransformer(dim=32, n_layers=2, heads=4)
    opt = torch.optim.Adam(model.parameters(), lr=2e-3)
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
    (lambda d: d.update(charges=d["charges"][:-1]), "charges"),
    (lambda d: d.update(batch=d["batch"] - 1), "batch"),
    (lambda d: d.update(vel=torch.full_like(d["vel"], float("nan"))), "vel"),
])
def test_bad_inputs(change, match):
    data = _systems(2)
    change(data)
    with pytest.raises((TypeError, ValueError), match=match):
        CartesianTransformer(dim=8, n_layers=1, heads=2).double()(**data)


@pytest.mark.parametrize("kwargs, match", [
    ({"dim": 0}, "dim"), ({"dim": 10, "heads": 4}, "heads"), ({"mlp_ratio": 0}, "mlp_ratio"),
])
def test_bad_config(kwargs, match):
    with pytest.raises(ValueError, match=match):
        CartesianTransformer(**kwargs)
