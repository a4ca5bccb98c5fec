"""Charged-particle N-body benchmark: the protocol of EGNN, SEGNN and CGENN.

The simulator is the 3D "charged" system of Kipf et al. (NRI) as modified and used by EGNN
(dataset ``nbody_small``), reproduced step for step:

* 5 particles in 3D with charges ``c_i`` drawn from {-1, +1} with probability 1/2 each; the
  edge attribute of the models is ``c_i * c_j``.
* Initial positions ``N(0, 1)`` per coordinate; initial velocities ``randn`` normalised to speed
  exactly 0.5. Positions outside the box [-5, 5] are reflected once, at initialisation only
  (``x > 5 -> 10 - x`` with ``v -> -|v|``, ``x < -5 -> -10 - x`` with ``v -> |v|``).
* Force on i: ``sum_j k c_i c_j (x_i - x_j) / |x_i - x_j|^3`` with ``k = 1``; every component of
  the total force is clipped to [-100, 100] (``max_F = 0.1 / dt``).
* ``dt = 0.001``, semi-implicit Euler: one kick ``v += dt F(x_0)``, then for steps
  ``i = 1 .. T-1`` (``T = 5000``): ``x += dt v``; if ``i % 100 == 0`` record ``(x, v)``;
  ``v += dt F(x)``.

**What is recorded.** The original code writes the (reflected) initial state into frame 0 but
overwrites it at step 100 (its frame counter starts at 0), so frame ``k`` (``k = 0 .. 48``,
49 frames) holds the state after step ``i = 100 (k + 1)``: the position ``x_i`` and the velocity
that moved it there (``x_i = x_{i-1} + dt v``), i.e. the velocity *before* the kick
``dt F(x_i)``. The initial state is not part of the data. Frames are 0.1 time units apart.

**Task.** Input: positions, velocities and charges at frame 30 (step 3100); target: positions at
frame 40 (step 4100), one time unit later. Loss and metric: mean squared error over all
coordinates (``nn.MSELoss`` over ``[S, 5, 3]``).

**Splits and seeds.** EGNN's data come from one NumPy legacy ``RandomState`` stream seeded with
43 (``generate_dataset.py --num-train 10000 --seed 43 --sufix small``): 10000 training, then 2000
validation, then 2000 test simulations, each drawing in order its charges
(``choice([-1, 0, 1], p=[.5, 0, .5])``), positions ``randn(3, 5)``, velocities ``randn(3, 5)`` and
two (zero-variance) noise arrays ``randn(49, 3, 5)``. :func:`initial_conditions` replays exactly
that stream, so the initial states equal the original ones; EGNN trains on the first 3000
training simulations. Hence (see :data:`SPLITS`): ``train`` = simulations 0-2999, ``valid`` =
10000-11999, ``test`` = 12000-13999 of the seed-43 stream. The integration is vectorised over
simulations and sums pair forces in a different order than the original loop (distances as
``|x_i - x_j|^2`` rather than the Gram expansion), so trajectories agree with the original
arithmetic to rounding, which the chaotic dynamics amplify in a few close encounters; the
distribution of the data is the same.

The generated data are the same on every machine, bit for bit: every step uses only elementwise
IEEE operations in a fixed order (the pair forces are summed onto particles pair by pair, not
by a matrix product, whose summation order depends on the BLAS library and the CPU). This
matters: a last-bit change in that order moves 88 of the 2000 test systems by more than 1e-3 and
EGNN's test MSE by 0.2% (valid: 1.1%).

Generated splits are cached as ``.npz`` in ``cache_dir`` (default ``$SYMFORMER_CACHE/nbody``,
else ``~/.cache/symformer/nbody``), written atomically; an unreadable cache file is regenerated.
"""

from __future__ import annotations

import os
import warnings
import zipfile
from pathlib import Path

import numpy as np
import torch

from .._io import atomic_write

__all__ = ["simulate", "initial_conditions", "integrate", "load_split", "to_graph_batch",
           "predict", "PUBLISHED_MSE",
           "SPLITS", "SEED", "FRAME_INPUT", "FRAME_TARGET"]

SEED = 43
FRAME_INPUT, FRAME_TARGET = 30, 40
#: split -> (index of the first simulation in the seed-43 stream, number of simulations)
SPLITS = {"train": (0, 3000), "valid": (10000, 2000), "test": (12000, 2000)}
#: Test MSE as published: EGNN paper (Satorras et al. 2021, Table 2: linear to egnn), SEGNN
#: (Brandstetter et al. 2022) and CGENN (Ruhe et al. 2023).
PUBLISHED_MSE = {"linear": 0.0819, "se3_transformer": 0.0244, "tfn": 0.0155, "gnn": 0.0107,
                 "radial_field": 0.0104, "egnn": 0.0071, "segnn": 0.0043, "cgenn": 0.0039}

