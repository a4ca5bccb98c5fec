"""Compact training and evaluation of image classifiers on the MNIST variants.

Plain torch: AdamW, cosine learning rate with linear warm-up, cross-entropy, a tqdm progress
bar, the best-validation weights kept in memory, a test evaluation with them, and at the end

* ``<out>/<dataset>_<model>.pt``: the best model (``symformer.load`` reads it; its ``extra``
  holds the metrics), written atomically;
* ``<out>/<dataset>_<model>.json``: metrics, config, command, wall time, per-epoch history;
* ``<out>/<dataset>_<model>.state.pt``: the training state after every epoch (``--resume``
  continues from it).

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
from ._device import device_name, resolve_device
from ._run_config import check_unchanged

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
    out = [model(to_float(images[i:i + batch_size]).to(p.device, p.dtype)).argmax(-1).cpu()
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


def _save_state(path: Path, **state: Any) -> None:
    atomic_write(path, lambda f: torch.save(state, f))


def train_image_classifier(dataset: str, model_name: str, *, config: dict | None = None,
                           epochs: int = 5, batch_size: int = 128, lr: float = 2e-3,
                           weight_decay: float = 0.05, label_smoothing: float = 0.0,
                           n_train: int | None = None, n_test: int | None = None,
                           seed: int = 0, out: str | Path = "runs/images",
                           name: str | None = None, data_root: str | None = None,
                           max_minutes: float | None = None, resume: bool = False,
                           channels_last: bool = False, progress: bool = True,
                           command: str | None = None, device: str = "cpu"
                           ) -> dict[str, Any]:
    """Train ``model_name`` on ``dataset`` and write the checkpoint and metrics (see module doc).

    Parameters
    ----------
    n_train, n_test : int, optional
        Use the first ``n_train`` training / ``n_test`` test images (default: all).
    name : str, optional
        File stem of the outputs (default ``<dataset>_<model_name>``).
    max_minutes : float, optional
        Wall-time budget of the training steps. The cosine schedule follows whichever runs out
        first, steps or time, and training stops when it reaches its end (possibly within an
        epoch; the metrics record the epochs done), so a slow machine still anneals.
    resume : bool
        Continue from ``<out>/<name>.state.pt`` (written after every epoch: model, optimiser,
        random states, history, best weights and the training time used) when it exists.
    channels_last : bool
        Train in the channels-last memory format (same values, faster convolutions on CPU).
    device : str
        ``"cpu"``, ``"cuda"`` (``"gpu"``), ``"cuda:N"`` or ``"auto"``; a resumed run may change it.
        The saved checkpoint holds CPU tensors either way.

    Returns
    -------
    dict
        The metrics written to the json file.
    """
    from tqdm import tqdm

    for key, v in (("epochs", epochs), ("batch_size", batch_size)):
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise ValueError(f"{key} must be a positive int, got {v!r}")
    if not 0.0 <= label_smoothing < 1.0:
        raise ValueError(f"label_smoothing must be in [0, 1), got {label_smoothing!r}")
    config = dict(config or {})
    dev = resolve_device(device)
    out = Path(out)
    stem = name or f"{dataset}_{model_name}"
    state_path = out / f"{stem}.state.pt"
    torch.manual_seed(seed)
    xtr, ytr = load_image_dataset(dataset, "train", root=data_root)
    xva, yva = load_image_dataset(dataset, "valid", root=data_root)
    if n_train is not None:
        xtr, ytr = xtr[:n_train], ytr[:n_train]
    model = create(model_name, **config)
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    model = model.to(dev, memory_format=fmt)
    params = sum(p.numel() for p in model.parameters())
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)
    steps_per_epoch = math.ceil(len(xtr) / batch_size)
    total = epochs * steps_per_epoch
    warmup = max(1, min(100, total // 10))
    g = torch.Generator().manual_seed(seed)
    history, best, best_state = [], -1.0, None
    train_time, n_steps, done, first_epoch, wall_before = 0.0, 0, False, 0, 0.0
    # What the run trains; a resumed run must keep it (see symformer.train._run_config).
    options = {"dataset": dataset, "model_name": model_name, "model": config, "epochs": epochs,
               "batch_size": batch_size, "lr": lr, "weight_decay": weight_decay,
               "label_smoothing": label_smoothing, "n_train": n_train, "seed": seed}
    if resume and state_path.is_file():
        st = torch.load(state_path, map_location="cpu", weights_only=True)
        if "options" in st:  # states written before the options were kept have none
            check_unchanged(st["options"], options, repr(str(state_path)))
        model.load_state_dict(st["model"])
        opt.load_state_dict(st["opt"])
        g.set_state(st["generator"])
        torch.set_rng_state(st["rng"])
        history, best, best_state = st["history"], st["best"], st["best_state"]
        train_time, n_steps, done = st["train_time"], st["n_steps"], st["done"]
        first_epoch, wall_before = st["epoch"], st["wall_s"]
        print(f"resumed {state_path} at epoch {first_epoch}", file=sys.stderr)
    start = time.time() - wall_before
    budget = None if max_minutes is None else 60.0 * max_minutes
    for epoch in range(first_epoch, epochs):
        if done:
            break
        model.train()
        perm = torch.randperm(len(xtr), generator=g)
        bar = tqdm(range(steps_per_epoch), desc=f"{model_name} epoch {epoch + 1}/{epochs}",
                   disable=not progress, file=sys.stderr, mininterval=5.0)
        loss_sum, t0, n = 0.0, time.time(), 0
        for s in bar:
            frac = n_steps / total
            if budget is not None:
                frac = max(frac, (train_time + time.time() - t0) / budget)
            if frac >= 1.0:
                done = True
                break
            for group in opt.param_groups:
                group["lr"] = lr * _lr_factor(n_steps, warmup, frac)
            idx = perm[s * batch_size:(s + 1) * batch_size]
            xb = to_float(xtr[idx]).to(dev).contiguous(memory_format=fmt)
            loss = F.cross_entropy(model(xb), ytr[idx].to(dev),
                                   label_smoothing=label_smoothing)
            value = loss.item()
            if not math.isfinite(value):
                raise FloatingPointError(
                    f"training diverged at epoch {epoch + 1}, step {s + 1}: the loss is "
                    f"{value}; start a new run with a lower lr (this one: {lr:g})")
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            loss_sum, n, n_steps = loss_sum + value, n + 1, n_steps + 1
            bar.set_postfix(loss=f"{loss_sum / n:.4f}")
        train_time += time.time() - t0
        done = done or n_steps >= total
        val = accuracy(model, xva, yva)
        history.append({"epoch": n_steps / steps_per_epoch, "train_loss": loss_sum / max(1, n),
                        "valid_acc": val, "wall_s": time.time() - start})
        print(f"epoch {n_steps / steps_per_epoch:.2f}: train loss {loss_sum / max(1, n):.4f},"
              f" valid acc {val:.4f}", file=sys.stderr)
        if val > best:
            best, best_state = val, {k: v.clone() for k, v in model.state_dict().items()}
        _save_state(state_path, model=model.state_dict(), opt=opt.state_dict(),
                    generator=g.get_state(), rng=torch.get_rng_state(), history=history,
                    best=best, best_state=best_state, train_time=train_time,
                    n_steps=n_steps, done=done, epoch=epoch + 1, wall_s=time.time() - start,
                    options=options)
    model.load_state_dict(best_state)
    model = model.to(memory_format=torch.contiguous_format)
    xte, yte = load_image_dataset(dataset, "test", root=data_root)
    if n_test is not None:
        xte, yte = xte[:n_test], yte[:n_test]
    t_test = time.time()
    test_acc = accuracy(model, xte, yte)
    metrics = {
        "dataset": dataset, "model": model_name, "name": stem, "config": config, "seed": seed,
        "epochs_run": round(n_steps / steps_per_epoch, 3), "epochs_planned": epochs,
        "steps": n_steps, "max_minutes": max_minutes, "batch_size": batch_size,
        "lr": lr, "weight_decay": weight_decay, "label_smoothing": label_smoothing,
        "n_train": len(xtr), "n_valid": len(xva), "n_test": len(xte), "parameters": params,
        "best_valid_acc": best, "test_acc": test_acc, "test_error": 1 - test_acc,
        "test_eval_s": time.time() - t_test,
        "train_s_per_step": train_time / max(1, n_steps), "wall_s": time.time() - start,
        "channels_last": channels_last, "threads": torch.get_num_threads(),
        "device": device_name(dev),
        "command": command, "history": history,
    }
    model = model.cpu()  # the checkpoint loads anywhere
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
    p.add_argument("--label-smoothing", type=float, default=0.0)
    p.add_argument("--n-train", type=int, default=None)
    p.add_argument("--n-test", type=int, default=None)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default="runs/images")
    p.add_argument("--name", default=None, help="output file stem (default <dataset>_<model>)")
    p.add_argument("--resume", action="store_true",
                   help="continue from <out>/<name>.state.pt when it exists")
    p.add_argument("--data-root", default=None)
    p.add_argument("--max-minutes", type=float, default=None)
    p.add_argument("--channels-last", action="store_true",
                   help="channels-last memory format (faster convolutions on CPU)")
    p.add_argument("--no-progress", action="store_true")
    p.add_argument("--device", default="cpu", help="cpu, cuda (gpu), cuda:N or auto")
    a = p.parse_args(argv)
    try:
        config = json.loads(a.config)
    except json.JSONDecodeError as e:
        p.error(f"--config is not valid JSON: {e}")
    cmd = "python -m symformer.train.images " + " ".join(argv if argv is not None
                                                         else sys.argv[1:])
    m = train_image_classifier(a.dataset, a.model, config=config, epochs=a.epochs,
                               batch_size=a.batch_size, lr=a.lr, weight_decay=a.weight_decay,
                               label_smoothing=a.label_smoothing, n_train=a.n_train,
                               n_test=a.n_test, seed=a.seed, out=a.out, name=a.name,
                               data_root=a.data_root, max_minutes=a.max_minutes,
                               resume=a.resume, channels_last=a.channels_last,
                               progress=not a.no_progress, command=cmd, device=a.device)
    print(json.dumps({k: v for k, v in m.items() if k != "history"}, indent=2))
    return m


if __name__ == "__main__":
    main()
