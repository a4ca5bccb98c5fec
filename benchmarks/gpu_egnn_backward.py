"""EGNN's execution modes on a GPU, against egnn-pytorch: which one a device should default to.

``EGNN(fused_backward=True)`` runs each layer as one autograd node with a hand-written backward
(about seventy operations issued from Python per layer); ``fused_backward=False`` records plain
operations and lets autograd's C++ engine issue the backward; ``dense=True`` lays complete graphs
of equal-size systems out as ``(B, n, n)`` edge tensors (broadcasts, no gathers or scatters). The
CPU default is the fused edge-list mode (``speed_nbody.py``); this script decides the other
devices'.

1. Agreement on the device, float64: predictions and parameter gradients of the plain and dense
   modes against the fused one, on the complete graphs of the N-body batch (and plain on a
   radius + k-NN graph).
2. Forward+backward per batch of N-body systems (``speed_nbody.make_step``, MSE loss), float32,
   the three models taking turns, median of repeats: eager, and with ``--compile MODE`` all three
   through ``torch.compile`` (``reduce-overhead``: CUDA graphs).

Run (GPU machine, egnn-pytorch installed as for ``gpu_nbody_peers.py``)::

    python benchmarks/gpu_egnn_backward.py --out gpu_egnn_backward.json

``--device cpu --quick`` is a dry run on a CPU machine.
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

from symformer.models.egnn import EGNN  # noqa: E402


MODES = {"egnn fused": {"fused_backward": True, "dense": False},
         "egnn plain": {"fused_backward": False, "dense": False},
         "egnn dense": {"dense": True}}


def _models(device: torch.device, modes: list[str], dtype=torch.float64, **graph) -> list[EGNN]:
    """The modes' models with the same weights (larger than the init, so every term matters)."""
    torch.manual_seed(0)
    models = [EGNN(**MODES[m], **graph).to(device, dtype) for m in modes]
    for p in models[0].parameters():
        p.data.normal_(0, 0.2)
    for m in models[1:]:
        m.load_state_dict(models[0].state_dict())
    return models


def agreement(device: torch.device, n_systems: int) -> list[dict]:
    """Largest relative differences between the modes: output and parameter gradients."""
    data = {k: v.to(device, torch.float64) if v.is_floating_point() else v.to(device)
            for k, v in sb.nbody_batch(n_systems).items()}
    batch = torch.arange(n_systems, device=device).repeat_interleave(5)
    flat = {"pos": data["pos"].reshape(-1, 3), "vel": data["vel"].reshape(-1, 3),
            "charges": data["charges"].reshape(-1), "batch": batch}
    rows = []
    for graph, modes in (({}, ["egnn fused", "egnn plain"]), ({}, ["egnn fused", "egnn dense"]),
                         ({"radius": 2.0, "neighbors": 3}, ["egnn fused", "egnn plain"])):
        outs, grads = [], []
        for model in _models(device, modes, **graph):
            out = model(**flat)
            weights = torch.linspace(-1, 1, out.numel(), device=device,
                                     dtype=out.dtype).view_as(out)
            g = torch.autograd.grad((out * weights).sum(), list(model.parameters()),
                                    allow_unused=True)
            outs.append(out.detach())
            grads.append([x for x in g if x is not None])
        rows.append({"graph": graph or "complete", "modes": f"{modes[1]} vs {modes[0]}",
                     "output": gs.rel_error(outs[0], outs[1]),
                     "gradients": max(gs.rel_error(a, b) for a, b in zip(*grads))})
        print(json.dumps(rows[-1]), flush=True)
    return rows


def timing(device: torch.device, systems: list[int], repeats: int,
           compile_mode: str | None) -> list[dict]:
    rows = []
    for n_sys in systems:
        data = {k: v.to(device) for k, v in sb.nbody_batch(n_sys).items()}
        models = {}
        for name, options in MODES.items():
            torch.manual_seed(0)
            models[name] = (EGNN(**options).to(device), "ours")
        peer, kind, _ = sb.build("egnn-pytorch")
        models["egnn-pytorch"] = (peer.to(device), kind)
        steps = {}
        for name, (m, kind) in models.items():
            if compile_mode is not None:
                m = torch.compile(m, mode=None if compile_mode == "default" else compile_mode)
            steps[name] = sb.make_step(m, kind, data)
        ms = gs.time_interleaved(steps, device, repeats)
        rows.append({"systems": n_sys, "compile": compile_mode, **ms})
        print(json.dumps(rows[-1]), flush=True)
    return rows


def markdown(res: dict) -> str:
    lines = ["# EGNN execution modes on a GPU", "",
             f"{res['date']}; {res['device_name']}; torch {res['torch']}; command "
             f"`{res['command']}`.", "",
             "## Agreement of the modes (float64, relative to the largest entry)", "",
             "| graph | modes | output | parameter gradients |", "|---|---|---|---|"]
    for r in res["agreement"]:
        lines.append(f"| {r['graph']} | {r.get('modes', 'egnn plain vs egnn fused')} | "
                     f"{r['output']:.1e} | {r['gradients']:.1e} |")
    lines += ["", f"## Forward+backward per batch, float32, median of {res['repeats']} "
              "alternating repeats (ms)", "",
              "| systems | compiled | egnn fused | egnn plain | egnn dense | egnn-pytorch | "
              "egnn-pytorch / fused | egnn-pytorch / dense |", "|---|---|---|---|---|---|---|---|"]
    for r in res["timing"]:
        f, p, d, q = (r.get(k) for k in ("egnn fused", "egnn plain", "egnn dense",
                                         "egnn-pytorch"))
        cell = (lambda v: "-" if v is None else f"{v:.2f}")  # noqa: E731
        ratio = (lambda v: "-" if v is None else f"{q / v:.2f}x")  # noqa: E731
        lines.append(f"| {r['systems']} | {r['compile'] or 'eager'} | {cell(f)} | {cell(p)} | "
                     f"{cell(d)} | {cell(q)} | {ratio(f)} | {ratio(d)} |")
    lines += ["", "Ratios above 1 mean ours is faster than egnn-pytorch.", ""]
    return "\n".join(lines)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--systems", type=int, nargs="+", default=[100, 1000])
    ap.add_argument("--repeats", type=int, default=30)
    ap.add_argument("--compile", nargs="*", default=["reduce-overhead"],
                    help="torch.compile modes timed after eager ('default', 'reduce-overhead')")
    ap.add_argument("--quick", action="store_true", help="10 systems, 3 repeats (a dry run)")
    ap.add_argument("--out", default="gpu_egnn_backward.json")
    args = ap.parse_args(argv)
    if args.quick:
        args.systems, args.repeats = [10], 3
    device = torch.device(args.device)
    res = {"date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
           "device_name": torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU",
           "torch": torch.__version__, "repeats": args.repeats,
           "command": " ".join(["python", "benchmarks/gpu_egnn_backward.py", *sys.argv[1:]]),
           "agreement": agreement(device, 20), "timing": []}
    for mode in [None, *args.compile]:
        res["timing"] += timing(device, args.systems, args.repeats, mode)
    sb.save_results(args.out, res, markdown)


if __name__ == "__main__":
    main()
