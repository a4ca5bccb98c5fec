"""EGNN against egnn-pytorch over batch sizes: where the speed ratio comes from.

``speed_nbody.py`` times one batch of 100 systems. A step costs a fixed part (Python and dispatch
of a fixed number of operations, the cost of a single system) plus a part that grows with the
batch. This script times both models at several batch sizes and thread counts, in one process,
taking turns (``speed_nbody.time_group``), and fits ``t(S) = fixed + per_system * S`` by least
squares to each, so the ratio at any batch size can be read off.

A last table compares EGNN's CPU execution modes at one batch size (Python layers, C++ layers
as one chunk, C++ layers split among threads) with egnn-pytorch, the four taking turns.

Run: ``python benchmarks/speed_nbody_batch.py`` (``--help``); writes
``benchmarks/results/speed_nbody_batch.{json,md}``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import speed_nbody as sb  # noqa: E402

PAIR = ("egnn", "egnn-pytorch")


def fit(sizes: list[int], ms: list[float]) -> tuple[float, float]:
    """Least-squares ``(fixed_ms, per_system_ms)`` of ``ms ~ fixed + per_system * size``."""
    x = torch.tensor(sizes, dtype=torch.float64)
    A = torch.stack([torch.ones_like(x), x], dim=1)
    coef = torch.linalg.lstsq(A, torch.tensor(ms, dtype=torch.float64).unsqueeze(1)).solution
    return float(coef[0]), float(coef[1])


def run(sizes: list[int], threads: list[int], repeats: int) -> list[dict]:
    rows = []
    for t in threads:
        for size in sizes:
            data = sb.nbody_batch(size)
            steps = {}
            for name in PAIR:
                model, kind, _ = sb.build(name)
                steps[name] = sb.make_step(model, kind, data)
            timing = sb.time_group(list(PAIR), steps, {n: repeats for n in PAIR}, t)
            rows.append({"threads": t, "systems": size,
                         **{n: timing[n]["median_ms"] for n in PAIR}})
            print(json.dumps(rows[-1]), flush=True)
    return rows


ABLATION = ("Python layers", "C++ layers, one chunk", "C++ layers, split among threads",
            "egnn-pytorch")


def ablation(size: int, threads: list[int], repeats: int) -> list[dict]:
    """EGNN's CPU execution modes and egnn-pytorch at one batch size, taking turns: the Python
    layers (``compiled=False``), the C++ layers run as one chunk, and split among threads (the
    default)."""
    import symformer.models._egnn_layers as egnn_module

    data = sb.nbody_batch(size)
    steps = {}
    for name in ABLATION:
        model, kind, _ = sb.build("egnn" if name != "egnn-pytorch" else name)
        if name == "Python layers":
            model.compiled = False
        step = sb.make_step(model, kind, data)
        if name == "C++ layers, one chunk":  # the chunk plan is made (and kept) at each call
            def step(step=step, default=egnn_module._MIN_CHUNK_EDGES):
                egnn_module._MIN_CHUNK_EDGES = 1 << 62
                try:
                    step()
                finally:
                    egnn_module._MIN_CHUNK_EDGES = default
        steps[name] = step
    rows = []
    for t in threads:
        timing = sb.time_group(list(ABLATION), steps, {n: repeats for n in ABLATION}, t)
        rows.append({"threads": t, "systems": size,
                     **{n: timing[n]["median_ms"] for n in ABLATION}})
        print(json.dumps(rows[-1]), flush=True)
    return rows


def markdown(res: dict) -> str:
    ours, peer = PAIR
    lines = ["# EGNN vs egnn-pytorch over batch sizes", "",
             f"{res['machine']['date']}; {res['machine']['cpu']} ({res['machine']['logical_cpus']} "
             f"logical CPUs, load average at start {res['machine']['load_average'][0]:.1f}); "
             f"torch {res['machine']['versions']['torch']}; command `{res['command']}`.", "",
             "Forward+backward of an MSE loss on the first S training systems, float32, median "
             f"of {res['repeats']} repeats, the two models taking turns.", "",
             f"| threads | systems | {ours} ms | {peer} ms | speed-up |", "|---|---|---|---|---|"]
    for r in res["rows"]:
        lines.append(f"| {r['threads']} | {r['systems']} | {r[ours]:.1f} | {r[peer]:.1f} | "
                     f"{r[peer] / r[ours]:.2f}x |")
    lines += ["", "Fit `t(S) = fixed + per_system * S` per thread count (ms):", "",
              f"| threads | {ours} fixed | {ours} per system | {peer} fixed | {peer} per system "
              "| speed-up as S grows | S where the speed-up reaches 3x |",
              "|---|---|---|---|---|---|---|"]
    for t, f in res["fits"].items():
        (a, b), (c, d) = f[ours], f[peer]
        reach = (c - 3 * a) / (3 * b - d) if d > 3 * b else None  # c + d S = 3 (a + b S)
        where = "never" if reach is None else ("all S" if reach <= 0 else f"{reach:.0f}")
        lines.append(f"| {t} | {a:.1f} | {b:.3f} | {c:.1f} | {d:.3f} | {d / b:.1f}x | {where} |")
    if res.get("ablation"):
        lines += ["", "EGNN's CPU modes at one batch size, the four taking turns (median ms; "
                  "speed-up of the default over egnn-pytorch):", "",
                  "| threads | systems | " + " | ".join(ABLATION) + " | speed-up |",
                  "|---|---|" + "---|" * (len(ABLATION) + 1)]
        for r in res["ablation"]:
            cells = " | ".join(f"{r[n]:.1f}" for n in ABLATION)
            lines.append(f"| {r['threads']} | {r['systems']} | {cells} | "
                         f"{r['egnn-pytorch'] / r[ABLATION[2]]:.2f}x |")
    lines.append("")
    return "\n".join(lines)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--systems", type=int, nargs="+", default=[10, 25, 50, 100, 200, 400])
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--repeats", type=int, default=15)
    ap.add_argument("--ablation-systems", type=int, default=100,
                    help="batch size of the table of EGNN's CPU modes (0: skip it)")
    ap.add_argument("--out", default=str(HERE / "results" / "speed_nbody_batch.json"))
    args = ap.parse_args(argv)
    res = {"machine": sb.machine_info(args.threads), "repeats": args.repeats,
           "command": " ".join(["python", "benchmarks/speed_nbody_batch.py", *sys.argv[1:]]),
           "rows": run(args.systems, args.threads, args.repeats)}
    res["fits"] = {str(t): {n: fit([r["systems"] for r in res["rows"] if r["threads"] == t],
                                   [r[n] for r in res["rows"] if r["threads"] == t])
                            for n in PAIR} for t in args.threads}
    if args.ablation_systems:
        res["ablation"] = ablation(args.ablation_systems, args.threads, 2 * args.repeats)
    sb.save_results(args.out, res, markdown)


if __name__ == "__main__":
    main()
