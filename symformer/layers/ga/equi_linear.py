"""Pin(3,0,1)-equivariant linear map between multivector (and scalar) channels (GATr).

Every equivariant linear map of one PGA multivector is a combination of nine basis maps: the
five grade projections ``<x>_k`` and the four maps ``e0 <x>_k`` (k = 0..3), because e0 is
fixed by every isometry. With channels::

    y_o = sum_i sum_b W[o, i, b] B_b(x_i) + bias_o (scalar blade only)
          + (scalars -> scalar blade)  and  (scalar blades -> scalars) + (scalars -> scalars)

All parts are folded into one matrix so the forward pass is a single matmul.
"""

from __future__ import annotations

import functools
import math

import torch
from torch import Tensor, nn

from symformer.primitives.ga import BLADE, GRADES, PGA

__all__ = ["EquiLinear", "basis_maps"]


@functools.lru_cache(maxsize=None)
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

    def matrix(self) -> tuple[Tensor, Tensor]:
        """The folded map: matrix (in_mv*16 + in_s, out_mv*16 + out_s) and bias (out_mv*16 +
        out_s,) acting on ``cat[x.flatten(-2), s]``."""
        B = basis_maps(self.weight.dtype, self.weight.device)  # (9, 16, 16) [b, k, j]
        mv = torch.einsum("oib,bkj->ijok", self.weight, B).reshape(self.in_mv * 16,
                                                                     self.out_mv * 16)
        scalar = BLADE["1"]
        s2mv = self.s2mv.new_zeros(self.in_s, self.out_mv, 16)
        s2mv[:, :, scalar] = self.s2mv.T
        mv2s = self.mv2s.new_zeros(self.in_mv, 16, self.out_s)
        mv2s[:, scalar, :] = self.mv2s.T
        top = torch.cat([mv, mv2s.reshape(self.in_mv * 16, self.out_s)], dim=1)
        bottom = torch.cat([s2mv.reshape(self.in_s, self.out_mv * 16), self.s2s.T], dim=1)
        bias = self.bias.new_zeros(self.out_mv, 16)
        bias[:, scalar] = self.bias
        return torch.cat([top, bottom], dim=0), torch.cat([bias.reshape(-1), self.s_bias])

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
        flat = x.reshape(*lead, self.in_mv * 16)
        if self.in_s:
            if s is None or s.shape != (*lead, self.in_s):
                raise ValueError(f"s: expected shape {(*lead, self.in_s)}, got "
                                 f"{None if s is None else tuple(s.shape)}")
            flat = torch.cat([flat, s], dim=-1)
        M, bias = self.matrix()
        out = torch.nn.functional.linear(flat, M.T, bias)
        y = out[..., :self.out_mv * 16].reshape(*lead, self.out_mv, 16)
        return y, out[..., self.out_mv * 16:]
