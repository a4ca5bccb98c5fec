"""Cost growth from 5 to 1,000 nodes on k-nearest-neighbour graphs: symformer vs peer libraries.

The question the N-body issue asks: does each symformer model's forward+backward cost grow no
worse than its peer's as one system grows from 5 to 1,000 particles? Both sides use local graphs
(each node's ``k`` nearest nodes; ``k = 16`` by default): symformer models with
``neighbors=k``, the peers with their own nearest-neighbour options (egnn-pytorch
``num_nearest_neighbors``, En-transformer ``neighbors``, equiformer-pytorch and
se3-transformer-pytorch ``num_neighbors``). The systems are one ball of N particles at the
density of the N-body data (``speed_nbody.random_system``).

For each size, our model and its peer are timed back to back in this process (alternating
repeats, 1 thread, float32, median); peak memory is the resident-set growth during one step
(``speed_nbody._peak_of``). Growth = t(N) / t(5); the target is ours <= peer's at every N.

Run: ``python benchmarks/scaling_nbody.py [--nodes 5 50 200 1000] [--neighbors 16]``; writes
``benchmarks/results/scaling_nbody.{json,md}``.
"""

from __future__ import annotations

import argparse
import datetime
import json
import statistics
import sys
import time
from pathlib import Path

import torch
from torch import nn

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import speed_nbody as sb  # noqa: E402

PAIRS = {  # symformer model -> peer (configs as in speed_nbody)
    "egnn": "egnn-pytorch",
    "equiformer": "equiformer-pytorch",
    "se3_transformer": "se3-transformer-pytorch",
    "torchmd_et": "En-transformer",
}
# What the numbers do not show by themselves; printed under the model's table.
NOTES = {
    "torchmd_et": "Ours is faster than the peer at every N, but the peer's step is almost flat "
                  "up to N = 200 (its fixed per-call cost dominates, twice ours), so the ratio "
                  "t(N)/t(5) favours it; from N = 5 to 200 our added time is also about 1.25x "
                  "the peer's. What grows is the per-edge elementwise work of the distance "
                  "filters and attention (eager PyTorch). Processing the edges in cache-sized "
                  "blocks with a hand-written backward was tried and was 1.3x slower: on this "
                  "CPU the filters' SiLU and the per-head broadcast products cost about as much "
                  "in cache as out of it. With both sides compiled (torch.compile, "
                  "scaling_nbody_compiled.md) both fixed costs fall to about 10 ms and the "
                  "growths are equal within 4% up to N = 200, ours lower at N = 1000. Against "
                  "torchmd-net, the reference implementation of the same architecture, on the "
                  "same radius graph (scaling_nbody_radius.md), our growth is lower at every N.",
}
# The same for the tables of --compile runs.
NOTES_COMPILED = {
    "torchmd_et": "torch.compile fuses the per-edge elementwise chains of both models and "
                  "removes most of their per-call overhead (N = 5: 26.5 -> 10.4 ms ours, "
                  "54 -> 10.4 ms the peer's, eager figures from scaling_nbody.md). The two "
                  "growths are then equal within the noise up to N = 200 (2.7x vs 2.6x at "
                  "N = 50, 7.7x vs 7.7x at N = 200) and ours is lower at N = 1000 (36x vs 50x), "
                  "but ours is still 3% above the peer's at N = 50, so the target as stated "
                  "is not met in this mode either. Compiling takes about 1.5-2 minutes per "
                  "model and size on this CPU (untimed warm-up).",
}
PEER_KNN_OPTION = {"egnn-pytorch": "num_nearest_neighbors", "En-transformer": "neighbors",
                   "equiformer-pytorch": "num_neighbors",
                   "se3-transformer-pytorch": "num_neighbors"}


