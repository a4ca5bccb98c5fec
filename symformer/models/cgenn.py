"""CGENN: Clifford group equivariant networks for the charged N-body benchmark (Ruhe, Brandstetter
& Forré, NeurIPS 2023), over Cl(3,0) multivectors ``[..., C, 8]``.

A message-passing network on the fully connected graph of each system whose MLPs are Clifford
blocks (:class:`~symformer.layers.ga.CliffordBlock`: linear, gated SiLU, weighted geometric
product, layer norm). With ``r_i = x_i - centroid``, velocities ``v_i`` and charges ``q_i``::

    h_i^0   = Linear([r_i, v_i, q_i])                              (vectors and a scalar)
    m_ij    = Block(Block([h_i, h_j, x_i - x_j, q_i q_j]))
    h_i    <- h_i + Block([h_i, mean_j m_ij])
    out_i   = x_i + <Linear(h_i)>_1                                (the vector part)

Equivariant to O(3) (reflections included) acting on every grade, to translations (only
differences and centred positions enter) and to permutations of the nodes.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from symformer.groups import E3, Symmetric
from symformer.layers.ga import CliffordBlock, CliffordLinear
from symformer.primitives.ga import Algebra

from . import _nbody_io
from .gatr import system_centroids
from ..registry import register

__all__ = ["CGENN", "CliffordMessageLayer"]

_CL3 = Algebra.from_signature(3, 0, 0)
_VEC = [1, 2, 3]  # e1, e2, e3 in Cl(3,0)'s blade order


def _embed(vectors: list[Tensor], scalars: list[Tensor]) -> Tensor:
    """Vectors (N, 3) and scalars (N,) as Cl(3,0) channels, shape (N, len(v) + len(s), 8)."""
    v = torch.stack(vectors, dim=1)  # (N, V, 3)
    mv_v = v.new_zeros(*v.shape[:2], 8)
    mv_v[..., _VEC] = v
    s = torch.stack(scalars, dim=1)  # (N, S)
    mv_s = s.new_zeros(*s.shape, 8)
    mv_s[..., 0] = s
    return torch.cat([mv_v, mv_s], dim=1)


class CliffordMessageLayer(nn.Module):
    """One message-passing layer with Clifford-block MLPs (see module docstring).

    Parameters
    ----------
    channels : int
        Multivector channels of node features.
    subspaces : str
        ``"grade"`` (CGENN) or ``"quaternion"`` (GLGENN).
    shared_weights : bool
        Share geometric-product weights over channels (GLGENN's parameter-light variant).
    """

    def __init__(self, channels: int, *, algebra: Algebra = _CL3, subspaces: str = "grade",
                 shared_weights: bool = False):
        super().__init__()
        kw = {"subspaces": subspaces, "shared_weights": shared_weights}
        self.edge = nn.Sequential(CliffordBlock(algebra, 2 * channels + 2, channels, **kw),
                                  CliffordBlock(algebra, channels, channels, **kw))
        self.node = CliffordBlock(algebra, 2 * channels, channels, **kw)

    def forward(self, h: Tensor, edge_attr: Tensor, edge_index: Tensor, inv_degree: Tensor
                ) -> Tensor:
        """h (N, C, D), edge_attr (E, 2, D), edge_index (2, E) [source j, target i],
        inv_degree (N, 1, 1) -> h (N, C, D)."""
        src, dst = edge_index
        m = self.edge(torch.cat([h[dst], h[src], edge_attr], dim=1))  # [E, C, D]
        agg = h.new_zeros(h.shape).index_add(0, dst, m) * inv_degree  # [N, C, D]
        return h + self.node(torch.cat([h, agg], dim=1))


@register("cgenn", group=lambda: E3() * Symmetric(_nbody_io.EXAMPLE_NODES),
          in_types=_nbody_io.NBODY_IN_TYPES, out_types="node:point",
          example_inputs=_nbody_io.example_inputs,
          description="CGENN (Ruhe et al. 2023): Clifford group equivariant GNN for N-body",
          tags=("nbody", "e3", "geometric-algebra"))
class CGENN(nn.Module):
    """Clifford group equivariant message passing predicting future positions.

    Parameters (keyword-only)
    ----------
    channels : int
        Multivector channels (28, as published).
    n_layers : int
        Message-passing layers (4).
    """

    subspaces = "grade"
    shared_weights = False

    def __init__(self, *, channels: int = 28, n_layers: int = 4):
        super().__init__()
        for name, val, low in (("channels", channels, 1), ("n_layers", n_layers, 0)):
            if isinstance(val, bool) or not isinstance(val, int) or val < low:
                raise ValueError(f"{name}: expected an int >= {low}, got {val!r}")
        kw = {"subspaces": self.subspaces}
        self.embed = CliffordLinear(_CL3, 3, channels, **kw)
        self.layers = nn.ModuleList(
            CliffordMessageLayer(channels, shared_weights=self.shared_weights, **kw)
            for _ in range(n_layers))
        self.head = CliffordLinear(_CL3, channels, 1, **kw)

    def forward(self, pos: Tensor, vel: Tensor, charges: Tensor, batch: Tensor) -> Tensor:
        """Predicted positions (N, 3) from flat node inputs (see :mod:`._nbody_io`)."""
        _nbody_io.check_nbody_inputs(pos, vel, charges, batch)
        edge_index = _nbody_io.fully_connected_edges(batch)  # [2, E]
        src, dst = edge_index
        degree = torch.bincount(dst, minlength=pos.shape[0]).clamp(min=1)
        inv_degree = (1.0 / degree.to(pos.dtype))[:, None, None]  # [N, 1, 1]
        h = self.embed(_embed([pos - system_centroids(pos, batch), vel], [charges]))  # [N, C, 8]
        edge_attr = _embed([pos[dst] - pos[src]], [charges[dst] * charges[src]])  # [E, 2, 8]
        for layer in self.layers:
            h = layer(h, edge_attr, edge_index, inv_degree)
        return pos + self.head(h)[:, 0, _VEC]
