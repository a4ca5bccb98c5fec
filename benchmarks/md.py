"""Molecular-dynamics stability of a trained potential: NVE velocity Verlet of an rMD17 molecule.

::

    python benchmarks/md.py --checkpoint benchmarks/checkpoints/rmd17/ethanol.pt \\
        --molecule ethanol --data-dir ../shared/data/rmd17 --steps 10000 --timestep-fs 0.5

Starts from the first test configuration of split 01 with Maxwell-Boltzmann velocities (300 K,
seed 0) and reports the total-energy drift per atom (target: below 1e-3 eV/atom over the run)
and whether every bond of the start geometry survives. Writes ``benchmarks/results/md.json``
(merged by molecule) and ``md.md``; the energy trace goes into the JSON every ``--log-every``
steps.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--checkpoint", required=True, type=Path)
    p.add_argument("--molecule", default="ethanol")
    p.add_argument("--data-dir", default="../shared/data/rmd17")
    p.add_argument("--steps", type=int, default=10_000)
    p.add_argument("--timestep-fs", type=float, default=0.5)
    p.add_argument("--temperature", type=float, default=300.0)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--log-every", type=int, default=20)
    p.add_argument("--dtype", choices=("float32", "float64"), default="float64",
                   help="dtype of the model during MD (float64: round-off does not drift)")
    args = p.parse_args(argv)
    import ase
    import torch

    from symformer.data.rmd17 import load_rmd17
    from symformer.integrations.ase import Calculator
    from symformer.integrations.md import run_nve

    test = load_rmd17(args.data_dir, args.molecule, "test")
    first = test.batch([0], dtype=torch.float64)
    atoms = ase.Atoms(numbers=first["atomic_numbers"].numpy(), positions=first["pos"].numpy())
    dtype = {"float32": torch.float32, "float64": torch.float64}[args.dtype]
    calc = Calculator(args.checkpoint, dtype=dtype)
    torch.set_num_threads(1)
    rep = run_nve(atoms, calc, steps=args.steps, timestep_fs=args.timestep_fs,
                  temperature_K=args.temperature, seed=args.seed, log_every=args.log_every)
    rep.update(molecule=args.molecule, checkpoint=str(args.checkpoint), dtype=args.dtype,
               command="python " + " ".join(sys.argv), target_drift_per_atom_eV=1e-3,
               meets_target=bool(rep["drift_per_atom_eV"] < 1e-3 and rep["intact"]))
    out_dir = HERE / "results"
    out_dir.mkdir(exist_ok=True)
    path = out_dir / "md.json"
    runs = json.loads(path.read_text())["runs"] if path.is_file() else {}
    runs[args.molecule] = rep
    path.write_text(json.dumps({"benchmark": "md", "runs": runs}, indent=1) + "\n")
    lines = ["# NVE molecular dynamics with trained symformer potentials", "",
             "| molecule | steps x dt | T0 | max drift (eV/atom) | drift slope (eV/atom/ps) "
             "| intact | max bond ratio | wall time | dtype |", "|---|---|---|---|---|---|---|---|---|"]
    for mol, r in sorted(runs.items()):
        lines.append(f"| {mol} | {r['steps']} x {r['timestep_fs']} fs | {r['temperature_K']:.0f} K"
                     f" | {r['drift_per_atom_eV']:.2e} | {r['drift_slope_per_atom_eV_per_ps']:.2e} "
                     f"| {r['intact']} | {r['max_bond_ratio']:.3f} | {r['seconds']:.0f} s "
                     f"| {r['dtype']} |")
    lines += ["", "Target: drift below 1e-3 eV/atom over 10,000 steps of 0.5 fs, molecule intact "
              "(every start bond shorter than 1.5x its start length, no pair closer than half "
              "the sum of covalent radii).", ""]
    lines += [f"- {mol}: `{r['command']}`" for mol, r in sorted(runs.items())]
    (out_dir / "md.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
