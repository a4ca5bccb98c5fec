"""Compact training and evaluation of image classifiers on the MNIST variants.

Plain torch: AdamW, cosine learning rate with linear warm-up, cross-entropy, a tqdm progress
bar, the best-validation weights kept in memory, a test evaluation with them, and at the end

* ``<out>/<dataset>_<model>.pt``: the best model (``symformer.load`` reads it; its ``extra``
  holds the metrics), written atomically;
* ``<out>/<dataset>_<model>.json``: metrics, config, command, wall time, per-epoch history.

Command line::

    python -m symformer.train.images --dataset rotated_mnist --model octic_vit \
        --epochs 5 --n-train 12000 --config '{"copies": 8, "depth": 4, "heads": 4}' --out runs
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from .._io import atomic_write
from ..checkpoint import save
from ..data.image_variants import load_image_dataset
from ..registry import create

__all__ = ["to_float", "accuracy", "predict", "shift_consistency", "train_image_classifier",
           "main"]


def to_float(images: Tensor) -> Tensor:
    """uint8 ``(N, H, W)`` in [0, 255] -> float32 ``(N, 1, H, W)`` in [0, 1]."""
    return images.float().div(255.0).unsqueeze(1)


@torch.no_grad()
def predict(model: nn.Module, images: Tensor, batch_size: int = 500) -> Tensor:
    """Predicted classes ``(N,)`` of uint8 images ``(N, H, W)`` (model put in eval mode)."""
    model.eval()
    p = next(model.parameters())
    out = [model(to_float(images[i:i + batch_size]).to(p.dtype)).argmax(-1)
           for i in range(0, len(images), batch_size)]
    return torch.cat(out)


def accuracy(model: nn.Module, images: Tensor, labels: Tensor, batch_size: int = 500) -> float:
    """Share of correctly classified images."""
    return float((predict(model, images, batch_size) == labels).double().mean())


def shift_consistency(model: nn.Module, images: Tensor, *, n_pairs: int = 1, seed: int = 0,
                      batch_size: int = 500) -> float:
    """Share of images whose predicted class is the same under two independent random cyclic
    shifts (rows and columns uniform), averaged over ``n_pairs`` pairs of shifts per image."""
    g = torch.Generator().manual_seed(seed)
    H, W = images.shape[-2:]
    agree = 0.0
    for _ in range(n_pairs):
        preds = []
        for _ in range(2):
            r = torch.randint(0, H, (len(images),), generator=g)
            c = torch.randint(0, W, (len(images),), generator=g)
            i = (torch.arange(H)[None, :, None] - r[:, None, None]) % H
            j = (torch.arange(W)[None, None, :] - c[:, None, None]) % W
            preds.append(predict(model, images[torch.arange(len(images))[:, None, None], i, j],
                                 batch_size))
        agree += float((preds[0] == preds[1]).double().mean())
    return agree / n_pairs


def _lr_factor(step: int, warmup: int, progress: float) -> float:
    """Linear warm-up over ``warmup`` steps, then cosine decay in ``progress`` (0 -> 1)."""
    if step < warmup:
        return (step + 1) / warmup
    return 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))


def train_image_classifier(dataset: str, model_name: str, *, config: dict | None = None,
                           epochs: int = 5, batch_size: int = 128, lr: float = 2e-3,
                           weight_decay: float = 0.05, n_train: int | None = None,
                           n_test: int | None = None, seed: int = 0,
                           out: str | Path = "runs/images", data_root: str | None = None,
                           max_minutes: float | None = None, progress: bool = True,
                           command: str | None = None) -> dict[str, Any]:
    """Train ``model_name`` on ``dataset`` and write the checkpoint and metrics (see module doc).

    Parameters
    ----------
    n_train, n_test : int, optional
        Use the first ``n_train`` training / ``n_test`` test images (default: all).
    max_minutes : float, optional
        Wall-time budget of the training steps. The cosine schedule follows whichever runs out
        first, steps or time, and training stops when it reaches its end (possibly within an
        epoch; the metrics record the epochs done), so a slow machine still anneals.

    Returns
    -------
    dict
        The metrics written to the json file.
    """
    from tqdm import tqdm

    for name, v in (("epochs", epochs), ("batch_size", batch_size)):
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise ValueError(f"{name} must be a positive int, got {v!r}")
    config = dict(config or {})
    torch.manual_seed(seed)
    xtr, ytr = load_image_dataset(dataset, "train", root=data_root)
    xva, yva = load_image_dataset(dataset, "valid", root=data_root)
    xte, yte = load_image_dataset(dataset, "test", root=data_root)
    if n_train is not None:
        xtr, ytr = xtr[:n_train], ytr[:n_train]
    if n_test is not None:
        xte, yte = xte[:n_test], yte[:n_test]
    model = create(model_name, **config)
    params = sum(p.numel() for p in model.parameters())
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)
    steps_per_epoch = math.ceil(len(xtr) / batch_size)
    total = epochs * steps_per_epoch
    warmup = max(1, min(100, total // 10))
    g = torch.Generator().manual_seed(seed)
    history, best, best_state = [], -1.0, None
    start, train_time, n_steps, done = time.time(), 0.0, 0, False
    budget = None if max_minutes is None else 60.0 * max_minutes
    for epoch in range(epochs):
        model.train()
        perm = torch.randperm(len(xtr), generator=g)
        bar = tqdm(range(steps_per_epoch), desc=f"{model_name} epoch {epoch + 1}/{epochs}",
                   disable=not progress, file=sys.stderr, mininterval=5.0)
        loss_sum, t0, n = 0.0, time.time(), 0
        for s in bar:
            progress = n_steps / total
            if budget is not None:
                progress = max(progress, (train_time + time.time() - t0) / budget)
            if progress >= 1.0:
                done = True
                break
            for group in opt.param_groups:
                group["lr"] = lr * _lr_factor(n_steps, warmup, progress)
            idx = perm[s * batch_size:(s + 1) * batch_size]
            loss = F.cross_entropy(model(to_float(xtr[idx])), ytr[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            loss_sum, n, n_steps = loss_sum + loss.item(), n + 1, n_steps + 1
            bar.set_postfix(loss=f"{loss_sum / n:.4f}")
        train_time += time.time() - t0
        val = accuracy(model, xva, yva)
        history.append({"epoch": epoch + n / steps_per_epoch, "train_loss": loss_sum / max(1, n),
                        "valid_acc": val, "wall_s": time.time() - start})
        print(f"epoch {epoch + n / steps_per_epoch:.2f}: train loss {loss_sum / max(1, n):.4f},"
              f" valid acc {val:.4f}", file=sys.stderr)
        if val > best:
            best, best_state = val, {k: v.clone() for k, v in model.state_dict().items()}
        if done:
            break
    model.load_state_dict(best_state)
    test_acc = accuracy(model, xte, yte)
    metrics = {
        "dataset": dataset, "model": model_name, "config": config, "seed": seed,
        "epochs_run": round(n_steps / steps_per_epoch, 3), "epochs_planned": epochs,
        "steps": n_steps, "max_minutes": max_minutes, "batch_size": batch_size,
        "lr": lr, "weight_decay": weight_decay, "n_train": len(xtr), "n_valid": len(xva),
        "n_test": len(xte), "parameters": params, "best_valid_acc": best,
        "test_acc": test_acc, "test_error": 1 - test_acc,
        "train_s_per_step": train_time / max(1, n_steps), "wall_s": time.time() - start,
        "threads": torch.get_num_threads(), "command": command, "history": history,
    }
    out = Path(out)
    stem = f"{dataset}_{model_name}"
    save(model, out / f"{stem}.pt", extra={k: v for k, v in metrics.items() if k != "history"})
    atomic_write(out / f"{stem}.json",
                 lambda f: f.write((json.dumps(metrics, indent=2) + "\n").encode()))
    return metrics


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Command-line entry point (see the module docstring)."""
    p = argparse.ArgumentParser(prog="python -m symformer.train.images", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dataset", required=True)
    p.add_argument("--model", required=True)
    p.add_argument("--config", default="{}", help="model config as JSON")
    p.add_argument("--epochs", type=int, default=5)
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--weight-decay", type=float, default=0.05)
    p.add_argument("--n-train", type=int, default=None)
    p.add_argument("--n-test", type=int, default=None)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default="runs/images")
    p.add_argument("--data-root", default=None)
    p.add_argument("--max-minutes", type=float, default=None)
    p.add_argument("--no-progress", action="store_true")
    a = p.parse_args(argv)
    try:
        config = json.loads(a.config)
    except json.JSONDecodeError as e:
        p.error(f"--config is not valid JSON: {e}")
    cmd = "python -m symformer.train.images " + " ".join(argv if argv is not None
                                                         else sys.argv[1:])
    m = train_image_classifier(a.dataset, a.model, config=config, epochs=a.epochs,
                               batch_size=a.batch_size, lr=a.lr, weight_decay=a.weight_decay,
                               n_train=a.n_train, n_test=a.n_test, seed=a.seed, out=a.out,
                               data_root=a.data_root, max_minutes=a.max_minutes,
                               progress=not a.no_progress, command=cmd)
    print(json.dumps({k: v for k, v in m.items() if k != "history"}, indent=2))
    return m


if __name__ == "__main__":
    main()
