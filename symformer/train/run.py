"""One training run, from a resolved config to a finished run folder.

``run_training(config, out)`` trains with Lightning, keeps atomic ``last``/``best`` checkpoints,
evaluates the test set with the best-validation checkpoint and writes into ``out``:
``metrics.json``, ``loss_curve.png``, ``trajectory.png`` and ``model.pt`` (the best model, for
:func:`symformer.load`). ``resume=True`` continues from ``out/checkpoints/last.ckpt`` and ends
where the uninterrupted run would have ended.

Tasks: ``nbody`` (charged 5-body) and ``gravity`` (the GATr benchmark, whose metrics add the
MSE of the best model on the ``ood`` and ``objects`` splits); :func:`gravity_config` resolves a
gravity config (``symformer train gravity``) and :func:`evaluate_gravity` is what
``symformer eval`` reports for a gravity checkpoint.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import sys
import time
import warnings
from datetime import datetime
from pathlib import Path
from typing import Any, Sequence

import lightning as L
import torch

from ..checkpoint import save
from ._run_config import check_resume, save_run_config
from .callbacks import AtomicCheckpointIO, History, loggers, standard_callbacks
from .evaluate import equivariance_error_of, trajectory_figure
from .module import RegressionModule
from .nbody import GravityDataModule, NBodyDataModule
from .plots import plot_loss_curve

__all__ = ["run_training", "default_run_dir", "DTYPES", "gravity_config",
           "evaluate_gravity", "GRAVITY_EXTRA_SPLITS"]

DTYPES = {"float32": torch.float32, "float64": torch.float64}
_PRECISION = {"float32": "32-true", "float64": "64-true"}
#: gravity test splits evaluated after training (as many systems as the test split)
GRAVITY_EXTRA_SPLITS = ("ood", "objects")
# Lightning noise dropped during a run, and nothing else: the cloud-logging tip logged at every
# Trainer construction, and the FutureWarning torch raises when Lightning's pytree helper
# builds a LeafSpec (Lightning's code, not ours).
_LITLOGGER_TIP = "try installing [litlogger]"
_LEAFSPEC_WARNING = r"`isinstance\(treespec, LeafSpec\)` is deprecated"


def default_run_dir(task: str, model_name: str, root: str | Path = "runs") -> Path:
    """``runs/<task>/<model>-<timestamp>``."""
    return Path(root) / task / f"{model_name}-{datetime.now().strftime('%Y%m%d-%H%M%S')}"


def _not_litlogger_tip(record: logging.LogRecord) -> bool:
    return _LITLOGGER_TIP not in record.getMessage()


@contextlib.contextmanager
def _quiet_lightning():
    """Within: no litlogger tip, no LeafSpec deprecation warning; both filters go on exit."""
    from lightning.pytorch.utilities.rank_zero import rank_zero_module

    log = rank_zero_module.log  # the logger of Lightning's rank_zero_info
    log.addFilter(_not_litlogger_tip)
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=_LEAFSPEC_WARNING, category=FutureWarning)
            yield
    finally:
        log.removeFilter(_not_litlogger_tip)


def _build(config: dict, run_dir: Path, callbacks: Sequence[L.Callback], cache_dir):
    dtype = DTYPES[config["dtype"]]
    kwargs = dict(n_train=config["n_train"], n_val=config["n_val"], n_test=config["n_test"],
                  batch_size=config["batch_size"], dtype=dtype, seed=config["seed"],
                  augment_rotations=config["augment_rotations"],
                  num_workers=config["num_workers"], cache_dir=cache_dir)
    if config["task"] == "gravity":  # the extra test splits are as large as the test split
        data = GravityDataModule(n_ood=config["n_test"], n_objects=config["n_test"], **kwargs)
    else:
        data = NBodyDataModule(**kwargs)
    module = RegressionModule(config["model_name"], config["model"], loss=config["loss"],
                              optimizer=config["optimizer"], lr=config["lr"],
                              weight_decay=config["weight_decay"], scheduler=config["scheduler"],
                              warmup_epochs=config["warmup_epochs"], epochs=config["epochs"],
                              ema_decay=config["ema_decay"])
    trainer = L.Trainer(
        default_root_dir=str(run_dir), max_epochs=config["epochs"],
        accelerator=config["accelerator"], devices=config["devices"],
        strategy=config["strategy"],
        precision=config["precision"] or _PRECISION[config["dtype"]],
        gradient_clip_val=config["grad_clip"], deterministic=config["deterministic"],
        callbacks=[*standard_callbacks(run_dir, progress_bar=config["progress_bar"]), *callbacks],
        logger=loggers(run_dir), plugins=[AtomicCheckpointIO()],
        enable_progress_bar=config["progress_bar"], enable_model_summary=False,
        num_sanity_val_steps=0, log_every_n_steps=1)
    return data, module, trainer


_SEED_ENV = ("PL_GLOBAL_SEED", "PL_SEED_WORKERS")


def run_training(config: dict, out: str | Path, *, resume: bool = False,
                 callbacks: Sequence[L.Callback] = (), command: Sequence[str] | None = None,
                 cache_dir: str | Path | None = None) -> dict[str, Any]:
    """Train, test and export one run; returns the contents of ``metrics.json``.

    Parameters
    ----------
    config : dict
        A resolved config (:func:`symformer.train.config.resolve_config`).
    out : path
        Run folder (created).
    resume : bool
        Continue from ``out/checkpoints/last.ckpt``.
    callbacks : sequence of Callback
        Extra Lightning callbacks.
    command : sequence of str, optional
        The command line recorded in ``metrics.json`` (default ``sys.argv``).
    cache_dir : path, optional
        n-body data cache folder (default ``$SYMFORMER_CACHE/nbody``).
    """
    run_dir = Path(out)
    last = run_dir / "checkpoints" / "last.ckpt"
    if resume and not last.is_file():
        raise FileNotFoundError(f"--resume: no checkpoint to resume from at {str(last)!r}")
    if not resume and (last.is_file() or (run_dir / "metrics.json").is_file()):
        # Never overwrite an earlier run's checkpoints and results silently.
        raise ValueError(f"out: {str(run_dir)!r} already holds a run; pass --resume to continue "
                         "it, or choose another --out")
    if resume:
        check_resume(run_dir, config)
    run_dir.mkdir(parents=True, exist_ok=True)
    save_run_config(run_dir, config)
    deterministic_before = torch.are_deterministic_algorithms_enabled()
    warn_only_before = torch.is_deterministic_algorithms_warn_only_enabled()
    # seed_everything exports the seed for Lightning's worker processes; put them back after
    env_before = {k: os.environ.get(k) for k in _SEED_ENV}
    t0 = time.perf_counter()
    with _quiet_lightning():
        try:
            L.seed_everything(config["seed"], workers=True, verbose=False)
            data, module, trainer = _build(config, run_dir, callbacks, cache_dir)
            trainer.fit(module, datamodule=data, ckpt_path=str(last) if resume else None)
            ckpt_cb = trainer.checkpoint_callback
            best_path = ckpt_cb.best_model_path if ckpt_cb is not None else ""
            if not best_path or not Path(best_path).is_file():
                raise RuntimeError("training produced no best checkpoint (no validation epoch ran)")
            # trainer.test(ckpt_path=best) restores callback states from the best checkpoint, which
            # would cut the history at the best epoch: keep the full one.
            history = next(cb for cb in trainer.callbacks if isinstance(cb, History))
            epochs = [dict(r) for r in history.epochs]
            test = trainer.test(module, datamodule=data, ckpt_path=best_path, verbose=False)
            best = torch.load(best_path, map_location="cpu", weights_only=True)
        finally:
            torch.use_deterministic_algorithms(deterministic_before, warn_only=warn_only_before)
            for key, value in env_before.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value
    history.epochs = epochs
    if not trainer.is_global_zero:
        return {}
    module.load_state_dict(best["state_dict"])
    module = module.cpu()
    model = module.export_model().eval()

    test_split = data.split("test")
    metrics = _metrics(config, module, model, history, best, test, test_split, t0, command)
    if config["task"] == "gravity":
        from .evaluate import evaluate_nbody

        for name in GRAVITY_EXTRA_SPLITS:
            metrics[f"{name}_mse"] = evaluate_nbody(model, data.split(name))
    # Through JSON: plain types only (weights_only loading rejects e.g. str subclasses).
    extra = json.loads(json.dumps({"task": config["task"], "config": config, "metrics": metrics}))
    save(model, run_dir / "model.pt", extra=extra)
    (run_dir / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
    plot_loss_curve(history.epochs, run_dir / "loss_curve.png",
                    title=f"{config['model_name']} on {config['task']}")
    trajectory_figure(model, test_split, run_dir / "trajectory.png",
                      n=config["trajectory_systems"])
    return metrics


def _metrics(config, module, model, history, best, test, test_split, t0, command) -> dict:
    from ..data.gravity import PUBLISHED_GRAVITY_MSE
    from ..data.nbody import PUBLISHED_MSE

    published = PUBLISHED_GRAVITY_MSE if config["task"] == "gravity" else PUBLISHED_MSE
    epochs = history.epochs
    best_epoch = int(best["epoch"]) + 1 if "epoch" in best else None  # 1-based, as in history
    val = [r["val_mse"] for r in epochs if "val_mse" in r]
    eq = equivariance_error_of(model, test_split, n_systems=config["equivariance_systems"])
    return {
        "task": config["task"],
        "model": config["model_name"],
        "test_mse": float(test[0]["test_mse"]) if test else None,
        "best_val_mse": min(val) if val else None,
        "best_epoch": best_epoch,
        "epochs_run": len(epochs),
        "published_mse": published.get(config["model_name"]),
        "equivariance_error": eq,
        "parameters": module.num_parameters(),
        "seconds_per_epoch": history.seconds_per_epoch(),
        "wall_seconds": time.perf_counter() - t0,
        "command": list(sys.argv if command is None else command),
        "seed": config["seed"],
        "config": config,
        "history": epochs,
        "host": {"torch": str(torch.__version__), "device": _device_name()},
    }


def _device_name() -> str:
    if torch.cuda.is_available():
        return torch.cuda.get_device_name(0)
    return "cpu"


def gravity_config(model_name: str, *, config_file: str | Path | None = None,
                   overrides: dict[str, Any] | None = None) -> dict:
    """The resolved config of a gravity run: ``configs/gravity/<model>.yaml`` (or
    ``config_file``) over the training defaults, then ``overrides``; ``task`` is ``"gravity"``."""
    from .config import default_config_path, resolve_config

    path = config_file if config_file is not None else default_config_path("gravity", model_name)
    if path is None:
        folder = Path(str(default_config_path("gravity", "gatr"))).parent
        known = sorted(p.stem for p in folder.glob("*.yaml"))
        raise ValueError(f"model: no gravity config for {model_name!r} (packaged: "
                         f"{', '.join(known)}); pass --config FILE")
    return resolve_config("gravity", model_name, config_file=path, overrides=overrides)


def evaluate_gravity(model: torch.nn.Module, *, splits: Sequence[str] = ("test", "ood", "objects"),
                     n: int = 5000, batch_size: int = 500,
                     equivariance_systems: int = 4) -> dict[str, Any]:
    """A gravity model's row of ``symformer eval``: ``model``, ``"<split> MSE"`` on the first
    ``n`` systems of each of ``splits``, ``"published (test)"`` and ``"equivariance error"``.

    Parameters
    ----------
    model : Module
        A loaded n-body model (:func:`symformer.load`), evaluated in its parameters' dtype.
    splits : sequence of str
        Keys of :data:`symformer.train.nbody.GRAVITY_SPLIT_NAMES`.
    n : int
        Systems per split (the release has 5000).
    """
    from ..data.gravity import PUBLISHED_GRAVITY_MSE
    from ..models import config_of
    from .evaluate import evaluate_nbody
    from .nbody import gravity_systems

    if n < 1:
        raise ValueError(f"n must be positive, got {n}")
    dtype = next((q.dtype for q in model.parameters()), torch.float32)
    name = config_of(model)["name"]
    row: dict[str, Any] = {"model": name}
    for split in splits:
        data = gravity_systems(split, n, dtype)
        row[f"{split} MSE"] = evaluate_nbody(model, data, batch_size=batch_size)
    row["published (test)"] = PUBLISHED_GRAVITY_MSE.get(name)
    row["equivariance error"] = equivariance_error_of(
        model, gravity_systems("test", max(equivariance_systems, 1), dtype),
        n_systems=equivariance_systems)
    return row
