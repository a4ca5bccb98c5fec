"""Callbacks and plugins of a training run: atomic checkpoints, history, progress, loggers.

* :class:`AtomicCheckpointIO` writes every Lightning checkpoint through
  :func:`symformer.checkpoint.atomic_save` (temporary file, fsync, rename), so an interrupted run
  never leaves a half-written ``last.ckpt`` behind.
* :func:`checkpoint_callbacks` keep ``checkpoints/last.ckpt`` (every epoch, for ``--resume``) and
  ``checkpoints/best.ckpt`` (lowest validation MSE).
* :class:`History` records train/val MSE and wall time per epoch; its state travels inside the
  checkpoints, so a resumed run reports the whole curve.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import lightning as L
from lightning.pytorch.callbacks import ModelCheckpoint, TQDMProgressBar
from lightning.pytorch.loggers import CSVLogger
from lightning.pytorch.plugins.io import TorchCheckpointIO

from ..checkpoint import atomic_save

__all__ = ["AtomicCheckpointIO", "History", "checkpoint_callbacks", "standard_callbacks",
           "loggers", "MONITOR"]

MONITOR = "val_mse"


class AtomicCheckpointIO(TorchCheckpointIO):
    """Lightning checkpoint I/O that writes with :func:`symformer.checkpoint.atomic_save`."""

    def save_checkpoint(self, checkpoint: dict[str, Any], path, storage_options=None) -> None:
        if storage_options is not None:
            raise TypeError("AtomicCheckpointIO does not take storage_options")
        atomic_save(checkpoint, path)


def checkpoint_callbacks(run_dir: str | Path) -> list[ModelCheckpoint]:
    """``best.ckpt`` at the lowest ``val_mse`` and ``last.ckpt`` after every epoch.

    Two callbacks, because Lightning's ``save_last`` only refreshes ``last.ckpt`` in epochs that
    also wrote a top-k checkpoint: a resumed run would restart from the best epoch. The best
    one comes first, so it is ``trainer.checkpoint_callback``. Both save at train-epoch end
    (Lightning runs checkpointing last), so the History row of the epoch is inside.
    """
    folder = Path(run_dir) / "checkpoints"
    common = dict(dirpath=folder, enable_version_counter=False, auto_insert_metric_name=False,
                  save_on_train_epoch_end=True)
    best = ModelCheckpoint(filename="best", monitor=MONITOR, mode="min", save_top_k=1, **common)
    last = ModelCheckpoint(filename="last", monitor=None, save_top_k=1, **common)
    return [best, last]


class History(L.Callback):
    """Per-epoch ``train_mse``, ``val_mse`` and seconds (train + validation) of the run."""

    def __init__(self) -> None:
        self.epochs: list[dict[str, float]] = []
        self._start: float | None = None

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._start = time.perf_counter()

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.sanity_checking:
            return
        metrics = trainer.callback_metrics
        row = {"epoch": trainer.current_epoch + 1,  # 1-based
               "seconds": time.perf_counter() - self._start if self._start is not None else 0.0}
        for key in ("train_mse", MONITOR):
            if key in metrics:
                row[key] = float(metrics[key])
        self.epochs.append(row)

    def seconds_per_epoch(self) -> float | None:
        """Median epoch time: robust to the slower first epoch."""
        times = sorted(r["seconds"] for r in self.epochs)
        return times[len(times) // 2] if times else None

    def state_dict(self) -> dict[str, Any]:
        return {"epochs": [dict(r) for r in self.epochs]}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.epochs = [dict(r) for r in state_dict.get("epochs", [])]


def standard_callbacks(run_dir: str | Path, *, progress_bar: bool = True) -> list[L.Callback]:
    """The callbacks every run uses: checkpoints, history and (optionally) the TQDM bar."""
    cbs: list[L.Callback] = [*checkpoint_callbacks(run_dir), History()]
    if progress_bar:
        cbs.append(TQDMProgressBar())
    return cbs


def _free_version(folder: Path) -> str:
    """``""`` for a new run; ``resume-<k>`` when ``folder`` already holds a log, because
    Lightning's CSV logger would otherwise delete the earlier epochs' log on --resume."""
    if not (folder / "metrics.csv").is_file():
        return ""
    k = 1
    while (folder / f"resume-{k}").exists():
        k += 1
    return f"resume-{k}"


def loggers(run_dir: str | Path) -> list:
    """A CSV logger into the run folder, plus TensorBoard when it is installed."""
    version = _free_version(Path(run_dir) / "logs")
    out: list = [CSVLogger(save_dir=str(run_dir), name="logs", version=version)]
    try:
        from lightning.pytorch.loggers import TensorBoardLogger

        out.append(TensorBoardLogger(save_dir=str(run_dir), name="tensorboard", version=version))
    except (ImportError, ModuleNotFoundError):
        pass
    return out
