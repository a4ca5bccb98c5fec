"""symformer's potentials against mace-torch and torchmd-net at matched sizes (CPU, float32).

Aspirin batches from rMD17 split 01 (``--batch`` molecules x 21 atoms). For each pair (ours, the
peer library's model built with the same hyper-parameters) two timings:

* energy + forces: eval mode, forces by autograd (no ``create_graph``);
* training step: train mode, forces with ``create_graph``, loss = energy MSE + force MSE,
  backward (gradients cleared each step).

Every timed call includes the neighbour search: ours builds its radius graph inside ``forward``,
TorchMD-NET's model does the same with its own kernel, and mace-torch takes a precomputed graph,
so the MACE call is given the same radius graph built by :func:`symformer.data.graphs.radius_graph`
inside the timed function (its cost is reported on its own). Pairs are timed interleaved, round
by round in one process (warm-up round first, the order inside a pair alternating between
rounds), medians over ``--repeats`` rounds. mace-torch pins e3nn 0.4.4, so this script runs in a
separate venv (see ``INSTALL``); NequIP has no peer installed and is not part of it.

Run: ``OMP_NUM_THREADS=1 /work/peers-venv/bin/python benchmarks/speed_potentials_peers.py``;
writes ``benchmarks/results/speed_potentials_peers.json`` and ``.md``.
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

HERE = Path(__file__).resolve().parent
ELEMENTS = (1, 6, 7, 8)
# e3nn 0.4.4 (pinned by mace-torch) loads its packaged constants with torch.load's default
# weights_only=True, which needs `slice` allowed since torch 2.6.
torch.serialization.add_safe_globals([slice])
INSTALL = [
    "python3 -m venv /work/peers-venv",
    "/work/peers-venv/bin/pip install torch==2.13.0",
    "/work/peers-venv/bin/pip install -c constraints.txt mace-torch==0.3.16",
    "/work/peers-venv/bin/pip install -c constraints.txt 'warp-lang>=1.10.1' torch_geometric "
    "lightning 'setuptools>=82' setuptools-scm",
    "/work/peers-venv/bin/pip install -c constraints.txt --no-build-isolation torchmd-net==3.1.0",
    "/work/peers-venv/bin/pip install --no-deps -e .",
]


NOTES = [
    "Parameters, MACE: mace-torch has more at the same hyper-parameters (94,128 vs 62,401 at 32 "
    "channels; 848,528 vs 451,233 at 128) for three reasons. (a) Its first interaction maps the "
    "message with an element-dependent linear map (skip_tp: 4 elements x C^2 per degree 0..3; "
    "16,384 at 32 ch), ours with an element-independent one (4,096). (b) Its linear map after the "
    "convolution mixes each 'uvu' path's output on its own (10 paths x C^2 in the second layer, "
    "10,240), ours sums the paths of each degree with their radial weights first (4 x C^2, "
    "4,096). (c) use_reduced_cg=False (mace_run_train's default) keeps the overcomplete "
    "generalised Clebsch-Gordan basis: 11,008 + 3,584 product weights vs our 3,712 + 1,664 for a "
    "linearly independent basis of the same span. Radial MLPs (12,800 + 25,088), up-projections, "
    "the second layer's skip and the readouts have the same counts.",
    "Parameters, TorchMD-ET: 280,578 (ours) vs 281,218: our value filters have no bias (-192 per "
    "layer; the messages vanish smoothly at the cutoff) and our embedding tables have max_z + 1 "
    "rows (+128).",
    "torchmd-net 3.1.0 has no C++ extension any more: its neighbour search is an NVIDIA Warp "
    "kernel (warp-lang 1.19.0, CPU backend) compiled on the first call (about 10 s, in the "
    "warm-up round, not timed). e3nn 0.4.4 (mace-torch's pin) needs `slice` allowed for "
    "torch.load's weights_only default (done at import here).",
    "Accuracy: the pairs share hyper-parameters, they were not trained side by side here; "
    "symformer's rMD17 errors are in benchmarks/results/rmd17_mace_nequip.md and rmd17.md.",
    "Peak memory was not measured (no per-model CPU allocator statistics in torch).",
    "2 threads: measured with nothing else running on the 2-core machine (load average about "
    "1 at the start: the process itself). An earlier 2-thread table, measured beside two "
    "training runs (load average 4-6), showed TorchMD-ET at 0.86x: that was the "
    "oversubscribed scheduler, not the code.",
]


def aspirin_batch(data_dir: Path, batch: int):
    """z (N,), pos (N, 3) float32, batch (N,), energies (B,), forces (N, 3) of the first frames."""
    d = np.load(data_dir / "rmd17_aspirin_train_01.npz")
    n = len(d["nuclear_charges"])
    z = torch.tensor(d["nuclear_charges"].astype(np.int64)).repeat(batch)
    pos = torch.tensor(d["coords"][:batch].reshape(-1, 3), dtype=torch.float32)
    energy = torch.tensor(d["energies"][:batch], dtype=torch.float32)
    forces = torch.tensor(d["forces"][:batch].reshape(-1, 3), dtype=torch.float32)
    return z, pos, torch.arange(batch).repeat_interleave(n), energy, forces


def mace_peer(channels: int, radial_mlp: list[int], avg_num_neighbors: float):
    """mace-torch's ScaleShiftMACE as ``mace_run_train --model MACE`` builds it (its defaults)."""
    from e3nn import o3
    from mace import modules

    return modules.ScaleShiftMACE(
        r_max=5.0, num_bessel=8, num_polynomial_cutoff=5, max_ell=3,
        interaction_cls=modules.interaction_classes["RealAgnosticResidualInteractionBlock"],
        interaction_cls_first=modules.interaction_classes["RealAgnosticInteractionBlock"],
        num_interactions=2, num_elements=len(ELEMENTS),
        hidden_irreps=o3.Irreps(f"{channels}x0e+{channels}x1o"), MLP_irreps=o3.Irreps("16x0e"),
        atomic_energies=np.zeros(len(ELEMENTS)), avg_num_neighbors=avg_num_neighbors,
        atomic_numbers=list(ELEMENTS), correlation=3, gate=torch.nn.functional.silu,
        radial_MLP=radial_mlp, use_reduced_cg=False, atomic_inter_scale=1.0,
        atomic_inter_shift=0.0)


