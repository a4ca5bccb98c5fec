"""``symformer eval CHECKPOINT [--split S]``: evaluate a saved model on its task (nbody, gravity,
or a molecular task: rmd17, qm9, atoms). The checkpoint is loaded once; the task it records (or
``--task``) picks the evaluator."""

from __future__ import annotations

import argparse

__all__ = ["add_parser", "run"]

_SPLITS = ("train", "val", "test")
#: gravity adds two test splits, and "all" (test, ood and objects) is its default
_GRAVITY_SPLITS = (*_SPLITS, "ood", "objects", "all")


def run(args: argparse.Namespace) -> int:
    from .. import load
    from ..models import config_of
    from ..train.evaluate import (RESULT_HEADERS, equivariance_error_of, evaluate_nbody,
                                  result_row)
    from ..train.nbody import SPLIT_NAMES
    from ._table import format_table

    model = load(args.checkpoint, map_location=args.device)
    extra = getattr(model, "checkpoint_extra", {}) or {}
    task = args.task or extra.get("task")
    if task is None:
        raise ValueError(f"checkpoint {args.checkpoint!r} does not record its task; pass --task")
    if task == "gravity":
        return _run_gravity(model, args)
    if args.split is None:
        args.split = "test"
    elif args.split not in _SPLITS:
        raise ValueError(f"--split {args.split!r} is a gravity split; task {task!r} has "
                         f"{', '.join(_SPLITS)}")
    if task in ("rmd17", "qm9", "atoms"):
        return _run_molecular(model, extra, args)
    if task != "nbody":
        raise ValueError(f"unknown task {task!r}; available: nbody, gravity, rmd17, qm9, atoms")
    from ..data.nbody import PUBLISHED_MSE, load_split

    dtype = next((p.dtype for p in model.parameters()), None)
    data = load_split(SPLIT_NAMES[args.split], n=args.n, dtype=dtype or None)
    name = config_of(model)["name"]
    saved = extra.get("metrics", {}) if isinstance(extra.get("metrics"), dict) else {}
    metrics = {
        "model": name,
        "test_mse": evaluate_nbody(model, data, batch_size=args.batch_size),
        "published_mse": PUBLISHED_MSE.get(name),
        "equivariance_error": equivariance_error_of(model, data, n_systems=args.equivariance_systems),
        "parameters": sum(p.numel() for p in model.parameters()),
        "seconds_per_epoch": saved.get("seconds_per_epoch"),
    }
    headers = list(RESULT_HEADERS)
    headers[1] = f"our MSE ({args.split}, {data['pos'].shape[0]} systems)"
    print(format_table(headers, [result_row(metrics)]))
    return 0


def _run_gravity(model, args: argparse.Namespace) -> int:
    # MSE on the test, ood and objects splits (5000 systems each, as released) or on one split
    from ..train.run import evaluate_gravity
    from ._table import format_table

    n = 5000 if args.n is None else args.n
    if n < 1:
        raise ValueError(f"--n must be positive, got {n}")
    split = args.split or "all"
    row = evaluate_gravity(model, splits=("test", "ood", "objects") if split == "all" else (split,),
                           n=n, batch_size=args.batch_size,
                           equivariance_systems=args.equivariance_systems)
    cells = [f"{v:.4g}" if isinstance(v, float) else ("-" if v is None else str(v))
             for v in row.values()]
    print(format_table(list(row), [cells]))
    return 0


def _run_molecular(model, extra: dict, args: argparse.Namespace) -> int:
    from ..train.mol_eval import MOL_RESULT_HEADERS, evaluate_molecular_checkpoint, mol_result_row
    from ._table import format_table

    metrics = evaluate_molecular_checkpoint(model, extra, split=args.split, n=args.n,
                                            data_dir=args.data_dir,
                                            batch_size=min(args.batch_size, 64))
    print(format_table(list(MOL_RESULT_HEADERS), [mol_result_row(metrics)]))
    return 0


def add_parser(subparsers) -> None:
    p = subparsers.add_parser("eval", help="evaluate a saved model on its task",
                              description="Load a model saved by 'symformer train' (model.pt) and "
                                          "report its error (n-body MSE; gravity MSE on the test, "
                                          "ood and objects splits; molecular energy and force "
                                          "MAE) and equivariance error.")
    p.add_argument("checkpoint", help="path of a symformer checkpoint (model.pt)")
    p.add_argument("--split", choices=_GRAVITY_SPLITS, default=None,
                   help="default test; gravity: all (test, ood and objects)")
    p.add_argument("--n", type=int, default=None,
                   help="only the first N systems of the split (gravity: default 5000)")
    p.add_argument("--task", default=None, help="task, when the checkpoint does not record it")
    p.add_argument("--batch-size", type=int, default=500, dest="batch_size")
    p.add_argument("--equivariance-systems", type=int, default=4, dest="equivariance_systems")
    p.add_argument("--device", default="cpu", help="torch device (cpu, cuda, ...)")
    p.add_argument("--data-dir", default=None, dest="data_dir",
                   help="molecular checkpoints: where the data set lives, if it moved")
    p.set_defaults(func=run)
