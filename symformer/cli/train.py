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
        ns, extras = original(args, namespace)
        ns.argv = ["symformer", "train", *(sys.argv[2:] if args is None else args)]
        ns.overrides = list(getattr(ns, "overrides", None) or []) + list(extras)
        return ns, []

    parser.parse_known_args = types.MethodType(parse_known_args, parser)


def run(args: argparse.Namespace) -> int:
    from ..train import result_row, resolve_config
    from ..train.config import parse_overrides
    from ..train.evaluate import RESULT_HEADERS
    from ..train.run import default_run_dir, run_training
    from ._table import format_table

    overrides = parse_overrides(args.overrides)
    overrides.update(parse_overrides(args.set or []))
    for key, flag in (("epochs", "epochs"), ("seed", "seed"), ("n_train", "limit_train"),
                      ("devices", "devices"), ("accelerator", "accelerator"),
                      ("strategy", "strategy")):
        value = getattr(args, flag)
        if value is not None:
            overrides[key] = value
    if args.no_progress:
        overrides["progress_bar"] = False
    config = resolve_config(args.task, args.model, config_file=args.config, overrides=overrides)
    if args.resume and args.out is None:
        raise ValueError("--resume needs --out DIR, the run folder to continue")
    out = args.out or default_run_dir(args.task, args.model)
    metrics = run_training(config, out, resume=args.resume, command=args.argv)
    if metrics:
        print()
        print(format_table(RESULT_HEADERS, [result_row(metrics)]))
        print(f"\nbest epoch {metrics['best_epoch']} (val MSE {metrics['best_val_mse']:.4g}); "
              f"run folder: {out}")
    return 0


def _devices(text: str):
    return int(text) if text.isdigit() else text


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "train", help="train a registered model on a task",
        description="Train a registered model on a task (nbody: the charged 5-body benchmark of "
                    "EGNN). Extra '--key value' pairs override the config (e.g. --lr 1e-3, "
                    "--model.hidden 64).", allow_abbrev=False)
    p.add_argument("task", choices=("nbody",), help="the task")
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
    p.add_argument("--set", action="append", metavar="KEY=VALUE", help="config override")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=run, overrides=[])
    _collect_overrides(p)
