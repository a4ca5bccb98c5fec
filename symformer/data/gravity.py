"""Gravitational N-body systems of the GATr benchmark (Brehmer et al. 2023): one heavy star and
light planets, generated as in the paper's code release.

Each system: a star of log-uniform mass in ``[1, 10]`` at rest at the origin, and ``n_planets``
planets of log-uniform mass in ``[0.01, 0.1]``, uniform (by area) in the annulus
``0.1 <= r <= 1`` of the x-y plane, each on the circular orbit around the star (speed
``sqrt(M_star / r)``, clockwise or anticlockwise at random) plus ``N(0, vel_std^2)`` velocity
noise. The bodies are permuted at random, the system is rotated by a Haar-random rotation and
translated by ``N(0, shift_std^2 I)`` (``shift_std = 20``). Newtonian gravity (``G = 1``) is
integrated with semi-implicit Euler (velocity first), ``steps = 100`` steps over ``time = 0.1``.
Systems in which a body moves farther than ``outlier_threshold = 2`` are rejected and redrawn.

Splits (the release's files, sizes chosen by the caller): ``train`` / ``valid`` / ``test`` with
3 planets; ``ood`` ("E(3) generalisation") with every system further shifted by
``ood_shift = 200`` along x; ``objects`` ("object generalisation") with 5 planets. The GATr
paper's "1% data" point trains on 1,000 systems (1% of its 100,000). Splits come from disjoint
seeds, so every split is reproducible without a cache.

Task: inputs ``masses (S, n)``, ``pos (S, n, 3)``, ``vel (S, n, 3)``; target: the positions
after the integration; metric: MSE over all coordinates.
"""

from __future__ import annotations

import torch
from torch import Tensor

from ..primitives.wigner import random_rotation

__all__ = ["simulate_gravity", "gravity_split", "GRAVITY_SPLITS", "PUBLISHED_GRAVITY_MSE"]

#: split -> (seed offset, planets, OOD shift applied)
GRAVITY_SPLITS = {"train": (0, 3, False), "valid": (1, 3, False), "test": (2, 3, False),
                  "ood": (3, 3, True), "objects": (4, 5, False)}
#: Published test MSE (GATr code release, 1% of the training data = 1,000 systems).
_CHUNK = 1024  # candidate systems drawn per round (outliers are rejected)
PUBLISHED_GRAVITY_MSE = {"gatr": 0.0005, "segnn": 0.0006, "se3_transformer": 0.0025,
                         "transformer": 0.0050}


def _accelerations(pos: Tensor, masses: Tensor) -> Tensor:
    diff = pos[:, None, :, :] - pos[:, :, None, :]  # [S, i, j, 3]  x_j - x_i
    dist = diff.norm(dim=-1)
    dist = torch.where(dist < 1e-9, torch.ones_like(dist), dist)  # self-pairs: diff is zero
    return torch.einsum("sij,sj,sijc->sic", dist.pow(-3), masses, diff)


def _log_uniform(shape, low: float, high: float, g: torch.Generator) -> Tensor:
    u = torch.rand(*shape, generator=g, dtype=torch.float64)
    return torch.exp(torch.log(torch.tensor(low, dtype=torch.float64)) * (1 - u)
                     + torch.log(torch.tensor(high, dtype=torch.float64)) * u)


