"""symformer.data.periodic_radius_graph against brute-force numpy and (if installed) ASE."""

import itertools

import numpy as np
import pytest
import torch

from symformer.data import GraphBatch, edge_vectors, periodic_radius_graph


def _ref_periodic(pos, cell, r, pbc=(True, True, True), self_loops=False):
    """All (j, i, s) with |pos[j] + s @ cell - pos[i]| < r, searching a generous shift box."""
    p, c = pos.double().numpy(), cell.double().numpy()
    frac = p @ np.linalg.inv(c)
    h = abs(np.linalg.det(c)) / np.linalg.norm(np.cross(c[[1, 2, 0]], c[[2, 0, 1]]), axis=1)
    span = frac.max(0) - frac.min(0) if len(p) else np.zeros(3)
    m = [int(np.ceil(r / h[k] + span[k])) + 1 if pbc[k] else 0 for k in range(3)]
    out = set()
    for s in itertools.product(*[range(-mk, mk + 1) for mk in m]):
        d = p[None, :, :] + np.array(s) @ c - p[:, None, :]  # [i, j, 3]
        for i, j in zip(*np.nonzero(np.linalg.norm(d, axis=-1) < r)):
            if self_loops or i != j or any(s):
                out.add((int(j), int(i)) + tuple(s))
    return out


def _edges(ei, es):
    return {tuple(e) for e in torch.cat([ei.t(), es], 1).tolist()}


def _assert_order(ei, es):
    keys = torch.cat([ei.flip(0).t(), es], 1).tolist()  # (target, source, shift)
    assert keys == sorted(keys) and len(set(map(tuple, keys))) == len(keys)


def _cells(dtype):
    g = torch.Generator().manual_seed(7)
    cubic = 2.0 * torch.eye(3, dtype=dtype)
    triclinic = torch.tensor([[3.0, 0, 0], [1.2, 2.5, 0], [-0.7, 0.9, 2.2]], dtype=dtype)
    random = torch.eye(3, dtype=dtype) * 3 + 0.6 * torch.randn(3, 3, dtype=dtype, generator=g)
    return {"cubic": cubic, "triclinic": triclinic, "random": random}


@pytest.mark.parametrize("name", ["cubic", "triclinic", "random"])
@pytest.mark.parametrize("r", [1.1, 3.7])
def test_matches_brute_force(dtype, generator, name, r):
    cell = _cells(dtype)[name]
    # positions partly outside the cell: the graph must not depend on wrapping
    frac = torch.rand(5, 3, dtype=dtype, generator=generator) * 2.4 - 0.7
    pos = frac @ cell
    ei, es = periodic_radius_graph(pos, r, cell)
    assert ei.dtype == torch.long and es.dtype == torch.long and es.shape == (ei.shape[1], 3)
    assert _edges(ei, es) == _ref_periodic(pos, cell, r)
    _assert_order(ei, es)
    lengths = edge_vectors(pos, ei, cell, es).norm(dim=1)
    assert (lengths < r).all() and (lengths > 0).all()


def test_self_images_when_cutoff_exceeds_cell(dtype):
    cell = torch.eye(3, dtype=dtype)
    pos = torch.zeros(1, 3, dtype=dtype)
    ei, es = periodic_radius_graph(pos, 1.5, cell)
    # one atom in a unit cube: 6 face + 12 edge neighbours (sqrt 2 < 1.5), no corners (sqrt 3)
    assert ei.shape == (2, 18) and (ei == 0).all()
    assert (es.abs().sum(1) > 0).all()
    with_loop, _ = periodic_radius_graph(pos, 1.5, cell, self_loops=True)
    assert with_loop.shape == (2, 19)


def test_partial_pbc(dtype, generator):
    cell = _cells(dtype)["triclinic"]
    pos = torch.rand(6, 3, dtype=dtype, generator=generator) @ cell
    pbc = (True, False, True)
    ei, es = periodic_radius_graph(pos, 2.9, cell, pbc=pbc)
    assert (es[:, 1] == 0).all()
    assert _edges(ei, es) == _ref_periodic(pos, cell, 2.9, pbc)
    ei0, es0 = periodic_radius_graph(pos, 2.9, cell, pbc=False)
    assert (es0 == 0).all() and _edges(ei0, es0) == _ref_periodic(pos, cell, 2.9, (False,) * 3)


def test_batched_and_chunked(dtype, generator):
    cells = _cells(dtype)
    sizes = [4, 1, 0, 3]
    cell = torch.stack([cells["cubic"], cells["triclinic"], cells["random"], cells["random"]])
    pos = torch.cat([torch.rand(n, 3, dtype=dtype, generator=generator) @ cell[g]
                     for g, n in enumerate(sizes)])
    batch = torch.repeat_interleave(torch.arange(4), torch.tensor(sizes))
    ei, es = periodic_radius_graph(pos, 2.6, cell, batch)
    _assert_order(ei, es)
    expected, offset = set(), 0
    for g, n in enumerate(sizes):
        for j, i, *s in _ref_periodic(pos[offset:offset + n], cell[g], 2.6):
            expected.add((j + offset, i + offset, *s))
        offset += n
    assert _edges(ei, es) == expected
    assert torch.equal(batch[ei[0]], batch[ei[1]])
    for max_pairs in (1, 50, 999):
        ei2, es2 = periodic_radius_graph(pos, 2.6, cell, batch, max_pairs=max_pairs)
        assert torch.equal(ei, ei2) and torch.equal(es, es2)
    b = GraphBatch(pos=pos, batch=batch, cell=cell, edge_index=ei, edge_shift=es)
    assert (b.edge_vec.norm(dim=1) < 2.6).all()


def test_empty_single_node_and_errors(dtype):
    cell = 5.0 * torch.eye(3, dtype=dtype)
    for n in (0, 1):
        ei, es = periodic_radius_graph(torch.zeros(n, 3, dtype=dtype), 2.0, cell)
        assert ei.shape == (2, 0) and es.shape == (0, 3)
        assert ei.dtype == torch.long and es.dtype == torch.long
    pos = torch.zeros(2, 3, dtype=dtype)
    with pytest.raises(ValueError, match="cell: singular"):
        periodic_radius_graph(pos, 1.0, torch.zeros(3, 3, dtype=dtype))
    with pytest.raises(ValueError, match=r"cell: expected shape \(2, 3, 3\)"):
        periodic_radius_graph(pos, 1.0, cell.expand(3, 3, 3), torch.tensor([0, 1]))
    with pytest.raises(ValueError, match="pbc"):
        periodic_radius_graph(pos, 1.0, cell, pbc=(True, False))
    with pytest.raises(ValueError, match="r: expected a finite cutoff"):
        periodic_radius_graph(pos, float("inf"), cell)


def test_matches_ase(dtype, generator):
    neighborlist = pytest.importorskip("ase.neighborlist")
    ase = pytest.importorskip("ase")
    for name, cell in _cells(torch.float64).items():
        pos = (torch.rand(7, 3, dtype=torch.float64, generator=generator) * 1.6 - 0.3) @ cell
        for pbc in ((True, True, True), (False, True, True)):
            atoms = ase.Atoms("H7", positions=pos.numpy(), cell=cell.numpy(), pbc=pbc)
            i, j, s = neighborlist.neighbor_list("ijS", atoms, 3.1)
            expected = {(int(b), int(a), *map(int, sh)) for a, b, sh in zip(i, j, s)}
            ei, es = periodic_radius_graph(pos.to(dtype), 3.1, cell.to(dtype), pbc=pbc)
            assert _edges(ei, es) == expected, name
