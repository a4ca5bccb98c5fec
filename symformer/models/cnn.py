"""A plain CNN classifier: the backbone of the Equivariant Transformer Network and the
baseline it is compared with::

    x  <- MaxPool2(ReLU(BN(Conv3x3(x))))   (depth blocks; pooling while the side is even and
                                            above 7)
    out = W_head Dropout(mean_{x} x)        (B, num_classes)

No symmetry is built in; it is registered with the trivial group C_1 (nothing to check).
"""

from __future__ import annotations

from torch import Tensor, nn

from symformer.groups import Cyclic
from symformer.layers.image._checks import check_image

from ..registry import register
from .vit import example_image

__all__ = ["CNN"]


@register("cnn", group=lambda: Cyclic(1), in_types={"image": "image"}, out_types="scalar",
          example_inputs=example_image, tags=("image",),
          description="Plain CNN classifier (baseline; no built-in symmetry)")
class CNN(nn.Module):
    """CNN classifier ``(B, C, S, S)`` in [0, 1] -> logits ``(B, num_classes)``.

    Parameters
    ----------
    image_size : int
        Square input side.
    channels, depth : int
        Width and number of conv blocks.
    dropout : float
        Dropout before the head.
    """

    def __init__(self, *, image_size: int = 28, channels: int = 16, depth: int = 3,
                 dropout: float = 0.0, num_classes: int = 10, in_channels: int = 1):
        super().__init__()
        self.image_size, self.in_channels = image_size, in_channels
        layers, side, c_in = [], image_size, in_channels
        for _ in range(depth):
            layers += [nn.Conv2d(c_in, channels, 3, padding=1), nn.BatchNorm2d(channels),
                       nn.ReLU()]
            if side % 2 == 0 and side > 7:
                layers.append(nn.MaxPool2d(2))
                side //= 2
            c_in = channels
        self.features = nn.Sequential(*layers)
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(channels, num_classes)

    def forward(self, image: Tensor) -> Tensor:
        """
        Parameters
        ----------
        image : Tensor, shape (B, in_channels, image_size, image_size), values in [0, 1]

        Returns
        -------
        Tensor, shape (B, num_classes): logits
        """
        check_image(image, channels=self.in_channels, size=self.image_size)
        return self.head(self.dropout(self.features(image).mean(dim=(-2, -1))))