def _draw(S: int, P: int, g: torch.Generator, *, time: float, steps: int, vel_std: float,
          shift_std: float, ood_shift: float) -> dict[str, Tensor]:
    f64 = torch.float64
    star = _log_uniform((S, 1), 1.0, 10.0, g)
    masses = torch.cat([star, _log_uniform((S, P), 0.01, 0.1, g)], dim=1)  # [S, n]
    radius = torch.sqrt(0.01 + 0.99 * torch.rand(S, P, generator=g, dtype=f64))  # area-uniform
    angle = 2 * torch.pi * torch.rand(S, P, generator=g, dtype=f64)
    planet = torch.stack([radius * angle.cos(), radius * angle.sin(),
                          torch.zeros_like(radius)], dim=-1)  # [S, P, 3]
    spin = torch.randint(0, 2, (S, P, 1), generator=g).to(f64) * 2 - 1  # orbit orientation
    tangent = spin * torch.stack([-planet[..., 1], planet[..., 0], planet[..., 2]], dim=-1)
    vel_p = tangent * star[:, :, None].sqrt() / radius[..., None].pow(1.5)
    vel_p = vel_p + vel_std * torch.randn(S, P, 3, generator=g, dtype=f64)
    pos = torch.cat([torch.zeros(S, 1, 3, dtype=f64), planet], dim=1)
    vel = torch.cat([torch.zeros(S, 1, 3, dtype=f64), vel_p], dim=1)
    perm = torch.argsort(torch.rand(S, P + 1, generator=g), dim=1)  # bodies in random order
    masses = masses.gather(1, perm)
    pos, vel = (t.gather(1, perm[..., None].expand(-1, -1, 3)) for t in (pos, vel))
    x, v, dt = pos, vel, time / steps
    for _ in range(steps):  # semi-implicit Euler, as in the GATr release
        v = v + dt * _accelerations(x, masses)
        x = x + dt * v
    R = random_rotation(S, g, dtype=f64)  # [S, 3, 3]
    shift = shift_std * torch.randn(S, 1, 3, generator=g, dtype=f64)
    shift[..., 0] += ood_shift
    move = lambda p: torch.einsum("sij,snj->sni", R, p) + shift  # noqa: E731
    return {"masses": masses, "pos": move(pos), "vel": torch.einsum("sij,snj->sni", R, vel),
            "target": move(x), "_step": (x - pos).norm(dim=-1).amax(dim=1)}


def simulate_gravity(n_systems: int, n_planets: int = 3, *, seed: int = 0, time: float = 0.1,
                     steps: int = 100, vel_std: float = 0.01, shift_std: float = 20.0,
                     ood_shift: float = 0.0, outlier_threshold: float = 2.0,
                     dtype: torch.dtype = torch.float32) -> dict[str, Tensor]:
    """Simulate ``n_systems`` star-and-planets systems (module docstring).

    Returns
    -------
    dict with ``masses`` (S, n), ``pos`` (S, n, 3), ``vel`` (S, n, 3), ``target`` (S, n, 3);
    ``n = n_planets + 1`` in random order. Computed in float64, returned in ``dtype``.
    """
    for name, v, low in (("n_systems", n_systems, 1), ("n_planets", n_planets, 1),
                         ("steps", steps, 1)):
        if isinstance(v, bool) or not isinstance(v, int) or v < low:
            raise ValueError(f"{name}: expected an int >= {low}, got {v!r}")
    if not outlier_threshold > 0:
        raise ValueError(f"outlier_threshold: expected a positive number, got {outlier_threshold!r}")
    g = torch.Generator().manual_seed(int(seed))
    parts, have = [], 0
    while have < n_systems:  # fixed-size rounds: a smaller n gives a prefix of a larger one
        d = _draw(_CHUNK, n_planets, g, time=time, steps=steps,
                  vel_std=vel_std, shift_std=shift_std, ood_shift=ood_shift)
        keep = d.pop("_step") <= outlier_threshold
        parts.append({k: t[keep] for k, t in d.items()})
        have += int(keep.sum())
    return {k: torch.cat([p[k] for p in parts])[:n_systems].to(dtype) for k in parts[0]}


def gravity_split(split: str, n: int, *, dtype: torch.dtype = torch.float32,
                  ood_shift: float = 200.0) -> dict[str, Tensor]:
    """The first ``n`` systems of ``split`` (``train``, ``valid``, ``test``, ``ood`` or
    ``objects``; see the module docstring)."""
    if split not in GRAVITY_SPLITS:
        raise ValueError(f"split: expected one of {tuple(GRAVITY_SPLITS)}, got {split!r}")
    offset, planets, shifted = GRAVITY_SPLITS[split]
    return simulate_gravity(n, planets, seed=1000 + offset, dtype=dtype,
                            ood_shift=ood_shift if shifted else 0.0)
