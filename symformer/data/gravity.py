"""Gravitational N-body systems of the GATr paper (Brehmer et al. 2023): one heavy star and
light planets.

Each system: a star of mass ``U(1, 10)`` at the origin at rest, and ``n_planets`` planets of
mass ``U(0.01, 0.1)`` at distance ``U(0.1, 1)`` in random directions, each on a near-circular
orbit (speed ``sqrt(G M_star / r)`` in a random direction perpendicular to its radius) plus
``N(0, vel_std^2)`` noise. Newtonian gravity (``G = 1``, softening ``eps``) integrated with
explicit Euler, ``steps = 100`` steps over ``time = 0.1`` time units. Finally every system is
rotated by a Haar-random rotation and translated by ``N(0, shift_std^2 I)`` with ``shift_std = 20``
(the same isometry for its initial and final states); the out-of-domain split adds a further
shift of ``ood_shift`` along a random direction, so models must be translation-robust.

Task (as in GATr): inputs ``masses (S, n)``, ``pos (S, n, 3)``, ``vel (S, n, 3)``; target: the
positions after the integration. Splits come from disjoint seeds (``train`` 0, ``valid`` 1,
``test`` 2, ``ood`` 3), so every split is reproducible without a cache.
"""

from __future__ import annotations

import torch
from torch import Tensor

from ..primitives.wigner import random_rotation

__all__ = ["simulate_gravity", "gravity_split", "GRAVITY_SPLITS", "PUBLISHED_GRAVITY_MSE"]

GRAVITY_SPLITS = {"train": 0, "valid": 1, "test": 2, "ood": 3}
#: Published test MSE (GATr code release, 1% of the training data).
PUBLISHED_GRAVITY_MSE = {"gatr": 0.0005, "segnn": 0.0006, "se3_transformer": 0.0025,
                         "transformer": 0.0050}


def _accelerations(pos: Tensor, masses: Tensor, eps: float) -> Tensor:
    diff = pos[:, None, :, :] - pos[:, :, None, :]  # [S, i, j, 3]  x_j - x_i
    dist2 = (diff * diff).sum(-1) + eps ** 2  # [S, n, n]
    inv3 = dist2.pow(-1.5) * (1 - torch.eye(pos.shape[1], dtype=pos.dtype))
    return torch.einsum("sij,sj,sijc->sic", inv3, masses, diff)


def simulate_gravity(n_systems: int, n_planets: int = 4, *, seed: int = 0, time: float = 0.1,
                     steps: int = 100, vel_std: float = 0.01, shift_std: float = 20.0,
                     ood_shift: float = 0.0, eps: float = 1e-2,
                     dtype: torch.dtype = torch.float32) -> dict[str, Tensor]:
    """Simulate ``n_systems`` star-and-planets systems (module docstring).

    Returns
    -------
    dict with ``masses`` (S, n), ``pos`` (S, n, 3), ``vel`` (S, n, 3), ``target`` (S, n, 3);
    ``n = n_planets + 1``, the star first. Computed in float64, returned in ``dtype``.
    """
    for name, v, low in (("n_systems", n_systems, 1), ("n_planets", n_planets, 1),
                         ("steps", steps, 1)):
        if isinstance(v, bool) or not isinstance(v, int) or v < low:
            raise ValueError(f"{name}: expected an int >= {low}, got {v!r}")
    g = torch.Generator().manual_seed(int(seed))
    f64 = torch.float64
    S, P = n_systems, n_planets
    star = 1 + 9 * torch.rand(S, 1, generator=g, dtype=f64)
    planets = 0.01 + 0.09 * torch.rand(S, P, generator=g, dtype=f64)
    masses = torch.cat([star, planets], dim=1)  # [S, n]
    direction = torch.randn(S, P, 3, generator=g, dtype=f64)
    direction = direction / direction.norm(dim=-1, keepdim=True)
    radius = 0.1 + 0.9 * torch.rand(S, P, 1, generator=g, dtype=f64)
    side = torch.randn(S, P, 3, generator=g, dtype=f64)
    tangent = side - (side * direction).sum(-1, keepdim=True) * direction
    tangent = tangent / tangent.norm(dim=-1, keepdim=True)
    speed = torch.sqrt(star[:, :, None] / radius)
    vel_p = speed * tangent + vel_std * torch.randn(S, P, 3, generator=g, dtype=f64)
    pos = torch.cat([torch.zeros(S, 1, 3, dtype=f64), radius * direction], dim=1)
    vel = torch.cat([torch.zeros(S, 1, 3, dtype=f64), vel_p], dim=1)
    x, v, dt = pos, vel, time / steps
    for _ in range(steps):  # explicit Euler
        a = _accelerations(x, masses, eps)
        x, v = x + dt * v, v + dt * a
    R = random_rotation(S, g, dtype=f64)  # [S, 3, 3]
    shift = shift_std * torch.randn(S, 1, 3, generator=g, dtype=f64)
    if ood_shift:
        d = torch.randn(S, 1, 3, generator=g, dtype=f64)
        shift = shift + ood_shift * d / d.norm(dim=-1, keepdim=True)
    move = lambda p: torch.einsum("sij,snj->sni", R, p) + shift  # noqa: E731
    out = {"masses": masses, "pos": move(pos), "vel": torch.einsum("sij,snj->sni", R, vel),
           "target": move(x)}
    return {k: t.to(dtype) for k, t in out.items()}


def gravity_split(split: str, n: int, *, n_planets: int = 4, dtype: torch.dtype = torch.float32,
                  ood_shift: float = 200.0) -> dict[str, Tensor]:
    """The ``split`` (``train``, ``valid``, ``test`` or ``ood``) of ``n`` systems; ``ood`` is
    shifted by a further ``ood_shift`` in a random direction per system."""
    if split not in GRAVITY_SPLITS:
        raise ValueError(f"split: expected one of {tuple(GRAVITY_SPLITS)}, got {split!r}")
    return simulate_gravity(n, n_planets, seed=1000 + GRAVITY_SPLITS[split], dtype=dtype,
                            ood_shift=ood_shift if split == "ood" else 0.0)
