"""Equiformer-style potential: forces by finite differences, smooth attention at the cutoff,
invariance, batching, and the envelope option of the attention layer."""

import pytest
import torch

from symformer.data.graphs import radius_graph
from symformer.layers.equiformer_attention import EquiformerAttention
from symformer.models import create
from symformer.models.equiformer_potential import EquiformerBackbone
from symformer.models.mace import BACKBONE_IN_TYPES, backbone_group, molecule_example
from symformer.testing import equivariance_error
from potential_checks import assert_forces_are_minus_energy_gradient

TINY = dict(lmax=2, channels=8, n_layers=2, heads=2, head_channels=4, num_bessel=6,
            type_channels=4, cutoff=3.0)


def _model(dtype=torch.float64):
    torch.manual_seed(0)
    return create("equiformer_potential", **TINY).to(dtype).eval()


def _molecule(n=6, seed=0, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    z = torch.tensor([1, 6, 8])[torch.randint(0, 3, (n,), generator=g)]
    return z, (1.1 * torch.randn(n, 3, generator=g, dtype=torch.float64)).to(dtype)


def test_forces_are_minus_energy_gradient():
    m = _model()
    z, pos = _molecule()
    assert_forces_are_minus_energy_gradient(m, z, pos)


def test_energy_and_forces_continuous_when_a_neighbour_crosses_the_cutoff():
    # Atom 2 crosses the cutoff of atom 0 while atoms 0 and 1 stay bonded: with a plain softmax
    # the normaliser of atom 0 would jump; with the enveloped attention nothing jumps.
    m = _model()
    z = torch.tensor([6, 8, 1])
    out = []
    for d in (3.0 - 1e-7, 3.0 + 1e-7):
        pos = torch.tensor([[0.0, 0, 0], [1.2, 0, 0], [-d, 0, 0]], dtype=torch.float64)
        out.append(m(z, pos))
    torch.testing.assert_close(out[0]["energy"], out[1]["energy"], atol=1e-9, rtol=0)
    torch.testing.assert_close(out[0]["forces"], out[1]["forces"], atol=1e-6, rtol=0)


def test_backbone_invariant_under_o3_and_permutations(dtype):
    torch.manual_seed(0)
    model = EquiformerBackbone(**TINY).to(dtype)
    inputs = molecule_example(model, torch.Generator().manual_seed(3), dtype)
    errors = equivariance_error(model, backbone_group(), inputs, BACKBONE_IN_TYPES, "node:scalar",
                                n_samples=3)
    tol = 1e-10 if dtype == torch.float64 else 1e-5
    assert all(e < tol for e in errors.values()), errors


def test_batch_equals_single():
    m = _model()
    z1, p1 = _molecule(5, seed=1)
    z2, p2 = _molecule(3, seed=2)
    both = m(torch.cat([z1, z2]), torch.cat([p1, p2]), torch.tensor([0] * 5 + [1] * 3))
    singles = [m(z1, p1), m(z2, p2)]
    torch.testing.assert_close(both["energy"], torch.cat([s["energy"] for s in singles]))
    torch.testing.assert_close(both["forces"], torch.cat([s["forces"] for s in singles]))


def test_unknown_element_and_bad_config_are_named():
    m = _model()
    with pytest.raises(ValueError, match="atomic_numbers"):
        m(torch.tensor([1, 26]), torch.zeros(2, 3, dtype=torch.float64) + torch.eye(2, 3))
    with pytest.raises(ValueError, match="channels"):
        EquiformerBackbone(channels=0)
    with pytest.raises(ValueError, match="cutoff"):
        EquiformerBackbone(cutoff=-1.0)


def test_attention_envelope_of_ones_is_the_plain_attention_and_zero_weight_vanishes():
    torch.manual_seed(2)
    layer = EquiformerAttention(lmax=2, channels=4, edge_channels=3).double()
    pos = torch.randn(5, 3, dtype=torch.float64)
    edge_index = radius_graph(pos, 10.0, torch.zeros(5, dtype=torch.long))
    x = torch.randn(5, 9, 4, dtype=torch.float64)
    e = torch.randn(edge_index.shape[1], 3, dtype=torch.float64)
    plain = layer(x, pos, edge_index, e)
    ones = layer(x, pos, edge_index, e, envelope=torch.ones(edge_index.shape[1], dtype=torch.float64))
    torch.testing.assert_close(ones, plain)
    # An edge whose envelope is (numerically) zero contributes nothing: same as dropping it.
    env = torch.ones(edge_index.shape[1], dtype=torch.float64)
    env[0] = 1e-40
    keep = torch.arange(edge_index.shape[1]) != 0
    dropped = layer(x, pos, edge_index[:, keep], e[keep], envelope=env[keep])
    torch.testing.assert_close(layer(x, pos, edge_index, e, envelope=env), dropped)


def test_trains_on_energies_and_forces():
    # A few optimiser steps on a fixed pair of molecules lower the energy + force loss.
    m = _model(torch.float64).train()
    z, pos = _molecule(6, seed=4)
    with torch.no_grad():
        target = create("equiformer_potential", **TINY).double()(z, pos)
    opt = torch.optim.Adam(m.parameters(), lr=3e-3)
    losses = []
    for _ in range(15):
        out = m(z, pos)
        loss = ((out["energy"] - target["energy"]) ** 2).mean() + \
            ((out["forces"] - target["forces"]) ** 2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    assert losses[-1] < 0.5 * losses[0], losses
