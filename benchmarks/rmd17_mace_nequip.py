"""Collect the rMD17 runs of MACE, NequIP and the Equiformer-style potential into
benchmarks/results/rmd17_mace_nequip.{json,md}.

Each run folder is one ``symformer train rmd17 --model {mace,nequip,equiformer_potential}
--out DIR`` (950 train + 50 validation configurations of split 01, tested on the 1000 test
configurations; see ``symformer/train/configs/rmd17/<model>.yaml``). The test-set MAE of the best-validation
EMA weights is set beside the published numbers, with epochs, wall time and the commands; the
exported ``model.pt`` is copied to
``benchmarks/checkpoints/rmd17_mace_nequip/<molecule>_<model>.pt`` (loadable with
``symformer.load``).

Run: ``python benchmarks/rmd17_mace_nequip.py RUN_DIR [RUN_DIR ...] [--note RUN_DIR=TEXT]``.
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

HERE = Path(__file__).resolve().parent
# Published test MAE on rMD17 with 950 training configurations (meV, meV/Angstrom).
PUBLISHED = {
    ("mace", "ethanol"): (0.4, 2.1, "Batatia et al. 2022, Table 1"),
    ("mace", "aspirin"): (2.2, 6.6, "Batatia et al. 2022, Table 1"),
    ("nequip", "ethanol"): (0.4, 2.8, "Batzner et al. 2022 (as quoted in the MACE paper)"),
    ("nequip", "aspirin"): (2.3, 8.2, "Batzner et al. 2022 (as quoted in the MACE paper)"),
}


def collect(run: Path, note: str) -> dict:
    m = json.loads((run / "metrics.json").read_text())
    model, molecule = m["model"], m["config"]["molecule"]
    e_pub, f_pub, source = PUBLISHED.get((model, molecule), (None, None, ""))
    ckpt_dir = HERE / "checkpoints" / "rmd17_mace_nequip"
    ckpt_dir.mkdir(parents=True, exist_ok=True)
    ckpt = ckpt_dir / f"{molecule}_{model}.pt"
    shutil.copyfile(run / "model.pt", ckpt)
    return {"model": model, "molecule": molecule,
            "test_energy_mae_meV": m["test"]["energy_mae"],
            "test_forces_mae_meV_per_A": m["test"].get("forces_mae"),
            "published_energy_mae_meV": e_pub, "published_forces_mae_meV_per_A": f_pub,
            "published_source": source, "epochs": m["epochs_run"], "best_epoch": m["best_epoch"],
            "stopped_by_time_limit": m["stopped_by_time_limit"],
            "train_minutes": m["train_seconds"] / 60, "seconds_per_epoch": m["seconds_per_epoch"],
            "parameters": m["parameters"], "n_train": m["n_train"], "n_val": m["n_val"],
            "n_test": m["test"]["n"], "seed": m["seed"], "command": " ".join(m["command"]),
            "model_config": m["config"]["model"], "threads": m["host"]["threads"],
            "checkpoint": str(ckpt.relative_to(HERE.parent)),
            "checkpoint_bytes": ckpt.stat().st_size, "note": note}


def write_markdown(rows: list[dict], path: Path) -> None:
    lines = ["# rMD17: MACE, NequIP and the Equiformer-style potential (symformer, CPU budget)", "",
             "950 train + 50 validation configurations of split 01, test on its 1000 test "
             "configurations; MAE of the best-validation EMA weights. float32, 1 thread on a "
             "2-core machine shared with other jobs. Published numbers come from GPU training "
             "for thousands of epochs with wider models; ours are CPU runs of 15 minutes to "
             "3.4 hours, "
             "so they are far from converged and not a reproduction.", "",
             "| model | molecule | energy MAE (meV) | forces MAE (meV/A) | published E / F | "
             "epochs | train min | parameters |", "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        pub = (f"{r['published_energy_mae_meV']} / {r['published_forces_mae_meV_per_A']}"
               if r["published_energy_mae_meV"] is not None else "-")
        lines.append(f"| {r['model']} | {r['molecule']} | {r['test_energy_mae_meV']:.1f} | "
                     f"{r['test_forces_mae_meV_per_A']:.1f} | {pub} | {r['epochs']} | "
                     f"{r['train_minutes']:.0f} | {r['parameters']:,} |")
    lines += ["", "## Runs", ""]
    for r in rows:
        lines += [f"- **{r['model']} / {r['molecule']}**: `{r['command']}` (seed {r['seed']}); "
                  f"best epoch {r['best_epoch']} of {r['epochs']}, "
                  f"{r['seconds_per_epoch']:.0f} s/epoch; config {json.dumps(r['model_config'])}; "
                  f"checkpoint `{r['checkpoint']}` ({r['checkpoint_bytes'] / 1e6:.2f} MB)."
                  + (f" {r['note']}" if r["note"] else "")]
    path.write_text("\n".join(lines) + "\n")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("runs", nargs="+", help="run folders holding metrics.json and model.pt")
    p.add_argument("--note", action="append", default=[], metavar="RUN_DIR=TEXT")
    p.add_argument("--out", default=str(HERE / "results" / "rmd17_mace_nequip"))
    args = p.parse_args(argv)
    notes = dict(n.split("=", 1) for n in args.note)
    rows = [collect(Path(r), notes.get(r, "")) for r in args.runs]
    out = Path(args.out)
    out.with_suffix(".json").write_text(json.dumps(rows, indent=2) + "\n")
    write_markdown(rows, out.with_suffix(".md"))
    print(out.with_suffix(".md").read_text())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
