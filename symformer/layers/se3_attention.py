"""SE(3)-Transformer attention block (Fuchs et al. 2020) on the uniform layout.

For target node ``i`` and its incoming edges ``j -> i``, with ``H`` heads splitting the channels::

    q_i  = W_Q x_i                                   (equivariant linear, degrees <= min(Lin, L))
    k_ij = TFN_K(x_j, r_ij),  v_ij = TFN_V(x_j, r_ij)  (per-edge TFN kernels, one fused product)
    a_ij = softmax_j( <q_i, k_ij>_h / sqrt(d_h) )    (inner products over degrees, m and the
                                                      head's channels: invariant logits)
    z_i  = W_O sum_j a_ij v_ij + skip(x_i)
    y_i  = NormActivation(z_i)                       (optional, the published GNormSE3)

Keys only use the degrees that queries have (queries are node-wise linear maps of ``x``).
The softmax runs over each target's incoming edges (:func:`segment_softmax`). With
``parity=True`` (default) every TFN path has ``l1 + l2 + l3`` even and the block is
E(3)-equivariant; the published SE(3)-Transformer keeps every path and is SE(3)-only
(``parity=False``).
"""

from __future__ import annotations

import math

from torch import Tensor, nn

from ..registry import register
from ..primitives import segment_softmax
from .linear import EquivariantLinear
from .tfn import (GRAPH_TYPES, GeometricGraphLayer, NormActivation, TFNEdgeKernel, graph_example,
                  layer_group, resize_degrees)

__all__ = ["SE3AttentionBlock"]


@register("se3_attention", kind="layer", group=layer_group, in_types=GRAPH_TYPES,
          out_types="node:uniform:2", example_inputs=graph_example,
          description="SE(3)-Transformer block: TFN keys/values, invariant multi-head attention")
class SE3AttentionBlock(GeometricGraphLayer):
    """Multi-head equivariant graph attention with skip connection and norm nonlinearity.

    Parameters (keyword-only)
    ----------
    lmax_in, lmax_out : int
        Degrees of input and output features (1, 2).
    in_channels, out_channels : int
        Channels (4, 8).
    channels : int or None
        Width of keys, queries and values (default ``out_channels``); divisible by ``heads``.
    heads : int
        Attention heads (2).
    edge_dim : int
        Extra edge scalars for the radial MLPs (1).
    radial_hidden : int
        Width of the radial MLP (32).
    parity : bool
        E(3) paths only (True) or all paths, SE(3) (False).
    skip : bool
        Add the input (through an equivariant linear map when its shape differs).
    activation : bool
        Apply :class:`~symformer.layers.tfn.NormActivation` at the end.
    """

    def __init__(self, *, lmax_in: int = 1, lmax_out: int = 2, in_channels: int = 4,
                 out_channels: int = 8, channels: int | None = None, heads: int = 2,
                 edge_dim: int = 1, radial_hidden: int = 32, parity: bool = True,
                 skip: bool = True, activation: bool = True):
        super().__init__()
        channels = out_channels if channels is None else channels
        if isinstance(heads, bool) or not isinstance(heads, int) or heads < 1:
            raise ValueError(f"heads: expected an int >= 1, got {heads!r}")
        if channels % heads:
            raise ValueError(f"channels: {channels} is not divisible by heads={heads}")
        self.lmax_in, self.lmax_out, self.in_channels = lmax_in, lmax_out, in_channels
        self.out_channels, self.channels, self.heads = out_channels, channels, heads
        self.edge_dim, self.parity = edge_dim, bool(parity)
        self.lmax_key = min(lmax_in, lmax_out)
        # Keys and values share one TFN product with 2 * channels (halves the CG work).
        self.kv = TFNEdgeKernel(lmax_in, lmax_out, in_channels, 2 * channels, edge_dim,
                                radial_hidden, parity)
        self.query = EquivariantLinear(lmax=self.lmax_key, in_channels=in_channels,
                                       out_channels=channels, bias=False)
        self.out = EquivariantLinear(lmax=lmax_out, in_channels=channels,
                                     out_channels=out_channels)
        self.skip = None
        if skip:
            same = lmax_in == lmax_out and in_channels == out_channels
            self.skip = nn.Identity() if same else EquivariantLinear(
                lmax=self.lmax_key, in_channels=in_channels, out_channels=out_channels,
                bias=False)
        self.activation = NormActivation(lmax_out, out_channels) if activation else None

    def propagate(self, x: Tensor, sh: Tensor, length: Tensor, edge_attr: Tensor | None,
                  edge_index: Tensor) -> Tensor:
        """As :meth:`forward` with precomputed :func:`~symformer.layers.tfn.edge_geometry`."""
        self.check_graph_inputs(x, sh, edge_attr)
        src, dst = edge_index
        n, E, C, H = x.shape[0], src.shape[0], self.channels, self.heads
        kv = self.kv(x, sh, length, edge_attr, src)                      # [E, K, 2C]
        kq_rows = (self.lmax_key + 1) ** 2
        k = kv[:, :kq_rows, :C]                                          # [E, Kq, C]
        v = kv[:, :, C:]                                                 # [E, K, C]
        q = self.query(resize_degrees(x, self.lmax_key))[dst]            # [E, Kq, C]
        logits = (k * q).view(E, kq_rows, H, C // H).sum((1, 3))         # [E, H]
        attn = segment_softmax(logits / math.sqrt(kq_rows * C // H), dst, n)  # [E, H]
        weighted = v.view(E, v.shape[1], H, C // H) * attn[:, None, :, None]  # [E, K, H, C/H]
        z = weighted.new_zeros(n, *weighted.shape[1:]).index_add(0, dst, weighted)
        z = self.out(z.flatten(-2))                                      # [N, K, C_out]
        if self.skip is not None:
            z = z + resize_degrees(self.skip(resize_degrees(x, self.lmax_key)), self.lmax_out)
        return z if self.activation is None else self.activation(z)