def _set_peer_neighbors(peer: nn.Module, name: str, k: int) -> None:
    """Switch a peer built by ``speed_nbody`` to its k-nearest-neighbour mode (the peers read
    the option from an attribute of the layer that builds the graph)."""
    option = PEER_KNN_OPTION[name]
    hits = 0
    for module in peer.modules():
        if hasattr(module, option):
            setattr(module, option, k)
            hits += 1
    if not hits:
        raise RuntimeError(f"{name}: no module has the attribute {option!r}")


def build_pair(ours: str, seed: int = 0):
    model, _, _ = sb.build(ours, seed)
    peer_name = PAIRS[ours]
    peer, _, _ = sb.build(peer_name, seed)
    return {ours: (model, "ours"), peer_name: (peer, "peer")}


def set_neighbors(pair: dict, k: int) -> None:
    """k nearest neighbours on both sides (symformer models read ``neighbors`` per call)."""
    for name, (module, kind) in pair.items():
        if kind == "ours":
            module.neighbors = k
        else:
            _set_peer_neighbors(module, name, k)


def time_interleaved(steps: dict, repeats: int) -> dict:
    times = {name: [] for name in steps}
    for _ in range(repeats):
        for name, step in steps.items():
            t = time.perf_counter()
            step()
            times[name].append(time.perf_counter() - t)
    return {name: statistics.median(v) for name, v in times.items()}


def run(args) -> dict:
    torch.set_num_threads(1)
    ref = sb.nbody_batch()
    results = {}
    for ours in args.models:
        pair = build_pair(ours)
        rows, skipped = [], []
        for n in sorted(args.nodes):
            if rows:  # at least linear growth: skip sizes whose predicted step is over budget
                prev = rows[-1]
                slowest = max(prev[name]["median_s"] for name in pair)
                if slowest * n / prev["nodes"] > args.budget_s:
                    skipped.append({"nodes": n, "reason": f"predicted step over {args.budget_s:.0f} s "
                                    f"(slowest side {slowest:.1f} s at N={prev['nodes']})"})
                    continue
            set_neighbors(pair, min(args.neighbors, n - 1))  # small systems: complete graphs
            data = sb.random_system(n, ref)
            steps = {name: sb.make_step(torch.compile(m) if args.compile else m, kind, data)
                     for name, (m, kind) in pair.items()}
            if args.compile:  # compile (and recompile once for the backward) before timing
                for step in steps.values():
                    step(), step()
            peaks = {name: sb._peak_of(step) for name, step in steps.items()}  # also warm-up
            slow = max(p["seconds"] for p in peaks.values())
            reps = 1 if slow > args.slow_s else args.repeats
            med = time_interleaved(steps, reps)
            rows.append({"nodes": n, "repeats": reps, "k": min(args.neighbors, n - 1),
                         **{name: {"median_s": med[name], "peak_bytes": peaks[name]["peak_bytes"]}
                            for name in pair}})
            print(json.dumps({"model": ours, **rows[-1]}), flush=True)
        names = list(pair)
        growth, met = growth_verdict(rows, names[0], names[1])
        results[ours] = {"peer": names[1], "rows": rows, "growth": growth,
                         "target_met": met, "skipped": skipped}
    return results


def growth_verdict(rows: list[dict], ours: str, peer: str) -> tuple[dict, bool | None]:
    """Growth t(N) / t(first N) of both sides, ``{name: {N: growth}}``, and whether ours is no
    worse at every N (None with a single size: nothing to compare)."""
    growth = {name: {r["nodes"]: r[name]["median_s"] / rows[0][name]["median_s"] for r in rows}
              for name in (ours, peer)}
    met = (all(growth[ours][n] <= growth[peer][n] for n in growth[ours])
           if len(rows) > 1 else None)
    return growth, met


def _growth_at(growth: dict, n: int) -> float:
    return growth[n] if n in growth else growth[str(n)]  # int keys, or str after a JSON load


