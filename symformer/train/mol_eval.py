"""``symformer eval`` for molecular checkpoints (rmd17, qm9, atoms): error on a split, the
published numbers beside ours, and the measured equivariance error of energy and forces."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

__all__ = ["evaluate_molecular_checkpoint", "MOL_RESULT_HEADERS", "mol_result_row"]

MOL_RESULT_HEADERS = ("model", "data", "split", "energy MAE", "forces MAE", "published E / F",
                      "equivariance error", "parameters", "time/epoch")


def _equivariance_error(model, data, which: str, dtype: torch.dtype) -> float | None:
    """Largest relative error of energy (invariant) and forces (equivariant) under E(3) x S_n
    on the first structure of ``which``, in ``dtype``."""
    from ..groups import E3, Symmetric
    from ..models.potential import POTENTIAL_IN_TYPES
    from ..testing import equivariance_error

    ds = data.splits[which]
    if len(ds) == 0:
        return None
    b = data.batch(which, np.arange(1), dtype)
    n = int(b["pos"].shape[0])
    inputs = {"atomic_numbers": b["atomic_numbers"], "pos": b["pos"], "batch": b["batch"]}

    def energy_forces(atomic_numbers, pos, batch):
        out = model(atomic_numbers, pos, batch, compute_forces=data.has_forces)
        return {k: out[k] for k in types}

    types = ({"energy": "scalar", "forces": "node:vector"} if data.has_forces
             else {"energy": "scalar"})
    errors = equivariance_error(energy_forces, E3() * Symmetric(n), inputs, POTENTIAL_IN_TYPES,
                                types, n_samples=2, generator=torch.Generator().manual_seed(0))
    return max(errors.values())


def evaluate_molecular_checkpoint(model, extra: dict, *, split: str = "test",
                                  n: int | None = None, data_dir: str | None = None,
                                  batch_size: int = 64) -> dict[str, Any]:
    """Re-load the checkpoint's data set (config stored in ``extra``) and evaluate ``model``.

    Parameters
    ----------
    model : Potential
        As returned by :func:`symformer.load`.
    extra : dict
        The checkpoint's ``extra`` (``task``, ``config``, ``metrics``), as written by
        ``symformer train rmd17|qm9|--data``.
    split : {"train", "val", "test"}
    n : int, optional
        Only the first ``n`` structures of the split.
    data_dir : str, optional
        Where the data set lives, if not where it was trained from.
    """
    from ._mol_data import load_task_data
    from .molecules import evaluate_potential

    cfg = dict(extra.get("config") or {})
    if not cfg.get("task"):
        raise ValueError("checkpoint: records no molecular training config (extra['config'])")
    if split not in ("train", "val", "test"):
        raise ValueError(f"split: expected 'train', 'val' or 'test', got {split!r}")
    if data_dir is not None:
        cfg["data_dir"] = data_dir
    if split == "test" and n is not None:
        cfg["n_test"] = n
    data = load_task_data(cfg)
    if n is not None and split != "test":
        data.splits[split] = data.splits[split].subset(np.arange(min(n, len(data.splits[split]))))
        data.offsets[split] = data.offsets[split][:len(data.splits[split])]
    dtype = next(model.parameters()).dtype
    result = evaluate_potential(model, data, split, batch_size)
    saved = extra.get("metrics") or {}
    return {"model": cfg.get("model_name"), "data": data.name, "split": split, **result,
            "published": data.published,
            "equivariance_error": _equivariance_error(model, data, split, dtype),
            "parameters": sum(p.numel() for p in model.parameters()),
            "seconds_per_epoch": saved.get("seconds_per_epoch")}


def mol_result_row(m: dict) -> list[str]:
    """One table row (see :data:`MOL_RESULT_HEADERS`) from :func:`evaluate_molecular_checkpoint`."""
    unit = m.get("energy_unit", "")
    forces = f"{m['forces_mae']:.2f} meV/A" if "forces_mae" in m else "-"
    pub = "; ".join(f"{k} {v[0]} / {v[1]}" if isinstance(v, (list, tuple)) else f"{k} {v}"
                    for k, v in (m.get("published") or {}).items()) or "-"
    eq = m.get("equivariance_error")
    spe = m.get("seconds_per_epoch")
    return [str(m["model"]), f"{m['data']} ({m['n']})", m["split"],
            f"{m['energy_mae']:.3f} {unit}", forces, pub,
            "-" if eq is None else f"{eq:.1e}", f"{m['parameters']:,}",
            "-" if spe is None else f"{spe:.1f} s"]