_CACHE_VERSION = 2  # 2: forces summed in a fixed order (version 1 depended on the BLAS)
_CHUNK = 1024  # simulations integrated together: keeps the working set in cache


def initial_conditions(n_sims: int, seed: int = SEED, *, n_particles: int = 5,
                       n_frames: int = 49, loc_std: float = 1.0, vel_norm: float = 0.5,
                       box_size: float = 5.0) -> dict:
    """Initial states of ``n_sims`` simulations, replaying the original random stream.

    Returns
    -------
    dict with ``loc`` (n_sims, n_particles, 3), ``vel`` (n_sims, n_particles, 3) float64 after
    the reflection into the box, and ``charges`` (n_sims, n_particles) in {-1., 1.}. As in the
    original, the position spread is ``loc_std * (n_particles / 5) ** (1/3)``.
    ``n_frames`` only sets how many zero-variance noise numbers each simulation consumes.
    """
    _check_int("n_sims", n_sims, 0)
    _check_int("n_particles", n_particles, 1)
    rs = np.random.RandomState(seed)
    # As the original: constant density for any number of particles.
    scaled_std = loc_std * (float(n_particles) / 5.0) ** (1.0 / 3.0)
    charges = np.empty((n_sims, n_particles))
    loc = np.empty((n_sims, 3, n_particles))
    vel = np.empty((n_sims, 3, n_particles))
    for s in range(n_sims):
        charges[s] = rs.choice([-1.0, 0.0, 1.0], size=(n_particles, 1), p=[0.5, 0.0, 0.5])[:, 0]
        loc[s] = rs.randn(3, n_particles) * scaled_std
        v = rs.randn(3, n_particles)
        vel[s] = v * vel_norm / np.sqrt((v ** 2).sum(axis=0)).reshape(1, -1)
        rs.randn(n_frames, 3, n_particles)  # observation noise of variance 0: keeps the stream
        rs.randn(n_frames, 3, n_particles)
    loc, vel = loc.transpose(0, 2, 1).copy(), vel.transpose(0, 2, 1).copy()
    over, under = loc > box_size, loc < -box_size
    loc[over], vel[over] = 2 * box_size - loc[over], -np.abs(vel[over])
    loc[under], vel[under] = -2 * box_size - loc[under], np.abs(vel[under])
    return {"loc": loc, "vel": vel, "charges": charges}


def integrate(loc: np.ndarray, vel: np.ndarray, charges: np.ndarray, *, n_steps: int = 5000,
              sample_freq: int = 100, dt: float = 1e-3, interaction_strength: float = 1.0,
              max_force: float | None = None) -> dict:
    """Run the semi-implicit Euler scheme from initial states, vectorised over simulations.

    Parameters
    ----------
    loc, vel : array, shape (S, N, 3)
    charges : array, shape (S, N)
    max_force : per-component force clip, default ``0.1 / dt``.

    Returns
    -------
    dict with ``loc`` and ``vel`` of shape (S, n_steps // sample_freq - 1, N, 3), float64;
    frame k is the state after step ``sample_freq * (k + 1)`` (see the module docstring).
    """
    loc, vel, charges = (np.asarray(a, dtype=np.float64) for a in (loc, vel, charges))
    if loc.ndim != 3 or loc.shape[-1] != 3 or vel.shape != loc.shape:
        raise ValueError(f"loc, vel: expected equal shapes (S, N, 3), got {loc.shape}, {vel.shape}")
    if charges.shape != loc.shape[:2]:
        raise ValueError(f"charges: expected shape {loc.shape[:2]}, got {charges.shape}")
    _check_int("sample_freq", sample_freq, 1)
    if n_steps % sample_freq != 0 or n_steps < 2 * sample_freq:
        raise ValueError(f"n_steps: expected a multiple of sample_freq={sample_freq} of at least "
                         f"two samples, got {n_steps}")
    max_force = 0.1 / dt if max_force is None else max_force
    n_frames = n_steps // sample_freq - 1
    S, N = charges.shape
    out_loc = np.empty((S, n_frames, N, 3))
    out_vel = np.empty((S, n_frames, N, 3))
    I, J = np.triu_indices(N, 1)
    for s0 in range(0, S, _CHUNK):
        sl = slice(s0, min(s0 + _CHUNK, S))
        # Layout (N, 3, S): every operation runs over long contiguous rows of simulations.
        x = np.ascontiguousarray(loc[sl].transpose(1, 2, 0))
        v = np.ascontiguousarray(vel[sl].transpose(1, 2, 0))
        q = interaction_strength * charges[sl].T[I] * charges[sl].T[J]  # (P, s)
        args = (q, I, J, max_force)
        v += dt * _forces(x, *args)
        # Steps after the last recorded one do not change the data.
        for i in range(1, n_frames * sample_freq + 1):
            x += dt * v
            if i % sample_freq == 0:
                k = i // sample_freq - 1
                out_loc[sl, k], out_vel[sl, k] = x.transpose(2, 0, 1), v.transpose(2, 0, 1)
            v += dt * _forces(x, *args)
    return {"loc": out_loc, "vel": out_vel}


