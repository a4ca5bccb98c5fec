"""Equivariant Transformer Network: a sequence of ET layers that undo rotation, scale, shear,
hyperbolic and perspective poses, in front of a CNN classifier (Tai, Bailis & Valiant, 2019)::

    G   = I;  for each kind: G <- G T_{t(I(G p))}      (ET layers, canonical coordinates)
    x   = I(G p) on the output pixel grid             (B, C, S, S), one bilinear resampling
    out = CNN(x)                                       (B, num_classes)

Continuous transformations are undone only approximately (interpolation, grid resolution,
finite canvas). When the first layer is ``rotation`` with a grid that is a multiple of 4, a
quarter turn of the input shifts the polar samples by exactly a quarter of the circle, so the
whole network is exactly invariant to the cyclic group C_4 (it is registered with it); the error
under continuous rotations is measured by ``benchmarks/images_equivariance.py``.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from symformer.groups import Cyclic
from symformer.layers.image.etn import ETLayer
from symformer.primitives.canonical_coords import pixel_grid, warp_sample

from ._image_common import check_input, register_image
from .cnn import CNN

__all__ = ["ETN"]


def _group(module: nn.Module):
    exact = module.transforms[:1] == ("rotation",) and module.grid % 4 == 0
    return Cyclic(4) if exact else Cyclic(1)


@register_image("etn", group=_group,
                description="Equivariant Transformer Network + CNN classifier")
class ETN(nn.Module):
    """ET layers followed by :class:`symformer.models.cnn.CNN`.

    Parameters
    ----------
    image_size : int
        Square input side.
    transforms : sequence of str
        ET layer kinds in order (see :data:`symformer.primitives.canonical_coords.KINDS`).
    grid, pose_channels, pose_depth : int
        Canonical grid size and pose-CNN width and depth of every ET layer.
    channels, depth, dropout, widths, downsample :
        The CNN classifier's configuration (see :class:`symformer.models.cnn.CNN`).
    """

    def __init__(self, *, image_size: int = 28, transforms: tuple[str, ...] | list[str] = (
                 "rotation", "scale"), grid: int = 16, pose_channels: int = 8,
                 pose_depth: int = 2, channels: int = 16, depth: int = 3, dropout: float = 0.0,
                 num_classes: int = 10, in_channels: int = 1,
                 widths: list[int] | tuple[int, ...] | None = None, downsample: int = 1):
        super().__init__()
        if isinstance(transforms, str):
            raise TypeError("transforms must be a sequence of kinds, not a string")
        self.image_size, self.in_channels, self.grid = image_size, in_channels, grid
        self.transforms = tuple(transforms)
        self.layers = nn.ModuleList(ETLayer(k, grid=grid, channels=pose_channels,
                                            depth=pose_depth, in_channels=in_channels)
                                    for k in self.transforms)
        self.cnn = CNN(image_size=image_size, channels=channels, depth=depth, dropout=dropout,
                       num_classes=num_classes, in_channels=in_channels, widths=widths,
                       downsample=downsample)

    def canonicalize(self, image: Tensor) -> tuple[Tensor, Tensor]:
        """The image with its estimated pose undone, and the homography used.

        Returns
        -------
        canonical : Tensor, shape (B, C, S, S)
        G : Tensor, shape (B, 3, 3), float64
        """
        check_input(self, image)
        B = image.shape[0]
        G = torch.eye(3, dtype=torch.float64, device=image.device).expand(B, 3, 3)
        for layer in self.layers:
            G = layer(image, G)
        pts = pixel_grid(self.image_size, dtype=torch.float64, device=image.device)
        return warp_sample(image, G, pts), G

    def forward(self, image: Tensor) -> Tensor:
        """
        Parameters
        ----------
        image : Tensor, shape (B, in_channels, image_size, image_size), values in [0, 1]

        Returns
        -------
        Tensor, shape (B, num_classes): logits
        """
        return self.cnn(self.canonicalize(image)[0])