def mace_call(model, z, pos, batch, training: bool):
    """Energy (B,) and forces (N, 3) from mace-torch, the radius graph built inside the call."""
    n, b = pos.shape[0], int(batch[-1]) + 1
    edge_index = radius_graph(pos, 5.0, batch)           # [source, target] like mace-torch's
    onehot = torch.nn.functional.one_hot(torch.searchsorted(torch.tensor(ELEMENTS), z),
                                         len(ELEMENTS)).to(pos.dtype)
    counts = torch.bincount(batch, minlength=b)
    e = edge_index.shape[1]
    data = {"positions": pos.clone(), "node_attrs": onehot, "edge_index": edge_index,
            "shifts": pos.new_zeros(e, 3), "unit_shifts": pos.new_zeros(e, 3),
            "cell": pos.new_zeros(3 * b, 3), "batch": batch,
            "ptr": torch.cat([counts.new_zeros(1), counts.cumsum(0)])}
    out = model(data, training=training, compute_force=True)
    if n != out["forces"].shape[0]:
        raise RuntimeError("mace-torch returned forces of the wrong shape")
    return out["energy"], out["forces"]


def et_peer(hidden: int, layers: int, heads: int, num_rbf: int):
    """torchmd-net's equivariant transformer (``derivative=True``: forces by autograd)."""
    from torchmdnet.models.model import create_model

    args = {"model": "equivariant-transformer", "embedding_dimension": hidden,
            "num_layers": layers, "num_heads": heads, "num_rbf": num_rbf,
            "rbf_type": "expnorm", "trainable_rbf": False, "activation": "silu",
            "attn_activation": "silu", "distance_influence": "both",
            "neighbor_embedding": True, "cutoff_lower": 0.0, "cutoff_upper": 5.0,
            "max_z": 100, "max_num_neighbors": 64, "precision": 32, "derivative": True,
            "atom_filter": -1, "prior_model": None, "output_model": "Scalar",
            "reduce_op": "add", "equivariance_invariance_group": "O(3)"}
    return create_model(args)


def et_call(model, z, pos, batch, training: bool):
    y, f = model(z, pos.clone(), batch)
    return y.squeeze(-1), f


def ours_call(model, z, pos, batch, training: bool):
    out = model(z, pos, batch)
    return out["energy"], out["forces"]