def markdown(res: dict) -> str:
    """The results as markdown; ``res`` may name its own ``title``, ``graph`` (the graph in
    words) and per-model ``notes`` (radius-graph runs use this writer too)."""
    title = res.get("title", "# N-body cost growth on k-nearest-neighbour graphs, 5 to 1,000 "
                             "nodes")
    if res.get("compiled"):
        title += " (both sides through torch.compile)"
    graph = res.get("graph", f"k = {res.get('neighbors')}")
    lines = [title, "",
             f"{res['date']}; {res['cpu']}; torch {res['torch']}; 1 thread, float32, "
             f"{graph}; command `{res['command']}`.", "",
             "Median forward+backward time of one system of N particles (ms), peak memory "
             "growth during a step, growth t(N)/t(5), and the time added since N=5, t(N) - t(5) "
             "(ms). Ours and the peer are timed back to back in one process. Target: our growth "
             "no worse than the peer's.", ""]
    for ours, r in res["models"].items():
        peer = r["peer"]
        verdict = {True: "met", False: "NOT met", None: "not measured (one size ran)"}
        lines += [f"## {ours} vs {peer}: target {verdict[r['target_met']]}", ""]
        if "measured" in r:
            m = r["measured"]
            lines += [f"Re-measured {m['date']} (load average at start "
                      f"{m['load_average'][0]:.1f}; command `{m['command']}`).", ""]
        lines += [
                  "| N | ours ms | ours peak | ours growth | ours added | peer ms | peer peak | "
                  "peer growth | peer added |", "|---|---|---|---|---|---|---|---|---|"]
        for row in r["rows"]:
            n = row["nodes"]
            cells = []
            for name in (ours, peer):
                added = row[name]["median_s"] - r["rows"][0][name]["median_s"]
                cells += [f"{1e3 * row[name]['median_s']:.1f}",
                          f"{row[name]['peak_bytes'] / 2**20:.0f} MiB",
                          f"{_growth_at(r['growth'][name], n):.1f}x", f"{1e3 * added:+.1f}"]
            lines.append(f"| {n} | " + " | ".join(cells) + " |")
        for sk in r.get("skipped", []):
            lines.append(f"| {sk['nodes']} | skipped: {sk['reason']} | | | | | | | |")
        notes = res.get("notes", NOTES_COMPILED if res.get("compiled") else NOTES)
        if ours in notes:
            lines += ["", notes[ours]]
        lines.append("")
    return "\n".join(lines)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--models", nargs="+", default=list(PAIRS))
    ap.add_argument("--nodes", type=int, nargs="+", default=[5, 50, 200, 1000])
    ap.add_argument("--neighbors", type=int, default=16)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--slow-s", type=float, default=5.0,
                    help="one repeat when a step takes longer than this")
    ap.add_argument("--budget-s", type=float, default=60.0,
                    help="skip a size when a step of either side is predicted to take longer")
    ap.add_argument("--compile", action="store_true",
                    help="run both sides through torch.compile (a fresh compile per size, "
                         "untimed in the warm-up); write to --out, by default "
                         "scaling_nbody_compiled.json")
    ap.add_argument("--out", default=None)
    ap.add_argument("--merge", action="store_true",
                    help="replace only the models run in an existing --out, keeping the others")
    args = ap.parse_args(argv)
    if args.out is None:
        name = "scaling_nbody_compiled.json" if args.compile else "scaling_nbody.json"
        args.out = str(HERE / "results" / name)
    import os
    import platform
    res = {"date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
           "cpu": platform.processor() or platform.machine(), "torch": torch.__version__,
           "neighbors": args.neighbors, "load_average": os.getloadavg(),
           "compiled": args.compile,
           "command": " ".join(["python", "benchmarks/scaling_nbody.py", *sys.argv[1:]]),
           "models": run(args)}
    out = Path(args.out)
    if args.merge and out.exists():
        old = json.loads(out.read_text())
        run_info = {k: v for k, v in res.items() if k != "models"}
        for name, r in res["models"].items():
            old["models"][name] = dict(r, measured=run_info)
        res = old
    out.write_text(json.dumps(res, indent=1))
    out.with_suffix(".md").write_text(markdown(res))
    print(markdown(res))


if __name__ == "__main__":
    main()
