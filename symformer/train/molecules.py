"""Training of interatomic potentials and molecular property models: rMD17, QM9, ASE files.

``run_molecules(config, out)`` trains a registered :class:`~symformer.models.potential.Potential`
with a weighted energy + force loss (forces by autograd, ``create_graph``), an EMA of the weights,
a time budget and resumable checkpoints, then tests the best-validation EMA weights and writes
into ``out``: ``metrics.json`` (MAE in meV and meV/Angstrom, or the QM9 target's paper unit),
``loss_curve.png`` and ``model.pt`` (for :func:`symformer.load` and the ASE calculator).

Energies are compared without the per-element reference energies: those are fitted by least
squares on the training set in float64 and subtracted there, so a float32 model never sees
totals of thousands of eV.
"""

from __future__ import annotations

import copy
import json
import math
import sys
import time
from pathlib import Path
from typing import Any

import torch

from ..checkpoint import atomic_save, save
from ..data.atoms import iterate_batches
from ..models import create
from ._device import device_name, resolve_device
from ._mol_data import MolData, load_task_data
from ._run_config import check_resume, save_run_config

__all__ = ["MOL_TASKS", "MOL_DEFAULTS", "resolve_mol_config", "run_molecules", "evaluate_potential"]

MOL_TASKS = ("rmd17", "qm9", "atoms")
MOL_DEFAULTS: dict[str, Any] = {
    "task": "rmd17", "model_name": None, "model": {},
    "molecule": "ethanol", "data_dir": "../shared/data/rmd17", "data": None,
    "energy_key": "energy", "forces_key": "forces", "target": "U0", "split": "110k",
    "n_train": 950, "n_val": 50, "n_test": None,
    "epochs": 1000, "batch_size": 8, "lr": 1e-3, "min_lr": 1e-5, "weight_decay": 0.0,
    "scheduler": "cosine", "warmup_steps": 500, "plateau_patience": 20, "plateau_factor": 0.8,
    "energy_weight": 1.0, "forces_weight": 100.0, "final_energy_weight": None,
    "final_fraction": 0.2, "ema_decay": 0.99, "grad_clip": 10.0,
    "dtype": "float32", "seed": 0, "time_limit_min": None, "eval_batch_size": 64,
    "progress_bar": True, "device": "cpu",
}
_CHOICES = {"task": MOL_TASKS, "scheduler": ("cosine", "cosine_time", "plateau"),
            "dtype": ("float32", "float64")}
_DTYPES = {"float32": torch.float32, "float64": torch.float64}


def resolve_mol_config(task: str, model_name: str, overrides: dict | None = None,
                       config_file=None) -> dict:
    """Defaults <- ``configs/<task>/<model>.yaml`` (or ``config_file``) <- ``overrides``."""
    from .config import _model_params, _read_yaml, default_config_path

    if task not in MOL_TASKS:
        raise ValueError(f"task: expected one of {MOL_TASKS}, got {task!r}")
    params = _model_params(model_name)
    cfg = copy.deepcopy(MOL_DEFAULTS)
    cfg.update(task=task, model_name=model_name)
    layers = []
    path = config_file if config_file is not None else default_config_path(task, model_name)
    if path is not None:
        layers.append(_read_yaml(path))
    layers.append(dict(overrides or {}))
    for layer in layers:
        for key, value in layer.items():
            if key == "model" and isinstance(value, dict):
                items = [(f"model.{k}", v) for k, v in value.items()]
            else:
                items = [(key, value)]
            for k, v in items:
                if k.startswith("model."):
                    sub = k[len("model."):]
                    if params is not None and sub not in params:
                        raise ValueError(f"unknown model config key {sub!r} for {model_name!r}; "
                                         f"allowed: {sorted(params)}")
                    cfg["model"][sub] = v
                elif k == "model_name":
                    if v != model_name:
                        raise ValueError(f"config is for model {v!r}, not {model_name!r}")
                elif k not in MOL_DEFAULTS:
                    raise ValueError(f"unknown config key {k!r}; known keys: "
                                     f"{', '.join(sorted(MOL_DEFAULTS))}")
                elif k in _CHOICES and v not in _CHOICES[k]:
                    raise ValueError(f"config key {k!r} must be one of {_CHOICES[k]}, got {v!r}")
                else:
                    d = MOL_DEFAULTS[k]
                    cfg[k] = float(v) if isinstance(d, float) and isinstance(v, int) else v
    if cfg["ema_decay"] is not None and not 0.0 <= cfg["ema_decay"] < 1.0:
        raise ValueError(f"config key 'ema_decay' must lie in [0, 1), got {cfg['ema_decay']!r}")
    if cfg["task"] == "atoms" and not cfg["data"]:
        raise ValueError("data: the atoms task needs --data FILE")
    if cfg["scheduler"] == "cosine_time" and not cfg["time_limit_min"]:
        raise ValueError("scheduler: 'cosine_time' anneals over the time budget and needs "
                         "time_limit_min")
    resolve_device(cfg["device"])  # fails early on a device this machine does not have
    return cfg


