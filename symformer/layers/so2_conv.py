"""SO(2) edge convolution module (eSCN / EquiformerV2): per-m weights and a radial network."""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from ..registry import register
from ..primitives.so2 import (m_major_rows, rotate_from_edge, rotate_to_edge, so2_linear,
                              so2_num_coefficients)
from ..primitives.wigner import edge_align_rotation
from ._uniform import check_uniform

__all__ = ["SO2Convolution"]


def _group(module):
    from ..groups import E3, Symmetric
    return E3() * Symmetric(8)


def _example(module, generator: torch.Generator, dtype: torch.dtype, n: int = 8) -> dict:
    rows = (module.lmax_in + 1) ** 2
    return {"x": torch.randn(n, rows, module.in_channels, generator=generator, dtype=dtype),
            "edge_vec": torch.randn(n, 3, generator=generator, dtype=dtype),
            "edge_scalars": torch.randn(n, module.edge_channels, generator=generator,
                                        dtype=dtype)}


@register("so2_convolution", kind="layer", group=_group,
          in_types={"x": "node:uniform:2", "edge_vec": "node:vector",
                    "edge_scalars": "node:scalar"},
          out_types="node:uniform:2", example_inputs=_example,
          description="eSCN SO(2) convolution of per-edge features (edges on axis 0)")
