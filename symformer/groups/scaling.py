"""The scaling group R+ (dilations).

Element: ``scale`` (n,) positive floats. Actions:

===================  ===============================================================
``point``            ``[..., d]``: ``s * x`` (dilation about the origin)
``vector``           ``[..., d]``: ``s * x`` (displacements carry units of length)
``image``            ``[..., H, W]`` -> ``[..., sH, sW]``: nearest-neighbour upsampling
                     (``repeat_interleave``); exact, and defined only for integer ``s``
``scalar``,          unchanged (invariant)
``edge_index``
===================  ===============================================================

Other types (pseudovectors, irreps features, multivectors) raise ``ValueError``: their weight
under scaling depends on the physical quantity and is not declared by the type.

Sampling: by default log-normal, ``s = exp(log_std * N(0, 1))`` (``log_std = 0.5``). With
``integer=True`` scales are uniform on ``{2, ..., max_scale}`` for ``kind="scale"`` and on
``{1, ..., max_scale}`` for ``kind=None``; use it to test image models (inverses of integer
scales are not integers, so images can only be upsampled).
"""

from __future__ import annotations

import torch
from torch import Tensor

from . import _random
from .base import Element, Group
from .types import FieldType

__all__ = ["Scaling"]


class Scaling(Group):
    """Positive dilations ``x -> s x``. Kinds: ``("scale",)``.

    Parameters
    ----------
    integer : bool
        Sample integer scales (needed for exact image actions).
    max_scale : int
        Largest integer scale sampled when ``integer=True`` (default 3).
    log_std : float
        Standard deviation of ``log s`` for continuous sampling (default 0.5).
    """

    name = "Scaling"
    kinds = ("scale",)

    def __init__(self, *, integer: bool = False, max_scale: int = 3, log_std: float = 0.5):
        if isinstance(max_scale, bool) or not isinstance(max_scale, int) or max_scale < 2:
            raise ValueError(f"max_scale must be an int >= 2, got {max_scale!r}")
        if not log_std > 0:
            raise ValueError(f"log_std must be positive, got {log_std!r}")
        self.integer, self.max_scale, self.log_std = bool(integer), max_scale, float(log_std)
        self.name = "Scaling(int)" if self.integer else "Scaling"

    def sample(self, n=1, generator=None, *, dtype=torch.float32, device=None, kind=None):
        n = _random.check_n(n)
        if kind is not None and kind not in self.kinds and kind != "general":
            raise ValueError(f"{self.name} has no transformation kind {kind!r}; kinds: {self.kinds}")
        if self.integer:
            low = 2 if kind == "scale" else 1
            s = _random.randint(low, self.max_scale + 1, (n,), generator, device).to(dtype)
        else:
            s = torch.exp(self.log_std * _random.randn((n,), generator, torch.float64, device))
        return Element({"scale": s.to(dtype)}, kind or "general")

    def identity(self, n=1, *, dtype=torch.float32, device=None):
        n = _random.check_n(n)
        return Element({"scale": torch.ones(n, dtype=dtype, device=device)}, "identity")

    def compose(self, g, h):
        return Element({"scale": g.scale * h.scale}, g.kind if g.kind == h.kind else "general")

    def inverse(self, g):
        return Element({"scale": 1 / g.scale}, g.kind)

    def matrix(self, g):
        return None

    def _act_tensor(self, g: Element, x: Tensor, ftype: FieldType) -> Tensor:
        geom = ftype.geom
        if geom in ("scalar", "edge_index"):
            return x
        s = g.scale[0]
        if geom in ("point", "vector"):
            if not x.is_floating_point():
                raise TypeError(f"a {str(ftype)!r} field must be floating point, got {x.dtype}")
            return x * s.to(dtype=x.dtype, device=x.device)
        if geom == "image":
            k = round(float(s))
            if k < 1 or abs(float(s) - k) > 1e-6:
                raise ValueError(f"{self.name}: images can only be scaled exactly by positive "
                                 f"integers, got scale {float(s)}")
            if x.ndim < 2:
                raise ValueError(f"an 'image' field must have shape [..., H, W], got {tuple(x.shape)}")
            return x.repeat_interleave(k, dim=-2).repeat_interleave(k, dim=-1)
        raise ValueError(f"{self.name} does not act on {str(ftype)!r} fields: their scaling "
                         f"weight is not declared by the type")
