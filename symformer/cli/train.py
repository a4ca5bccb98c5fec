"""``symformer train TASK --model NAME [options] [--key value ...]``: train and report.

Any ``--key value`` not listed below overrides the config: ``--lr 1e-3``, ``--batch-size 50``,
``--model.hidden 64`` (or ``--set key=value``). Unknown keys are errors naming the key.
"""

from __future__ import annotations

import argparse
import sys
import types

__all__ = ["add_parser", "run"]


def _collect_overrides(parser: argparse.ArgumentParser):
    # argparse hands unknown "--key value" pairs back from parse_known_args; keep them as config
    # overrides instead of letting the top-level parser reject them.
    original = parser.parse_known_args

    def parse_known_args(self, args=None, namespace=None):
        given = list(sys.argv[2:] if args is None else args)
        if given and given[0].startswith("-") and any(
                a == "--data" or a.startswith("--data=") for a in given):
            # "train --data FILE ...": the task is "atoms"; naming it keeps the values of
            # override options from being read as the task
            args = ["atoms", *given]
        ns, extras = original(args, namespace)
        ns.argv = ["symformer", "train", *(sys.argv[2:] if args is None else args)]
        ns.overrides = list(getattr(ns, "overrides", None) or []) + list(extras)
        return ns, []

    parser.parse_known_args = types.MethodType(parse_known_args, parser)


def run(args: argparse.Namespace) -> int:
    from ..train import result_row, resolve_config
    from ..train.config import parse_overrides
    from ..train.evaluate import RESULT_HEADERS
    from ..train.run import default_run_dir, gravity_config, run_training
    from ._table import format_table

    overrides = parse_overrides(args.overrides)
    overrides.update(parse_overrides(args.set or []))
    if args.task in ("rmd17", "qm9", "atoms") or args.task is None or args.data is not None:
        return _run_molecules(args, overrides)
    for key, flag in (("epochs", "epochs"), ("seed", "seed"), ("n_train", "limit_train"),
                      ("devices", "devices"), ("accelerator", "accelerator"),
                      ("strategy", "strategy")):
        value = getattr(args, flag)
        if value is not None:
            overrides[key] = value
    if args.no_progress:
        overrides["progress_bar"] = False
    config_file = _config_file(args, args.task)
    if args.task == "gravity":
        config = gravity_config(args.model, config_file=config_file, overrides=overrides)
    else:
        config = resolve_config(args.task, args.model, config_file=config_file,
                                overrides=overrides)
    out = args.out or default_run_dir(args.task, args.model)
    metrics = run_training(config, out, resume=args.resume, command=args.argv)
    if metrics and args.task == "gravity":
        print(f"\n{args.model} on gravity: test MSE {metrics['test_mse']:.4g}, ood MSE "
              f"{metrics['ood_mse']:.4g}, objects MSE {metrics['objects_mse']:.4g} (published "
              f"{metrics['published_mse']}); best epoch {metrics['best_epoch']}; run folder: {out}")
    elif metrics:
        print()
        print(format_table(RESULT_HEADERS, [result_row(metrics)]))
        print(f"\nbest epoch {metrics['best_epoch']} (val MSE {metrics['best_val_mse']:.4g}); "
              f"run folder: {out}")
    return 0


def _run_molecules(args: argparse.Namespace, overrides: dict) -> int:
    # rmd17 / qm9 / --data FILE (task "atoms"): the molecular trainer of symformer.train.molecules
    from ..train.molecules import resolve_mol_config, run_molecules
    from ..train.run import default_run_dir

    task = args.task or "atoms"
    for key in ("data", "energy_key", "forces_key"):
        if getattr(args, key) is not None:
            overrides[key] = getattr(args, key)
    if task == "atoms" and "data" not in overrides:
        raise ValueError("task: give one of nbody, rmd17, qm9, or --data FILE")
    for key, flag in (("epochs", "epochs"), ("seed", "seed"), ("n_train", "limit_train")):
        if getattr(args, flag) is not None:
            overrides[key] = getattr(args, flag)
    if args.no_progress:
        overrides["progress_bar"] = False
    device = _mol_device(args.accelerator, args.devices, args.strategy)
    if device is not None:
        overrides["device"] = device
    config = resolve_mol_config(task, args.model, overrides, config_file=_config_file(args, task))
    out = args.out or default_run_dir(task, args.model)
    m = run_molecules(config, out, resume=args.resume, command=args.argv)
    t = m["test"]
    forces = f", forces MAE {t['forces_mae']:.3g} {t['forces_unit']}" if "forces_mae" in t else ""
    print(f"\n{m['dataset']} test ({t['n']} structures): energy MAE {t['energy_mae']:.3g} "
          f"{t['energy_unit']}{forces}; {m['epochs_run']} epochs; run folder: {out}")
    return 0


