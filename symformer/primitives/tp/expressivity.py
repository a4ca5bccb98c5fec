"""Expressivity measures of a backend's bilinear map ("The Price of Freedom", Xie et al. 2025).

A backend with fixed weights (all ones, or the Gaunt path weights) is a bilinear map
``T : (x, y) -> out``, i.e. a tensor ``T[i, j, k]`` over the ``mul_ir`` components, obtained
here by evaluating it on basis vectors (float64). Reported:

* ``reachable_paths``: the ``(ir1, ir2, ir_out)`` term triples whose block of ``T`` is nonzero
  (which couplings the product can express at all; e.g. no ``1o x 1o -> 1e`` for Gaunt);
* ``bilinear_rank``: rank of ``T`` as a matrix ``[dim1 dim2, dim_out]`` (how many independent
  output directions the products of all input pairs span);
* ``x_rank``: rank of the linear map ``x -> T(x, y)`` for a random ``y`` (for ``so2`` the edge
  harmonics of a random direction, the only ``y`` it accepts).

For ``so2`` the first two measures use the same map with ``y`` restricted to edge harmonics, so
``T`` is replaced by the span over a few random edges (``bilinear_rank`` then counts the output
directions reachable with edge harmonics).
"""

from __future__ import annotations

import torch

from ..spherical_harmonics import spherical_harmonics
from .dispatch import tensor_product
from .spec import TensorProductSpec

__all__ = ["bilinear_tensor", "expressivity"]


def _weights(spec: TensorProductSpec, n: int) -> torch.Tensor | None:
    if not spec.weight_numel:
        return None
    w = torch.ones(spec.weight_numel, dtype=torch.float64)
    return w if spec.weight_mode == "internal" else w.expand(n, -1)


def bilinear_tensor(spec: TensorProductSpec, backend: str = "cg", *, rank: int | None = None,
                    edges: int = 0, generator: torch.Generator | None = None) -> torch.Tensor:
    """``T [dim1, dim2, dim_out]`` of the backend with unit weights (float64).

    For ``so2`` pass ``edges > 0``: then ``T [dim1, edges, dim_out]`` holds ``x -> out`` for
    that many random edge directions.
    """
    d1, d2 = spec.irreps_in1.dim, spec.irreps_in2.dim
    e1 = torch.eye(d1, dtype=torch.float64)
    if backend == "so2":
        if edges < 1:
            raise ValueError("so2 needs edges >= 1 (its y must be edge harmonics)")
        vec = torch.randn(edges, 3, generator=generator, dtype=torch.float64)
        lmax = spec.irreps_in2.lmax
        y = spherical_harmonics(lmax, vec)
        xs = e1[:, None, :].expand(d1, edges, d1).reshape(-1, d1)
        ys = y[None].expand(d1, edges, d2).reshape(-1, d2)
        v = vec[None].expand(d1, edges, 3).reshape(-1, 3)
        out = tensor_product(xs, ys, spec, _weights(spec, xs.shape[0]), "so2", edge_vec=v)
        return out.reshape(d1, edges, -1)
    xs = e1[:, None, :].expand(d1, d2, d1).reshape(-1, d1)
    ys = torch.eye(d2, dtype=torch.float64)[None].expand(d1, d2, d2).reshape(-1, d2)
    out = tensor_product(xs, ys, spec, _weights(spec, xs.shape[0]), backend, rank=rank)
    return out.reshape(d1, d2, -1)


def expressivity(spec: TensorProductSpec, backend: str = "cg", *, rank: int | None = None,
                 generator: torch.Generator | None = None, tol: float = 1e-9) -> dict:
    """``{"reachable_paths", "bilinear_rank", "x_rank"}`` (see the module docstring)."""
    so2 = backend == "so2"
    t = bilinear_tensor(spec, backend, rank=rank, edges=4 if so2 else 0, generator=generator)
    s1, so = spec.irreps_in1.slices(), spec.irreps_out.slices()
    reach = []
    if so2:
        for a, (_, r1) in enumerate(spec.irreps_in1):
            for c, (_, r3) in enumerate(spec.irreps_out):
                if t[s1[a], :, so[c]].abs().max() > tol:
                    reach.append((str(r1), "Y", str(r3)))
        x_map = t[:, 0, :]
    else:
        s2 = spec.irreps_in2.slices()
        for a, (_, r1) in enumerate(spec.irreps_in1):
            for b, (_, r2) in enumerate(spec.irreps_in2):
                for c, (_, r3) in enumerate(spec.irreps_out):
                    if t[s1[a], s2[b], so[c]].abs().max() > tol:
                        reach.append((str(r1), str(r2), str(r3)))
        y = torch.randn(t.shape[1], generator=generator, dtype=torch.float64)
        x_map = torch.einsum("ijk,j->ik", t, y)
    flat = t.reshape(-1, t.shape[-1])
    return {"reachable_paths": sorted(set(reach)),
            "bilinear_rank": int(torch.linalg.matrix_rank(flat, atol=tol)),
            "x_rank": int(torch.linalg.matrix_rank(x_map, atol=tol))}
