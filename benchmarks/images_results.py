"""Collect the image training runs into committed results and checkpoints.

Reads the ``<name>.json`` / ``.pt`` files written by ``symformer.train.images`` in a run folder
(``<name>`` defaults to ``<dataset>_<model>``), copies each checkpoint to
``benchmarks/checkpoints/images/`` (refusing files over 2 MB), measures shift consistency of the
MNIST models, adds the larger test evaluations of ``benchmarks/images_eval.py``
(``<name>.test_full.json``) and writes ``benchmarks/results/images_training.{json,md}``: rotated
MNIST (octic ViT vs plain ViT), shift consistency (polyphase ViT vs plain ViT), projective MNIST
(ETN + CNN vs the same CNN, full and 10% training data). ``--keep`` carries the rows of the
named datasets over from the committed results when their runs are not in the folder.

Run: ``python benchmarks/images_results.py --runs runs/images --keep rotated_mnist mnist``.
"""

from __future__ import annotations

import argparse
import datetime
import json
import shutil
import sys
from pathlib import Path

import torch

import symformer
from symformer.data.image_variants import load_image_dataset
from symformer.train.images import shift_consistency

HERE = Path(__file__).resolve().parent
MAX_BYTES = 2 * 1024 * 1024
# (title, dataset, [(model, run name)])
SECTIONS = [
    ("Rotated MNIST: octic ViT vs plain ViT of the same token width (p4m CNN for reference)",
     "rotated_mnist", [(m, f"rotated_mnist_{m}") for m in ("octic_vit", "vit", "p4m_cnn")]),
    ("Shift consistency (MNIST): polyphase ViT vs plain ViT", "mnist",
     [(m, f"mnist_{m}") for m in ("polyphase_vit", "vit")]),
    ("Projective MNIST, full training data (80,000 images): ETN + CNN vs the same CNN",
     "projective_mnist", [(m, f"projective_mnist_{m}") for m in ("etn", "cnn")]),
    ("Projective MNIST, 10% of the training data (8,000 images): ETN + CNN vs the same CNN",
     "projective_mnist", [(m, f"projective_mnist_10pct_{m}") for m in ("etn", "cnn")]),
]


def _name(row: dict) -> str:
    return row.get("name") or f"{row['dataset']}_{row['model']}"


def collect(runs: Path, ckpt_out: Path, data_root, n_consistency: int,
            keep: list[dict]) -> list[dict]:
    rows = []
    ckpt_out.mkdir(parents=True, exist_ok=True)
    kept = {_name(r): r for r in keep}
    for _, dataset, models in SECTIONS:
        for model, stem in models:
            js, pt = runs / f"{stem}.json", runs / f"{stem}.pt"
            if not js.is_file() or not pt.is_file():
                if stem in kept:
                    rows.append(kept[stem])
                    print(f"kept the committed row of {stem}", file=sys.stderr)
                else:
                    print(f"missing run {stem}", file=sys.stderr)
                continue
            m = json.loads(js.read_text())
            size = pt.stat().st_size
            if size > MAX_BYTES:
                raise ValueError(f"checkpoint {pt} is {size} bytes (> 2 MB)")
            shutil.copyfile(pt, ckpt_out / pt.name)
            row = {k: v for k, v in m.items() if k != "history"}
            row["history"] = m["history"]
            row["checkpoint"] = str((ckpt_out / pt.name).relative_to(HERE.parent))
            row["checkpoint_bytes"] = size
            full = runs / f"{stem}.test_full.json"
            if full.is_file():
                row["test_full"] = json.loads(full.read_text())
            if dataset == "mnist":
                model_ = symformer.load(ckpt_out / pt.name)
                x, _ = load_image_dataset("mnist", "test", root=data_root)
                row["shift_consistency"] = shift_consistency(model_, x[:n_consistency],
                                                             n_pairs=1, seed=0)
                row["shift_consistency_n"] = n_consistency
            rows.append(row)
    return rows


