"""Input checks shared by the image layers and models."""

from __future__ import annotations

from torch import Tensor

__all__ = ["check_image"]


def check_image(image: Tensor, *, channels: int | None = None, size: int | None = None,
                name: str = "image") -> Tensor:
    """Validate a float image batch ``(B, C, H, W)``: dtype, rank, channels, optional square
    side, finiteness. Returns it unchanged."""
    if not isinstance(image, Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(image).__name__}")
    if not image.is_floating_point():
        raise TypeError(f"{name} must be a floating-point tensor (values in [0, 1]), got "
                        f"{image.dtype}")
    if image.ndim != 4 or (channels is not None and image.shape[1] != channels):
        want = f"(B, {channels}, H, W)" if channels is not None else "(B, C, H, W)"
        raise ValueError(f"{name} must have shape {want}, got {tuple(image.shape)}")
    if size is not None and tuple(image.shape[-2:]) != (size, size):
        raise ValueError(f"{name} must be {size}x{size}, got {image.shape[-2]}x{image.shape[-1]}")
    if not image.isfinite().all():
        raise ValueError(f"{name} contains NaN or inf values")
    return image
