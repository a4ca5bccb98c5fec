"""The autograd Function of the table kernels whose backward is the kernel itself.

A channel-wise CG contraction ``out = T(a, b)`` is bilinear, so its gradients are the same
contraction with the table's axes permuted: ``grad_a = T^(k,j->i)(g, b)`` and
``grad_b = T^(i,k->j)(a, g)``. A kernel that can run any axis permutation of its table
(``_chunked.DenseTable``, ``_graded.GradedTable``) therefore gets its backward, and double
backward, from one Function.
"""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["PermutedBilinear"]


def _compose(perm: tuple[int, int, int], q: tuple[int, int, int]) -> tuple[int, int, int]:
    return perm[q[0]], perm[q[1]], perm[q[2]]


class PermutedBilinear(torch.autograd.Function):
    """``table.contract(a, b, perm)`` with the backward above.

    ``table`` is any object with ``contract(a, b, perm) -> Tensor`` computing
    ``T.permute(*perm)`` contracted with ``a`` and ``b`` (its layout is the table's business).
    The forward takes ``ctx`` (no ``setup_context``): ``apply`` then skips binding the arguments
    to the signature, about 80 us a call, 5% of a degree-2 product.
    """

    @staticmethod
    def forward(ctx, a: Tensor, b: Tensor, table, perm: tuple[int, int, int]) -> Tensor:
        ctx.table, ctx.perm = table, perm
        ctx.save_for_backward(a, b)
        return table.contract(a, b, perm)

    @staticmethod
    def backward(ctx, grad: Tensor):
        a, b = ctx.saved_tensors
        grad = grad.contiguous()
        ga = gb = None
        if ctx.needs_input_grad[0]:
            ga = PermutedBilinear.apply(grad, b, ctx.table,
                                        _compose(ctx.perm, (2, 1, 0))).view(a.shape)
        if ctx.needs_input_grad[1]:
            gb = PermutedBilinear.apply(a, grad, ctx.table,
                                        _compose(ctx.perm, (0, 2, 1))).view(b.shape)
        return ga, gb, None, None
