"""The dense Clebsch-Gordan tables of a spec, grouped by input pair (shared by the dense backend
of :mod:`.cg` and the component-major kernel of :mod:`._componentwise`)."""

from __future__ import annotations

import torch
from torch import Tensor

from symformer._cache import tensor_cache

from ..clebsch_gordan import clebsch_gordan
from ._eager import run_eagerly
from .spec import TensorProductSpec

__all__ = ["group_tables"]


@run_eagerly  # constant tables: built once, opaque to the compiler
@tensor_cache
def group_tables(spec: TensorProductSpec, dtype: torch.dtype,
                 device: torch.device) -> tuple[tuple[int, int, tuple[int, ...], Tensor], ...]:
    """Per input pair: ``(i_in1, i_in2, instruction indices, table [d1 d2, sum d3], table_y
    [d2, d1 sum d3])`` (the second orders the same entries for contracting y first)."""
    groups: dict[tuple[int, int], list[int]] = {}
    for k, t in enumerate(spec.instructions):
        groups.setdefault((t.i_in1, t.i_in2), []).append(k)
    out = []
    for (a, b), ks in groups.items():
        cols = []
        for k in ks:
            l1, l2, l3 = spec.paths()[k]
            c = clebsch_gordan(l1, l2, l3, torch.float64) * spec.coefficients[k]
            cols.append(c.reshape((2 * l1 + 1) * (2 * l2 + 1), 2 * l3 + 1))
        t = torch.cat(cols, 1)
        d1, d2 = spec.irreps_in1[a].ir.dim, spec.irreps_in2[b].ir.dim
        ty = t.reshape(d1, d2, -1).permute(1, 0, 2).reshape(d2, -1)
        out.append((a, b, tuple(ks), t.to(dtype=dtype, device=device),
                    ty.to(dtype=dtype, device=device)))
    return tuple(out)
