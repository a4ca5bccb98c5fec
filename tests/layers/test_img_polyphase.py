"""Polyphase anchoring and the circular relative bias."""

import pytest
import torch

from symformer.layers.image.polyphase import (CircularRelativeBias, PolyphaseAnchor,
                                              polyphase_offsets, roll_images)


def test_roll_images_matches_torch_roll():
    x = torch.randn(3, 2, 8, 12)
    s = torch.tensor([[1, 5], [-3, 13], [0, 0]])
    for b in range(3):
        torch.testing.assert_close(roll_images(x, s)[b], torch.roll(x[b], tuple(s[b].tolist()),
                                                                    (-2, -1)))


def test_anchor_turns_any_shift_into_a_shift_of_the_patch_grid():
    g = torch.Generator().manual_seed(0)
    x = torch.rand(4, 1, 12, 12, generator=g)
    base = PolyphaseAnchor(4)(x)
    for a, b in [(1, 2), (5, 7), (3, 0), (11, 11)]:
        y = PolyphaseAnchor(4)(torch.roll(x, (a, b), (-2, -1)))
        for i in range(4):
            assert any(torch.equal(torch.roll(base[i], (4 * r, 4 * c), (-2, -1)), y[i])
                       for r in range(3) for c in range(3))
    off = polyphase_offsets(x, 4)
    shifted = polyphase_offsets(torch.roll(x, (1, 2), (-2, -1)), 4)
    assert torch.equal(shifted, (off + torch.tensor([1, 2])) % 4)


def test_relative_bias_depends_only_on_cyclic_offsets():
    bias = CircularRelativeBias(3, 4, 2)
    bias.table.data.normal_()
    B = bias()
    assert B.shape == (2, 12, 12)
    # shifting both query and key by one grid row leaves the bias unchanged
    perm = torch.arange(12).reshape(3, 4).roll(1, 0).flatten()
    torch.testing.assert_close(B[:, perm][:, :, perm], B)


def test_errors():
    with pytest.raises(ValueError, match="divisible"):
        polyphase_offsets(torch.rand(1, 1, 10, 12), 4)
    with pytest.raises(ValueError, match="patch"):
        PolyphaseAnchor(0)


def test_exact_ties_are_broken_consistently():
    # two polyphase components with equal energy (a quantised image, as MNIST gives)
    x = torch.zeros(1, 1, 8, 8)
    x[0, 0, 0, 0], x[0, 0, 1, 1], x[0, 0, 4, 2] = 1.0, 1.0, 0.5     # offsets (0,0), (1,1): tie
    x[0, 0, 5, 7] = 0.5
    base = PolyphaseAnchor(2)(x)
    for a in range(8):
        for b in range(8):
            y = PolyphaseAnchor(2)(torch.roll(x, (a, b), (-2, -1)))
            assert any(torch.equal(torch.roll(base[0], (2 * r, 2 * c), (-2, -1)), y[0])
                       for r in range(4) for c in range(4)), (a, b)
