"""A plain transformer on Cartesian coordinates: the "no graph priors" baseline for N-body.

As in "Transformers Discover Molecular Structure Without Graph Priors" (Kreiman et al. 2025):
no graph, no distances, no equivariant features. Each particle is a token with input features
``[pos (3), vel (3), charge (1)]``, embedded linearly; pre-LayerNorm transformer encoder layers
attend within each system (dense ``[B, N, ...]`` view with a key mask, through
``torch.nn.functional.scaled_dot_product_attention``); a linear head predicts the displacement::

    t^0 = W_in [pos_i, vel_i, c_i] + b
    t   <- t + MHA(LN(t))          (attention within the particle's system)
    t   <- t + MLP(LN(t))          (GELU, 4x width)
    out  = pos_i + W_out LN(t_i)

Equivariant to permutations of the nodes only; not to rotations, reflections or translations.
It is meant to be trained with random rotations of the training systems
(``augment_rotations: true`` in its n-body training config).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from symformer.data import from_dense, to_dense
from symformer.groups import Symmetric

from . import _nbody_io
from ._transformer_block import TransformerBlock
from ..registry import register

__all__ = ["CartesianTransformer", "EncoderLayer"]


EncoderLayer = TransformerBlock  # the baseline's name for the shared pre-LayerNorm block


@register("transformer", group=lambda: Symmetric(_nbody_io.EXAMPLE_NODES),
          in_types=_nbody_io.NBODY_IN_TYPES, out_types="node:point",
          example_inputs=_nbody_io.example_inputs,
          description="plain transformer on Cartesian coordinates (no graph priors, not "
                      "rotation-equivariant; trained with rotation augmentation)",
          tags=("nbody", "baseline", "attention"))
class CartesianTransformer(nn.Module):
    """Non-equivariant transformer predicting future positions of charged particles.

    Parameters (keyword-only)
    ----------
    dim : int
        Token width (128).
    n_layers : int
        Encoder layers (4).
    heads : int
        Attention heads; must divide ``dim`` (8).
    mlp_ratio : int
        MLP width as a multiple of ``dim`` (4).
    """

    def __init__(self, *, dim: int = 128, n_layers: int = 4, heads: int = 8, mlp_ratio: int = 4):
        super().__init__()
        for name, val, low in (("dim", dim, 1), ("n_layers", n_layers, 0), ("heads", heads, 1),
                               ("mlp_ratio", mlp_ratio, 1)):
            if isinstance(val, bool) or not isinstance(val, int) or val < low:
                raise ValueError(f"{name}: expected an int >= {low}, got {val!r}")
        if dim % heads:
            raise ValueError(f"heads: must divide dim={dim}, got {heads}")
        self.embed = nn.Linear(7, dim)
        self.layers = nn.ModuleList(EncoderLayer(dim, heads, mlp_ratio) for _ in range(n_layers))
        self.norm = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, 3)

    def forward(self, pos: Tensor, vel: Tensor, charges: Tensor, batch: Tensor) -> Tensor:
        """Predicted positions (N, 3) from flat node inputs (see :mod:`._nbody_io`)."""
        _nbody_io.check_nbody_inputs(pos, vel, charges, batch)
        order = torch.argsort(batch, stable=True)  # the dense view needs systems contiguous
        tokens = self.embed(torch.cat([pos, vel, charges[:, None]], dim=-1))[order]  # [N, d]
        t, mask = to_dense(tokens, batch[order].long())  # [B, Nmax, d], [B, Nmax]
        n_max = mask.shape[1]
        # Keys: the real particles of the system; padded queries see only themselves (finite).
        eye = torch.eye(n_max, dtype=torch.bool, device=mask.device)
        attn_mask = (mask[:, None, :] | eye)[:, None]  # [B, 1, Nmax, Nmax]
        for layer in self.layers:
            t = layer(t, attn_mask)
        delta = from_dense(self.head(self.norm(t)), mask)  # [N, 3] in sorted order
        return pos + delta[torch.argsort(order)]