class SO2Convolution(nn.Module):
    """Per-edge SO(2) convolution: rotate to the edge frame, mix per ``m``, rotate back.

    Equals a CG tensor product with the edge spherical harmonics with learnable, radially
    modulated path weights and full channel mixing (see :mod:`symformer.primitives.so2`), at
    O(L^3) instead of O(L^6) cost. The input is scaled per (l, |m|, channel) by a radial
    network of the invariant edge features, as in EquiformerV2.

    Parameters
    ----------
    lmax_in, lmax_out : int
        Degrees of the input and output.
    mmax : int or None
        Largest order kept (default ``min(lmax_in, lmax_out)``: the full product).
    in_channels, out_channels : int
    edge_channels : int
        Width of the invariant edge features feeding the radial network (0: no modulation).
    radial_hidden : int
        Hidden width of the radial network.
    parity : bool
        Keep only mirror-even weights (``W2 = 0``): E(3)-equivariant on natural-parity
        features. ``False`` adds the parity-odd paths (SE(3) only).
    extra_m0_channels : int
        Extra invariant outputs from the ``m = 0`` map (attention logits, gates), returned by
        :meth:`edge_frame`.
    """

    def __init__(self, *, lmax_in: int = 2, lmax_out: int = 2, mmax: int | None = None,
                 in_channels: int = 8, out_channels: int = 8, edge_channels: int = 4,
                 radial_hidden: int = 16, parity: bool = True, extra_m0_channels: int = 0):
        super().__init__()
        mmax = min(lmax_in, lmax_out) if mmax is None else mmax
        for name, v, low in (("lmax_in", lmax_in, 0), ("lmax_out", lmax_out, 0),
                             ("mmax", mmax, 0), ("in_channels", in_channels, 1),
                             ("out_channels", out_channels, 1), ("edge_channels", edge_channels, 0),
                             ("extra_m0_channels", extra_m0_channels, 0)):
            if isinstance(v, bool) or not isinstance(v, int) or v < low:
                raise ValueError(f"{name}: expected an int >= {low}, got {v!r}")
        if mmax > min(lmax_in, lmax_out):
            raise ValueError(f"mmax: expected <= min(lmax_in, lmax_out) = "
                             f"{min(lmax_in, lmax_out)}, got {mmax}")
        self.lmax_in, self.lmax_out, self.mmax = lmax_in, lmax_out, mmax
        self.in_channels, self.out_channels = in_channels, out_channels
        self.edge_channels, self.parity, self.extra_m0_channels = edge_channels, parity, extra_m0_channels
        # Unit-variance outputs: fan-in of m = 0 is (L+1) C, of a +-m pair 2 (L-m+1) C.
        self.w0 = nn.Parameter(torch.randn((lmax_in + 1) * in_channels,
                                           (lmax_out + 1) * out_channels + extra_m0_channels)
                               / math.sqrt((lmax_in + 1) * in_channels))
        self.w1, self.w2 = nn.ParameterList(), nn.ParameterList()
        for m in range(1, mmax + 1):
            shape = ((lmax_in - m + 1) * in_channels, (lmax_out - m + 1) * out_channels)
            fan = (1 if parity else 2) * shape[0]
            self.w1.append(nn.Parameter(torch.randn(shape) / math.sqrt(fan)))
            if not parity:
                self.w2.append(nn.Parameter(torch.randn(shape) / math.sqrt(fan)))
        self.n_coefficients = so2_num_coefficients(lmax_in, mmax)
        self.radial = (nn.Sequential(nn.Linear(edge_channels, radial_hidden), nn.SiLU(),
                                     nn.Linear(radial_hidden, self.n_coefficients * in_channels))
                       if edge_channels > 0 else None)

    def edge_frame(self, x: Tensor, edge_scalars: Tensor | None = None
                   ) -> tuple[Tensor, Tensor]:
        """The convolution in the edge frame, on m-major features (see
        :func:`symformer.primitives.so2.m_major_rows`).

        x : [E, len(m_major_rows(L_in, mmax)), C_in]; edge_scalars : [E, edge_channels].
        Returns ``(y, extra)``: y [E, len(m_major_rows(L_out, mmax)), C_out] and the invariant
        extra outputs [E, extra_m0_channels].
        """
        rows = len(m_major_rows(self.lmax_in, self.mmax))
        if x.dim() != 3 or x.shape[1:] != (rows, self.in_channels):
            raise ValueError(f"x: expected m-major edge-frame features [E, {rows}, "
                             f"{self.in_channels}], got {tuple(x.shape)}")
        radial = None
        if self.radial is not None:
            if edge_scalars is None or edge_scalars.shape != (x.shape[0], self.edge_channels):
                raise ValueError(f"edge_scalars: expected shape ({x.shape[0]}, "
                                 f"{self.edge_channels}), got "
                                 f"{None if edge_scalars is None else tuple(edge_scalars.shape)}")
            radial = self.radial(edge_scalars).unflatten(-1, (self.n_coefficients,
                                                              self.in_channels))
        n_main = (self.lmax_out + 1) * self.out_channels
        w0 = self.w0
        extra = x.new_zeros(x.shape[0], 0)
        if self.extra_m0_channels:
            # The m = 0 map is shared: split its extra invariant columns off afterwards.
            w0, w_extra = self.w0[:, :n_main], self.w0[:, n_main:]
            x0 = x[:, :self.lmax_in + 1, :]                                  # m = 0: [E, L+1, C]
            if radial is not None:
                x0 = x0 * radial[:, :self.lmax_in + 1]
            extra = x0.flatten(-2) @ w_extra                                # [E, extra]
        weights = [w0] + [(w1, self.w2[i] if not self.parity else None)
                          for i, w1 in enumerate(self.w1)]
        return so2_linear(x, weights, self.lmax_out, radial, m_major=True), extra

    def forward(self, x: Tensor, edge_vec: Tensor, edge_scalars: Tensor | None = None,
                wigner: Tensor | None = None) -> Tensor:
        """x : [E, (L_in+1)^2, C_in], edge_vec : [E, 3], edge_scalars : [E, edge_channels]
        -> [E, (L_out+1)^2, C_out] (global frame). ``wigner``: a precomputed
        ``edge_align_rotation(edge_vec, >= max(L_in, L_out))`` to reuse."""
        if wigner is None:
            wigner = edge_align_rotation(edge_vec, max(self.lmax_in, self.lmax_out))
        check_uniform("x", x, self.lmax_in, self.in_channels)
        y, _ = self.edge_frame(rotate_to_edge(x, wigner, self.mmax), edge_scalars)
        return rotate_from_edge(y, wigner, self.lmax_out, self.mmax)

    def extra_repr(self) -> str:
        return (f"lmax_in={self.lmax_in}, lmax_out={self.lmax_out}, mmax={self.mmax}, "
                f"in_channels={self.in_channels}, out_channels={self.out_channels}, "
                f"parity={self.parity}")
