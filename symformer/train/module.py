"""A generic Lightning module for regression with any registered symformer model.

The module stores the model's registry name and keyword config as hyperparameters, so a Lightning
checkpoint rebuilds it without the training script. A batch is a dict of keyword inputs for the
model's ``forward`` plus ``"target"``; the model's output is compared with the target.
"""

from __future__ import annotations

import math
from typing import Any

import lightning as L
import torch
from torch import Tensor, nn
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

from ..models import create

__all__ = ["RegressionModule", "LOSSES"]

LOSSES = {"mse": nn.functional.mse_loss, "l1": nn.functional.l1_loss,
          "huber": nn.functional.huber_loss}


class RegressionModule(L.LightningModule):
    """Wraps ``symformer.models.create(model_name, **model_config)`` for training.

    Parameters
    ----------
    model_name : str
        Registered model name.
    model_config : dict
        Keyword config of the model.
    loss : str
        Training loss: ``"mse"``, ``"l1"`` or ``"huber"``. ``train_mse``/``val_mse``/``test_mse``
        are logged whatever the loss.
    optimizer : str
        ``"adam"`` or ``"adamw"``.
    lr, weight_decay : float
        Optimiser settings.
    scheduler : str
        ``"none"`` or ``"cosine"`` (per-epoch cosine decay to zero after ``warmup_epochs`` of linear
        warmup over ``epochs`` epochs).
    warmup_epochs, epochs : int
        Schedule lengths.
    ema_decay : float, optional
        When given, an exponential moving average of the weights is kept; validation, test and
        :meth:`export_model` use it.
    """

    def __init__(self, model_name: str, model_config: dict | None = None, *, loss: str = "mse",
                 optimizer: str = "adam", lr: float = 1e-3, weight_decay: float = 0.0,
                 scheduler: str = "none", warmup_epochs: int = 0, epochs: int = 1,
                 ema_decay: float | None = None):
        super().__init__()
        if loss not in LOSSES:
            raise ValueError(f"loss must be one of {sorted(LOSSES)}, got {loss!r}")
        if optimizer not in ("adam", "adamw"):
            raise ValueError(f"optimizer must be 'adam' or 'adamw', got {optimizer!r}")
        if scheduler not in ("none", "cosine"):
            raise ValueError(f"scheduler must be 'none' or 'cosine', got {scheduler!r}")
        if ema_decay is not None and not 0.0 < ema_decay < 1.0:
            raise ValueError(f"ema_decay must lie in (0, 1), got {ema_decay!r}")
        self.save_hyperparameters()
        self.model = create(model_name, **dict(model_config or {}))
        self.loss_fn = LOSSES[loss]
        self.ema = (AveragedModel(self.model, multi_avg_fn=get_ema_multi_avg_fn(ema_decay),
                                  use_buffers=True) if ema_decay is not None else None)

    # -- forward -------------------------------------------------------------------------------
    @staticmethod
    def split_batch(batch: dict[str, Tensor]) -> tuple[dict[str, Tensor], Tensor]:
        """``batch`` -> (keyword inputs of the model, target)."""
        inputs = {k: v for k, v in batch.items() if k != "target"}
        return inputs, batch["target"]

    def eval_model(self) -> nn.Module:
        """The weights used for validation, test and export (the EMA when enabled)."""
        return self.ema.module if self.ema is not None else self.model

    def forward(self, **inputs: Tensor) -> Tensor:
        return self.eval_model()(**inputs)

    # -- steps ---------------------------------------------------------------------------------
    def training_step(self, batch: dict[str, Tensor], batch_idx: int) -> Tensor:
        inputs, target = self.split_batch(batch)
        pred = self.model(**inputs)
        loss = self.loss_fn(pred, target)
        if not torch.isfinite(loss):  # stop here rather than train on for epochs of NaN weights
            raise FloatingPointError(
                f"training diverged at epoch {self.current_epoch + 1}, batch {batch_idx + 1}: "
                f"the loss is {float(loss.detach())}; start a new run with a lower lr (this one: "
                f"{self.hparams.lr:g})")
        n = target.shape[0]  # weight batches by their rows: the epoch value is a per-row mean
        self.log("train_mse", nn.functional.mse_loss(pred.detach(), target), on_step=False,
                 on_epoch=True, batch_size=n, sync_dist=True)
        if self.hparams.loss != "mse":
            self.log("train_loss", loss.detach(), on_step=False, on_epoch=True, batch_size=n,
                     sync_dist=True)
        return loss

    def on_train_batch_end(self, outputs: Any, batch: Any, batch_idx: int) -> None:
        if self.ema is not None:
            self.ema.update_parameters(self.model)

    def _eval_step(self, batch: dict[str, Tensor], name: str) -> Tensor:
        inputs, target = self.split_batch(batch)
        pred = self.eval_model()(**inputs)
        mse = nn.functional.mse_loss(pred, target)
        n = target.shape[0]  # weight batches by their rows: the epoch value is a per-row mean
        self.log(name, mse, on_step=False, on_epoch=True, batch_size=n, sync_dist=True,
                 prog_bar=True)
        return mse

    def validation_step(self, batch: dict[str, Tensor], batch_idx: int) -> Tensor:
        return self._eval_step(batch, "val_mse")

    def test_step(self, batch: dict[str, Tensor], batch_idx: int) -> Tensor:
        return self._eval_step(batch, "test_mse")

    # -- optimisation ----------------------------------------------------------------------------
    def configure_optimizers(self):
        hp = self.hparams
        cls = torch.optim.AdamW if hp.optimizer == "adamw" else torch.optim.Adam
        opt = cls(self.model.parameters(), lr=hp.lr, weight_decay=hp.weight_decay)
        if hp.scheduler == "none":
            return opt
        warmup, total = int(hp.warmup_epochs), max(int(hp.epochs), 1)

        def factor(epoch: int) -> float:
            if epoch < warmup:
                return (epoch + 1) / (warmup + 1)
            t = (epoch - warmup) / max(total - warmup, 1)
            return 0.5 * (1.0 + math.cos(math.pi * min(t, 1.0)))

        sched = torch.optim.lr_scheduler.LambdaLR(opt, factor)
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "epoch"}}

    # -- export ----------------------------------------------------------------------------------
    def export_model(self) -> nn.Module:
        """A fresh registry-built copy of the evaluation weights (for ``symformer.save``)."""
        model = create(self.hparams.model_name, **dict(self.hparams.model_config or {}))
        model.load_state_dict(self.eval_model().state_dict())
        dtype = next((p.dtype for p in self.model.parameters()), None)
        return model.to(dtype) if dtype is not None else model

    def num_parameters(self) -> int:
        """Trainable parameters of the wrapped model (the EMA copy is not counted)."""
        return sum(p.numel() for p in self.model.parameters() if p.requires_grad)
