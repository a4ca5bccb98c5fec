"""Scaling: sampling modes, what is (and is not) acted on exactly."""

import pytest
import torch

from symformer.groups import Element, Scaling


def test_continuous_and_integer_sampling():
    s = Scaling().sample(4000, torch.Generator().manual_seed(0), dtype=torch.float64).scale
    assert bool((s > 0).all()) and abs(float(s.log().std()) - 0.5) < 0.03
    si = Scaling(integer=True, max_scale=4).sample(300, torch.Generator().manual_seed(0),
                                                   kind="scale").scale
    assert set(si.tolist()) == {2.0, 3.0, 4.0}


def test_actions(dtype):
    G = Scaling()
    g = Element({"scale": torch.tensor([2.0], dtype=dtype)})
    x = torch.randn(4, 3, dtype=dtype)
    torch.testing.assert_close(G.act(g, x, "point"), 2 * x)
    torch.testing.assert_close(G.act(g, x, "vector"), 2 * x)
    assert G.act(g, x, "scalar") is x
    img = torch.arange(6.0, dtype=dtype).reshape(2, 3)
    up = G.act(g, img, "image")
    assert up.shape == (4, 6) and float(up[3, 5]) == 5.0 and float(up[2, 1]) == 3.0
    with pytest.raises(ValueError, match="positive integers"):
        G.act(Element({"scale": torch.tensor([1.5])}), img, "image")
    with pytest.raises(ValueError, match="scaling weight"):
        G.act(g, x, "pseudovector")
    with pytest.raises(ValueError, match="max_scale"):
        Scaling(max_scale=1)
