"""QM9 results: collect ``symformer train qm9`` run folders into ours-vs-published test MAE.

::

    symformer train qm9 --model torchmd_et_potential --target U0 \\
        --data-dir ../shared/data/qm9 --n-train 5000 --time-limit-min 12 --out runs/qm9/U0
    python benchmarks/qm9.py runs/qm9/U0 [more run folders] --note "..."

Writes ``benchmarks/results/qm9.json`` (one entry per target and model, merged with earlier
entries, with the learning curve: validation MAE per epoch) and ``qm9.md``. Published: EGNN
(Satorras et al. 2021, full 100k training set) in the units papers report.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("runs", nargs="+", type=Path)
    p.add_argument("--note", default="")
    args = p.parse_args(argv)
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / "qm9.json"
    entries = {(e["target"], e["model"]): e for e in
               (json.loads(path.read_text())["entries"] if path.is_file() else [])}
    for run in args.runs:
        m = json.loads((run / "metrics.json").read_text())
        if m.get("task") != "qm9":
            raise SystemExit(f"{run}: not a qm9 run (task {m.get('task')!r})")
        target = m["dataset"].split("/", 1)[1]
        entries[(target, m["model"])] = {
            "target": target, "model": m["model"], "test_mae": m["test"]["energy_mae"],
            "unit": m["test"]["energy_unit"], "n_test": m["test"]["n"],
            "n_train": m["n_train"], "n_val": m["n_val"], "split": m["config"]["split"],
            "epochs_run": m["epochs_run"], "train_minutes": m["train_seconds"] / 60.0,
            "published": m["published"], "command": " ".join(m["command"]), "seed": m["seed"],
            "learning_curve": [{"epoch": r["epoch"], "val_mae": r["val_energy_mae"],
                                "samples_seen": r["epoch"] * m["n_train"]}
                               for r in m["history"]],
            "note": args.note}
    path.write_text(json.dumps({"benchmark": "qm9", "entries": list(entries.values())},
                               indent=2) + "\n")
    lines = ["# QM9 (small CPU budget)", "",
             "Test MAE on the held-out split; published EGNN numbers use the full 100k training "
             "set (Cormorant split) and GPU training.", "",
             "| target | model | ours | EGNN (full data) | unit | train molecules | epochs "
             "| train time | note |", "|---|---|---|---|---|---|---|---|---|"]
    for e in sorted(entries.values(), key=lambda r: (r["target"], r["model"])):
        pub = e["published"].get("EGNN", "-")
        lines.append(f"| {e['target']} | {e['model']} | {e['test_mae']:.4g} | {pub} | {e['unit']} "
                     f"| {e['n_train']} | {e['epochs_run']} | {e['train_minutes']:.0f} min "
                     f"| {e['note']} |")
    lines += ["", "Commands:", ""] + [f"- {e['target']}: `{e['command']}` (seed {e['seed']})"
                                      for e in entries.values()]
    (RESULTS / "qm9.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
