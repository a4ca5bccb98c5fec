"""A plain CNN classifier: the backbone of the Equivariant Transformer Network and the
baseline it is compared with::

    x  <- AvgPool_d(x)                      (optional input downsampling by d)
    x  <- MaxPool2(ReLU(BN(Conv3x3(x))))   (one block per width; pooling while the side is
                                            even and above 7)
    out = W_head Dropout(mean_{x} x)        (B, num_classes)

No symmetry is built in; it is registered with the trivial group C_1 (nothing to check).
"""

from __future__ import annotations

from torch import Tensor, nn

from symformer.groups import Cyclic

from ._image_common import check_input, register_image

__all__ = ["CNN"]


@register_image("cnn", group=lambda: Cyclic(1),
                description="Plain CNN classifier (baseline; no built-in symmetry)")
class CNN(nn.Module):
    """CNN classifier ``(B, C, S, S)`` in [0, 1] -> logits ``(B, num_classes)``.

    Parameters
    ----------
    image_size : int
        Square input side.
    channels, depth : int
        Width and number of conv blocks (all blocks equally wide).
    dropout : float
        Dropout before the head.
    widths : sequence of int, optional
        Width of each conv block; overrides ``channels`` and ``depth``.
    downsample : int
        Average-pool the input by this factor first (it must divide ``image_size``); a
        cheap way to run the same CNN on large, smooth canvases.
    """

    def __init__(self, *, image_size: int = 28, channels: int = 16, depth: int = 3,
                 dropout: float = 0.0, num_classes: int = 10, in_channels: int = 1,
                 widths: list[int] | tuple[int, ...] | None = None, downsample: int = 1):
        super().__init__()
        if widths is None:
            widths = [channels] * depth
        if isinstance(widths, (str, int)) or len(widths) == 0 or any(
                isinstance(w, bool) or not isinstance(w, int) or w < 1 for w in widths):
            raise ValueError(f"widths must be a non-empty sequence of positive ints, got "
                             f"{widths!r}")
        if (isinstance(downsample, bool) or not isinstance(downsample, int) or downsample < 1
                or image_size % downsample):
            raise ValueError(f"downsample must be a positive int dividing image_size "
                             f"{image_size}, got {downsample!r}")
        self.image_size, self.in_channels = image_size, in_channels
        layers = [nn.AvgPool2d(downsample)] if downsample > 1 else []
        side, c_in = image_size // downsample, in_channels
        for w in widths:
            layers += [nn.Conv2d(c_in, w, 3, padding=1), nn.BatchNorm2d(w), nn.ReLU()]
            if side % 2 == 0 and side > 7:
                layers.append(nn.MaxPool2d(2))
                side //= 2
            c_in = w
        self.features = nn.Sequential(*layers)
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(c_in, num_classes)

    def forward(self, image: Tensor) -> Tensor:
        """
        Parameters
        ----------
        image : Tensor, shape (B, in_channels, image_size, image_size), values in [0, 1]

        Returns
        -------
        Tensor, shape (B, num_classes): logits
        """
        check_input(self, image)
        return self.head(self.dropout(self.features(image).mean(dim=(-2, -1))))
