"""Regularisers that keep equivariance: dropout masks act on invariant scalars or on whole
residual branches, never on single components of a vector or higher-degree feature."""

from __future__ import annotations

from torch import Tensor

__all__ = ["check_probability", "drop_path"]


def check_probability(name: str, p) -> None:
    """``ValueError`` naming ``name`` unless ``0 <= p < 1``."""
    if isinstance(p, bool) or not isinstance(p, (int, float)) or not 0 <= p < 1:
        raise ValueError(f"{name}: expected a probability in [0, 1), got {p!r}")


def drop_path(branch: Tensor, p: float, training: bool, batch: Tensor | None = None) -> Tensor:
    """Stochastic depth: the residual ``branch`` of each system (or node) is zeroed with
    probability ``p`` in training and the survivors are scaled by ``1 / (1 - p)``.

    Parameters
    ----------
    branch : Tensor, shape (N, ...), one row per node.
    p : float, in [0, 1).
    training : bool; identity when False or ``p == 0``.
    batch : Tensor, shape (N,), optional; the system of each node: one draw per system (as
        EquiformerV2's graph drop path), else one per node.

    Returns
    -------
    Tensor, shape of ``branch``. Each row is multiplied by a scalar, so every feature type keeps
    its transformation law.
    """
    if not training or p == 0:
        return branch
    n = branch.shape[0]
    draws = int(batch.max()) + 1 if batch is not None and n else n
    keep = branch.new_empty(draws).bernoulli_(1 - p) / (1 - p)
    if batch is not None:
        keep = keep[batch]
    return branch * keep.view(n, *([1] * (branch.dim() - 1)))