PAIRS = {
    "MACE 32 ch (our rMD17 config)": (
        lambda: create("mace", channels=32, radial_hidden=[64, 64], avg_num_neighbors=16.0),
        lambda: mace_peer(32, [64, 64], 16.0), mace_call, "mace-torch 0.3.16 ScaleShiftMACE"),
    "MACE 128 ch (paper width)": (
        lambda: create("mace", channels=128, radial_hidden=[64, 64, 64], avg_num_neighbors=16.0),
        lambda: mace_peer(128, [64, 64, 64], 16.0), mace_call,
        "mace-torch 0.3.16 ScaleShiftMACE"),
    "TorchMD-ET 64 ch, 4 layers, 8 heads": (
        lambda: create("torchmd_et_potential", hidden=64, n_layers=4, heads=8, num_rbf=50,
                       cutoff=5.0),
        lambda: et_peer(64, 4, 8, 50), et_call, "torchmd-net 3.1.0 equivariant-transformer"),
}


def make_fns(model, call, inputs):
    z, pos, batch, energy_ref, forces_ref = inputs

    def ef():
        model.eval()
        e, f = call(model, z, pos, batch, False)
        return e.detach(), f.detach()

    def step():
        model.train()
        model.zero_grad(set_to_none=True)
        e, f = call(model, z, pos, batch, True)
        ((e - energy_ref).pow(2).mean() + (f - forces_ref).pow(2).mean()).backward()
    return ef, step


def time_pair(ours, peer, call, inputs, repeats: int) -> dict:
    fns = {"ours": make_fns(ours, ours_call, inputs), "peer": make_fns(peer, call, inputs)}
    times = {k: {"energy_forces": [], "train_step": []} for k in fns}
    for r in range(repeats + 1):                         # round 0 warms up
        order = ("ours", "peer") if r % 2 else ("peer", "ours")
        for key, i in (("energy_forces", 0), ("train_step", 1)):
            for who in order:
                t = time.perf_counter()
                fns[who][i]()
                if r:
                    times[who][key].append(time.perf_counter() - t)
    atoms = inputs[0].shape[0]
    res = {}
    for who, t in times.items():
        ef, st = statistics.median(t["energy_forces"]), statistics.median(t["train_step"])
        res[who] = {"energy_forces_ms": 1e3 * ef, "train_step_ms": 1e3 * st,
                    "energy_forces_atoms_per_s": atoms / ef, "train_step_atoms_per_s": atoms / st,
                    "energy_forces_all_ms": [1e3 * x for x in t["energy_forces"]],
                    "train_step_all_ms": [1e3 * x for x in t["train_step"]]}
    for key in ("energy_forces", "train_step"):
        res[f"speedup_{key}"] = res["peer"][f"{key}_ms"] / res["ours"][f"{key}_ms"]
    return res


def graph_ms(inputs, repeats: int) -> float:
    z, pos, batch = inputs[:3]
    t = []
    for _ in range(repeats + 1):
        s = time.perf_counter()
        radius_graph(pos, 5.0, batch)
        t.append(time.perf_counter() - s)
    return 1e3 * statistics.median(t[1:])


def git_state() -> str:
    """HEAD and the files of symformer/ that differ from it (shared tree: others' edits too)."""
    import subprocess

    def git(*a):
        return subprocess.run(["git", *a], cwd=HERE.parent, capture_output=True,
                              text=True).stdout.strip()
    dirty = git("status", "--short", "--", "symformer").replace("\n", ";")
    return git("rev-parse", "--short", "HEAD") + (f" + uncommitted: {dirty}" if dirty else "")


def fastest(row: dict, key: str) -> float:
    """Peer's fastest round over ours (less sensitive to load spikes than the medians)."""
    return min(row["peer"][f"{key}_all_ms"]) / min(row["ours"][f"{key}_all_ms"])


