"""Tensor field network (Thomas et al. 2018) for the charged N-body benchmark.

The setup of the EGNN paper's comparison (Satorras et al. 2021, which trained TFN with the
SE(3)-Transformer code, ``OursTFN``): fully connected graphs within each system; node inputs
``[c_i, |v_i|]`` as degree 0 and ``v_i`` as degree 1; edge input ``c_i c_j`` next to the edge
length in every radial network; ``n_layers - 1`` TFN convolutions with self-interaction, each
followed by the norm nonlinearity, and a last convolution to one degree-1 output ``d_i``::

    x_i^0 = [c_i, |v_i|]   x_i^1 = [v_i, 0]                  (uniform layout [N, 4, 2])
    x <- NormActivation(TFNConv(x))                           (n_layers - 1 times, degrees <= L)
    pos_i + s * TFNConv(x)_i^1                                (s learnable, initially 0.01)

Differences from the published code, all documented choices: depthwise per-path weights with
channel mixing around them (see :mod:`symformer.layers.tfn`), the ``c_i c_j`` edge input (the
EGNN code gave the charges only as node features), the learnable output scale (the EGNN code
used it for the SE(3)-Transformer), and parity-consistent paths by default (E(3); the published
model keeps every path and is SE(3) only: ``parity=False``).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from symformer.groups import E3, SE3, Symmetric
from symformer.layers.tfn import NormActivation, TFNConv, edge_geometry

from . import _nbody_io
from ..registry import register

__all__ = ["TFN", "NBodyGraphNet", "nbody_graph_inputs", "nbody_group", "check_int"]


def nbody_group(module=None):
    """E(3) x S_15 (``parity=True``) or SE(3) x S_15 (``parity=False``) on the example inputs."""
    parity = True if module is None else module.parity
    return (E3() if parity else SE3()) * Symmetric(_nbody_io.EXAMPLE_NODES)


def check_int(name: str, value, low: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ValueError(f"{name}: expected an int >= {low}, got {value!r}")


def nbody_graph_inputs(pos: Tensor, vel: Tensor, charges: Tensor, batch: Tensor,
                       lmax_sh: int, neighbors: int | None = None,
                       radius: float | None = None) -> tuple:
    """Checked inputs as graph tensors.

    Returns
    -------
    x : Tensor, shape (N, 4, 2) — degree 0 ``[c, |v|]``, degree 1 ``[v, 0]``.
    sh : Tensor, shape (E, (lmax_sh + 1)^2); length : Tensor, shape (E, 1)
    edge_attr : Tensor, shape (E, 1) — ``c_i c_j``.
    edge_index : Tensor, shape (2, E) — complete within each system, or its k-NN graph with
    ``neighbors`` and/or radius graph with ``radius``.
    """
    _nbody_io.check_nbody_inputs(pos, vel, charges, batch)
    edge_index = _nbody_io.system_edges(pos, batch, neighbors, radius)   # [2, E]
    src, dst = edge_index
    speed = vel.norm(dim=-1)
    x = torch.stack([torch.stack([charges, speed], -1),
                     *(torch.stack([vel[:, k], torch.zeros_like(speed)], -1) for k in range(3))],
                    dim=1)                                               # [N, 4, 2]
    sh, length = edge_geometry(pos, edge_index, lmax_sh)
    edge_attr = (charges[src] * charges[dst])[:, None]                   # [E, 1]
    return x, sh, length, edge_attr, edge_index


class NBodyGraphNet(nn.Module):
    """Shared frame of the n-body TFN and SE(3)-Transformer: checked hyper-parameters, graph
    inputs from :func:`nbody_graph_inputs`, the subclass's ``trunk``, and a TFN head whose
    degree-1 output, scaled by ``output_scale``, displaces the positions.

    Subclasses build ``head`` (a :class:`~symformer.layers.tfn.TFNConv` to one degree-1 channel)
    and ``output_scale`` and define ``trunk(x, sh, length, edge_attr, edge_index) -> x``.
    """

    def __init__(self, *, channels: int, lmax: int, n_layers: int, min_layers: int,
                 parity: bool, neighbors: int | None, radius: float | None = None):
        super().__init__()
        self.neighbors, self.radius = _nbody_io.graph_options(neighbors, radius)
        check_int("channels", channels, 2)
        check_int("lmax", lmax, 1)
        check_int("n_layers", n_layers, min_layers)
        self.lmax, self.parity = lmax, bool(parity)

    def forward(self, pos: Tensor, vel: Tensor, charges: Tensor, batch: Tensor) -> Tensor:
        """pos, vel [N, 3], charges [N], batch [N] (any order) -> predicted positions [N, 3]."""
        x, sh, length, edge_attr, edge_index = nbody_graph_inputs(pos, vel, charges, batch,
                                                                  2 * self.lmax, self.neighbors,
                                                                  self.radius)
        x = self.trunk(x, sh, length, edge_attr, edge_index)              # [N, (L+1)^2, C]
        out = self.head.propagate(x, sh, length, edge_attr, edge_index)  # [N, 4, 1]
        return pos + self.output_scale * out[:, 1:4, 0]


@register("tfn", group=nbody_group, in_types=_nbody_io.NBODY_IN_TYPES, out_types="node:point",
          example_inputs=_nbody_io.example_inputs,
          description="Tensor field network (Thomas et al. 2018) for charged N-body",
          tags=("nbody", "e3"))
class TFN(NBodyGraphNet):
    """Tensor field network predicting future positions of charged particles.

    Parameters (keyword-only)
    ----------
    channels : int
        Channels per degree of the hidden features (16).
    lmax : int
        Maximum degree of the hidden features (2).
    n_layers : int
        Number of TFN convolutions, the output one included (4, as in the EGNN comparison).
    radial_hidden : int
        Width of the radial MLPs (32).
    parity : bool
        E(3) paths only (True) or every path, SE(3) only (False, as published).
    aggregate : {'mean', 'sum'}
        Over the incoming edges ('mean', as the published code).
    output_scale : float
        Initial value of the learnable scale of the predicted displacement (0.01).
    neighbors : int or None
        None (default): complete graphs within each system, as published; an int: each node's
        ``neighbors`` nearest nodes only (k-NN graphs, for large systems).
    radius : float or None
        None (default): no distance cutoff; a number: only nodes closer than ``radius`` exchange
        messages (radius graphs; with ``neighbors``, the nearest ones among them).
    """

    def __init__(self, *, channels: int = 16, lmax: int = 2, n_layers: int = 4,
                 radial_hidden: int = 32, parity: bool = True, aggregate: str = "mean",
                 output_scale: float = 0.01, neighbors: int | None = None,
                 radius: float | None = None):
        super().__init__(channels=channels, lmax=lmax, n_layers=n_layers, min_layers=1,
                         parity=parity, neighbors=neighbors, radius=radius)
        common = dict(edge_dim=1, radial_hidden=radial_hidden, parity=parity,
                      aggregate=aggregate)
        layers, acts = [], []
        l_in, c_in = 1, 2
        for _ in range(n_layers - 1):
            layers.append(TFNConv(lmax_in=l_in, lmax_out=lmax, in_channels=c_in,
                                  out_channels=channels, **common))
            acts.append(NormActivation(lmax, channels))
            l_in, c_in = lmax, channels
        self.layers, self.activations = nn.ModuleList(layers), nn.ModuleList(acts)
        self.head = TFNConv(lmax_in=l_in, lmax_out=1, in_channels=c_in, out_channels=1,
                            channels=channels, **common)
        self.output_scale = nn.Parameter(torch.tensor(float(output_scale)))

    def trunk(self, x: Tensor, sh: Tensor, length: Tensor, edge_attr: Tensor,
              edge_index: Tensor) -> Tensor:
        """The convolutions before the head, each followed by the norm nonlinearity."""
        for conv, act in zip(self.layers, self.activations):
            x = act(conv.propagate(x, sh, length, edge_attr, edge_index))  # [N, (L+1)^2, C]
        return x
