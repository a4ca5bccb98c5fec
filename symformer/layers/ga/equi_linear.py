"""Pin(3,0,1)-equivariant linear map between multivector (and scalar) channels (GATr).

Every equivariant linear map of one PGA multivector is a combination of nine basis maps: the
five grade projections ``<x>_k`` and the four maps ``e0 <x>_k`` (k = 0..3), because e0 is
fixed by every isometry. With channels::

    y_o = sum_i sum_b W[o, i, b] B_b(x_i) + bias_o (scalar blade only)
          + (scalars -> scalar blade)  and  (scalar blades -> scalars) + (scalars -> scalars)

The maps are sparse in the blades (diagonal or a signed shift onto the e0 blades), so the
forward pass is one batched matmul over channels per blade: ``24 in out`` multiply-adds per
token instead of ``256 in out`` for a dense 16x16 map per channel pair.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from symformer._cache import tensor_cache

from symformer.primitives.ga import BLADE, GRADES, PGA

__all__ = ["EquiLinear", "basis_maps"]


@tensor_cache
def _basis(dtype: torch.dtype, device: torch.device) -> Tensor:
    gp = PGA.cayley(torch.float64)
    grade = PGA.table("grade")  # (5, 16)
    maps = [torch.diag(grade[k]) for k in range(5)]
    e0 = gp[BLADE["e0"]].T  # (16, 16): (e0 x)_k = sum_j gp[e0, j, k] x_j
    maps += [e0 @ torch.diag(grade[k]) for k in range(4)]
    return torch.stack(maps).to(dtype=dtype, device=device)


def basis_maps(dtype: torch.dtype = torch.float64, device=None) -> Tensor:
    """The nine equivariant basis maps as matrices, shape (9, 16, 16): ``B_b(x) = B[b] @ x``."""
    return _basis(dtype, torch.device(device or "cpu"))


class EquiLinear(nn.Module):
    """Equivariant linear layer ``(x [..., in_mv, 16], s [..., in_s]) -> (y [..., out_mv, 16],
    s' [..., out_s])``.

    Parameters
    ----------
    in_mv, out_mv : int
        Multivector channels (``in_mv >= 1`` or ``in_s >= 1``).
    in_s, out_s : int
        Scalar channels (0 for none).
    """

    def __init__(self, in_mv: int, out_mv: int, in_s: int = 0, out_s: int = 0):
        super().__init__()
        for name, v in (("in_mv", in_mv), ("out_mv", out_mv), ("in_s", in_s), ("out_s", out_s)):
            if isinstance(v, bool) or not isinstance(v, int) or v < 0:
                raise ValueError(f"{name}: expected an int >= 0, got {v!r}")
        if in_mv + in_s == 0 or out_mv + out_s == 0:
            raise ValueError("EquiLinear needs at least one input and one output channel")
        self.in_mv, self.out_mv, self.in_s, self.out_s = in_mv, out_mv, in_s, out_s
        fan_in = max(in_mv + in_s, 1)
        w = torch.randn(out_mv, in_mv, 9) / math.sqrt(fan_in)
        w[..., 5:] *= 0.5  # the e0 maps add to grades that grade projections already fill
        self.weight = nn.Parameter(w)
        self.bias = nn.Parameter(torch.zeros(out_mv))
        self.s2mv = nn.Parameter(torch.randn(out_mv, in_s) / math.sqrt(fan_in))
        self.mv2s = nn.Parameter(torch.randn(out_s, in_mv) / math.sqrt(fan_in))
        self.s2s = nn.Parameter(torch.randn(out_s, in_s) / math.sqrt(fan_in))
        self.s_bias = nn.Parameter(torch.zeros(out_s))

    def _blade_weights(self) -> tuple[Tensor, Tensor]:
        """Per-blade weights: ``main`` (16, in_mv, out_mv) maps blade k of the inputs to blade k
        of the outputs (grade projections); ``e0`` (8, in_mv, out_mv) maps the blade k' to the
        blade e0 k' (signed; the e0 maps)."""
        idx = _structure(self.weight.device)
        main = self.weight[:, :, idx["grade"]].permute(2, 1, 0)  # (16, in, out)
        e0 = self.weight[:, :, idx["e0_map"]].permute(2, 1, 0)  # (8, in, out)
        return main, e0 * idx["e0_sign"].to(self.weight.dtype)[:, None, None]

    def matrix(self) -> Tensor:
        """The multivector part as one matrix (in_mv, 16, out_mv, 16): ``y[o, k] = sum_ij
        M[i, j, o, k] x[i, j]`` (for tests and inspection)."""
        B = basis_maps(self.weight.dtype, self.weight.device)  # (9, 16, 16) [b, k, j]
        return torch.einsum("oib,bkj->ijok", self.weight, B)

    def forward(self, x: Tensor, s: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """
        Parameters
        ----------
        x : Tensor, shape (..., in_mv, 16)
        s : Tensor, shape (..., in_s), or None when ``in_s == 0``

        Returns
        -------
        y : Tensor, shape (..., out_mv, 16); s : Tensor, shape (..., out_s)
        """
        if x.shape[-2:] != (self.in_mv, 16):
            raise ValueError(f"x: expected shape (..., {self.in_mv}, 16), got {tuple(x.shape)}")
        lead = x.shape[:-2]
        if self.in_s and (s is None or s.shape != (*lead, self.in_s)):
            raise ValueError(f"s: expected shape {(*lead, self.in_s)}, got "
                             f"{None if s is None else tuple(s.shape)}")
        idx = _structure(x.device)
        xb = x.reshape(-1, self.in_mv, 16).permute(2, 0, 1)  # (16, T, in)  blade-major
        main, e0 = self._blade_weights()
        y = torch.bmm(xb, main)  # (16, T, out): grade projections, blade by blade
        y = y.index_add(0, idx["e0_blades"], torch.bmm(xb[idx["e0_src"]], e0))  # e0 maps
        x0 = xb[0]  # (T, in) scalar blade
        scalar = torch.nn.functional.linear(x0, self.mv2s, self.s_bias)  # (T, out_s)
        y0 = y[0] + self.bias
        if self.in_s:
            sf = s.reshape(-1, self.in_s)
            y0 = y0 + sf @ self.s2mv.T
            scalar = scalar + sf @ self.s2s.T
        y = torch.cat([y0[None], y[1:]], dim=0)
        return (y.permute(1, 2, 0).reshape(*lead, self.out_mv, 16),
                scalar.reshape(*lead, self.out_s))


@tensor_cache
def _structure(device: torch.device) -> dict[str, Tensor]:
    """Index tables of the nine maps: the basis index of each blade's grade projection; for the
    8 blades with e0, their source blade k' (e0 k' = sign * blade) and the e0-map index."""
    from symformer.primitives.ga.algebra import blade_product

    pos = {b: i for i, b in enumerate(PGA.blades)}
    e0_blades, src, sign, e0_map = [], [], [], []
    for k, b in enumerate(PGA.blades):
        if 0 in b:
            rest = tuple(g for g in b if g != 0)
            sg, _ = blade_product((0,), rest, PGA.metric)
            e0_blades.append(k)
            src.append(pos[rest])
            sign.append(sg)
            e0_map.append(5 + len(rest))
    out = {"grade": torch.tensor(GRADES), "e0_blades": torch.tensor(e0_blades),
           "e0_src": torch.tensor(src), "e0_sign": torch.tensor(sign, dtype=torch.float64),
           "e0_map": torch.tensor(e0_map)}
    return {k: v.to(device) for k, v in out.items()}
