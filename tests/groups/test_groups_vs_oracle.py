"""Every group's action agrees with the independent oracle on every type it acts on, and
both refuse the same inexact actions."""

import pytest
import torch

from groups_cases import CASE_IDS, CASES
from symformer.groups import (E3, SO2, CyclicShift, Dihedral, Octic, Scaling, Symmetric)
from symformer.testing import transform


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_group_action_equals_oracle(case, dtype):
    _, make_group, make_data = case
    group = make_group()
    gen = torch.Generator().manual_seed(5)
    tol = 1e-5 if dtype == torch.float32 else 1e-12
    for kind in group.kinds + ("general",):
        g = group.sample(3, gen, dtype=dtype, kind=kind)
        for i in range(3):
            for ftype, x in make_data(dtype, gen):
                torch.testing.assert_close(group.act(g[i], x, ftype), transform(g[i], x, ftype),
                                           atol=tol, rtol=tol, msg=lambda m: f"{ftype} {kind}: {m}")


def test_image_products_equal_oracle():
    # Shifts do not commute with rotations, but a product element still acts as
    # "dihedral part, then shift", which is the oracle's order too.
    G = Octic() * CyclicShift(4, 4)
    img = torch.randn(3, 4, 4)
    for g in [G.sample(1, torch.Generator().manual_seed(s)) for s in range(10)]:
        torch.testing.assert_close(G.act(g, img, "image"), transform(g, img, "image"))
    S = E3() * Scaling()
    x = torch.randn(5, 3, dtype=torch.float64)
    g = S.sample(1, torch.Generator().manual_seed(0), dtype=torch.float64)
    torch.testing.assert_close(S.act(g, x, "point"), transform(g, x, "point"))


@pytest.mark.parametrize("group,ftype,shape", [
    (E3(), "image", (4, 4)), (SO2(), "image", (4, 4)), (Dihedral(3), "image", (4, 4)),
    (SO2(), "pseudovector", (4, 3)), (SO2(), "1o", (4, 3)), (CyclicShift(4, 4), "point", (4, 2)),
    (Scaling(), "pseudovector", (4, 3)), (Scaling(), "1o", (4, 3)),
], ids=str)
def test_group_and_oracle_refuse_the_same(group, ftype, shape):
    g = group.sample(1)
    x = torch.randn(*shape)
    with pytest.raises(ValueError):
        group.act(g, x, ftype)
    with pytest.raises(ValueError):
        transform(g, x, ftype)


def test_permutation_only_elements_leave_geometry_alone():
    g = Symmetric(3).sample(1, kind="permutation")
    x = torch.randn(3, 3)
    torch.testing.assert_close(transform(g, x, "point"), x)
    torch.testing.assert_close(transform(g, x, "node:point"), x[g.perm[0]])
