"""The ``symformer`` command.

Each subcommand lives in its own module exposing ``add_parser(subparsers)``, which registers the
subcommand and sets ``func`` (``args -> exit code``) as its default. Subcommand modules are
imported lazily by name so that ``symformer --version`` stays instant.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from .._version import __version__

__all__ = ["main", "build_parser"]

# subcommand name -> module under symformer.cli
SUBCOMMANDS = {
    "models": "models",
    "check": "check",
    "train": "train",
    "eval": "evaluate",
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="symformer",
        description="Equivariant transformers: list models, verify equivariance, train, evaluate.")
    parser.add_argument("--version", action="version", version=f"symformer {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, module in SUBCOMMANDS.items():
        try:
            mod = importlib.import_module(f"symformer.cli.{module}")
        except ModuleNotFoundError as e:
            if e.name == f"symformer.cli.{module}":
                continue  # subcommand not part of this installation
            raise
        mod.add_parser(sub)
    return parser


def _own_parser(label: str, entry: str, argv: list[str]) -> int:
    """Run a subcommand that parses its own options (``symformer.train.<entry>``): the image
    trainer. User errors: one line, exit code 2."""
    module, func = entry.rsplit(".", 1)
    try:
        getattr(importlib.import_module(f"symformer.train.{module}"), func)(argv)
    except (ValueError, TypeError, FileNotFoundError) as e:
        print(f"symformer {label}: error: {e}", file=sys.stderr)
        return 2
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:2] == ["train", "images"]:
        return _own_parser("train images", "images.main", argv[2:])
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 0
    try:
        return int(args.func(args) or 0)
    except (ValueError, TypeError, FileNotFoundError, FloatingPointError) as e:
        # User errors (a diverged training too): one clear line, no traceback.
        print(f"symformer {args.command}: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
