"""Collect the geometric-algebra n-body runs (GATr, CGENN, GLGENN) into
benchmarks/results/ga_nbody.{json,md} and benchmarks/checkpoints/nbody/<model>.pt.

Each run folder comes from ``symformer train nbody --model <gatr|cgenn|glgenn> ...`` (metrics.json
and model.pt, read as :mod:`nbody_results` reads them)::

    python benchmarks/ga_nbody_results.py RUN [RUN ...] [--note TEXT]

The table shows the best run of each model; a newer run replaces it (and its checkpoint) only
when its test MSE is lower (``--replace`` forces). Every collected run stays listed under the
table (``runs`` of each model in the JSON). The published reference is CGENN's 0.0039
(Ruhe et al. 2023).
"""

from __future__ import annotations

import argparse
import json
import shlex
import shutil
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from nbody_results import CHECKPOINTS, RESULTS, _read_run  # noqa: E402

from symformer.data.nbody import PUBLISHED_MSE  # noqa: E402

REFERENCE = PUBLISHED_MSE["cgenn"]
_RUN_KEYS = ("run", "test_mse", "best_val_mse", "best_epoch", "epochs_run", "parameters",
             "seconds_per_epoch", "train_seconds", "seed", "command", "note")


def _summary(row: dict) -> dict:
    return {k: row.get(k) for k in _RUN_KEYS}


def markdown(rows: dict) -> str:
    lines = [
        "# Charged N-body with geometric-algebra models: test MSE",
        "",
        "Test MSE of the positions at the best validation epoch on the 2000 test systems of the",
        "published protocol (3000 training systems). Trained on the shared 2-core CPU of the",
        f"development machine with short budgets; the published CGENN reaches {REFERENCE}",
        "after long training. `epochs` is what we ran, not the papers' budgets. The table shows",
        "each model's best run; every run is listed below it.",
        "",
        "| model | ours | published | ours / CGENN 0.0039 | best epoch / epochs | "
        "equivariance error (fp32) | parameters | s/epoch | training time | seed | command |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, r in sorted(rows.items(), key=lambda kv: kv[1]["test_mse"]):
        pub = PUBLISHED_MSE.get(name)
        eq = r.get("equivariance_error")
        lines.append(
            f"| {name} | {r['test_mse']:.5f} | {pub if pub is not None else '-'} "
            f"| {r['test_mse'] / REFERENCE:.1f} | {r['best_epoch']} / {r['epochs_run']} "
            f"| {eq if eq is None else f'{eq:.1e}'} | {r['parameters']:,} "
            f"| {r['seconds_per_epoch']:.0f} | {r['train_seconds'] / 60:.0f} min | {r['seed']} "
            f"| `{shlex.join(r['command'])}` |")
    lines += ["", "Every run (in the order collected):", "",
              "| model | run | test MSE | best epoch / epochs | training time | command | note |",
              "|---|---|---|---|---|---|---|"]
    for name, r in sorted(rows.items()):
        for run in r.get("runs", [_summary(r)]):
            lines.append(
                f"| {name} | {run['run']} | {run['test_mse']:.5f} "
                f"| {run['best_epoch']} / {run['epochs_run']} "
                f"| {run['train_seconds'] / 60:.0f} min | `{shlex.join(run['command'])}` "
                f"| {run.get('note') or ''} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("runs", nargs="+", type=Path, help="run folders of symformer train nbody")
    parser.add_argument("--replace", action="store_true", help="replace even if not better")
    parser.add_argument("--note", default="", help="how the run went, listed with the run")
    args = parser.parse_args(argv)
    CHECKPOINTS.mkdir(parents=True, exist_ok=True)
    json_path = RESULTS / "ga_nbody.json"
    rows = json.loads(json_path.read_text()) if json_path.is_file() else {}
    for run in args.runs:
        row = _read_run(run) | {"note": args.note}
        model, old = row["model"], rows.get(row["model"])
        history = (old.get("runs") or [_summary(old)]) if old else []
        history = history + [_summary(row)]
        if old and not args.replace and old["test_mse"] <= row["test_mse"]:
            print(f"{model}: keeping {old['run']} (test MSE {old['test_mse']:.5f})",
                  file=sys.stderr)
            old["runs"] = history
            continue
        shutil.copyfile(run / "model.pt", CHECKPOINTS / f"{model}.pt")
        rows[model] = row | {"runs": history}
    json_path.write_text(json.dumps(rows, indent=2) + "\n")
    md_path = RESULTS / "ga_nbody.md"
    md_path.write_text(markdown(rows))
    print(md_path.read_text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
