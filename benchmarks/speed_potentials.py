"""Speed of the interatomic potentials on rMD17 batches (CPU, float32, one process).

Two parts:

1. Whole models: median wall time of energy + forces (eval, forces by autograd) and of one
   training step (energy + force loss, forces with ``create_graph``, backward) on a batch of
   ``--batch`` molecules of ethanol (9 atoms) and aspirin (21 atoms) from split 01. MACE and NequIP
   at the sizes of their training configs and at the paper's widths, TorchMD-ET at the issue's
   reference size (64 channels, 4 layers). Models are timed in interleaved rounds (one call of
   each model per round), so machine noise hits all of them; medians over ``--repeats`` rounds.
2. The edge convolution of the atomic basis (the CG product ``R(r) (Y (x) h_j)`` of every MACE
   and NequIP layer) against the same product written with e3nn's ``o3.TensorProduct`` ('uvu'
   paths, external per-edge weights, the way MACE and NequIP build it), forward + backward, on the
   aspirin graph; outputs are checked equal first. mace-torch is not installed, so no MACE-level
   peer runs.

Run: ``OMP_NUM_THREADS=1 python benchmarks/speed_potentials.py`` (``--help`` for options);
writes ``benchmarks/results/speed_potentials.json`` and ``.md``.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

from symformer.data.graphs import radius_graph
from symformer.models import create
from symformer.models.mace import EdgeConvolution
from symformer.primitives import spherical_harmonics

HERE = Path(__file__).resolve().parent
MODELS = {
    "mace (CPU config: 32 ch, L_hidden 1)": ("mace", dict(channels=32, radial_hidden=[64, 64])),
    "mace (paper width: 128 ch, L_hidden 1)": ("mace", dict(channels=128,
                                                            radial_hidden=[64, 64, 64])),
    "nequip (CPU config: 32 ch, l 1, 4 layers)": ("nequip", dict(channels=32, lmax=1, lmax_sh=2,
                                                                 num_layers=4,
                                                                 radial_hidden=[64, 64])),
    "torchmd_et (64 ch, 4 layers)": ("torchmd_et_potential", dict(hidden=64, n_layers=4)),
}


def molecule_batch(data_dir: Path, molecule: str, batch: int):
    d = np.load(data_dir / f"rmd17_{molecule}_train_01.npz")
    n = len(d["nuclear_charges"])
    z = torch.tensor(d["nuclear_charges"].astype(np.int64)).repeat(batch)
    pos = torch.tensor(d["coords"][:batch].reshape(-1, 3), dtype=torch.float32)
    return z, pos, torch.arange(batch).repeat_interleave(n)


def time_models(models: dict, inputs, repeats: int) -> dict:
    z, pos, batch = inputs
    fns = {}
    for name, model in models.items():
        def ef(m=model):
            m.eval()
            m(z, pos, batch)

        def step(m=model):
            m.train()
            out = m(z, pos, batch)
            (out["energy"].pow(2).mean() + out["forces"].pow(2).mean()).backward()
        fns[name] = (ef, step)
    times = {name: {"energy_forces": [], "train_step": []} for name in models}
    for r in range(repeats + 1):                 # round 0 warms up
        for name, (ef, step) in fns.items():
            for key, f in (("energy_forces", ef), ("train_step", step)):
                t = time.perf_counter()
                f()
                if r:
                    times[name][key].append(time.perf_counter() - t)
    atoms = z.shape[0]
    return {name: {"energy_forces_ms": 1e3 * statistics.median(t["energy_forces"]),
                   "train_step_ms": 1e3 * statistics.median(t["train_step"]),
                   "energy_forces_atoms_per_s": atoms / statistics.median(t["energy_forces"])}
            for name, t in times.items()}


def e3nn_convolution(conv: EdgeConvolution, lmax_in: int, lmax_sh: int, channels: int):
    """The same convolution with e3nn: 'uvu' paths, summed per output degree afterwards."""
    from e3nn import o3

    irreps_in = o3.Irreps([(channels, (l, (-1) ** l)) for l in range(lmax_in + 1)])
    irreps_sh = o3.Irreps.spherical_harmonics(lmax_sh)
    out_irreps, instructions = [], []
    for p, (l1, l2, l3) in enumerate(conv.paths):
        out_irreps.append((channels, (l3, (-1) ** l3)))
        instructions.append((l1, l2, p, "uvu", True))
    tp = o3.TensorProduct(irreps_in, irreps_sh, o3.Irreps(out_irreps), instructions,
                          shared_weights=False, internal_weights=False,
                          irrep_normalization="component", path_normalization="none")
    return tp, irreps_in


def compare_convolution(inputs, repeats: int, channels: int = 32, lmax_in: int = 1,
                        lmax_sh: int = 3) -> dict:
    from symformer.primitives import scatter_sum

    z, pos, batch = inputs
    edge_index = radius_graph(pos, 5.0, batch)
    vec = pos[edge_index[1]] - pos[edge_index[0]]
    r, sh = vec.norm(dim=-1), spherical_harmonics(lmax_sh, vec)
    conv = EdgeConvolution(lmax_in=lmax_in, lmax_sh=lmax_sh, lmax_out=lmax_sh, channels=channels,
                           cutoff=5.0, num_bessel=8, radial_hidden=(64, 64))
    tp, irreps_in = e3nn_convolution(conv, lmax_in, lmax_sh, channels)
    n = z.shape[0]
    x = torch.randn(n, (lmax_in + 1) ** 2, channels, requires_grad=True)

    def ours():
        return conv(x, edge_index, sh, r)

    def peer():
        flat = torch.cat([x[:, l * l:(l + 1) ** 2].transpose(1, 2).flatten(1)
                          for l in range(lmax_in + 1)], dim=1)           # e3nn mul_ir layout
        w = conv.radial(r)                                                # [E, P*C]
        out = tp(flat[edge_index[0]], sh, w)                              # [E, sum_p C(2l3+1)]
        rows = [x.new_zeros(out.shape[0], 2 * l + 1, channels) for l in range(lmax_sh + 1)]
        start = 0
        for (_, _, l3) in conv.paths:
            d = channels * (2 * l3 + 1)
            block = out[:, start:start + d].unflatten(1, (channels, -1)).transpose(1, 2)
            rows[l3] = rows[l3] + block
            start += d
        return scatter_sum(torch.cat(rows, dim=1), edge_index[1], n)

    with torch.no_grad():
        err = float((ours() - peer()).abs().max() / peer().abs().max())
    times = {"symformer": [], "e3nn": []}
    for rep in range(repeats + 1):
        for name, f in (("symformer", ours), ("e3nn", peer)):
            t = time.perf_counter()
            f().pow(2).sum().backward()
            if rep:
                times[name].append(time.perf_counter() - t)
    med = {k: 1e3 * statistics.median(v) for k, v in times.items()}
    return {"edges": int(edge_index.shape[1]), "atoms": n, "channels": channels,
            "lmax_in": lmax_in, "lmax_sh": lmax_sh, "paths": len(conv.paths),
            "max_relative_difference": err, "fwd_bwd_ms": med,
            "speedup_vs_e3nn": med["e3nn"] / med["symformer"]}


def write_markdown(res: dict, path: Path) -> None:
    lines = ["# Speed of the interatomic potentials (CPU, float32)", "",
             f"Command: `{res['command']}`  ", f"Date: {res['date']}, torch {res['torch']}, "
             f"{res['threads']} thread(s), {res['machine']}; batch of {res['batch']} molecules; "
             f"medians of {res['repeats']} interleaved rounds. The machine is shared: absolute "
             "times are noisy, ratios within one table are the meaningful numbers.", ""]
    for mol, table in res["models"].items():
        lines += [f"## {mol} ({table['atoms']} atoms per batch)", "",
                  "| model | parameters | energy+forces (ms) | atoms/s | training step (ms) |",
                  "|---|---|---|---|---|"]
        for name, row in table["results"].items():
            lines.append(f"| {name} | {row['parameters']:,} | {row['energy_forces_ms']:.0f} | "
                         f"{row['energy_forces_atoms_per_s']:.0f} | {row['train_step_ms']:.0f} |")
        lines.append("")
    c = res["convolution"]
    lines += ["## Edge convolution vs e3nn (aspirin batch)", "",
              f"{c['edges']} edges, {c['channels']} channels, input degrees <= {c['lmax_in']}, "
              f"harmonics <= {c['lmax_sh']}, {c['paths']} paths; outputs agree to "
              f"{c['max_relative_difference']:.1e} (relative).", "",
              "| implementation | forward+backward (ms) |", "|---|---|",
              f"| symformer EdgeConvolution | {c['fwd_bwd_ms']['symformer']:.1f} |",
              f"| e3nn o3.TensorProduct ('uvu') | {c['fwd_bwd_ms']['e3nn']:.1f} |", "",
              f"Speed-up over e3nn: {c['speedup_vs_e3nn']:.2f}x.", ""]
    path.write_text("\n".join(lines))


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--data-dir", default=str(HERE.parent.parent / "shared" / "data" / "rmd17"))
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--molecules", nargs="+", default=["ethanol", "aspirin"])
    p.add_argument("--out", default=str(HERE / "results" / "speed_potentials"))
    args = p.parse_args(argv)
    torch.manual_seed(0)
    data_dir = Path(args.data_dir)
    res = {"command": "python benchmarks/speed_potentials.py " + " ".join(argv or sys.argv[1:]),
           "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
           "torch": torch.__version__, "threads": torch.get_num_threads(),
           "machine": platform.processor() or platform.machine(), "batch": args.batch,
           "repeats": args.repeats, "seed": 0, "models": {}}
    for mol in args.molecules:
        inputs = molecule_batch(data_dir, mol, args.batch)
        # aspirin has ~2x the neighbours of ethanol within 5 A
        models = {}
        for name, (reg, cfg) in MODELS.items():
            if reg in ("mace", "nequip"):
                cfg = dict(cfg, avg_num_neighbors=8.0 if mol == "ethanol" else 16.0)
            models[name] = create(reg, **cfg)
        table = time_models(models, inputs, args.repeats)
        for name, model in models.items():
            table[name]["parameters"] = sum(q.numel() for q in model.parameters())
        res["models"][mol] = {"atoms": int(inputs[0].shape[0]), "results": table}
        print(mol, json.dumps(table, indent=1), flush=True)
    res["convolution"] = compare_convolution(molecule_batch(data_dir, "aspirin", args.batch),
                                             args.repeats)
    print(json.dumps(res["convolution"], indent=1))
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps(res, indent=2) + "\n")
    write_markdown(res, out.with_suffix(".md"))
    return 0


if __name__ == "__main__":
    os.environ.setdefault("SYMFORMER_CACHE", "/tmp/symformer-cache")
    sys.exit(main())