def write_markdown(res: dict, path: Path) -> None:
    lines = ["# symformer's potentials vs mace-torch and torchmd-net (CPU, float32)", "",
             f"Command: `{res['command']}`  ",
             f"Date: {res['date']}; torch {res['torch']}; mace-torch {res['versions']['mace']}, "
             f"e3nn {res['versions']['e3nn']}, torchmd-net {res['versions']['torchmdnet']}; "
             f"{res['machine']}; load average at start {res['loadavg_start']}. Aspirin, "
             f"{res['batch']} molecules = {res['atoms']} atoms, {res['edges']} edges (5 A); "
             f"medians of {res['repeats']} interleaved rounds after a warm-up. Ratio = peer time "
             "/ our time (> 1: symformer faster). The machine is shared, so absolute times move "
             "with the load; the ratios compare runs made seconds apart.", ""]
    for threads, table in res["threads"].items():
        lines += [f"## {threads} thread(s)", "",
                  f"`{table['command']}` on {table['date']}, load average at start "
                  f"{table['loadavg_start']}, code {table['git']}.", "",
                  f"Radius graph (symformer, included in every MACE call and in ours): "
                  f"{table['graph_ms']:.1f} ms.", "",
                  "| model | params ours / peer | E+F ours (ms) | E+F peer (ms) | E+F atoms/s "
                  "ours / peer | ratio E+F | train step ours (ms) | train step peer (ms) | "
                  "ratio train |", "|---|---|---|---|---|---|---|---|---|"]
        for name, row in table["pairs"].items():
            o, p = row["ours"], row["peer"]
            lines.append(
                f"| {name} | {row['params_ours']:,} / {row['params_peer']:,} | "
                f"{o['energy_forces_ms']:.0f} | {p['energy_forces_ms']:.0f} | "
                f"{o['energy_forces_atoms_per_s']:.0f} / {p['energy_forces_atoms_per_s']:.0f} | "
                f"{row['speedup_energy_forces']:.2f}x | {o['train_step_ms']:.0f} | "
                f"{p['train_step_ms']:.0f} | {row['speedup_train_step']:.2f}x |")
        lines += ["", "Ratios of the fastest rounds (E+F / train step): " + "; ".join(
            f"{name} {fastest(row, 'energy_forces'):.2f}x / {fastest(row, 'train_step'):.2f}x"
            for name, row in table["pairs"].items()) + ".", ""]
    lines += ["## Peers", ""] + [f"- {name}: {row}" for name, row in res["peers"].items()]
    lines += ["", "## Notes", ""] + [f"- {n}" for n in res["notes"]]
    lines += ["", "## Install (peer venv, outside the repository)", "", "```"] + res["install"]
    lines += ["```", ""]
    path.write_text("\n".join(lines))


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--data-dir", default=str(HERE.parent.parent / "shared" / "data" / "rmd17"))
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--repeats", type=int, default=7)
    p.add_argument("--threads", type=int, nargs="+", default=[1])
    p.add_argument("--pairs", nargs="+", default=list(PAIRS), help="subset of the pair names")
    p.add_argument("--merge", action="store_true",
                   help="add these thread counts to an existing result file")
    p.add_argument("--out", default=str(HERE / "results" / "speed_potentials_peers"))
    args = p.parse_args(argv)
    import e3nn
    import mace
    import torchmdnet

    loadavg = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    inputs = aspirin_batch(Path(args.data_dir), args.batch)
    command = (f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', '')} /work/peers-venv/bin/"
               "python benchmarks/speed_potentials_peers.py " + " ".join(argv or sys.argv[1:]))
    res = {"command": command,
           "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
           "torch": torch.__version__, "loadavg_start": loadavg,
           "versions": {"mace": getattr(mace, "__version__", "0.3.16"), "e3nn": e3nn.__version__,
                        "torchmdnet": getattr(torchmdnet, "__version__", "3.1.0")},
           "machine": platform.processor() or platform.machine(), "batch": args.batch,
           "atoms": int(inputs[0].shape[0]),
           "edges": int(radius_graph(inputs[1], 5.0, inputs[2]).shape[1]),
           "repeats": args.repeats, "seed": 0, "install": INSTALL, "threads": {},
           "peers": {name: PAIRS[name][3] for name in args.pairs}, "notes": NOTES}
    out = Path(args.out)
    if args.merge and out.with_suffix(".json").exists():
        old = json.loads(out.with_suffix(".json").read_text())
        res = dict(old, peers={**old["peers"], **res["peers"]}, notes=NOTES)
    for threads in args.threads:
        torch.set_num_threads(threads)
        table = {"graph_ms": graph_ms(inputs, args.repeats), "pairs": {},
                 "date": datetime.datetime.now(datetime.timezone.utc).isoformat(
                     timespec="seconds"), "loadavg_start": ", ".join(
                         f"{x:.2f}" for x in os.getloadavg()), "git": git_state(),
                 "command": command}
        for name in args.pairs:
            make_ours, make_peer, call, _ = PAIRS[name]
            torch.manual_seed(0)
            ours, peer = make_ours(), make_peer()
            row = time_pair(ours, peer, call, inputs, args.repeats)
            row["params_ours"] = sum(q.numel() for q in ours.parameters())
            row["params_peer"] = sum(q.numel() for q in peer.parameters())
            table["pairs"][name] = row
            print(threads, name, json.dumps({k: v for k, v in row.items()
                                              if k not in ("ours", "peer")}), flush=True)
        res["threads"][str(threads)] = table
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps(res, indent=2) + "\n")
    write_markdown(res, out.with_suffix(".md"))
    return 0


if __name__ == "__main__":
    os.environ.setdefault("SYMFORMER_CACHE", "/tmp/symformer-cache")
    sys.exit(main())