def write(result: dict, out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / "images_training.json").write_text(json.dumps(result, indent=2) + "\n")
    L = ["# Image benchmarks: training runs", "",
         f"{result['date']}. CPU only (2 cores shared with 6-8 other jobs, 1 thread per run, "
         "nice 5); every run had a wall-time budget, and its cosine learning-rate schedule "
         "ended with whichever came first, the planned epochs or the budget. These are short "
         "runs: compare the rows of a table with each other, not with published numbers from "
         "full-length GPU training.", ""]
    by = {_name(r): r for r in result["rows"]}
    for title, dataset, models in SECTIONS:
        L += [f"## {title}", "", "| model | config | params | train images | epochs run | "
              "test images | test acc | test error | s / step (batch 128) | wall | extra |",
              "|---|---|---|---|---|---|---|---|---|---|---|"]
        for model, stem in models:
            r = by.get(stem)
            if r is None:
                L.append(f"| {model} | - | - | - | - | - | not run | - | - | - | - |")
                continue
            extra = []
            if "shift_consistency" in r:
                extra.append(f"shift consistency {100 * r['shift_consistency']:.2f}% "
                             f"({r['shift_consistency_n']} test digits, 2 random cyclic "
                             "shifts)")
            if "test_full" in r:
                f = r["test_full"]
                extra.append(f"test error on {f['n_test']} images: "
                             f"{100 * (1 - f['test_acc']):.2f}%")
            if dataset == "projective_mnist":
                curve = ", ".join(f"{100 * h['valid_acc']:.1f}" for h in r["history"][-4:])
                extra.append(f"valid acc % (last epochs): {curve}")
            extra = "; ".join(extra)
            L.append(f"| {model} | `{json.dumps(r['config'])}` | {r['parameters']} | "
                     f"{r['n_train']} | {r['epochs_run']:.2f} / {r['epochs_planned']} | "
                     f"{r['n_test']} | {100 * r['test_acc']:.2f}% | "
                     f"{100 * r['test_error']:.2f}% | {r['train_s_per_step']:.2f} | "
                     f"{r['wall_s'] / 60:.1f} min | {extra} |")
        L.append("")
        speed = HERE / "results" / "images_speed.json"
        if dataset == "rotated_mnist" and speed.is_file():
            for r in json.loads(speed.read_text())["models"]:
                L.append(f"- `{r['model']}` `{json.dumps(r['config'])}`: forward "
                         f"{r['fwd_gflops_per_image'] * 1e3:.2f} MFLOPs per image, "
                         f"{r['params']} parameters, fwd+bwd {r['fwdbwd_ms_per_batch']:.0f} ms "
                         f"per batch of {r['batch']} (`benchmarks/images_speed.py`, same process)")
            L.append("")
        for model, stem in models:
            r = by.get(stem)
            if r is not None:
                L.append(f"- `{model}`: `{r['command']}` (seed {r['seed']}); checkpoint "
                         f"`{r['checkpoint']}` ({r['checkpoint_bytes'] / 1024:.0f} KiB)")
        L.append("")
    L += ["## Notes", ""] + [f"- {n}" for n in result["notes"]] + [""]
    (out / "images_training.md").write_text("\n".join(L))


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--runs", required=True)
    p.add_argument("--data-root", default=None)
    p.add_argument("--n-consistency", type=int, default=5000)
    p.add_argument("--notes", default=None, help="JSON list of notes for the markdown")
    p.add_argument("--keep", nargs="*", default=[],
                   help="datasets whose committed rows are kept when their runs are missing")
    p.add_argument("--out", default=str(HERE / "results"))
    a = p.parse_args(argv)
    torch.set_num_threads(1)
    out = Path(a.out)
    previous = out / "images_training.json"
    keep = ([r for r in json.loads(previous.read_text())["rows"] if r["dataset"] in a.keep]
            if previous.is_file() else [])
    rows = collect(Path(a.runs), HERE / "checkpoints" / "images", a.data_root, a.n_consistency,
                   keep)
    result = {"date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
              "command": "python benchmarks/images_results.py " + " ".join(argv or []),
              "notes": json.loads(a.notes) if a.notes else [], "rows": rows}
    write(result, out)
    return result


if __name__ == "__main__":
    main(sys.argv[1:])