def _forces(x, q, I, J, max_force):
    """Clipped Coulomb forces. x: (N, 3, s); q: (P, s) pair charge products -> (N, 3, s).

    Pair p adds f_p to particle I[p] and subtracts it from J[p], pair after pair: elementwise
    operations in a fixed order, so the result does not depend on the BLAS or the CPU."""
    diff = x[I] - x[J]  # (P, 3, s), x_i - x_j
    d2 = diff[:, 0] * diff[:, 0] + diff[:, 1] * diff[:, 1] + diff[:, 2] * diff[:, 2]
    with np.errstate(divide="ignore", invalid="ignore"):
        diff *= (q / (d2 * np.sqrt(d2)))[:, None]
    force = np.zeros_like(x)
    for p, (i, j) in enumerate(zip(I, J)):
        force[i] += diff[p]
        force[j] -= diff[p]
    return np.clip(force, -max_force, max_force, out=force)


def simulate(n_sims: int, seed: int = SEED, n_particles: int = 5, n_steps: int = 5000,
             sample_freq: int = 100, dt: float = 1e-3, *, loc_std: float = 1.0,
             vel_norm: float = 0.5, box_size: float = 5.0, interaction_strength: float = 1.0,
             skip: int = 0) -> dict:
    """Simulate ``n_sims`` systems: number ``skip .. skip + n_sims - 1`` of the stream ``seed``.

    Returns
    -------
    dict with ``loc``, ``vel`` (n_sims, n_steps // sample_freq - 1, n_particles, 3) and
    ``charges`` (n_sims, n_particles), float64 NumPy arrays.
    """
    _check_int("skip", skip, 0)
    init = initial_conditions(skip + n_sims, seed, n_particles=n_particles,
                              n_frames=n_steps // sample_freq - 1, loc_std=loc_std,
                              vel_norm=vel_norm, box_size=box_size)
    init = {k: v[skip:] for k, v in init.items()}
    traj = integrate(init["loc"], init["vel"], init["charges"], n_steps=n_steps,
                     sample_freq=sample_freq, dt=dt, interaction_strength=interaction_strength)
    return {"loc": traj["loc"], "vel": traj["vel"], "charges": init["charges"]}


def load_split(split: str, n: int | None = None, cache_dir: str | os.PathLike | None = None,
               dtype=None):
    """Load (generating and caching on first use) one split of the benchmark.

    Parameters
    ----------
    split : ``"train"`` (3000), ``"valid"`` (2000) or ``"test"`` (2000).
    n : int, optional; keep the first ``n`` systems.
    cache_dir : folder for the ``.npz`` cache (default: see module docstring).
    dtype : ``None`` for float64 NumPy arrays, or a torch dtype for torch tensors.

    Returns
    -------
    dict with ``pos`` (S, 5, 3), ``vel`` (S, 5, 3), ``charges`` (S, 5) at frame 30 and
    ``target`` (S, 5, 3), the positions at frame 40.
    """
    if split not in SPLITS:
        raise ValueError(f"split: expected one of {sorted(SPLITS)}, got {split!r}")
    size = SPLITS[split][1]
    if n is not None and (not isinstance(n, int) or isinstance(n, bool) or not 1 <= n <= size):
        raise ValueError(f"n: expected an int in [1, {size}] for split {split!r}, got {n!r}")
    path = _cache_dir(cache_dir) / f"nbody_charged5_seed{SEED}_v{_CACHE_VERSION}_{split}.npz"
    data = _read_cache(path, size)
    if data is None:
        data = _generate_split(split)
        _write_cache(path, data)
    data = {k: v[:n] for k, v in data.items()}
    if dtype is None:
        return data
    return {k: torch.as_tensor(v, dtype=dtype) for k, v in data.items()}


def to_graph_batch(pos, vel, charges) -> dict:
    """Flatten systems into one graph batch of node tensors.

    Parameters
    ----------
    pos, vel : array or Tensor, shape (S, N, 3)
    charges : array or Tensor, shape (S, N)

    Returns
    -------
    dict of torch tensors: ``pos`` (S*N, 3), ``vel`` (S*N, 3), ``charges`` (S*N,) and ``batch``
    (S*N,) long, the system index of each node. Inputs are validated (shapes, finiteness).
    """
    pos, vel, charges = _check_systems(pos, vel, charges, pos_name="pos")
    S, N = charges.shape
    return {"pos": pos.reshape(S * N, 3), "vel": vel.reshape(S * N, 3),
            "charges": charges.reshape(S * N),
            "batch": torch.arange(S, device=pos.device).repeat_interleave(N)}


