"""p4m CNN: a group-convolutional classifier exactly invariant to the octic group D_4 (quarter
turns and mirror images), after "Rotation Equivariant CNNs for Digital Pathology" (Veeling et
al. 2018)::

    f   = ReLU(BN(P4MLift(image)))                       (B, c, 8, S, S)
    f  <- MaxPool2(ReLU(BN(P4MConv(f))))  (depth - 1 times; pooling while the side is even)
    out = W_head mean_{g, x} f                           (B, num_classes), D_4-invariant

Batch norm statistics are shared over the group axis (BatchNorm3d), so every layer commutes
with the group action; 2 x 2 max pooling is exact on even sides.
"""

from __future__ import annotations

from torch import Tensor, nn

from symformer.groups import Octic
from symformer.layers.image.group_conv import P4MConv, P4MLift, p4m_pool

from ._image_common import check_input, register_image

__all__ = ["P4MCNN"]


@register_image("p4m_cnn", group=lambda: Octic(),
                description="p4m group-convolutional CNN classifier (D_4-invariant)")
class P4MCNN(nn.Module):
    """D_4-invariant CNN classifier ``(B, C, S, S)`` in [0, 1] -> logits ``(B, num_classes)``.

    Parameters
    ----------
    image_size : int
        Square input side.
    channels : int
        Feature channels per group element (the layer width is ``8 * channels``).
    depth : int
        Number of group-convolution layers including the lifting layer.
    """

    def __init__(self, *, image_size: int = 28, channels: int = 8, depth: int = 3,
                 kernel_size: int = 3, num_classes: int = 10, in_channels: int = 1):
        super().__init__()
        self.image_size, self.in_channels = image_size, in_channels
        self.lift = P4MLift(in_channels, channels, kernel_size)
        self.convs = nn.ModuleList(P4MConv(channels, channels, kernel_size)
                                   for _ in range(depth - 1))
        self.norms = nn.ModuleList(nn.BatchNorm3d(channels) for _ in range(depth))
        self.head = nn.Linear(channels, num_classes)
        self.act, self.pool = nn.ReLU(), nn.MaxPool3d((1, 2, 2))

    def forward(self, image: Tensor) -> Tensor:
        """
        Parameters
        ----------
        image : Tensor, shape (B, in_channels, image_size, image_size), values in [0, 1]

        Returns
        -------
        Tensor, shape (B, num_classes): logits, invariant under D_4
        """
        check_input(self, image)
        f = self.act(self.norms[0](self.lift(image)))                  # (B, c, 8, S, S)
        for conv, norm in zip(self.convs, self.norms[1:]):
            f = self.act(norm(conv(f)))
            if f.shape[-1] % 2 == 0:
                f = self.pool(f)
        return self.head(p4m_pool(f))
