"""Figures of a run: loss curve and predicted trajectories (matplotlib, Agg backend)."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

__all__ = ["plot_loss_curve", "plot_trajectories"]


def _figure(**kwargs):
    # The object-oriented API on a bare Figure: no pyplot state, no display needed.
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(**kwargs)
    FigureCanvasAgg(fig)
    return fig


def plot_loss_curve(history: Sequence[dict], path: str | Path, *, title: str = "") -> Path:
    """Train and validation MSE per epoch on a log scale.

    Parameters
    ----------
    history : list of dict
        Rows with ``epoch`` and optionally ``train_mse``, ``val_mse``.
    """
    fig = _figure(figsize=(6, 4), dpi=100)
    ax = fig.add_subplot(1, 1, 1)
    for key, label in (("train_mse", "train"), ("val_mse", "validation")):
        rows = [r for r in history if key in r and np.isfinite(r[key]) and r[key] > 0]
        if rows:
            ax.plot([r["epoch"] for r in rows], [r[key] for r in rows], marker=".", label=label)
    ax.set_yscale("log")
    ax.set_xlabel("epoch")
    ax.set_ylabel("MSE")
    ax.set_title(title or "loss curve")
    ax.grid(True, which="both", alpha=0.3)
    if ax.get_legend_handles_labels()[0]:
        ax.legend()
    fig.tight_layout()
    fig.savefig(path)
    return Path(path)


def plot_trajectories(start: np.ndarray, target: np.ndarray, pred: np.ndarray,
                      path: str | Path, *, title: str = "") -> Path:
    """True vs predicted positions for a few systems, one 3D panel per system.

    Parameters
    ----------
    start, target, pred : array, shape (S, N, 3)
        Input positions, true positions one time unit later, predicted positions.
    """
    start, target, pred = (np.asarray(a, dtype=np.float64) for a in (start, target, pred))
    if not start.shape == target.shape == pred.shape or start.ndim != 3 or start.shape[-1] != 3:
        raise ValueError(f"start, target, pred: expected equal shapes (S, N, 3), got "
                         f"{start.shape}, {target.shape}, {pred.shape}")
    n = start.shape[0]
    fig = _figure(figsize=(4 * n, 4.4), dpi=100)
    for s in range(n):
        ax = fig.add_subplot(1, n, s + 1, projection="3d")
        for i in range(start.shape[1]):
            ax.plot(*np.stack([start[s, i], target[s, i]]).T, color="tab:blue", alpha=0.5)
            ax.plot(*np.stack([start[s, i], pred[s, i]]).T, color="tab:red", alpha=0.5, ls="--")
        ax.scatter(*start[s].T, color="black", marker="o", label="start")
        ax.scatter(*target[s].T, color="tab:blue", marker="o", label="true")
        ax.scatter(*pred[s].T, color="tab:red", marker="x", label="predicted")
        err = float(((pred[s] - target[s]) ** 2).mean())
        ax.set_title(f"system {s}: MSE {err:.2e}", fontsize=9)
        if s == 0:
            ax.legend(loc="upper left", fontsize=8)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path)
    return Path(path)
