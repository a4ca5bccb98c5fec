"""rMD17 results: collect ``symformer train rmd17`` run folders into ours-vs-published MAE.

::

    symformer train rmd17 --model torchmd_et_potential --molecule ethanol \\
        --data-dir ../shared/data/rmd17 --time-limit-min 24 --out runs/rmd17/ethanol
    python benchmarks/rmd17.py runs/rmd17/ethanol [more run folders] --note "..."

Writes ``benchmarks/results/rmd17.json`` (one entry per molecule and model, merged with earlier
entries) and ``benchmarks/results/rmd17.md``, and copies each run's ``model.pt`` to
``benchmarks/checkpoints/rmd17/<molecule>.pt`` when it is the best force MAE recorded for the
molecule. Published numbers (meV / meV/Angstrom, 1000 training configurations): MACE and NequIP
as quoted in the MACE paper (Batatia et al. 2022, Table 1).
"""

from __future__ import annotations

import argparse
import json
import platform
import shutil
from datetime import datetime, timezone
from pathlib import Path

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"


def _entry(run: Path, note: str) -> dict:
    m = json.loads((run / "metrics.json").read_text())
    if m.get("task") != "rmd17":
        raise SystemExit(f"{run}: not an rmd17 run (task {m.get('task')!r})")
    t = m["test"]
    mol = m["dataset"].split("/", 1)[1]
    return {"molecule": mol, "model": m["model"], "energy_mae_meV": t["energy_mae"],
            "forces_mae_meV_per_A": t["forces_mae"], "n_test": t["n"],
            "n_train": m["n_train"], "n_val": m["n_val"], "epochs_run": m["epochs_run"],
            "epochs_planned": m["config"]["epochs"], "best_epoch": m["best_epoch"],
            "train_minutes": m["train_seconds"] / 60.0,
            "seconds_per_epoch": m["seconds_per_epoch"], "parameters": m["parameters"],
            "published": m["published"], "command": " ".join(m["command"]),
            "seed": m["seed"], "model_config": m["config"]["model"],
            "stopped_by_time_limit": m["stopped_by_time_limit"], "run": str(run), "note": note,
            "collected": datetime.now(timezone.utc).isoformat(timespec="seconds")}


def _markdown(entries: list[dict], host: dict) -> str:
    lines = ["# rMD17 (split 01: 950 train + 50 validation, 1000 test configurations)", "",
             "Energy / force MAE in meV and meV/Angstrom on the 1000 test configurations. "
             "Published: MACE and NequIP as quoted in the MACE paper (1000 training configs, "
             "GPU training). Ours: CPU budget (1 thread of a shared 2-core machine).", "",
             "| molecule | model | ours E / F | MACE E / F | NequIP E / F | epochs | train time "
             "| params | note |", "|---|---|---|---|---|---|---|---|---|"]
    for e in sorted(entries, key=lambda r: (r["molecule"], r["model"])):
        pub = e["published"]
        fmt = lambda p: f"{p[0]} / {p[1]}" if p else "-"  # noqa: E731
        lines.append(
            f"| {e['molecule']} | {e['model']} | {e['energy_mae_meV']:.2f} / "
            f"{e['forces_mae_meV_per_A']:.2f} | {fmt(pub.get('MACE'))} | "
            f"{fmt(pub.get('NequIP'))} | {e['epochs_run']} of {e['epochs_planned']} | "
            f"{e['train_minutes']:.0f} min | {e['parameters']} | {e['note']} |")
    lines += ["", "Commands:", ""]
    lines += [f"- {e['molecule']} / {e['model']}: `{e['command']}` (seed {e['seed']})"
              for e in entries]
    lines += ["", f"Host: {host['machine']}, torch {host['torch']}.", ""]
    return "\n".join(lines)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("runs", nargs="+", type=Path, help="run folders of symformer train rmd17")
    p.add_argument("--note", default="", help="free text stored with each entry")
    args = p.parse_args(argv)
    import torch

    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / "rmd17.json"
    old = json.loads(path.read_text())["entries"] if path.is_file() else []
    entries = {(e["molecule"], e["model"]): e for e in old}
    for run in args.runs:
        e = _entry(run, args.note)
        entries[(e["molecule"], e["model"])] = e
        best = min((x for x in entries.values() if x["molecule"] == e["molecule"]),
                   key=lambda x: x["forces_mae_meV_per_A"])
        if best is e:
            dest = HERE / "checkpoints" / "rmd17" / f"{e['molecule']}.pt"
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(run / "model.pt", dest)
            e["checkpoint"] = str(dest.relative_to(HERE.parent))
    host = {"machine": f"{platform.machine()} ({platform.processor() or 'cpu'})",
            "torch": torch.__version__}
    out = {"benchmark": "rmd17", "host": host, "entries": list(entries.values())}
    path.write_text(json.dumps(out, indent=2) + "\n")
    (RESULTS / "rmd17.md").write_text(_markdown(list(entries.values()), host))
    print((RESULTS / "rmd17.md").read_text())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
