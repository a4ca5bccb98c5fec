"""Local N-body graphs on a GPU: the same graphs and predictions as on the CPU, and the cost
growth of TorchMD-ET from 5 to 20,000 nodes.

1. ``radius_graph`` / ``knn_graph``: the edge lists built on the device equal the CPU's, for one
   system of 2,000 points and for 64 systems of 50.
2. Every N-body model with graph options (``radius``, ``neighbors``, both) predicts on the device
   what it predicts on the CPU (float64, one system of 300 particles with isolated nodes), and
   its gradients with respect to the parameters agree.
3. TorchMD-ET (64 features, 4 layers, 8 heads) forward+backward on radius graphs (R = 5.5, the
   density of the N-body data; ``speed_nbody.random_system``), median of repeats, float32.

Run (GPU machine): ``python benchmarks/gpu_graphs.py --out gpu_graphs.json``; on a CPU machine
``--device cpu --quick`` is a dry run. Writes JSON and markdown next to ``--out``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import gpu_speed as gs  # noqa: E402  (timing helpers)
import speed_nbody as sb  # noqa: E402

LOCAL = {"egnn": {"hidden": 16, "n_layers": 2},
         "equiformer": {"channels": 8, "n_layers": 2, "heads": 2},
         "se3_transformer": {"channels": 4, "n_layers": 2, "output_scale": 1.0},
         "symformer3d": {"channels": 8, "n_layers": 2, "heads": 2},
         "tfn": {"channels": 4, "n_layers": 2, "output_scale": 1.0},
         "torchmd_et": {"hidden": 16, "n_layers": 2, "heads": 4, "num_rbf": 8}}
OPTIONS = [{"radius": 2.0}, {"neighbors": 8}, {"radius": 3.0, "neighbors": 6}]


def graphs_agree(device: torch.device) -> list[dict]:
    from symformer.data.graphs import knn_graph, radius_graph
    g = torch.Generator().manual_seed(0)
    one = torch.randn(2000, 3, generator=g, dtype=torch.float64) * 6
    many = torch.randn(64 * 50, 3, generator=g, dtype=torch.float64) * 2
    batch = torch.arange(64).repeat_interleave(50)
    rows = []
    for name, pos, b in (("1 x 2000", one, None), ("64 x 50", many, batch)):
        for kind, fn in (("radius 2.5", lambda p, bb: radius_graph(p, 2.5, bb)),
                         ("knn 16", lambda p, bb: knn_graph(p, 16, bb)),
                         ("radius 2.5, max 8",
                          lambda p, bb: radius_graph(p, 2.5, bb, max_num_neighbors=8))):
            cpu = fn(pos, b)
            dev = fn(pos.to(device), None if b is None else b.to(device)).cpu()
            rows.append({"systems": name, "graph": kind, "edges": cpu.shape[1],
                         "equal": bool(torch.equal(cpu, dev))})
    return rows


def models_agree(device: torch.device) -> list[dict]:
    from symformer.data.nbody import to_graph_batch
    from symformer.models import create
    g = torch.Generator().manual_seed(1)
    ref = sb.nbody_batch(10)
    data = sb.random_system(300, ref)
    flat = {k: (v.double() if v.is_floating_point() else v)
            for k, v in to_graph_batch(data["pos"], data["vel"], data["charges"]).items()}
    rows = []
    for name, cfg in LOCAL.items():
        for opts in OPTIONS:
            torch.manual_seed(0)
            model = create(name, **cfg, **opts).double()
            for p in model.parameters():  # weights of a non-trivial size: every term matters
                p.data.normal_(0, 0.3, generator=g)
            outs = []
            for dev in (torch.device("cpu"), device):
                m = model.to(dev)
                m.zero_grad(set_to_none=True)
                out = m(**{k: v.to(dev) for k, v in flat.items()})
                (out ** 2).sum().backward()
                # copies: moving the module to the device next moves its .grad tensors too
                outs.append((out.detach().to("cpu", copy=True),
                             [p.grad.to("cpu", copy=True) for p in m.parameters()
                              if p.grad is not None]))
            scale = outs[0][0].abs().max()
            err = float((outs[0][0] - outs[1][0]).abs().max() / scale)
            gerr = max(float((a - b).abs().max() / a.abs().max().clamp_min(1e-300))
                       for a, b in zip(outs[0][1], outs[1][1]))
            rows.append({"model": name, "options": opts, "rel_err_out": err,
                         "rel_err_grad": gerr, "ok": err < 1e-10 and gerr < 1e-8})
            print(json.dumps(rows[-1]), flush=True)
    return rows


def et_growth(device: torch.device, nodes: list[int], repeats: int, radius: float) -> list[dict]:
    from symformer.models import create
    ref = sb.nbody_batch()
    torch.manual_seed(0)
    model = create("torchmd_et", hidden=64, n_layers=4, heads=8, radius=radius,
                   cutoff=radius).to(device)
    rows = []
    for n in nodes:
        data = {k: v.to(device) for k, v in sb.random_system(n, ref).items()}
        step = sb.make_step(model, "ours", data)
        ms = gs.time_interleaved({"step": step}, device, repeats)["step"]  # 3 warm-up calls
        rows.append({"nodes": n, "median_ms": ms})
        print(json.dumps(rows[-1]), flush=True)
    base = rows[0]["median_ms"]
    for r in rows:
        r["growth"] = r["median_ms"] / base
    return rows


def markdown(res: dict) -> str:
    lines = ["# Local N-body graphs on the GPU", "",
             f"{res['date']}; {res['device_name']}; torch {res['torch']}; command "
             f"`{res['command']}`.", "",
             "## Graphs built on the device equal the CPU's", "",
             "| systems | graph | edges | equal |", "|---|---|---|---|"]
    lines += [f"| {r['systems']} | {r['graph']} | {r['edges']} | {r['equal']} |"
              for r in res["graphs"]]
    lines += ["", "## Models on the device vs the CPU (float64, 300 particles)", "",
              "| model | options | max rel. error, output | max rel. error, gradients | ok |",
              "|---|---|---|---|---|"]
    lines += [f"| {r['model']} | {r['options']} | {r['rel_err_out']:.1e} | "
              f"{r['rel_err_grad']:.1e} | {r['ok']} |" for r in res["models"]]
    lines += ["", f"## TorchMD-ET forward+backward on radius graphs (R = {res['radius']:g}, "
              "float32)", "", "| N | ms | growth |", "|---|---|---|"]
    lines += [f"| {r['nodes']} | {r['median_ms']:.1f} | {r['growth']:.1f}x |"
              for r in res["growth"]]
    return "\n".join(lines) + "\n"


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--quick", action="store_true", help="small sizes (a CPU dry run)")
    ap.add_argument("--radius", type=float, default=5.5)
    ap.add_argument("--out", default="gpu_graphs.json")
    args = ap.parse_args(argv)
    device = torch.device(args.device)
    nodes = [5, 50, 200] if args.quick else [5, 50, 200, 1000, 5000, 20000]
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU"
    res = {"date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "device_name": name,
           "torch": torch.__version__, "radius": args.radius,
           "command": " ".join(["python", "benchmarks/gpu_graphs.py", *sys.argv[1:]]),
           "graphs": graphs_agree(device), "models": models_agree(device),
           "growth": et_growth(device, nodes, 5 if args.quick else 20, args.radius)}
    out = Path(args.out)
    out.write_text(json.dumps(res, indent=1))
    out.with_suffix(".md").write_text(markdown(res))
    print(markdown(res))
    bad = [r for r in res["graphs"] if not r["equal"]] + [r for r in res["models"] if not r["ok"]]
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
