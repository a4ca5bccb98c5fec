"""The E(3) family acts on PGA multivectors by the Pin(3,0,1) sandwich; it agrees with the
oracle (minors of the 4x4 plane action, no GA code) and is a group action."""

import pytest
import torch

from symformer.groups import E3, O3, SE3, SO3, Symmetric
from symformer.testing import transform
from symformer.testing.oracles import multivector_D_reference


@pytest.mark.parametrize("group", [E3(), SE3(), O3(), SO3()], ids=str)
def test_multivector_action_equals_oracle(group, dtype):
    gen = torch.Generator().manual_seed(3)
    tol = 1e-5 if dtype == torch.float32 else 1e-12
    x = torch.randn(4, 2, 16, generator=gen, dtype=torch.float64).to(dtype)
    for kind in group.kinds + ("general",):
        g = group.sample(3, gen, dtype=dtype, kind=kind)
        for i in range(3):
            for ftype in ("multivector", "node:multivector"):
                torch.testing.assert_close(group.act(g[i], x, ftype), transform(g[i], x, ftype),
                                           atol=tol, rtol=tol)


def test_multivector_action_is_a_homomorphism():
    G = E3()
    gen = torch.Generator().manual_seed(0)
    g, h = G.sample(1, gen, dtype=torch.float64), G.sample(1, gen, dtype=torch.float64)
    x = torch.randn(5, 16, dtype=torch.float64)
    torch.testing.assert_close(G.act(G.compose(g, h), x, "multivector"),
                               G.act(g, G.act(h, x, "multivector"), "multivector"))
    torch.testing.assert_close(G.act(G.inverse(g), G.act(g, x, "multivector"), "multivector"), x)


def test_permutations_and_errors():
    G = E3() * Symmetric(4)
    g = G.sample(1, torch.Generator().manual_seed(1), dtype=torch.float64)
    x = torch.randn(4, 3, 16, dtype=torch.float64)
    torch.testing.assert_close(G.act(g, x, "node:multivector"), transform(g, x, "node:multivector"))
    with pytest.raises(ValueError, match="16"):
        E3().act(g, torch.zeros(4, 15), "multivector")
    R = torch.eye(3, dtype=torch.float64)
    torch.testing.assert_close(multivector_D_reference(R), torch.eye(16, dtype=torch.float64))
