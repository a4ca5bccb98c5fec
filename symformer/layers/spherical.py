"""Module forms of the spherical primitives, so that they are checked like every layer.

``SphericalHarmonics`` embeds vectors; ``TensorProduct`` is the weighted Clebsch-Gordan product of
two uniform-layout features. Both are registered, so ``symformer check`` covers the primitives.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ..registry import register
from ..primitives import cg_tensor_product, sh_path_list, spherical_harmonics
from ._uniform import check_uniform

__all__ = ["SphericalHarmonics", "TensorProduct"]


def _o3_nodes(n: int):
    def group(module):
        from ..groups import O3, Symmetric
        return O3() * Symmetric(n)
    return group


def _vectors_example(module, generator: torch.Generator, dtype: torch.dtype) -> dict:
    return {"vectors": torch.randn(8, 3, generator=generator, dtype=dtype)}


@register("spherical_harmonics", kind="layer", group=_o3_nodes(8),
          in_types={"vectors": "node:vector"}, out_types="node:uniform:3",
          example_inputs=_vectors_example,
          description="real spherical harmonics Y(v) of vectors [N, 3] -> [N, (L+1)^2, 1]")
class SphericalHarmonics(nn.Module):
    """Real spherical harmonics (e3nn conventions) as a module: ``[..., 3] -> [..., (L+1)^2, 1]``.

    Parameters
    ----------
    lmax : int
        Maximum degree L.
    normalize : bool
        Use the direction ``v / |v|`` (zero vectors give ``Y_0`` only).
    normalization : str
        ``"component"``, ``"norm"`` or ``"integral"``.
    """

    def __init__(self, *, lmax: int = 3, normalize: bool = True,
                 normalization: str = "component"):
        super().__init__()
        self.lmax, self.normalize, self.normalization = lmax, normalize, normalization

    def forward(self, vectors: Tensor) -> Tensor:
        if not torch.is_tensor(vectors) or vectors.shape[-1:] != (3,):
            shape = tuple(vectors.shape) if torch.is_tensor(vectors) else type(vectors).__name__
            raise ValueError(f"vectors: expected shape [..., 3], got {shape}")
        y = spherical_harmonics(self.lmax, vectors, normalize=self.normalize,
                                normalization=self.normalization)
        return y.unsqueeze(-1)


def _pair_example(module, generator: torch.Generator, dtype: torch.dtype) -> dict:
    rows = (module.lmax + 1) ** 2
    c = module.channels
    return {"x": torch.randn(6, rows, c, generator=generator, dtype=dtype),
            "y": torch.randn(6, rows, c, generator=generator, dtype=dtype)}


@register("tensor_product", kind="layer", group=_o3_nodes(6),
          in_types={"x": "node:uniform:2", "y": "node:uniform:2"}, out_types="node:uniform:2",
          example_inputs=_pair_example,
          description="channel-wise Clebsch-Gordan product with learnable path weights")
class TensorProduct(nn.Module):
    """Channel-wise (``uuu``) CG product ``x (x) y`` with one learnable weight per path and channel.

    Only parity-respecting paths (``l1 + l2 + l3`` even) are used, so the product is
    O(3)-equivariant on natural-parity features.

    Parameters
    ----------
    lmax : int
        Maximum degree of ``x``, ``y`` and the output.
    channels : int
        Channels C of both inputs and the output.
    """

    def __init__(self, *, lmax: int = 2, channels: int = 4):
        super().__init__()
        self.lmax, self.channels = lmax, channels
        self.paths = sh_path_list(lmax, lmax, lmax)
        self.weight = nn.Parameter(torch.randn(len(self.paths), channels) / len(self.paths) ** 0.5)

    def forward(self, x: Tensor, y: Tensor) -> Tensor:
        """x, y : [..., (L+1)^2, C] -> [..., (L+1)^2, C]."""
        check_uniform("x", x, self.lmax, self.channels)
        check_uniform("y", y, self.lmax, self.channels)
        return cg_tensor_product(x, y, self.lmax, self.paths, self.weight)
