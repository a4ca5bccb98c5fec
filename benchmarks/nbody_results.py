"""Collect n-body training runs into benchmarks/results/nbody.{json,md} and checkpoints.

Each run folder written by ``symformer train nbody`` holds metrics.json and model.pt. This script
copies the best model of each run to benchmarks/checkpoints/nbody/<model>.pt (loadable by
``symformer.load``) and writes one table of ours vs published, with the command, seed, epochs and
wall time of every run::

    python benchmarks/nbody_results.py runs/nbody-egnn-1000 [more run folders ...]

Runs already collected stay in the JSON; a newer run of the same model replaces the older only
when its test MSE is lower (pass --replace to force).
"""

from __future__ import annotations

import argparse
import csv
import json
import shlex
import shutil
import sys
from pathlib import Path

from symformer.data.nbody import PUBLISHED_MSE

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
CHECKPOINTS = HERE / "checkpoints" / "nbody"


def _logged_epochs(run: Path) -> int:
    """Validation epochs in the run's CSV logs, resumed parts included (the full record,
    whatever metrics.json kept)."""
    epochs = set()
    for log in (run / "logs").glob("**/metrics.csv"):
        with log.open() as f:
            epochs |= {row["epoch"] for row in csv.DictReader(f) if row.get("val_mse")}
    return len(epochs)


def _read_run(run: Path) -> dict:
    metrics_path = run / "metrics.json"
    if not metrics_path.is_file() or not (run / "model.pt").is_file():
        raise FileNotFoundError(f"{run}: expected metrics.json and model.pt from symformer train")
    m = json.loads(metrics_path.read_text())
    row = {key: m.get(key) for key in (
        "model", "test_mse", "published_mse", "best_val_mse", "best_epoch", "epochs_run",
        "equivariance_error", "parameters", "seconds_per_epoch", "wall_seconds", "seed",
        "command")}
    # Sum of epoch times stays right for runs finished with --resume; a run that was not
    # resumed has its whole wall time.
    train_seconds = sum(r.get("seconds", 0.0) for r in m.get("history", []))
    if "--resume" not in (m.get("command") or []):
        train_seconds = max(train_seconds, m.get("wall_seconds") or 0.0)
    row["epochs_run"] = max(row["epochs_run"] or 0, _logged_epochs(run))
    return row | {"run": run.name, "train_seconds": train_seconds}


def _markdown(rows: dict) -> str:
    lines = [
        "# Charged N-body (5 particles, 3000 training systems): test MSE",
        "",
        "Test MSE of the positions at the epoch with the best validation MSE, on the 2000 test",
        "systems of the published protocol (see `symformer.data.nbody`). Trained on the 2-core CPU",
        "of the development machine; `epochs` is what we ran, not the paper's budget.",
        "",
        "Published test MSE (3000 training systems): " + ", ".join(
            f"{k} {v}" for k, v in sorted(PUBLISHED_MSE.items(), key=lambda kv: kv[1])) + ".",
        "Models not in the table have not been trained on the full protocol yet.",
        "",
        "| model | ours | published | ratio | best epoch / epochs | equivariance error (fp32) "
        "| parameters | s/epoch | training time | seed | command |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, r in sorted(rows.items(), key=lambda kv: kv[1]["test_mse"]):
        pub = r.get("published_mse")
        ratio = f"{r['test_mse'] / pub:.2f}" if pub else "-"
        eq = r.get("equivariance_error")
        lines.append(
            f"| {name} | {r['test_mse']:.5f} | {pub if pub is not None else '-'} | {ratio} "
            f"| {r['best_epoch']} / {r['epochs_run']} | {eq:.1e} | {r['parameters']:,} "
            f"| {r['seconds_per_epoch']:.2f} | {r['train_seconds'] / 60:.0f} min | {r['seed']} "
            f"| `{shlex.join(r['command'])}` |")
    notes = [f"- **{name}**: {r['note']}" for name, r in sorted(rows.items()) if r.get("note")]
    if notes:
        lines += ["", "Notes:", "", *notes]
    return "\n".join(lines) + "\n"


def collect(argv: list[str] | None, name: str, markdown, description: str) -> int:
    """Read run folders (command-line ``argv``) into RESULTS/<name>.{json,md}; copy each kept
    run's model.pt to CHECKPOINTS/<model>.pt. ``markdown(rows) -> str`` renders the table."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("runs", nargs="+", type=Path, help="run folders of symformer train nbody")
    parser.add_argument("--replace", action="store_true", help="replace even if not better")
    parser.add_argument("--note", default="", help="how the run went, shown under the table")
    args = parser.parse_args(argv)
    RESULTS.mkdir(parents=True, exist_ok=True)
    CHECKPOINTS.mkdir(parents=True, exist_ok=True)
    json_path = RESULTS / f"{name}.json"
    rows = json.loads(json_path.read_text()) if json_path.is_file() else {}
    for run in args.runs:
        row = _read_run(run)
        model, old = row["model"], rows.get(row["model"])
        if old and not args.replace and old["test_mse"] <= row["test_mse"]:
            print(f"{model}: keeping {old['run']} (test MSE {old['test_mse']:.5f})",
                  file=sys.stderr)
            continue
        shutil.copyfile(run / "model.pt", CHECKPOINTS / f"{model}.pt")
        rows[model] = row | {"note": args.note}
    json_path.write_text(json.dumps(rows, indent=2) + "\n")
    md_path = RESULTS / f"{name}.md"
    md_path.write_text(markdown(rows))
    print(md_path.read_text())
    return 0


def main(argv: list[str] | None = None) -> int:
    return collect(argv, "nbody", _markdown, __doc__.split("\n")[0])


if __name__ == "__main__":
    sys.exit(main())
