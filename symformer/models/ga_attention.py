"""Geometric algebra attention network for N-body (after Spellings, 2021).

Spellings' networks build, for each particle and each neighbour, the geometric products of a few
vectors (here the relative position ``r = x_j - x_i`` and the velocities ``v_i``, ``v_j``) in the
3D Euclidean algebra Cl(3,0), reduce the products to rotation- *and* reflection-invariant
attributes (scalar parts and magnitudes of higher grades) that drive an attention over the
neighbours, and sum equivariant vector-valued terms of the same products with those weights::

    products   r v_j  = r.v_j + r^v_j,   r v_i,   v_i v_j,   (r ^ v_j) r        (Cl(3,0))
    invariants |r|^2, r.v_i, r.v_j, v_i.v_j, |r^v_i|^2, |r^v_j|^2, |v_i^v_j|^2, |r^v_i^v_j|^2
    a_ij   = softmax_j(MLP([h_i, h_j, invariants, q_i q_j]))                  (per head)
    h_i   <- h_i + MLP(sum_j a_ij MLP_v([h_j, invariants]))
    x_i   <- x_i + sum_j a_ij (c1 r' + c2 v_j' + c3 <(r ^ v_j) r>_1'),  c = MLP([h_i, h_j, inv])

(the primes: each vector ``u`` divided by ``1 + |u|``, so steps stay bounded).
    out_i  = x_i + c v_i                                                       (c from h_i)

The trivector ``r^v_i^v_j`` flips sign under reflections, so only its square enters. Equivariant
to E(3) (reflections included) and to permutations.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from symformer.groups import E3, Symmetric
from symformer.primitives import segment_softmax
from symformer.primitives.ga import Algebra, geometric_product, outer_product

from . import _nbody_io
from ..registry import register

__all__ = ["GAAttentionNet", "ga_pair_terms"]

_CL3 = Algebra.from_signature(3, 0, 0)
_VEC = [1, 2, 3]


def _mv(v: Tensor) -> Tensor:
    out = v.new_zeros(*v.shape[:-1], 8)
    out[..., _VEC] = v
    return out


def ga_pair_terms(r: Tensor, vi: Tensor, vj: Tensor) -> tuple[Tensor, Tensor]:
    """Invariants (E, 8) and equivariant vectors (E, 3, 3) [r, v_j, <(r ^ v_j) r>_1] of
    Cl(3,0) products of ``r``, ``v_i``, ``v_j`` (each (E, 3))."""
    R, Vi, Vj = _mv(r), _mv(vi), _mv(vj)
    wedge = lambda a, b: outer_product(a, b, _CL3)  # noqa: E731
    rvi, rvj, vv = wedge(R, Vi), wedge(R, Vj), wedge(Vi, Vj)
    tri = wedge(rvi, Vj)[..., 7]  # the e123 coefficient: pseudoscalar
    inv = torch.stack([(r * r).sum(-1), (r * vi).sum(-1), (r * vj).sum(-1), (vi * vj).sum(-1),
                       rvi.square().sum(-1), rvj.square().sum(-1), vv.square().sum(-1),
                       tri.square()], dim=-1)
    rejection = geometric_product(rvj, R, _CL3)[..., _VEC]  # vector part of (r ^ v_j) r
    return inv, torch.stack([r, vj, rejection], dim=1)


def _mlp(d_in: int, hidden: int, d_out: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(d_in, hidden), nn.SiLU(), nn.Linear(hidden, d_out))


class _Layer(nn.Module):
    def __init__(self, hidden: int, heads: int):
        super().__init__()
        self.heads = heads
        d_pair = 2 * hidden + 9
        self.logits = _mlp(d_pair, hidden, heads)
        self.value = _mlp(hidden + 9, hidden, hidden)
        self.coef = _mlp(d_pair, hidden, 3 * heads)
        self.update = _mlp(2 * hidden, hidden, hidden)
        nn.init.zeros_(self.coef[2].weight)  # start from "no extra motion"
        nn.init.zeros_(self.coef[2].bias)

    def forward(self, h, x, vel, attrs, edge_index):
        src, dst = edge_index
        inv, vecs = ga_pair_terms(x[src] - x[dst], vel[dst], vel[src])  # [E, 8], [E, 3, 3]
        feats = torch.cat([inv / (1 + inv.abs()), attrs], dim=-1)  # bounded invariants [E, 9]
        pair = torch.cat([h[dst], h[src], feats], dim=-1)
        a = segment_softmax(self.logits(pair), dst, h.shape[0])  # [E, heads]
        coef = self.coef(pair).view(-1, self.heads, 3)  # [E, heads, 3]
        vecs = vecs / (1 + vecs.norm(dim=-1, keepdim=True))  # bounded directions, as in EGNN
        step = torch.einsum("eh,ehk,ekc->ec", a / self.heads, coef, vecs)  # [E, 3]
        x = x + x.new_zeros(x.shape).index_add(0, dst, step)
        msg = a.mean(-1, keepdim=True) * self.value(torch.cat([h[src], feats], dim=-1))
        agg = h.new_zeros(h.shape).index_add(0, dst, msg)
        return h + self.update(torch.cat([h, agg], dim=-1)), x


@register("ga_attention", group=lambda: E3() * Symmetric(_nbody_io.EXAMPLE_NODES),
          in_types=_nbody_io.NBODY_IN_TYPES, out_types="node:point",
          example_inputs=_nbody_io.example_inputs,
          description="geometric algebra attention network (after Spellings 2021) for N-body",
          tags=("nbody", "e3", "attention", "geometric-algebra"))
class GAAttentionNet(nn.Module):
    """Attention over neighbours driven by invariants of Cl(3,0) products (module docstring).

    Parameters (keyword-only)
    ----------
    hidden : int
        Width of invariant node features and MLPs (64).
    n_layers, heads : int
        Layers (4) and attention heads (4).
    """

    def __init__(self, *, hidden: int = 64, n_layers: int = 4, heads: int = 4):
        super().__init__()
        for name, val, low in (("hidden", hidden, 1), ("n_layers", n_layers, 0),
                               ("heads", heads, 1)):
            if isinstance(val, bool) or not isinstance(val, int) or val < low:
                raise ValueError(f"{name}: expected an int >= {low}, got {val!r}")
        self.embed = nn.Linear(2, hidden)
        self.layers = nn.ModuleList(_Layer(hidden, heads) for _ in range(n_layers))
        self.vel_coef = _mlp(hidden, hidden, 1)

    def forward(self, pos: Tensor, vel: Tensor, charges: Tensor, batch: Tensor) -> Tensor:
        """Predicted positions (N, 3) from flat node inputs (see :mod:`._nbody_io`)."""
        _nbody_io.check_nbody_inputs(pos, vel, charges, batch)
        edge_index = _nbody_io.fully_connected_edges(batch)  # [2, E]
        src, dst = edge_index
        attrs = (charges[src] * charges[dst])[:, None]  # [E, 1]
        h = self.embed(torch.stack([vel.norm(dim=-1), charges], dim=-1))  # [N, hidden]
        x = pos
        for layer in self.layers:
            h, x = layer(h, x, vel, attrs, edge_index)
        return x + self.vel_coef(h) * vel