def predict(model, loc, vel, charges):
    """Predict the positions one time unit (10 frames) ahead with a graph model.

    The model is called as ``model(pos=, vel=, charges=, batch=)`` on flat node tensors (see
    :func:`to_graph_batch`) in its own dtype and device, in eval mode and without gradients; its
    previous train/eval mode is restored afterwards.

    Parameters
    ----------
    loc, vel : array or Tensor, shape (S, N, 3)
    charges : array or Tensor, shape (S, N)

    Returns
    -------
    Tensor, shape (S, N, 3), in the model's dtype.
    """
    param = next(iter(model.parameters()), None)
    dtype = param.dtype if param is not None else torch.get_default_dtype()
    device = param.device if param is not None else torch.device("cpu")
    loc, vel, charges = _check_systems(loc, vel, charges)
    S, N = charges.shape
    graph = {k: v.to(device=device, dtype=dtype if v.is_floating_point() else v.dtype)
             for k, v in to_graph_batch(loc, vel, charges).items()}
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            out = model(**graph)
    finally:
        model.train(was_training)
    return out.reshape(S, N, 3)


def _check_systems(pos, vel, charges, pos_name="loc"):
    named = {}
    for name, x in ((pos_name, pos), ("vel", vel), ("charges", charges)):
        if isinstance(x, np.ndarray):
            x = torch.from_numpy(x)
        elif not isinstance(x, torch.Tensor):
            raise TypeError(f"{name}: expected a NumPy array or torch Tensor, got "
                            f"{type(x).__name__}")
        if not (x.is_floating_point() or x.dtype in (torch.int32, torch.int64)):
            raise TypeError(f"{name}: expected a real numeric dtype, got {x.dtype}")
        named[name] = x
    pos, vel, charges = named[pos_name], named["vel"], named["charges"]
    if pos.ndim != 3 or pos.shape[-1] != 3:
        raise ValueError(f"{pos_name}: expected shape (S, N, 3), got {tuple(pos.shape)}")
    if pos.shape[0] == 0 or pos.shape[1] == 0:
        raise ValueError(f"{pos_name}: expected at least one system of at least one particle, got "
                         f"shape {tuple(pos.shape)}")
    if vel.shape != pos.shape:
        raise ValueError(f"vel: expected the shape of {pos_name} {tuple(pos.shape)}, got "
                         f"{tuple(vel.shape)}")
    if charges.shape != pos.shape[:2]:
        raise ValueError(f"charges: expected shape (S, N) = {tuple(pos.shape[:2])} matching "
                         f"{pos_name}, got {tuple(charges.shape)}")
    for name, x in named.items():
        if not torch.isfinite(x).all():
            raise ValueError(f"{name}: contains NaN or infinite values")
    return pos, vel, charges


def _generate_split(split: str) -> dict:
    first, size = SPLITS[split]
    sim = simulate(size, SEED, skip=first)
    return {"pos": sim["loc"][:, FRAME_INPUT], "vel": sim["vel"][:, FRAME_INPUT],
            "charges": sim["charges"], "target": sim["loc"][:, FRAME_TARGET]}


def _cache_dir(cache_dir) -> Path:
    if cache_dir is not None:
        return Path(cache_dir)
    root = os.environ.get("SYMFORMER_CACHE")
    return (Path(root) if root else Path.home() / ".cache" / "symformer") / "nbody"


_SHAPES = {"pos": (5, 3), "vel": (5, 3), "charges": (5,), "target": (5, 3)}


def _read_cache(path: Path, size: int) -> dict | None:
    if not path.exists():
        return None
    try:
        with np.load(path, allow_pickle=False) as f:
            data = {k: f[k] for k in _SHAPES}
        if any(data[k].shape != (size,) + s or data[k].dtype != np.float64
               for k, s in _SHAPES.items()) or not all(np.isfinite(v).all() for v in data.values()):
            raise ValueError("unexpected shapes, dtype or values")
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as err:
        warnings.warn(f"n-body cache file {path} is unreadable ({err}); regenerating it",
                      RuntimeWarning, stacklevel=3)
        return None
    return data


def _write_cache(path: Path, data: dict) -> None:
    atomic_write(path, lambda f: np.savez(f, **data))


def _check_int(name: str, value, minimum: int) -> None:
    if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < minimum:
        raise ValueError(f"{name}: expected an int >= {minimum}, got {value!r}")
