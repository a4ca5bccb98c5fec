"""``symformer check [NAME ...] [--all]``: verify equivariance of registered models and layers."""

from __future__ import annotations

import argparse

__all__ = ["add_parser", "run"]

HEADERS = ("name", "dtype", "transformation", "max rel. error", "tolerance", "ok")
_DTYPES = {"float32": ("float32",), "float64": ("float64",), "both": ("float32", "float64")}


def run(args: argparse.Namespace) -> int:
    import torch

    from ..models import available, spec
    from ..testing import check_registered
    from ._table import format_table

    if args.samples < 1:
        raise ValueError(f"--samples must be at least 1, got {args.samples}")
    names = list(args.names)
    for name in names:
        spec(name)  # unknown name -> ValueError naming it (exit 2)
    if args.all or not names:
        names = available()
    if not names:
        print("no registered models or layers to check")
        return 0
    dtypes = tuple(getattr(torch, d) for d in _DTYPES[args.dtype])
    rows, failed = [], []
    for name in names:
        try:  # a generator per entry: its report is the same alone and within --all
            results = check_registered(name, dtypes, args.samples, None, args.device,
                                       seed=args.seed)
        except Exception as e:  # report and continue: one broken entry must not hide the rest
            rows.append((name, "-", "-", f"{type(e).__name__}: {e}", "-", "FAIL"))
            failed.append(name)
            continue
        for r in results:
            rows.append((r.name, r.dtype, r.kind, f"{r.error:.2e}", f"{r.tolerance:.0e}",
                         "ok" if r.passed else "FAIL"))
            if not r.passed:
                failed.append(name)
    print(format_table(HEADERS, rows))
    if failed:
        print(f"\n{len(set(failed))} of {len(names)} failed: {', '.join(sorted(set(failed)))}")
        return 1
    print(f"\nall {len(names)} equivariant within tolerance")
    return 0


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "check", help="verify equivariance of registered models and layers",
        description="Transform inputs by random group elements (rotations, reflections, "
                    "translations, permutations, ...) and compare with the transformed outputs. "
                    "Without NAME, every registered model and layer is checked. Exit code 1 if "
                    "any check fails.")
    p.add_argument("names", nargs="*", metavar="NAME", help="registered model or layer names")
    p.add_argument("--all", action="store_true", help="check every registered model and layer")
    p.add_argument("--dtype", choices=tuple(_DTYPES), default="both",
                   help="dtype(s) to check in (default: both)")
    p.add_argument("--samples", type=int, default=4, help="group elements per transformation kind")
    p.add_argument("--seed", type=int, default=0,
                   help="seed of the example inputs and group elements (each entry starts from it)")
    p.add_argument("--device", default="cpu", help="where the modules run (cpu, cuda, cuda:N)")
    p.set_defaults(func=run)
