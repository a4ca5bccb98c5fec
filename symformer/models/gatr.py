"""GATr for the charged N-body benchmark (Brehmer et al., NeurIPS 2023), E(3)-equivariant.

Each particle is a token with multivector channels (its position relative to the centroid of
its system and its velocity, both as Euclidean vectors ``x_i e_i``) and one scalar channel (its
charge). A :class:`~symformer.layers.ga.GATrNet` attends within each system (dense ``[B, N]``
view with a mask, SDPA); the grade-1 Euclidean part of the first output channel is the
displacement::

    out_i = pos_i + <GATr(x - c, v, q)_i>_{e1, e2, e3}

Why vectors and not PGA points: in the Pin(3,0,1) representation a reflection maps the point
trivector of x to *minus* the point trivector of the reflected x (points are homogeneous), so a
network fed embedded points is not exactly reflection-equivariant end to end. Relative positions
as vectors transform exactly (``R r``) and the centroid carries the translation, so the model is
exactly E(3)-equivariant (float64 error ~1e-15) while the network inside is GATr unchanged.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from symformer.data import from_dense, to_dense
from symformer.groups import E3, Symmetric
from symformer.layers.ga import GATrNet
from symformer.primitives.ga import blade_index

from . import _nbody_io
from ..registry import register

__all__ = ["GATrNBody", "vectors_to_multivectors"]

_VEC = blade_index("e1", "e2", "e3")


def vectors_to_multivectors(v: Tensor) -> Tensor:
    """Euclidean vectors (..., 3) as grade-1 multivectors ``v_i e_i`` (..., 16)."""
    out = v.new_zeros(*v.shape[:-1], 16)
    out[..., _VEC] = v
    return out


def system_centroids(pos: Tensor, batch: Tensor) -> Tensor:
    """Centroid of each node's system, shape (N, 3)."""
    batch = batch.long()
    n = int(batch.max()) + 1
    total = pos.new_zeros(n, 3).index_add_(0, batch, pos)
    count = torch.bincount(batch, minlength=n).clamp(min=1).to(pos.dtype)
    return (total / count[:, None])[batch]


@register("gatr", group=lambda: E3() * Symmetric(_nbody_io.EXAMPLE_NODES),
          in_types=_nbody_io.NBODY_IN_TYPES, out_types="node:point",
          example_inputs=_nbody_io.example_inputs,
          description="GATr (Brehmer et al. 2023): geometric algebra transformer for N-body",
          tags=("nbody", "e3", "attention", "geometric-algebra"))
class GATrNBody(nn.Module):
    """Geometric algebra transformer predicting future positions of charged particles.

    Parameters (keyword-only)
    ----------
    hidden_mv, hidden_s : int
        Multivector and scalar channels (16, 32).
    blocks, heads : int
        GATr blocks and attention heads (4, 4).
    """

    def __init__(self, *, hidden_mv: int = 16, hidden_s: int = 32, blocks: int = 4,
                 heads: int = 4):
        super().__init__()
        for name, val, low in (("hidden_s", hidden_s, 1), ("heads", heads, 1)):
            if isinstance(val, bool) or not isinstance(val, int) or val < low:
                raise ValueError(f"{name}: expected an int >= {low}, got {val!r}")
        self.net = GATrNet(2, 1, 1, 1, hidden_mv=hidden_mv, hidden_s=hidden_s, blocks=blocks,
                           heads=heads)

    def forward(self, pos: Tensor, vel: Tensor, charges: Tensor, batch: Tensor) -> Tensor:
        """Predicted positions (N, 3) from flat node inputs (see :mod:`._nbody_io`)."""
        _nbody_io.check_nbody_inputs(pos, vel, charges, batch)
        order = torch.argsort(batch, stable=True)  # the dense view needs systems contiguous
        rel = pos - system_centroids(pos, batch)  # translation-invariant  [N, 3]
        mv = vectors_to_multivectors(torch.stack([rel, vel], dim=1))  # [N, 2, 16]
        x, mask = to_dense(mv[order], batch[order].long())  # [B, Nmax, 2, 16], [B, Nmax]
        s, _ = to_dense(charges[order, None], batch[order].long())  # [B, Nmax, 1]
        y, _ = self.net(x, s, mask)  # [B, Nmax, 1, 16]
        delta = from_dense(y[:, :, 0, _VEC], mask)  # [N, 3] in sorted order
        return pos + delta[torch.argsort(order)]
