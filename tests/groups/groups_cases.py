"""Groups under test and typed example data each of them acts on (shared by group tests)."""

import torch

from symformer.groups import (E3, O2, O3, SE3, SO2, SO3, Cyclic, CyclicShift, Dihedral, Octic,
                              Scaling, Symmetric)

N_NODES = 5


def euclid_data(dtype, gen):
    r = lambda *s: torch.randn(*s, generator=gen, dtype=torch.float64).to(dtype)  # noqa: E731
    return [("point", r(7, 3)), ("vector", r(2, 7, 3)), ("pseudovector", r(7, 3)),
            ("2x0e+1o+1e+2e+3o", r(4, 2 + 3 + 3 + 5 + 7)), ("uniform:2", r(4, 9, 3)),
            ("scalar", r(4, 2)), ("edge_index", torch.tensor([[0, 1, 2], [1, 2, 0]]))]


def planar_data(dtype, gen, image=False):
    r = lambda *s: torch.randn(*s, generator=gen, dtype=torch.float64).to(dtype)  # noqa: E731
    out = [("point", r(7, 2)), ("vector", r(3, 2)), ("scalar", r(3))]
    return out + [("image", r(2, 5, 5))] if image else out


def shift_data(dtype, gen):
    r = lambda *s: torch.randn(*s, generator=gen, dtype=torch.float64).to(dtype)  # noqa: E731
    return [("image", r(2, 3, 4)), ("scalar", r(3))]


def perm_data(dtype, gen):
    r = lambda *s: torch.randn(*s, generator=gen, dtype=torch.float64).to(dtype)  # noqa: E731
    n = N_NODES
    edges = torch.tensor([[0, 1, 2, 4, 3], [1, 2, 0, 0, 4]])
    return [("node:scalar", r(n, 2)), ("set:vector", r(2, n, 3)), ("pair:scalar", r(2, n, n)),
            ("nodepair:scalar", r(n, n, 2)), ("edge_index", edges), ("scalar", r(3)),
            ("node:point", r(n, 3))]


def scale_data(dtype, gen, image=False):
    r = lambda *s: torch.randn(*s, generator=gen, dtype=torch.float64).to(dtype)  # noqa: E731
    out = [("point", r(7, 3)), ("vector", r(7, 2)), ("scalar", r(2))]
    return out + [("image", r(2, 3, 4))] if image else out


def product_data(dtype, gen):
    return [(t, x) for t, x in perm_data(dtype, gen) if t != "set:vector"] + \
        [("node:uniform:1", torch.randn(N_NODES, 4, 2, generator=gen, dtype=torch.float64)
          .to(dtype)), ("node:1o+1e", torch.randn(N_NODES, 6, generator=gen,
                                                   dtype=torch.float64).to(dtype))]


# (id, group factory, data factory(dtype, gen)); products only of factors acting on different
# data, so that the componentwise group law matches the sequential action.
CASES = [
    ("SO3", SO3, euclid_data),
    ("O3", O3, euclid_data),
    ("SE3", lambda: SE3(translation_scale=2.0), euclid_data),
    ("E3", E3, euclid_data),
    ("SO2", SO2, planar_data),
    ("O2", O2, planar_data),
    ("C3", lambda: Cyclic(3), planar_data),
    ("C4", lambda: Cyclic(4), lambda d, g: planar_data(d, g, image=True)),
    ("D1", lambda: Dihedral(1), lambda d, g: planar_data(d, g, image=True)),
    ("D2", lambda: Dihedral(2), lambda d, g: planar_data(d, g, image=True)),
    ("D6", lambda: Dihedral(6), planar_data),
    ("Octic", Octic, lambda d, g: planar_data(d, g, image=True)),
    ("Shift", lambda: CyclicShift(3, 4), shift_data),
    ("S5", lambda: Symmetric(N_NODES), perm_data),
    ("Scaling", Scaling, scale_data),
    ("ScalingInt", lambda: Scaling(integer=True), lambda d, g: scale_data(d, g, image=True)),
    ("E3xS5", lambda: E3() * Symmetric(N_NODES), product_data),
    ("O3xS5", lambda: O3() * Symmetric(N_NODES), product_data),
]

CASE_IDS = [c[0] for c in CASES]


def elements_close(a, b, atol):
    """Whether two element batches hold the same fields and values."""
    if set(a.data) != set(b.data):
        return False
    for k in a.data:
        x, y = a.data[k], b.data[k]
        if x.is_floating_point():
            if not torch.allclose(x, y.to(x.dtype), atol=atol, rtol=atol):
                return False
        elif not torch.equal(x, y):
            return False
    return True