def _mol_device(accelerator, devices, strategy):
    """The molecular trainer's one device from Lightning-style options (None: the config's)."""
    if strategy not in (None, "auto"):
        raise ValueError(f"--strategy: the molecular trainer runs on one device; got {strategy!r}")
    if devices not in (None, 1, "auto"):
        raise ValueError(f"--devices: the molecular trainer runs on one device; got {devices!r} "
                         f"(pick a GPU with --set device=cuda:N)")
    if accelerator is None:
        return None
    return {"gpu": "cuda"}.get(str(accelerator).lower(), str(accelerator).lower())


def _config_file(args: argparse.Namespace, task: str):
    """``--config``; on ``--resume`` without it, the config the run folder was started with
    (the command line's options then apply over it, and the trainer checks what they change)."""
    if not args.resume:
        return args.config
    if args.out is None:
        raise ValueError("--resume needs --out DIR, the run folder to continue")
    from ..train._run_config import resume_config_file

    return args.config if args.config is not None else resume_config_file(args.out, task)


def _devices(text: str):
    return int(text) if text.isdigit() else text


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "train", help="train a registered model on a task",
        description="Train a registered model on a task (nbody: the charged 5-body benchmark of "
                    "EGNN; gravity --model gatr|transformer|symformer3d: GATr's star-and-planets benchmark; "
                    "rmd17 --molecule NAME --data-dir DIR; qm9 --target U0 --data-dir DIR; "
                    "images --dataset D --model M (see symformer train images --help); "
                    "or --data FILE --energy-key K --forces-key K for any ASE-readable file). Extra '--key value' pairs override the config (e.g. --lr 1e-3, "
                    "--model.hidden 64).", allow_abbrev=False)
    p.add_argument("task", nargs="?", choices=("nbody", "gravity", "rmd17", "qm9", "atoms"), default=None,
                   help="the task (atoms, or omitted, with --data FILE: an ASE-readable file)")
    p.add_argument("--model", required=True, help="registered model name (see symformer models)")
    p.add_argument("--config", default=None, help="YAML config (default: the packaged one)")
    p.add_argument("--epochs", type=int, default=None, help="number of epochs")
    p.add_argument("--out", default=None, help="run folder (default runs/<task>/<model>-<time>)")
    p.add_argument("--seed", type=int, default=None, help="random seed")
    p.add_argument("--resume", action="store_true", help="continue from OUT/checkpoints/last.ckpt")
    p.add_argument("--limit-train", type=int, default=None, dest="limit_train", metavar="N",
                   help="train on the first N systems")
    p.add_argument("--devices", type=_devices, default=None, help="Lightning devices")
    p.add_argument("--accelerator", default=None, help="Lightning accelerator (cpu, gpu, auto)")
    p.add_argument("--strategy", default=None, help="Lightning strategy (auto, ddp, ...)")
    p.add_argument("--data", default=None, metavar="FILE",
                   help="train a potential on an ASE-readable file (extxyz, ASE db, ...)")
    p.add_argument("--energy-key", default=None, dest="energy_key", metavar="KEY",
                   help="energy key in FILE (default energy)")
    p.add_argument("--forces-key", default=None, dest="forces_key", metavar="KEY",
                   help="forces key in FILE (default forces)")
    p.add_argument("--set", action="append", metavar="KEY=VALUE", help="config override")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=run, overrides=[])
    _collect_overrides(p)
