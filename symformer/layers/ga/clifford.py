"""Clifford-group equivariant layers over Cl(p, q, r) (CGENN, Ruhe et al. 2023; GLGENN).

Multivector features ``[..., C, D]`` (``D = 2^n`` blades of an :class:`Algebra`). The orthogonal
group of the metric acts on the algebra by algebra automorphisms that preserve every grade, and
fixes scalars; so grade projections, geometric products and the quadratic form
``<~x x>_0`` are equivariant. Layers share weights over *subspaces* of blades:

* ``subspaces="grade"`` — one weight per grade (CGENN);
* ``subspaces="quaternion"`` — one weight per quaternion type, the grades ``k mod 4``
  (GLGENN, Filimoshina & Shirokov 2025: these subspaces are preserved by the generalized
  Lipschitz groups of degenerate and non-degenerate metrics alike; fewer parameters for n >= 4),
  and one geometric-product weight tensor shared by all channels.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from symformer.primitives.ga import Algebra

__all__ = ["subspace_index", "CliffordLinear", "CliffordGeometricProduct", "CliffordSiLU",
           "CliffordLayerNorm", "CliffordBlock"]

_MODES = ("grade", "quaternion")


def subspace_index(algebra: Algebra, subspaces: str) -> list[int]:
    """Subspace of each blade: its grade, or its grade mod 4 (quaternion type)."""
    if subspaces not in _MODES:
        raise ValueError(f"subspaces: expected one of {_MODES}, got {subspaces!r}")
    return [g if subspaces == "grade" else g % 4 for g in algebra.grades]


class _CliffordModule(nn.Module):
    def __init__(self, algebra: Algebra, subspaces: str):
        super().__init__()
        if not isinstance(algebra, Algebra):
            raise TypeError(f"algebra: expected an Algebra, got {type(algebra).__name__}")
        self.algebra = algebra
        self.subspaces = subspaces
        sub = subspace_index(algebra, subspaces)
        self.n_sub = max(sub) + 1
        self.register_buffer("_sub", torch.tensor(sub), persistent=False)

    def _check(self, x: Tensor, channels: int) -> None:
        if x.ndim < 2 or x.shape[-2:] != (channels, self.algebra.dim):
            raise ValueError(f"x: expected shape (..., {channels}, {self.algebra.dim}), got "
                             f"{tuple(x.shape)}")

    def _quadratic(self, x: Tensor) -> Tensor:
        """``<~x_s x_s>_0`` of each subspace part, shape (..., C, n_sub)."""
        a = self.algebra
        gp, rev = a.table("gp", x.dtype, x.device), a.table("reverse", x.dtype, x.device)
        w = torch.diagonal(gp[:, :, 0]) * rev  # (D,)
        q = x.new_zeros(*x.shape[:-1], self.n_sub)
        return q.index_add(-1, self._sub, x * x * w)


class CliffordLinear(_CliffordModule):
    """``y_o = sum_i W[o, i, s(b)] x_i[b] + bias_o`` (bias on the scalar blade only).

    x : (..., in_channels, D) -> (..., out_channels, D).
    """

    def __init__(self, algebra: Algebra, in_channels: int, out_channels: int, *,
                 subspaces: str = "grade"):
        super().__init__(algebra, subspaces)
        self.in_channels, self.out_channels = in_channels, out_channels
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels, self.n_sub)
                                   / math.sqrt(in_channels))
        self.bias = nn.Parameter(torch.zeros(out_channels))

    def forward(self, x: Tensor) -> Tensor:
        self._check(x, self.in_channels)
        w = self.weight[:, :, self._sub]  # (out, in, D)
        y = torch.einsum("oid,...id->...od", w, x)
        return torch.cat([y[..., :1] + self.bias[:, None], y[..., 1:]], dim=-1)


class CliffordGeometricProduct(_CliffordModule):
    """``y = L(x) + P(x, N(R(x)))`` with the weighted geometric product
    ``P(x, z)_c = sum_{ijk} w[c, i, j, k] < <x_c>_i <z_c>_j >_k`` over subspaces i, j, k,
    ``L``, ``R`` Clifford linear maps and ``N`` :class:`CliffordLayerNorm`.

    x : (..., channels, D) -> (..., channels, D).
    """

    def __init__(self, algebra: Algebra, channels: int, *, subspaces: str = "grade",
                 shared_weights: bool = False):
        super().__init__(algebra, subspaces)
        self.channels = channels
        self.left = CliffordLinear(algebra, channels, channels, subspaces=subspaces)
        self.right = CliffordLinear(algebra, channels, channels, subspaces=subspaces)
        self.norm = CliffordLayerNorm(algebra, channels, subspaces=subspaces)
        S = self.n_sub
        shape = (1 if shared_weights else channels, S, S, S)
        self.weight = nn.Parameter(torch.randn(shape) / math.sqrt(S))

    def forward(self, x: Tensor) -> Tensor:
        self._check(x, self.channels)
        a, sub = self.algebra, self._sub
        gp = a.cayley(x.dtype, x.device)  # (D, D, D)
        w = self.weight[:, sub][:, :, sub][:, :, :, sub]  # (C or 1, D, D, D)
        table = gp * w  # (C or 1, D, D, D)
        z = self.norm(self.right(x))
        D, C = a.dim, self.channels
        outer = (x[..., :, None] * z[..., None, :]).reshape(-1, C, D * D)  # (M, C, D*D)
        if table.shape[0] == 1:  # shared weights: one GEMM
            prod = outer @ table[0].reshape(D * D, D)
        else:  # one GEMM per channel
            prod = torch.bmm(outer.transpose(0, 1), table.reshape(C, D * D, D)).transpose(0, 1)
        return (self.left(x) + prod.reshape(x.shape)) / math.sqrt(2)


class CliffordSiLU(_CliffordModule):
    """Gated SiLU: subspace s of channel c times ``sigmoid(a[c, s] q_s + b[c, s])`` where ``q_s``
    is the scalar blade for the subspace holding the scalars and ``<~x_s x_s>_0`` otherwise."""

    def __init__(self, algebra: Algebra, channels: int, *, subspaces: str = "grade"):
        super().__init__(algebra, subspaces)
        self.channels = channels
        self.a = nn.Parameter(torch.ones(channels, self.n_sub))
        self.b = nn.Parameter(torch.zeros(channels, self.n_sub))

    def forward(self, x: Tensor) -> Tensor:
        self._check(x, self.channels)
        q = self._quadratic(x)  # (..., C, S)
        q = torch.cat([x[..., :1], q[..., 1:]], dim=-1)
        gate = torch.sigmoid(self.a * q + self.b)  # (..., C, S)
        return x * gate[..., self._sub]


class CliffordLayerNorm(_CliffordModule):
    """``x_c / mean_c sqrt(|<~x_c x_c>_0| + eps) * gain_c``: one invariant scale per token."""

    def __init__(self, algebra: Algebra, channels: int, *, subspaces: str = "grade",
                 eps: float = 1e-6):
        super().__init__(algebra, subspaces)
        self.channels, self.eps = channels, float(eps)
        self.gain = nn.Parameter(torch.ones(channels))

    def forward(self, x: Tensor) -> Tensor:
        self._check(x, self.channels)
        norm = torch.sqrt(self._quadratic(x).sum(-1).abs() + self.eps)  # (..., C)
        return x / norm.mean(-1, keepdim=True)[..., None] * self.gain[:, None]


class CliffordBlock(nn.Module):
    """``LayerNorm(GeometricProduct(SiLU(Linear(x))))``: the building block of CGENN MLPs.

    x : (..., in_channels, D) -> (..., out_channels, D).
    """

    def __init__(self, algebra: Algebra, in_channels: int, out_channels: int, *,
                 subspaces: str = "grade", shared_weights: bool = False):
        super().__init__()
        self.linear = CliffordLinear(algebra, in_channels, out_channels, subspaces=subspaces)
        self.act = CliffordSiLU(algebra, out_channels, subspaces=subspaces)
        self.product = CliffordGeometricProduct(algebra, out_channels, subspaces=subspaces,
                                                shared_weights=shared_weights)
        self.norm = CliffordLayerNorm(algebra, out_channels, subspaces=subspaces)

    def forward(self, x: Tensor) -> Tensor:
        return self.norm(self.product(self.act(self.linear(x))))
