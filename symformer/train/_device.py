"""The one device a plain-PyTorch trainer (molecules, images) runs on."""

from __future__ import annotations

import torch

__all__ = ["resolve_device", "device_name"]


def resolve_device(name: str) -> torch.device:
    """``"cpu"``, ``"cuda"`` (``"gpu"``), ``"cuda:N"`` or ``"auto"`` (a GPU where there is one)."""
    text = str(name).lower()
    if text == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if text == "gpu":
        text = "cuda"
    try:
        device = torch.device(text)
    except RuntimeError as err:
        raise ValueError(f"device: expected cpu, cuda, cuda:N, gpu or auto, got {name!r}") from err
    if device.type not in ("cpu", "cuda"):
        raise ValueError(f"device: expected cpu, cuda, cuda:N, gpu or auto, got {name!r}")
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device: {name!r} asked for, but torch sees no CUDA device here")
    return device


def device_name(device: torch.device) -> str:
    """What a run's metrics record: the GPU's name, or the device type."""
    return torch.cuda.get_device_name(device) if device.type == "cuda" else device.type
