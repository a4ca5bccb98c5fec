"""Cost growth from 5 to 1,000 nodes on radius graphs: symformer's TorchMD-ET vs torchmd-net's.

The N-body issue asks that every model's forward+backward cost grow no worse than its peer's from
5 to 1,000 nodes, on radius graphs where the model is local. TorchMD-ET is local by design: the
published model (and torchmd-net, its reference implementation) builds a radius graph with a
cosine cutoff. Here both sides run that architecture at the same size (64 features, 4 layers,
8 heads, 32 expanded-normal RBFs) on the same radius graph:

- ours: ``create("torchmd_et", radius=R, cutoff=R)``, the registered N-body model;
- torchmd-net 3.1.0: its ``equivariant-transformer`` representation with ``cutoff_upper=R``
  and its ``EquivariantVectorOutput`` head, per-atom vectors added to the positions (the
  per-atom output, before torchmd-net sums over the atoms).

Ours does slightly more work per call: its vector features start from the velocities and its
distance filters also see ``c_i c_j`` (one more input); torchmd-net embeds the charge sign as the
atom type. The systems are one ball of N particles at the density of the N-body data
(``speed_nbody.random_system``); ``R = 5.5`` gives about 16 neighbours per node at N = 1,000,
the ``k`` of the k-NN runs in ``scaling_nbody.py``; ``R = 4`` and ``7`` (about 6 and 31) show
that the comparison does not hinge on the cutoff. Timing as there: back to back in one
process, 1 thread, float32, median of alternating repeats; growth = t(N) / t(5).

torchmd-net's dependencies conflict with symformer's test environment, so this runs in its own
environment (as ``speed_potentials_peers.py``)::

    python -m venv /work/peers-venv
    /work/peers-venv/bin/pip install torch==2.13.0
    /work/peers-venv/bin/pip install -c constraints.txt --no-build-isolation torchmd-net==3.1.0
    /work/peers-venv/bin/pip install -c constraints.txt -e . --no-deps
    /work/peers-venv/bin/python benchmarks/scaling_nbody_radius.py

writes ``benchmarks/results/scaling_nbody_radius.{json,md}``.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import sys
from pathlib import Path

import torch
from torch import nn

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import scaling_nbody as sn  # noqa: E402
import speed_nbody as sb  # noqa: E402

PEER = "torchmd-net"
CONFIG = {"hidden": 64, "n_layers": 4, "heads": 8, "num_rbf": 32}
NOTES = {
    "torchmd_et": "Both sides run the same architecture on the same radius graph, so the fixed "
                  "per-call costs are alike and the growths compare like with like. The "
                  "k-NN comparison with En-transformer (scaling_nbody.md) pairs two different "
                  "architectures: En-transformer's fixed cost is twice ours, so its ratio "
                  "t(N)/t(5) is flatter although it is slower at every N. En-transformer has no "
                  "sparse radius graph of its own (its valid_radius only masks a k-NN "
                  "selection), so it is not run here.",
}


class TorchMDNetVector(nn.Module):
    """torchmd-net's equivariant transformer with its vector head, per atom, on the dense
    N-body inputs ``pos, vel [1, n, 3], charges [1, n]`` -> positions ``[1, n, 3]``."""

    def __init__(self, radius: float, max_neighbors: int):
        super().__init__()
        from torchmdnet.models.model import create_model
        args = {"model": "equivariant-transformer", "embedding_dimension": CONFIG["hidden"],
                "num_layers": CONFIG["n_layers"], "num_heads": CONFIG["heads"],
                "num_rbf": CONFIG["num_rbf"], "rbf_type": "expnorm", "trainable_rbf": False,
                "activation": "silu", "attn_activation": "silu", "distance_influence": "both",
                "neighbor_embedding": True, "cutoff_lower": 0.0, "cutoff_upper": radius,
                "max_z": 3, "max_num_neighbors": max_neighbors, "precision": 32,
                "derivative": False, "atom_filter": -1, "prior_model": None,
                "output_model": "VectorOutput", "reduce_op": "add",
                "equivariance_invariance_group": "O(3)"}
        self.net = create_model(args)

    def forward(self, pos, vel, charges):
        b, n, _ = pos.shape
        flat = pos.reshape(b * n, 3)
        z = (charges.reshape(-1) > 0).long() + 1  # the charge sign as the atom type
        batch = torch.arange(b).repeat_interleave(n)
        x, v, z, p, batch = self.net.representation_model(z, flat, batch)
        vec = self.net.output_model.pre_reduce(x, v, z, p, batch)  # [b n, 3]
        return pos + vec.reshape(b, n, 3)


def mean_degree(pos: torch.Tensor, radius: float) -> float:
    from symformer.data.graphs import radius_graph
    return radius_graph(pos, radius).shape[1] / pos.shape[0]


def run_radius(radius: float, args, ref: dict) -> dict:
    """Both sides on radius graphs of cutoff ``radius``: rows, growth and the verdict."""
    from symformer.models import create
    torch.manual_seed(0)
    ours = create("torchmd_et", **CONFIG, radius=radius, cutoff=radius)
    torch.manual_seed(0)
    peer = TorchMDNetVector(radius, args.max_neighbors)
    key = f"torchmd_et, R = {radius:g}"
    rows = []
    for n in sorted(args.nodes):
        data = sb.random_system(n, ref)
        steps = {key: sb.make_step(ours, "ours", data), PEER: sb.make_step(peer, "peer", data)}
        peaks = {name: sb._peak_of(step) for name, step in steps.items()}  # also warm-up
        med = sn.time_interleaved(steps, args.repeats)
        rows.append({"nodes": n, "repeats": args.repeats,
                     "mean_degree": mean_degree(data["pos"][0], radius),
                     **{name: {"median_s": med[name], "peak_bytes": peaks[name]["peak_bytes"]}
                        for name in steps}})
        print(json.dumps(rows[-1]), flush=True)
    growth, met = sn.growth_verdict(rows, key, PEER)
    return {key: {"peer": PEER, "radius": radius, "rows": rows, "growth": growth,
                  "target_met": met, "skipped": []}}


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--nodes", type=int, nargs="+", default=[5, 50, 200, 1000])
    ap.add_argument("--radius", type=float, nargs="+", default=[5.5, 4.0, 7.0],
                    help="one table per cutoff")
    ap.add_argument("--max-neighbors", type=int, default=128,
                    help="torchmd-net's neighbour-list capacity (above the largest degree)")
    ap.add_argument("--repeats", type=int, default=9)
    ap.add_argument("--out", default=str(HERE / "results" / "scaling_nbody_radius.json"))
    args = ap.parse_args(argv)
    import torchmdnet
    torch.set_num_threads(1)
    ref = sb.nbody_batch()
    models, notes, degrees = {}, {}, []
    for radius in args.radius:
        models.update(run_radius(radius, args, ref))
        rows = next(reversed(models.values()))["rows"]
        degrees.append(f"R = {radius:g}: " + ", ".join(f"{r['mean_degree']:.1f}"
                                                       for r in rows))
    notes[next(iter(models))] = NOTES["torchmd_et"]
    res = {"title": "# N-body cost growth on radius graphs, 5 to 1,000 nodes: TorchMD-ET vs "
                    "torchmd-net",
           "graph": "the same radius graph and cosine cutoff R on both sides (mean neighbours "
                    f"per node at N = {', '.join(map(str, sorted(args.nodes)))}: "
                    f"{'; '.join(degrees)}); torchmd-net "
                    f"{getattr(torchmdnet, '__version__', '3.1.0')}",
           "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
           "cpu": platform.processor() or platform.machine(), "torch": torch.__version__,
           "radius": args.radius, "load_average": os.getloadavg(),
           "command": " ".join(["python", "benchmarks/scaling_nbody_radius.py", *sys.argv[1:]]),
           "notes": notes, "models": models}
    out = Path(args.out)
    out.write_text(json.dumps(res, indent=1))
    out.with_suffix(".md").write_text(sn.markdown(res))
    print(sn.markdown(res))


if __name__ == "__main__":
    main()
