"""``symformer models``: the registered models and layers."""

from __future__ import annotations

import argparse

__all__ = ["add_parser", "run", "model_rows"]

HEADERS = ("name", "kind", "group", "inputs", "outputs", "description")


def _types(t) -> str:
    if isinstance(t, dict):
        return ", ".join(f"{k}={v}" for k, v in t.items())
    if isinstance(t, (list, tuple)):
        return ", ".join(str(v) for v in t)
    return str(t)


def model_rows(kind: str | None = None) -> list[tuple[str, ...]]:
    """One row per registered entry (see :data:`HEADERS`)."""
    from ..models import available, create, spec

    rows = []
    for name in available(kind):
        s = spec(name)
        try:
            group = str(s.make_group(create(name)))
        except Exception as e:  # a broken entry is listed, not fatal for the listing
            group = f"<error: {type(e).__name__}>"
        rows.append((name, s.kind, group, _types(s.in_types), _types(s.out_types),
                     s.description))
    return rows


def run(args: argparse.Namespace) -> int:
    from ._table import format_table

    rows = model_rows(args.kind)
    if not rows:
        print("no registered models or layers")
        return 0
    print(format_table(HEADERS, rows))
    return 0


def add_parser(subparsers) -> None:
    p = subparsers.add_parser("models", help="list registered models and layers",
                              description="List the registered models and layers with their "
                                          "symmetry group and input/output field types.")
    p.add_argument("--kind", choices=("model", "layer"), default=None,
                   help="only models or only layers")
    p.set_defaults(func=run)