def _to(b: dict, device: torch.device) -> dict:
    return {k: v.to(device, non_blocking=True) if isinstance(v, torch.Tensor) else v
            for k, v in b.items()}


def _predict(model, b: dict, need_forces: bool) -> dict:
    return model(b["atomic_numbers"], b["pos"], b["batch"], cell=b.get("cell"),
                 pbc=True, compute_forces=need_forces, compute_stress=False,
                 add_reference=False, num_graphs=int(b["num_atoms"].shape[0]))


def _loss(out: dict, b: dict, cfg: dict, target_key: str) -> tuple[torch.Tensor, dict]:
    n = b["num_atoms"].to(out["energy"].dtype)
    e_err = (out["energy"] - b[target_key]) / n  # per atom
    loss = cfg["energy_weight"] * e_err.square().mean()
    parts = {"energy_mse_per_atom": float(e_err.detach().square().mean())}
    if "forces" in b and "forces" in out:
        f_mse = (out["forces"] - b["forces"]).square().mean()
        loss = loss + cfg["forces_weight"] * f_mse
        parts["forces_mse"] = float(f_mse.detach())
    return loss, parts


def evaluate_potential(model, data: MolData, which: str, batch_size: int = 64) -> dict:
    """MAE/RMSE of ``model`` on split ``which``: energy in meV (or the QM9 target's unit) and
    forces in meV/Angstrom."""
    ds = data.splits[which]
    dtype, device = next(model.parameters()).dtype, next(model.parameters()).device
    e_err, f_err = [], []
    model.eval()
    for idx in iterate_batches(len(ds), batch_size):
        b = _to(data.batch(which, idx, dtype), device)
        out = _predict(model, b, data.has_forces)
        e_err.append((out["energy"].detach() - b["energy"]).double())
        if data.has_forces:
            f_err.append((out["forces"].detach() - b["forces"]).double())
    e = torch.cat(e_err) * data.energy_to_report
    res = {"energy_mae": float(e.abs().mean()), "energy_rmse": float(e.square().mean().sqrt()),
           "energy_unit": data.report_unit, "n": len(ds)}
    if f_err:
        f = torch.cat(f_err) * 1000.0
        res.update(forces_mae=float(f.abs().mean()), forces_rmse=float(f.square().mean().sqrt()),
                   forces_unit="meV/Angstrom")
    return res


class _EMA:
    def __init__(self, model, decay):
        self.decay, self.shadow = decay, {k: v.detach().clone() for k, v in
                                          model.state_dict().items()}

    @torch.no_grad()
    def update(self, model):
        for k, v in model.state_dict().items():
            if v.is_floating_point():
                self.shadow[k].lerp_(v, 1.0 - self.decay)
            else:
                self.shadow[k].copy_(v)


def _progress(cfg: dict, step: int, total: int, train_seconds: float) -> float:
    """Fraction of the run done: by steps, or by training time for ``cosine_time``."""
    if cfg["scheduler"] == "cosine_time":
        return min(train_seconds / (60.0 * cfg["time_limit_min"]), 1.0)
    return min(step / max(total, 1), 1.0)


