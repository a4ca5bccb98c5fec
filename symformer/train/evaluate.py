"""Evaluation of a trained N-body model: test MSE, equivariance error, figures, result rows."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

__all__ = ["evaluate_nbody", "equivariance_error_of", "trajectory_figure", "result_row",
           "RESULT_HEADERS"]

RESULT_HEADERS = ("model", "our MSE", "published MSE", "equivariance error", "parameters",
                  "time/epoch")


def evaluate_nbody(model: nn.Module, data: dict[str, Tensor], *, batch_size: int = 500) -> float:
    """Mean squared error of ``model`` over the systems in ``data`` (all coordinates).

    Parameters
    ----------
    data : dict
        ``pos``, ``vel`` (S, 5, 3), ``charges`` (S, 5), ``target`` (S, 5, 3).
    """
    from ..data.nbody import predict

    if batch_size < 1:
        raise ValueError(f"batch_size must be positive, got {batch_size}")
    total, count = 0.0, 0
    for i in range(0, data["pos"].shape[0], batch_size):
        sl = slice(i, i + batch_size)
        pred = predict(model, data["pos"][sl], data["vel"][sl], data["charges"][sl])
        target = torch.as_tensor(data["target"][sl]).to(pred)
        total += float(((pred - target) ** 2).sum())
        count += target.numel()
    return total / count


def _resize_permutations(group, n_nodes: int):
    """``group`` with every S_n factor replaced by S_{n_nodes}: registered groups are declared
    for the example inputs' node count, the check runs on a batch of test systems."""
    from ..groups import ProductGroup, Symmetric

    if isinstance(group, Symmetric):
        return Symmetric(n_nodes)
    if isinstance(group, ProductGroup):
        return ProductGroup(*(_resize_permutations(g, n_nodes) for g in group.groups))
    return group


def equivariance_error_of(model: nn.Module, data: dict[str, Tensor], *, n_systems: int = 4,
                          dtype: torch.dtype = torch.float32, seed: int = 0) -> float | None:
    """Largest relative equivariance error of ``model`` under its declared group (e.g. E(3) x
    S_N), over every transformation kind, on the first ``n_systems`` systems of ``data`` batched
    into one graph (S_N permutes all their nodes), in ``dtype``.

    Returns ``None`` when ``n_systems`` is 0.
    """
    from ..data.nbody import to_graph_batch
    from ..models import config_of, spec
    from ..testing import equivariance_error

    if n_systems <= 0:
        return None
    s = spec(config_of(model)["name"])
    param = next(iter(model.parameters()), None)
    device = param.device if param is not None else torch.device("cpu")
    model = copy.deepcopy(model).to(dtype).eval()  # never change the caller's model
    k = min(n_systems, data["pos"].shape[0])
    graph = to_graph_batch(data["pos"][:k], data["vel"][:k], data["charges"][:k])
    inputs = {key: (v.to(device=device, dtype=dtype) if v.is_floating_point() else v.to(device))
              for key, v in graph.items()}
    group = _resize_permutations(s.make_group(model), inputs["pos"].shape[0])
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        errors = equivariance_error(model, group, inputs, s.in_types, s.out_types, n_samples=2,
                                    generator=g)
    return float(max(errors.values()))


def trajectory_figure(model: nn.Module, data: dict[str, Tensor], path: str | Path, *,
                      n: int = 3) -> Path:
    """``trajectory.png``: start, true and predicted positions of the first ``n`` systems."""
    from ..data.nbody import predict
    from .plots import plot_trajectories

    n = max(1, min(n, data["pos"].shape[0]))
    pred = predict(model, data["pos"][:n], data["vel"][:n], data["charges"][:n])
    as_np = lambda x: torch.as_tensor(x).detach().cpu().double().numpy()  # noqa: E731
    return plot_trajectories(as_np(data["pos"][:n]), as_np(data["target"][:n]), as_np(pred), path)


def _fmt(x: Any, spec: str) -> str:
    return "-" if x is None else format(x, spec)


def result_row(metrics: dict[str, Any]) -> tuple[str, ...]:
    """One row of the results table (see :data:`RESULT_HEADERS`) from ``metrics.json``."""
    return (str(metrics.get("model")), _fmt(metrics.get("test_mse"), ".4g"),
            _fmt(metrics.get("published_mse"), ".4g"),
            _fmt(metrics.get("equivariance_error"), ".2e"),
            _fmt(metrics.get("parameters"), ","),
            "-" if metrics.get("seconds_per_epoch") is None
            else f"{metrics['seconds_per_epoch']:.3g} s")
