"""Collect the geometric-algebra n-body runs (GATr, CGENN, GLGENN) into
benchmarks/results/ga_nbody.{json,md} and benchmarks/checkpoints/nbody/<model>.pt.

Each run folder comes from ``symformer train nbody --model <gatr|cgenn|glgenn> ...`` (metrics.json
and model.pt, read as :mod:`nbody_results` reads them)::

    python benchmarks/ga_nbody_results.py RUN [RUN ...] [--note TEXT]

A newer run of a model replaces the stored one only when its test MSE is lower (``--replace``
forces). The published reference is CGENN's 0.0039 (Ruhe et al. 2023).
"""

from __future__ import annotations

import shlex
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from nbody_results import collect  # noqa: E402

from symformer.data.nbody import PUBLISHED_MSE  # noqa: E402

REFERENCE = PUBLISHED_MSE["cgenn"]


def markdown(rows: dict) -> str:
    lines = [
        "# Charged N-body with geometric-algebra models: test MSE",
        "",
        "Test MSE of the positions at the best validation epoch on the 2000 test systems of the",
        "published protocol (3000 training systems). Trained on the shared 2-core CPU of the",
        f"development machine with short budgets; the published CGENN reaches {REFERENCE}",
        "after long training. `epochs` is what we ran, not the papers' budgets.",
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
    notes = [f"- **{name}**: {r['note']}" for name, r in sorted(rows.items()) if r.get("note")]
    if notes:
        lines += ["", "Notes:", "", *notes]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    return collect(argv, "ga_nbody", markdown, __doc__.split("\n")[0])


if __name__ == "__main__":
    sys.exit(main())
