"""The symmetric group S_N acting on node axes (sets, graphs, point clouds).

Element: ``perm`` (n, N) long with the convention ``new[i] = old[perm[i]]`` along every node
axis named by the field type's prefix (``node:`` axis 0, ``set:`` axis 1, ``pair:`` axes 1 and
2, ``nodepair:`` axes 0 and 1). An ``edge_index`` ``[2, E]`` keeps its edge order and has its
values relabelled: old node j becomes new node ``inv_perm[j]``, so that an edge (a, b) of the
old graph still joins the same two (moved) nodes. Fields without a prefix (graph-level values)
are unchanged.
"""

from __future__ import annotations

import torch
from torch import Tensor

from . import _random
from .base import Element, Group
from .types import FieldType

__all__ = ["Symmetric"]


class Symmetric(Group):
    """S_N, all permutations of ``N`` nodes. Kinds: ``("permutation",)``.

    ``sample(kind=None)`` is uniform on S_N; ``sample(kind="permutation")`` is uniform on the
    non-identity permutations (when N > 1) so that every draw tests something.

    Parameters
    ----------
    n : int
        Number of nodes N >= 1 (the size of every node axis the group acts on).
    """

    kinds = ("permutation",)

    def __init__(self, n: int):
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise ValueError(f"n must be a positive int (number of nodes), got {n!r}")
        self.n = n
        self.name = f"S_{n}"

    def sample(self, n=1, generator=None, *, dtype=torch.float32, device=None, kind=None):
        n = _random.check_n(n)
        if kind is not None and kind not in self.kinds and kind != "general":
            raise ValueError(f"{self.name} has no transformation kind {kind!r}; kinds: {self.kinds}")
        perm = torch.argsort(_random.rand((n, self.n), generator, torch.float64, device), dim=-1)
        if kind == "permutation" and self.n > 1:
            ident = torch.arange(self.n, device=perm.device)
            # Rejection: redraw the (probability 1/N!) identity rows.
            while True:
                bad = (perm == ident).all(dim=-1)
                if not bool(bad.any()):
                    break
                redraw = torch.argsort(_random.rand((int(bad.sum()), self.n), generator,
                                                    torch.float64, device), dim=-1)
                perm = perm.clone()
                perm[bad] = redraw
        return Element({"perm": perm}, kind or "general")

    def identity(self, n=1, *, dtype=torch.float32, device=None):
        n = _random.check_n(n)
        perm = torch.arange(self.n, device=device).expand(n, self.n).clone()
        return Element({"perm": perm}, "identity")

    def compose(self, g: Element, h: Element) -> Element:
        # h first: y[i] = x[ph[i]]; then g: z[i] = y[pg[i]] = x[ph[pg[i]]].
        return Element({"perm": torch.gather(h.perm, 1, g.perm)},
                       g.kind if g.kind == h.kind else "general")

    def inverse(self, g: Element) -> Element:
        return Element({"perm": torch.argsort(g.perm, dim=-1)}, g.kind)

    def matrix(self, g: Element) -> Tensor:
        """Permutation matrices P (n, N, N) with ``new = P @ old``: ``P[i, perm[i]] = 1``."""
        eye = torch.eye(self.n, device=g.perm.device)
        return eye[g.perm]

    def _act_tensor(self, g: Element, x: Tensor, ftype: FieldType) -> Tensor:
        perm = g.perm[0].to(device=x.device)
        if ftype.geom == "edge_index":
            if x.ndim != 2 or x.shape[0] != 2 or x.is_floating_point():
                raise ValueError(f"{self.name}: an 'edge_index' field must be an integer tensor "
                                 f"of shape [2, E], got {tuple(x.shape)} {x.dtype}")
            if x.numel() and (int(x.min()) < 0 or int(x.max()) >= self.n):
                raise ValueError(f"{self.name}: edge_index values must lie in [0, {self.n}), "
                                 f"got range [{int(x.min())}, {int(x.max())}]")
            return torch.argsort(perm)[x]
        for axis in ftype.perm_axes:
            if x.ndim <= axis or x.shape[axis] != self.n:
                raise ValueError(f"{self.name}: a {str(ftype)!r} field must have {self.n} nodes "
                                 f"along axis {axis}, got shape {tuple(x.shape)}")
            x = torch.index_select(x, axis, perm)
        return x
