"""Tensor field network (TFN) convolution on the uniform layout ``[N, (L+1)^2, C]``.

A TFN edge kernel couples the source features with the spherical harmonics of the edge vector
through Clebsch-Gordan paths ``(l1, l2, l3)`` (Thomas et al. 2018; the SE(3)-Transformer's
``GConvSE3``), with per-path, per-channel weights from a radial network::

    m_ij^{l3}[c] = sum_{l1, l2} w_{l1 l2 l3}(|r_ij|, e_ij)[c] * (x_j^{l1}[c] (x) Y^{l2}(r_ij))^{l3}

The product is fused over paths: the harmonics are contracted with one stacked CG tensor
(``Y @ T``, one matmul) and the result with the features (one batched matmul), so there is no
Python loop over paths or edges. Channels are mixed by equivariant linear maps before and after
(like NequIP's interaction block), which replaces the original's full ``C_out x C_in`` radial
matrices by a much cheaper depthwise product.

Parity: with ``parity=True`` only paths with ``l1 + l2 + l3`` even are kept and the layer is
E(3)-equivariant on natural-parity features. The original TFN / SE(3)-Transformer kernels keep
every path (``2 min(l1, l3) + 1`` of them per degree pair) and are SE(3)-equivariant only;
``parity=False`` reproduces that.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from symformer._cache import tensor_cache

from ..registry import register
from ..primitives import clebsch_gordan, sh_path_list, spherical_harmonics
from ._uniform import check_uniform, degree_index
from .linear import EquivariantLinear

__all__ = ["tfn_tables", "edge_geometry", "check_edge_attr", "resize_degrees", "RadialMLP", "TFNEdgeKernel",
           "TFNConv", "NormActivation", "layer_group", "graph_example", "GRAPH_TYPES",
           "GeometricGraphLayer"]


@tensor_cache
def tfn_tables(lmax_in: int, lmax_out: int, parity: bool, dtype: torch.dtype,
               device: torch.device) -> tuple:
    """Stacked CG table of the TFN kernel, cached per (degrees, parity, dtype, device).

    Returns
    -------
    paths : tuple of (l1, l2, l3), sorted by (l3, l1, l2), with ``l2 <= lmax_in + lmax_out``.
    T : Tensor, shape (B, A * Q)
        ``B = (lmax_in + lmax_out + 1)^2`` harmonic rows, ``A = (lmax_in + 1)^2`` input rows and
        ``Q = sum_p (2 l3_p + 1)`` path-output rows (path after path); entries
        ``sqrt(2 l3 + 1) CG / sqrt(n_l3)`` with ``n_l3`` the number of paths reaching ``l3``
        (unit 'component' norm per path, then per output degree).
    groups : tuple of (l3, first path, number of paths) — the paths of each output degree are
        consecutive.
    """
    lsh = lmax_in + lmax_out
    paths = tuple(sh_path_list(lmax_in, lsh, lmax_out, parity=parity))
    A, B = (lmax_in + 1) ** 2, (lsh + 1) ** 2
    Q = sum(2 * l3 + 1 for _, _, l3 in paths)
    count = {l3: sum(1 for *_, m in paths if m == l3) for _, _, l3 in paths}
    T = torch.zeros(B, A, Q, dtype=torch.float64)
    q = 0
    for l1, l2, l3 in paths:
        cg = clebsch_gordan(l1, l2, l3, torch.float64) * math.sqrt((2 * l3 + 1) / count[l3])
        T[l2 * l2:(l2 + 1) ** 2, l1 * l1:(l1 + 1) ** 2, q:q + 2 * l3 + 1] = cg.permute(1, 0, 2)
        q += 2 * l3 + 1
    groups, p = [], 0
    for l3 in range(lmax_out + 1):
        groups.append((l3, p, count.get(l3, 0)))
        p += count.get(l3, 0)
    return paths, T.reshape(B, A * Q).to(dtype=dtype, device=device), tuple(groups)


def check_edge_attr(edge_attr: Tensor | None, num_edges: int, edge_dim: int) -> None:
    """Raise ValueError unless ``edge_attr`` is ``(num_edges, edge_dim)`` (or unused)."""
    if edge_dim and (edge_attr is None or edge_attr.shape != (num_edges, edge_dim)):
        raise ValueError(f"edge_attr: expected shape ({num_edges}, {edge_dim}), got "
                         f"{None if edge_attr is None else tuple(edge_attr.shape)}")


def edge_geometry(pos: Tensor, edge_index: Tensor, lmax_sh: int) -> tuple[Tensor, Tensor]:
    """Spherical harmonics and lengths of the edge vectors ``pos[dst] - pos[src]``.

    Returns
    -------
    sh : Tensor, shape (E, (lmax_sh + 1)^2) — 'component' normalised; 0 for l > 0 on
        zero-length edges.
    length : Tensor, shape (E, 1) — finite gradient also at zero length.
    """
    src, dst = edge_index
    vec = pos[dst] - pos[src]                                          # [E, 3]
    r2 = (vec * vec).sum(-1, keepdim=True)
    length = torch.where(r2 > 0, r2, torch.ones_like(r2)).sqrt() * (r2 > 0)
    return spherical_harmonics(lmax_sh, vec), length


def resize_degrees(x: Tensor, lmax: int) -> Tensor:
    """Truncate or zero-pad ``x : [..., (L+1)^2, C]`` to ``[..., (lmax+1)^2, C]``."""
    rows, have = (lmax + 1) ** 2, x.shape[-2]
    if have >= rows:
        return x[..., :rows, :]
    return torch.cat([x, x.new_zeros(*x.shape[:-2], rows - have, x.shape[-1])], dim=-2)


class RadialMLP(nn.Sequential):
    """The SE(3)-Transformer's radial profile: ``Linear-LayerNorm-ReLU`` twice, then linear.

    ``[E, d_in] -> [E, d_out]``.
    """

    def __init__(self, d_in: int, d_out: int, hidden: int = 32):
        super().__init__(nn.Linear(d_in, hidden), nn.LayerNorm(hidden), nn.ReLU(),
                         nn.Linear(hidden, hidden), nn.LayerNorm(hidden), nn.ReLU(),
                         nn.Linear(hidden, d_out))


class TFNEdgeKernel(nn.Module):
    """Per-edge TFN messages (no aggregation): the SE(3)-Transformer's ``GConvSE3Partial``.

    ``x [N, (Lin+1)^2, C_in] -> m [E, (Lout+1)^2, C]``: channel mixing per node, depthwise
    CG product of ``x_src`` with ``Y(r_ij)`` weighted per path and channel by a radial MLP of
    ``[|r_ij|, e_ij]``.
    """

    def __init__(self, lmax_in: int, lmax_out: int, in_channels: int, channels: int,
                 edge_dim: int = 0, radial_hidden: int = 32, parity: bool = True):
        super().__init__()
        for name, v, low in (("lmax_in", lmax_in, 0), ("lmax_out", lmax_out, 0),
                             ("in_channels", in_channels, 1), ("channels", channels, 1),
                             ("edge_dim", edge_dim, 0), ("radial_hidden", radial_hidden, 1)):
            if isinstance(v, bool) or not isinstance(v, int) or v < low:
                raise ValueError(f"{name}: expected an int >= {low}, got {v!r}")
        self.lmax_in, self.lmax_out, self.channels = lmax_in, lmax_out, channels
        self.edge_dim, self.parity = edge_dim, bool(parity)
        self.n_paths = len(tfn_tables(lmax_in, lmax_out, self.parity, torch.float64,
                                      torch.device("cpu"))[0])
        self.pre = EquivariantLinear(lmax=lmax_in, in_channels=in_channels,
                                     out_channels=channels, bias=False)
        self.radial = RadialMLP(1 + edge_dim, self.n_paths * channels, radial_hidden)

    def forward(self, x: Tensor, sh: Tensor, length: Tensor, edge_attr: Tensor | None,
                src: Tensor) -> Tensor:
        """
        Parameters
        ----------
        x : Tensor, shape (N, (Lin+1)^2, C_in)
        sh : Tensor, shape (E, >= (Lin+Lout+1)^2) — from :func:`edge_geometry`.
        length : Tensor, shape (E, 1)
        edge_attr : Tensor, shape (E, edge_dim), or None when ``edge_dim == 0``.
        src : Tensor, shape (E,) — source node of each edge.

        Returns
        -------
        Tensor, shape (E, (Lout+1)^2, C)
        """
        _, T, groups = tfn_tables(self.lmax_in, self.lmax_out, self.parity, x.dtype, x.device)
        E, A, C = src.shape[0], (self.lmax_in + 1) ** 2, self.channels
        feats = length if self.edge_dim == 0 else torch.cat([length, edge_attr], dim=-1)
        w = self.radial(feats).view(E, C, self.n_paths)                  # [E, C, P]
        # Channel-major [E, C, rows]: one bmm over all paths, weights broadcast per path.
        xs = self.pre(x).transpose(1, 2).index_select(0, src)            # [E, C, A]
        m = (sh[:, :T.shape[0]] @ T).view(E, A, T.shape[1] // A)         # [E, A, Q]
        u = torch.bmm(xs, m)                                             # [E, C, Q]
        out, q = [], 0
        for l3, p, n in groups:
            d = 2 * l3 + 1
            if n == 0:
                out.append(u.new_zeros(E, C, d))
                continue
            block = u[:, :, q:q + n * d].view(E, C, n, d)                # [E, C, n, 2l3+1]
            out.append((block * w[:, :, p:p + n, None]).sum(2))
            q += n * d
        return torch.cat(out, dim=2).transpose(1, 2)                     # [E, K, C]


class NormActivation(nn.Module):
    """Norm nonlinearity of the SE(3)-Transformer (``GNormSE3``): per degree and channel,
    ``y = act(LayerNorm_c(|x|)) * x / |x|`` (norms over the ``2l + 1`` rows of a degree).

    Norms are O(3) invariant and the phase ``x / |x|`` transforms like ``x``, so the map is
    E(3)-equivariant. ``[..., (L+1)^2, C] -> [..., (L+1)^2, C]``.
    """

    def __init__(self, lmax: int, channels: int, eps: float = 1e-12):
        super().__init__()
        if channels < 2:
            raise ValueError(f"channels: a layer norm over channels needs >= 2, got {channels}")
        self.lmax, self.channels, self.eps = lmax, channels, eps
        self.weight = nn.Parameter(torch.ones(lmax + 1, channels))
        self.bias = nn.Parameter(torch.zeros(lmax + 1, channels))
        self.register_buffer("degree", degree_index(lmax), persistent=False)

    def forward(self, x: Tensor) -> Tensor:
        check_uniform("x", x, self.lmax, self.channels)
        sq = x * x
        n2 = sq.new_zeros(*x.shape[:-2], self.lmax + 1, self.channels).index_add(
            -2, self.degree, sq)                                         # [..., L+1, C]
        norm = n2.clamp_min(self.eps ** 2).sqrt()
        mu = norm.mean(-1, keepdim=True)
        var = (norm - mu).pow(2).mean(-1, keepdim=True)
        new = torch.relu((norm - mu) * torch.rsqrt(var + 1e-5) * self.weight + self.bias)
        return x * (new / norm).index_select(-2, self.degree)


def layer_group(module=None):
    """E(3) x S_6 for parity-consistent layers, SE(3) x S_6 with ``parity=False``."""
    from ..groups import E3, SE3, Symmetric
    parity = True if module is None else module.parity
    return (E3() if parity else SE3()) * Symmetric(6)


def graph_example(module, generator: torch.Generator, dtype: torch.dtype, n: int = 6) -> dict:
    """6 nodes, fully connected: ``x [6, (Lin+1)^2, C_in]``, ``pos [6, 3]``, ``edge_index
    [2, 30]`` and ``edge_attr [30, edge_dim]`` (or None)."""
    rows = (module.lmax_in + 1) ** 2
    x = torch.randn(n, rows, module.in_channels, generator=generator, dtype=dtype)
    pos = torch.randn(n, 3, generator=generator, dtype=dtype)
    i, j = torch.meshgrid(torch.arange(n), torch.arange(n), indexing="ij")
    keep = i != j
    edge_index = torch.stack([j[keep], i[keep]])
    attr = (torch.randn(edge_index.shape[1], module.edge_dim, generator=generator, dtype=dtype)
            if module.edge_dim else None)
    return {"x": x, "pos": pos, "edge_index": edge_index, "edge_attr": attr}


#: Input types of the registered graph layers (see :func:`graph_example`).
GRAPH_TYPES = {"x": "node:uniform:1", "pos": "node:point", "edge_index": "edge_index",
               "edge_attr": "scalar"}


class GeometricGraphLayer(nn.Module):
    """Base of the graph layers on ``(x, pos, edge_index, edge_attr)``: :meth:`forward` computes
    the edge harmonics and lengths and hands them to the subclass's ``propagate``, which a model
    calls directly to share one :func:`edge_geometry` across its layers.

    Subclasses set ``lmax_in``, ``lmax_out``, ``in_channels`` and ``edge_dim`` and define
    ``propagate(x, sh, length, edge_attr, edge_index)``.
    """

    def forward(self, x: Tensor, pos: Tensor, edge_index: Tensor,
                edge_attr: Tensor | None = None) -> Tensor:
        """x [N, (Lin+1)^2, C_in], pos [N, 3], edge_index [2, E] (source, target),
        edge_attr [E, edge_dim] -> [N, (Lout+1)^2, C_out]."""
        sh, length = edge_geometry(pos, edge_index, self.lmax_in + self.lmax_out)
        return self.propagate(x, sh, length, edge_attr, edge_index)

    def check_graph_inputs(self, x: Tensor, sh: Tensor, edge_attr: Tensor | None) -> None:
        """Raise ValueError naming ``x`` or ``edge_attr`` unless they fit the layer and graph."""
        check_uniform("x", x, self.lmax_in, self.in_channels)
        check_edge_attr(edge_attr, sh.shape[0], self.edge_dim)


@register("tfn_conv", kind="layer", group=layer_group, in_types=GRAPH_TYPES,
          out_types="node:uniform:2", example_inputs=graph_example,
          description="TFN convolution: radial MLP x spherical harmonics x CG, mean over edges")
class TFNConv(GeometricGraphLayer):
    """TFN graph convolution with self-interaction (the SE(3)-Transformer's ``GConvSE3``).

    ``y_i = W_out mean_j m_ij + W_self x_i`` with ``m_ij`` from :class:`TFNEdgeKernel`;
    ``W_self`` acts on the degrees shared by input and output (others padded with zeros).

    Parameters (keyword-only)
    ----------
    lmax_in, lmax_out : int
        Degrees of input and output features (1, 2).
    in_channels, out_channels : int
        Channels (4, 8).
    channels : int or None
        Width of the depthwise product (default ``max(in_channels, out_channels)``).
    edge_dim : int
        Extra edge scalars fed to the radial MLP with the edge length (1).
    radial_hidden : int
        Width of the radial MLP (32).
    parity : bool
        Keep only ``l1 + l2 + l3`` even paths (E(3)); False keeps all (SE(3), as published).
    self_interaction : bool
        Add ``W_self x_i``.
    aggregate : {'mean', 'sum'}
        Over incoming edges; the SE(3)-Transformer code uses the mean.
    """

    def __init__(self, *, lmax_in: int = 1, lmax_out: int = 2, in_channels: int = 4,
                 out_channels: int = 8, channels: int | None = None, edge_dim: int = 1,
                 radial_hidden: int = 32, parity: bool = True, self_interaction: bool = True,
                 aggregate: str = "mean"):
        super().__init__()
        if aggregate not in ("mean", "sum"):
            raise ValueError(f"aggregate: expected 'mean' or 'sum', got {aggregate!r}")
        channels = max(in_channels, out_channels) if channels is None else channels
        self.kernel = TFNEdgeKernel(lmax_in, lmax_out, in_channels, channels, edge_dim,
                                    radial_hidden, parity)
        self.lmax_in, self.lmax_out, self.in_channels = lmax_in, lmax_out, in_channels
        self.out_channels, self.edge_dim, self.parity = out_channels, edge_dim, bool(parity)
        self.aggregate = aggregate
        self.post = EquivariantLinear(lmax=lmax_out, in_channels=channels,
                                      out_channels=out_channels)
        self.self_linear = (EquivariantLinear(lmax=min(lmax_in, lmax_out),
                                              in_channels=in_channels, out_channels=out_channels,
                                              bias=False) if self_interaction else None)

    def propagate(self, x: Tensor, sh: Tensor, length: Tensor, edge_attr: Tensor | None,
                  edge_index: Tensor) -> Tensor:
        """As :meth:`forward` with precomputed :func:`edge_geometry` (shared across layers)."""
        self.check_graph_inputs(x, sh, edge_attr)
        src, dst = edge_index
        n = x.shape[0]
        msg = self.kernel(x, sh, length, edge_attr, src)                 # [E, K, C]
        agg = msg.new_zeros(n, *msg.shape[1:]).index_add(0, dst, msg)    # [N, K, C]
        if self.aggregate == "mean":
            # index_add, not bincount, whose output size needs a read from the device
            deg = x.new_zeros(n).index_add_(0, dst, x.new_ones(dst.shape[0])).clamp(min=1)
            agg = agg / deg[:, None, None]
        out = self.post(agg)
        if self.self_linear is not None:
            out = out + resize_degrees(self.self_linear(
                resize_degrees(x, min(self.lmax_in, self.lmax_out))), self.lmax_out)
        return out
