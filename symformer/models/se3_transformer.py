"""SE(3)-Transformer (Fuchs et al. 2020) for the charged N-body benchmark.

The setup of the EGNN paper's comparison (Satorras et al. 2021, which trained the
SE(3)-Transformer with its authors' code, ``OurSE3Transformer``): fully connected graphs within
each system; node inputs ``[c_i, |v_i|]`` as degree 0 and ``v_i`` as degree 1; edge input
``c_i c_j`` next to the edge length in every radial network; ``n_layers`` attention blocks, each
followed by the norm nonlinearity, then a TFN convolution to one degree-1 output ``d_i``::

    x_i^0 = [c_i, |v_i|]   x_i^1 = [v_i, 0]                  (uniform layout [N, 4, 2])
    x <- SE3AttentionBlock(x)                                 (n_layers times, degrees <= L)
    pos_i + s * TFNConv(x)_i^1                                (s learnable, initially 0.01)

Documented choices against the published code: depthwise TFN kernels with channel mixing (see
:mod:`symformer.layers.tfn`), the ``c_i c_j`` edge input, skip connections in the attention
blocks (in the SE(3)-Transformer paper; commented out in the EGNN copy), and parity-consistent
paths by default (E(3); the published model keeps every path and is SE(3) only:
``parity=False``).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from symformer.layers.se3_attention import SE3AttentionBlock
from symformer.layers.tfn import TFNConv

from . import _nbody_io
from ..registry import register
from .tfn import NBodyGraphNet, check_int, nbody_group

__all__ = ["SE3Transformer"]


@register("se3_transformer", group=nbody_group, in_types=_nbody_io.NBODY_IN_TYPES,
          out_types="node:point", example_inputs=_nbody_io.example_inputs,
          description="SE(3)-Transformer (Fuchs et al. 2020) for charged N-body",
          tags=("nbody", "e3"))
class SE3Transformer(NBodyGraphNet):
    """Equivariant graph attention network predicting future positions of charged particles.

    Parameters (keyword-only)
    ----------
    channels : int
        Channels per degree of the hidden features (16).
    lmax : int
        Maximum degree of the hidden features (2).
    n_layers : int
        Attention blocks (4, as in the EGNN comparison).
    heads : int
        Attention heads; must divide ``channels`` (2).
    radial_hidden : int
        Width of the radial MLPs (32).
    parity : bool
        E(3) paths only (True) or every path, SE(3) only (False, as published).
    skip : bool
        Skip connections in the attention blocks.
    output_scale : float
        Initial value of the learnable scale of the predicted displacement (0.01).
    neighbors : int or None
        None (default): complete graphs within each system, as published; an int: each node's
        ``neighbors`` nearest nodes only (k-NN graphs, for large systems).
    radius : float or None
        None (default): no distance cutoff; a number: only nodes closer than ``radius`` exchange
        messages (radius graphs; with ``neighbors``, the nearest ones among them).
    """

    def __init__(self, *, channels: int = 16, lmax: int = 2, n_layers: int = 4, heads: int = 2,
                 radial_hidden: int = 32, parity: bool = True, skip: bool = True,
                 output_scale: float = 0.01, neighbors: int | None = None,
                 radius: float | None = None):
        super().__init__(channels=channels, lmax=lmax, n_layers=n_layers, min_layers=0,
                         parity=parity, neighbors=neighbors, radius=radius)
        check_int("heads", heads, 1)
        if channels % heads:
            raise ValueError(f"channels: {channels} is not divisible by heads={heads}")
        common = dict(edge_dim=1, radial_hidden=radial_hidden, parity=parity)
        blocks = []
        l_in, c_in = 1, 2
        for _ in range(n_layers):
            blocks.append(SE3AttentionBlock(lmax_in=l_in, lmax_out=lmax, in_channels=c_in,
                                            out_channels=channels, heads=heads, skip=skip,
                                            **common))
            l_in, c_in = lmax, channels
        self.blocks = nn.ModuleList(blocks)
        self.head = TFNConv(lmax_in=l_in, lmax_out=1, in_channels=c_in, out_channels=1,
                            channels=max(c_in, 2), **common)
        self.output_scale = nn.Parameter(torch.tensor(float(output_scale)))

    def trunk(self, x: Tensor, sh: Tensor, length: Tensor, edge_attr: Tensor,
              edge_index: Tensor) -> Tensor:
        """The attention blocks before the head."""
        for block in self.blocks:
            x = block.propagate(x, sh, length, edge_attr, edge_index)    # [N, (L+1)^2, C]
        return x
