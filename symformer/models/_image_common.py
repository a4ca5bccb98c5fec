"""Shared pieces of the image classifiers (cnn, vit, polyphase_vit, octic_vit, p4m_cnn, etn).

Every image classifier takes one square image and returns class logits::

    image : Tensor, shape (B, in_channels, image_size, image_size), values in [0, 1]   "image"
    out   : Tensor, shape (B, num_classes)                                             "scalar"

and keeps ``image_size`` and ``in_channels`` as attributes, which :func:`example_image` and
:func:`check_input` read.
"""

from __future__ import annotations

from typing import Callable

import torch
from torch import Tensor, nn

from symformer.layers.image._checks import check_image

from ..registry import register

__all__ = ["IMAGE_IN_TYPES", "example_image", "register_image", "check_input", "patch_grid",
           "transformer_trunk"]

IMAGE_IN_TYPES = {"image": "image"}


def example_image(module: nn.Module, generator: torch.Generator, dtype: torch.dtype) -> dict:
    """Two random images ``{"image": (2, C, S, S)}`` in [0, 1] at the module's size."""
    size, channels = module.image_size, getattr(module, "in_channels", 1)
    return {"image": torch.rand(2, channels, size, size, generator=generator, dtype=dtype)}


def register_image(name: str, *, group: Callable, description: str) -> Callable:
    """Class decorator registering an image classifier: input ``image``, scalar logits out,
    :func:`example_image` as example input, tag ``"image"``."""
    return register(name, group=group, in_types=IMAGE_IN_TYPES, out_types="scalar",
                    example_inputs=example_image, tags=("image",), description=description)


def check_input(module: nn.Module, image: Tensor) -> None:
    """Raise ``TypeError``/``ValueError`` unless ``image`` fits ``module``'s ``in_channels`` and
    ``image_size`` (see :func:`symformer.layers.image._checks.check_image`)."""
    check_image(image, channels=module.in_channels, size=module.image_size)


def patch_grid(image_size: int, patch: int) -> int:
    """Side ``g = image_size // patch`` of the token grid of a patch embedding (``g * g``
    tokens); ``ValueError`` unless ``patch`` divides ``image_size``."""
    if image_size % patch:
        raise ValueError(f"image_size={image_size} must be divisible by patch={patch}")
    return image_size // patch


def transformer_trunk(block: Callable[[], nn.Module], depth: int, width: int,
                      num_classes: int) -> tuple[nn.ModuleList, nn.LayerNorm, nn.Linear]:
    """``depth`` blocks made by ``block()``, then the LayerNorm and linear head that turn a
    pooled ``(B, width)`` feature into ``(B, num_classes)`` logits; built in this order so that
    seeded initialisation does not depend on which model asks."""
    blocks = nn.ModuleList(block() for _ in range(depth))
    return blocks, nn.LayerNorm(width), nn.Linear(width, num_classes)
