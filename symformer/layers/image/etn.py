"""Equivariant Transformer (ET) layers (Tai, Bailis & Valiant, 2019).

An ET layer for a one-parameter transformation group ``T_t`` samples the image on a regular grid
of the group's canonical coordinates (:mod:`symformer.primitives.canonical_coords`), where
``T_t`` is a shift by ``t`` along ``u``; a CNN that commutes with shifts along ``u`` (circular
padding on periodic axes, stride 1 along ``u``) scores every ``u`` row, and the softmax
expectation of ``u`` (the circular mean for periodic ``u``) is the pose estimate ``t``. Resampling
the image at ``T_t p`` undoes the pose. Layers compose: each one refines a running homography
``G`` (the current image is ``I(G p)``), so the input is interpolated only once per layer and
once at the end.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from symformer.primitives.canonical_coords import (KINDS, PERIODIC, canonical_grid,
                                                    transform_matrix, warp_sample)

__all__ = ["PoseCNN", "ETLayer"]


class PoseCNN(nn.Module):
    """Scores ``(B, C, U, V) -> (B, U)``: 3 x 3 convolutions, stride 2 only along ``v``,
    circular padding along ``u`` when ``periodic``; mean over ``v``."""

    def __init__(self, in_channels: int, channels: int, depth: int, periodic: bool):
        super().__init__()
        self.periodic = periodic
        self.convs = nn.ModuleList(
            nn.Conv2d(in_channels if i == 0 else channels, channels, 3,
                      stride=(1, 2 if i > 0 else 1)) for i in range(depth))
        self.out = nn.Conv2d(channels, 1, 1)

    def forward(self, x: Tensor) -> Tensor:
        """``x`` : Tensor, shape (B, C, U, V) -> Tensor, shape (B, U)."""
        for conv in self.convs:
            x = F.pad(x, (1, 1, 0, 0))                                  # zeros along v
            x = F.pad(x, (0, 0, 1, 1), mode="circular" if self.periodic else "constant")
            x = F.relu(conv(x))
        return self.out(x).mean(dim=-1)[:, 0]


class ETLayer(nn.Module):
    """One Equivariant Transformer layer for the transformation ``kind``.

    Parameters
    ----------
    kind : str
        One of :data:`symformer.primitives.canonical_coords.KINDS`.
    grid : int
        Canonical grid points along u and v (a multiple of 4 for ``rotation`` keeps quarter
        turns exact).
    channels, depth : int
        Width and depth of the pose CNN.
    """

    def __init__(self, kind: str, *, grid: int = 32, channels: int = 16, depth: int = 3,
                 in_channels: int = 1):
        super().__init__()
        if kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
        if isinstance(grid, bool) or not isinstance(grid, int) or grid < 4:
            raise ValueError(f"grid must be an int >= 4, got {grid!r}")
        self.kind, self.periodic, self.grid = kind, PERIODIC[kind], grid
        self.pose = PoseCNN(in_channels, channels, depth, self.periodic)

    def estimate(self, image: Tensor, G: Tensor) -> Tensor:
        """Pose ``t`` (B,) of the current image ``I(G p)``.

        Parameters
        ----------
        image : Tensor, shape (B, C, H, W)
            The original image.
        G : Tensor, shape (B, 3, 3)
            Running homography.

        Returns
        -------
        Tensor, shape (B,), float64
        """
        # Geometry stays in float64 so that quarter turns map float32 sample positions onto
        # the same rounded values (exactness under C_4 in float32 as well).
        # (not buffers: module.to(float32) would round them)
        pts, u = canonical_grid(self.kind, (self.grid, self.grid), dtype=torch.float64,
                                device=image.device)                  # (U, V, 2), (U,)
        samples = warp_sample(image, G.double(), pts)                     # (B, C, U, V)
        p = torch.softmax(self.pose(samples), dim=-1).double()            # (B, U)
        if self.periodic:
            return torch.atan2(p @ torch.sin(u), p @ torch.cos(u))
        return p @ u - 0.5 * (u[0] + u[-1])

    def forward(self, image: Tensor, G: Tensor) -> Tensor:
        """Refined homography ``G T_t`` (B, 3, 3): the current image resampled at ``T_t p``
        has the estimated pose undone."""
        return G.double() @ transform_matrix(self.kind, self.estimate(image, G))