def _lr_factor(cfg: dict, step: int, total: int, train_seconds: float = 0.0) -> float:
    warm = min(1.0, (step + 1) / max(cfg["warmup_steps"], 1))
    if cfg["scheduler"] == "plateau":
        return warm
    t = _progress(cfg, step, total, train_seconds)
    floor = cfg["min_lr"] / cfg["lr"]
    return warm * (floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * t)))


def run_molecules(cfg: dict, out, *, resume: bool = False, command=None) -> dict:
    """Train, test and export one run (see the module docstring); returns ``metrics.json``."""
    from .plots import plot_loss_curve

    out = Path(out)
    last = out / "checkpoints" / "last.pt"
    if resume and not last.is_file():
        raise FileNotFoundError(f"--resume: no checkpoint to resume from at {str(last)!r}")
    if not resume and (last.is_file() or (out / "metrics.json").is_file()):
        raise ValueError(f"out: {str(out)!r} already holds a run; pass --resume or another --out")
    if resume:
        check_resume(out, cfg)
    save_run_config(out, cfg)  # creates the run folder
    t0 = time.perf_counter()
    torch.manual_seed(cfg["seed"])
    dtype, device = _DTYPES[cfg["dtype"]], resolve_device(cfg["device"])
    data = load_task_data(cfg)
    model = create(cfg["model_name"], **cfg["model"]).to(dtype)
    model.set_energy_stats(data.atomic_energies, scale=data.scale, shift=data.shift)
    model.to(device)
    ema = _EMA(model, cfg["ema_decay"] or 0.0)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg["lr"], weight_decay=cfg["weight_decay"],
                            amsgrad=True)
    state = {"epoch": 0, "step": 0, "history": [], "best_val": math.inf, "best_state": None,
             "lr_scale": 1.0, "bad_epochs": 0, "train_seconds": 0.0}
    if resume:
        ck = torch.load(last, map_location="cpu", weights_only=True)
        model.load_state_dict(ck["model"])
        ema.shadow = {k: v.to(device) for k, v in ck["ema"].items()}
        opt.load_state_dict(ck["optimizer"])
        state = ck["state"]
        torch.set_rng_state(ck["rng"])
    n_train = len(data.splits["train"])
    steps_per_epoch = math.ceil(n_train / cfg["batch_size"])
    total = cfg["epochs"] * steps_per_epoch
    limit = None if cfg["time_limit_min"] is None else 60.0 * cfg["time_limit_min"]
    target_key = "energy"
    stopped_by_time = False
    while state["epoch"] < cfg["epochs"]:
        te = time.perf_counter()
        model.train()
        sums: dict[str, float] = {}
        stage = dict(cfg)
        done = _progress(cfg, state["epoch"], cfg["epochs"], state["train_seconds"])
        if cfg["final_energy_weight"] is not None and done >= 1.0 - cfg["final_fraction"]:
            stage["energy_weight"] = cfg["final_energy_weight"]  # MACE's second stage
        for idx in iterate_batches(n_train, cfg["batch_size"], shuffle=True):
            b = _to(data.batch("train", idx, dtype), device)
            seconds = state["train_seconds"] + time.perf_counter() - te
            lr = cfg["lr"] * _lr_factor(cfg, state["step"], total, seconds) * state["lr_scale"]
            for g in opt.param_groups:
                g["lr"] = lr
            loss, parts = _loss(_predict(model, b, data.has_forces), b, stage, target_key)
            if not all(math.isfinite(v) for v in parts.values()):
                raise FloatingPointError(
                    f"training diverged at epoch {state['epoch'] + 1}, step {state['step'] + 1}: "
                    f"{', '.join(f'{k}={v:.4g}' for k, v in parts.items())}"
                    + (f"; {str(last)!r} holds epoch {state['epoch']}" if state["epoch"] else "")
                    + f". Start a new run with a lower lr (this one: {cfg['lr']:g}).")
            opt.zero_grad(set_to_none=True)
            loss.backward()
            if cfg["grad_clip"]:
                torch.nn.utils.clip_grad_norm_(model.parameters(), cfg["grad_clip"])
            opt.step()
            ema.update(model)
            state["step"] += 1
            for k, v in parts.items():
                sums[k] = sums.get(k, 0.0) + v * len(idx) / n_train
        state["epoch"] += 1
        evalm = create(cfg["model_name"], **cfg["model"]).to(device, dtype)
        evalm.load_state_dict(ema.shadow)
        val = evaluate_potential(evalm, data, "val", cfg["eval_batch_size"])
        score = val["energy_mae"] + val.get("forces_mae", 0.0)  # meV + meV/A with forces
        if score < state["best_val"]:
            state["best_val"], state["best_state"], state["bad_epochs"] = score, copy.deepcopy(
                ema.shadow), 0
        else:
            state["bad_epochs"] += 1
            if cfg["scheduler"] == "plateau" and state["bad_epochs"] > cfg["plateau_patience"]:
                state["lr_scale"] *= cfg["plateau_factor"]
                state["bad_epochs"] = 0
        state["train_seconds"] += time.perf_counter() - te
        row = {"epoch": state["epoch"], "train_mse": sums.get("forces_mse",
                                                                sums["energy_mse_per_atom"]),
               "val_mse": (val.get("forces_rmse", val["energy_rmse"])) ** 2,
               **{f"train_{k}": v for k, v in sums.items()},
               **{f"val_{k}": v for k, v in val.items() if not isinstance(v, str)},
               "lr": opt.param_groups[0]["lr"], "seconds": time.perf_counter() - te}
        state["history"].append(row)
        if cfg["progress_bar"]:
            msg = " ".join(f"{k}={v:.4g}" for k, v in row.items() if k.startswith("val_") and
                           k.endswith("mae"))
            print(f"epoch {state['epoch']}/{cfg['epochs']} {msg} "
                  f"({row['seconds']:.1f}s)", file=sys.stderr, flush=True)
        atomic_save({"model": model.state_dict(), "ema": ema.shadow, "optimizer": opt.state_dict(),
                     "state": state, "rng": torch.get_rng_state()}, last)
        if limit is not None and time.perf_counter() - t0 > limit:
            stopped_by_time = True
            break
    best = create(cfg["model_name"], **cfg["model"]).to(device, dtype)
    best.load_state_dict(state["best_state"] or ema.shadow)
    test = evaluate_potential(best, data, "test", cfg["eval_batch_size"])
    best.cpu()  # the exported checkpoint loads anywhere
    best_epoch = min(state["history"], key=lambda r: r.get("val_forces_mae", 0)
                     + r["val_energy_mae"])["epoch"]
    metrics = {"task": cfg["task"], "model": cfg["model_name"], "dataset": data.name,
               "test": test, "best_val_score": state["best_val"], "best_epoch": best_epoch,
               "epochs_run": state["epoch"], "stopped_by_time_limit": stopped_by_time,
               "n_train": n_train, "n_val": len(data.splits["val"]),
               "parameters": sum(p.numel() for p in model.parameters()),
               "train_seconds": state["train_seconds"],
               "seconds_per_epoch": state["train_seconds"] / max(state["epoch"], 1),
               "wall_seconds_this_call": time.perf_counter() - t0,
               "command": list(sys.argv if command is None else command), "seed": cfg["seed"],
               "published": data.published, "config": cfg, "history": state["history"],
               "host": {"torch": str(torch.__version__), "threads": torch.get_num_threads(),
                        "device": device_name(device)}}
    extra = json.loads(json.dumps({"task": cfg["task"], "config": cfg, "metrics": {
        k: v for k, v in metrics.items() if k != "history"}}))
    save(best, out / "model.pt", extra=extra)
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
    plot_loss_curve(state["history"], out / "loss_curve.png",
                    title=f"{cfg['model_name']} on {data.name} (force or target MSE)")
    return metrics
