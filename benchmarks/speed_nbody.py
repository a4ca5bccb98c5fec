"""Speed of the N-body models against peer libraries: forward+backward per batch of 100 systems.

Three parts, all float32 on CPU:

1. Time, in this process: median wall time of one forward+backward (MSE loss against the frame-40
   targets) on the first 100 training systems, per thread count. Each symformer model is timed
   back to back with its peer (alternating ours, peer, ours, ...), so machine noise hits both.
2. Peak memory, in a fresh subprocess per model: after a warm-up step and ``malloc_trim``, the peak
   resident set size is reset (``/proc/self/clear_refs``) and one more step is run; we report
   ``VmHWM - VmRSS`` (activations, gradients and allocator workspace on top of the parameters and
   inputs). ``tracemalloc`` does not see torch's allocations, RSS does.
3. Scaling, in the same subprocess: one system of N nodes (uniform in a ball, at the n-body number
   density), N ascending. None of these symformer models has a neighbour cutoff (complete graphs),
   so the peers run on complete graphs too. A size is skipped, with the reason recorded, when the
   time or memory extrapolated quadratically from the previous size exceeds the budget.

Run: ``python benchmarks/speed_nbody.py`` (options: ``--help``); writes
``benchmarks/results/speed_nbody.json`` and ``.md``.
"""

from __future__ import annotations

import argparse
import ctypes
import datetime
import importlib
import importlib.metadata as md
import json
import math
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

os.environ.setdefault("SYMFORMER_CACHE", "/tmp/symformer-cache")
# se3-transformer-pytorch caches its basis on disk under CACHE_PATH.
os.environ.setdefault("CACHE_PATH", "/tmp/symformer-cache/se3-transformer-pytorch")

import torch  # noqa: E402
from torch import nn  # noqa: E402

HERE = Path(__file__).resolve().parent
OURS = ["egnn", "se3_transformer", "tfn", "equiformer", "torchmd_et", "transformer"]
# symformer model -> (matched config, peer). Peer configs are in PEERS below; widths, depths,
# degrees and heads are matched where the architectures allow it.
OUR_CONFIGS = {
    "egnn": ({"hidden": 64, "n_layers": 4}, "egnn-pytorch"),
    "se3_transformer": ({"channels": 32, "lmax": 1, "n_layers": 3, "heads": 4},
                        "se3-transformer-pytorch"),
    "tfn": ({"channels": 32, "lmax": 1, "n_layers": 3}, None),
    "equiformer": ({"channels": 32, "lmax": 1, "n_layers": 2, "heads": 4, "head_channels": 8},
                   "equiformer-pytorch"),
    "torchmd_et": ({"hidden": 64, "n_layers": 4, "heads": 8}, "En-transformer"),
    "transformer": ({"dim": 64, "n_layers": 4, "heads": 8}, "En-transformer"),
}
PEERS = {
    "egnn-pytorch": "4 x EGNN(dim=64, edge_dim=2; default m_dim=16), Linear(2, 64)",
    "En-transformer": "EnTransformer(dim=64, depth=4, heads=2, dim_head=32, edge_dim=2), "
                      "Linear(2, 64)",
    "equiformer-pytorch": "Equiformer(dim=32, num_degrees=2, depth=2, heads=4, dim_head=8, "
                          "reduce_dim_out=True), Linear(2, 32)",
    "se3-transformer-pytorch": "SE3Transformer(dim=32, num_degrees=2, depth=2, heads=4, "
                               "dim_head=8, output_degrees=2, reduce_dim_out=True), Linear(2, 32)",
}
SLOW = {"se3-transformer-pytorch"}  # few repeats
# What the tables do not show by themselves; listed under them.
NOTES = {
    "egnn": "3.9x egnn-pytorch at 1 thread, 3.2x at 2 threads (run of 2026-11-27T23:12 on "
            "an AMD EPYC with AVX-512; earlier runs on a slower EPYC gave 3.1x / 2.4x with the "
            "Python layers). On the CPU the layers run in C++ (symformer/models/csrc/"
            "egnn_layer.cpp, compiled at first use; EGNN(compiled=None)): the matrix products "
            "and sigmoids are ATen's, the gathers, elementwise chains and scatters between them "
            "are one loop each, and at 2 threads each thread runs whole layers on its own half "
            "of the systems (one fork and join per layer instead of one per operation). The "
            "complete graph is kept while the batch repeats. speed_nbody_batch.md times the modes "
            "in one process, taking turns (100 systems, 2 threads): Python layers 11.0 ms, C++ "
            "layers in one chunk 9.1, split among threads 8.2, egnn-pytorch 26.8 (3.3x); at 1 "
            "thread 18.3 / 15.8 / 15.7 against 56.6. Tried before (session 10), no gain: "
            "torch.compile with inductor's C++ wrapper, TorchScript, flushing denormals.",
}


class _Peer(nn.Module):
    """A peer network on dense inputs ``pos, vel [B, n, 3], charges [B, n]`` -> positions.

    Node scalars ``(|v|, q)`` are embedded linearly (the peers take no vector inputs in these
    configs); EGNN-style peers also get edge features ``(q_i q_j, |x_i - x_j|^2)``.
    """

    def __init__(self, name: str):
        super().__init__()
        self.name = name
        if name == "egnn-pytorch":
            from egnn_pytorch import EGNN
            self.embed = nn.Linear(2, 64)
            self.net = nn.ModuleList(EGNN(dim=64, edge_dim=2) for _ in range(4))
        elif name == "En-transformer":
            from en_transformer import EnTransformer
            self.embed = nn.Linear(2, 64)
            self.net = EnTransformer(dim=64, depth=4, heads=2, dim_head=32, edge_dim=2)
        elif name == "equiformer-pytorch":
            from equiformer_pytorch import Equiformer
            self.embed = nn.Linear(2, 32)
            self.net = Equiformer(dim=32, num_degrees=2, depth=2, heads=4, dim_head=8,
                                  reduce_dim_out=True)
        elif name == "se3-transformer-pytorch":
            from se3_transformer_pytorch import SE3Transformer
            self.embed = nn.Linear(2, 32)
            self.net = SE3Transformer(dim=32, num_degrees=2, depth=2, heads=4, dim_head=8,
                                      output_degrees=2, reduce_dim_out=True)
        else:
            raise ValueError(f"peer: unknown {name!r}")

    def forward(self, pos, vel, charges):
        feats = self.embed(torch.stack([vel.norm(dim=-1), charges], dim=-1))  # [B, n, dim]
        if self.name in ("egnn-pytorch", "En-transformer"):
            diff = pos[:, :, None] - pos[:, None, :]
            edges = torch.stack([charges[:, :, None] * charges[:, None, :],
                                 (diff * diff).sum(-1)], dim=-1)  # [B, n, n, 2]
            if self.name == "En-transformer":
                return self.net(feats, pos, edges=edges)[1]
            x = pos
            for layer in self.net:
                feats, x = layer(feats, x, edges=edges)
            return x
        if self.name == "equiformer-pytorch":
            return pos + self.net(feats, pos).type1
        return pos + self.net(feats, pos, return_type=1)


def build(name: str, seed: int = 0):
    """(module, kind, config): a symformer model via ``create`` or a peer wrapper."""
    torch.manual_seed(seed)
    if name in PEERS:
        return _Peer(name), "peer", PEERS[name]
    import symformer.models as sm
    try:
        importlib.import_module(f"symformer.models.{name}")
    except ImportError:
        pass
    cfg = OUR_CONFIGS[name][0]
    return sm.create(name, **cfg), "ours", cfg


def make_step(model, kind: str, data: dict):
    """Closure running one forward+backward on ``data`` (dense ``pos, vel, charges, target``)."""
    S, n = data["charges"].shape
    if kind == "ours":
        from symformer.data.nbody import to_graph_batch
        flat = to_graph_batch(data["pos"], data["vel"], data["charges"])
        target = data["target"].reshape(S * n, 3)
        fwd = lambda: model(**flat)  # noqa: E731
    else:
        target = data["target"]
        fwd = lambda: model(data["pos"], data["vel"], data["charges"])  # noqa: E731

    def step():
        model.zero_grad(set_to_none=True)
        loss = ((fwd() - target) ** 2).mean()
        loss.backward()
    return step


def nbody_batch(n: int = 100) -> dict:
    from symformer.data.nbody import load_split
    return load_split("train", n=n, dtype=torch.float32)


def random_system(n_nodes: int, ref: dict, seed: int = 0) -> dict:
    """One system of ``n_nodes`` at the number density of the n-body data (uniform ball whose rms
    radius at 5 nodes equals the data's), speeds and charges drawn like the data's."""
    g = torch.Generator().manual_seed(seed)
    centred = ref["pos"] - ref["pos"].mean(dim=1, keepdim=True)
    r_rms = centred.pow(2).sum(-1).mean().sqrt()
    radius = r_rms / math.sqrt(0.6) * (n_nodes / ref["pos"].shape[1]) ** (1 / 3)
    d = torch.randn(n_nodes, 3, generator=g)
    pos = d / d.norm(dim=-1, keepdim=True) * radius * torch.rand(n_nodes, 1, generator=g) ** (1 / 3)
    v = torch.randn(n_nodes, 3, generator=g)
    vel = v / v.norm(dim=-1, keepdim=True) * ref["vel"].norm(dim=-1).mean()
    charges = torch.randint(0, 2, (n_nodes,), generator=g).float() * 2 - 1
    return {"pos": pos[None], "vel": vel[None], "charges": charges[None],
            "target": (pos + 0.1 * vel)[None]}


# ---------------------------------------------------------------- memory and scaling (subprocess)
def _status(key: str) -> int:
    for line in open("/proc/self/status"):
        if line.startswith(key + ":"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"{key} not in /proc/self/status")


def _peak_of(step) -> dict:
    """Run ``step`` once; peak RSS above the RSS just before it (bytes) and its wall time."""
    ctypes.CDLL("libc.so.6").malloc_trim(0)
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")  # resets VmHWM to the current RSS
    base = _status("VmRSS")
    t = time.perf_counter()
    step()
    return {"peak_bytes": _status("VmHWM") - base, "seconds": time.perf_counter() - t}


def worker(name: str, nodes: list[int], budget_s: float, mem_cap: float) -> None:
    """Print one JSON line per result: batch-100 memory, then scaling sizes (ascending)."""
    torch.set_num_threads(1)
    model, kind, _ = build(name)
    out = lambda obj: print(json.dumps(obj), flush=True)  # noqa: E731
    ref = nbody_batch()
    step = make_step(model, kind, ref)
    step()
    out({"part": "memory", **_peak_of(step),
         "params": sum(p.numel() for p in model.parameters())})
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    resource.setrlimit(resource.RLIMIT_AS, (int(_status("VmSize") + 1.5 * mem_cap), hard))
    last = None  # (n, seconds, peak)
    spent = 0.0
    for n in sorted(nodes):
        if last is not None:
            f = (n / last[0]) ** 2  # complete graphs: edges grow quadratically
            t_pred, m_pred = last[1] * f, last[2] * f
            reason = None
            if m_pred > mem_cap:
                reason = f"predicted peak {m_pred / 2**30:.1f} GiB > cap {mem_cap / 2**30:.1f} GiB"
            elif spent + 2 * t_pred > budget_s:
                reason = f"predicted {t_pred:.1f} s per step; scaling budget {budget_s:.0f} s"
            if reason:
                out({"part": "scaling", "nodes": n, "skipped": reason})
                continue
        try:
            s = make_step(model, kind, random_system(n, ref))
            first = _peak_of(s)  # warm-up, also the memory measurement
            reps = 1 if first["seconds"] > 2 else 3
            times = []
            for _ in range(reps):
                t = time.perf_counter()
                s()
                times.append(time.perf_counter() - t)
        except (RuntimeError, MemoryError) as e:
            out({"part": "scaling", "nodes": n, "skipped": f"failed: {str(e)[:120]}"})
            last = (n, float("inf"), float("inf"))
            continue
        med = statistics.median(times)
        spent += first["seconds"] + sum(times)
        out({"part": "scaling", "nodes": n, "median_s": med, "repeats": reps,
             "peak_bytes": first["peak_bytes"]})
        last = (n, med, max(first["peak_bytes"], 1))


def run_worker(name: str, args) -> dict:
    cmd = [sys.executable, __file__, "--_worker", name, "--nodes", *map(str, args.nodes),
           "--scale-budget", str(args.scale_budget), "--mem-cap-gib", str(args.mem_cap_gib)]
    env = dict(os.environ, OMP_NUM_THREADS="1")
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, env=env,
                           timeout=args.scale_budget * 2 + 120)
        stdout, err = p.stdout, (p.stderr[-400:] if p.returncode else "")
    except subprocess.TimeoutExpired as e:
        stdout = e.stdout.decode() if isinstance(e.stdout, bytes) else (e.stdout or "")
        err = "worker timed out"
    res = {"memory": None, "scaling": [], "error": err or None}
    for line in stdout.splitlines():
        if line.startswith("{"):
            obj = json.loads(line)
            if obj.pop("part") == "memory":
                res["memory"] = obj
            else:
                res["scaling"].append(obj)
    return res


# ---------------------------------------------------------------- timing (this process)
def time_group(names: list[str], steps: dict, repeats: dict, threads: int) -> dict:
    """Median seconds per step of each model, interleaving the models repeat by repeat."""
    torch.set_num_threads(threads)
    times = {n: [] for n in names}
    for n in names:
        steps[n]()  # warm-up (lazy caches, allocator)
    for r in range(max(repeats[n] for n in names)):
        for n in names:
            if r < repeats[n]:
                t = time.perf_counter()
                steps[n]()
                times[n].append(time.perf_counter() - t)
    return {n: {"median_ms": 1e3 * statistics.median(v), "min_ms": 1e3 * min(v),
                "repeats": len(v)} for n, v in times.items()}


def machine_info(threads: list[int]) -> dict:
    cpu = next((ln.split(":", 1)[1].strip() for ln in open("/proc/cpuinfo")
                if ln.startswith("model name")), platform.processor())
    versions = {}
    for dist in ["symformer", "torch", "e3nn", *PEERS]:
        try:
            versions[dist] = md.version(dist)
        except md.PackageNotFoundError:
            versions[dist] = None
    return {"cpu": cpu, "logical_cpus": os.cpu_count(), "load_average": os.getloadavg(),
            "threads": threads, "python": platform.python_version(), "versions": versions,
            "date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
            "command": " ".join([Path(sys.executable).name, *sys.argv])}


def growth(rows: list[dict]) -> dict:
    """t(N) / t(smallest N) for the sizes that ran."""
    ok = [r for r in rows if "median_s" in r]
    if not ok:
        return {}
    t0 = ok[0]["median_s"]
    return {r["nodes"]: r["median_s"] / t0 for r in ok}


def _fmt_mem(b) -> str:
    return "n/a" if b is None else f"{b / 2**20:.0f} MiB"


def merge(old: dict, new: dict) -> dict:
    """``old`` with the rows of ``new`` (models and peers) replaced; each replaced row keeps
    the machine state it was measured under, listed in ``updates``."""
    for name, row in new["models"].items():
        old["models"][name] = dict(row, measured=new["machine"])
        if name in new["ours"] and name not in old["ours"]:
            old["ours"].append(name)
    old.setdefault("updates", []).append({"models": list(new["models"]), **new["machine"]})
    return old


def markdown(res: dict) -> str:
    m = res["machine"]
    lines = ["# N-body speed: symformer vs peer libraries", "",
             f"{m['date']}; CPU {m['cpu']} ({m['logical_cpus']} logical CPUs, load average at "
             f"start {m['load_average'][0]:.1f}); torch {m['versions']['torch']}; "
             f"command `{m['command']}`.",
             "", "Each ratio compares models timed in the same process back to back "
             "(interleaved repeat by repeat). float32, forward+backward of an MSE loss, median.",
             ("With 2 threads on 2 cores shared with other jobs (load average >= 2 at the "
              "start), threads are oversubscribed and those rows swing by several x from run to "
              "run: the 1-thread rows are the reference." if m["load_average"][0] >= 2 else
              "The machine was otherwise idle (load average < 2 at the start), so the 2-thread "
              "rows are as reliable as the 1-thread rows."),
             "Peak memory: extra resident memory during one step after a warm-up, in a fresh "
             "process per model (`VmHWM - VmRSS` after resetting the peak), one thread.", ""]
    for u in res.get("updates", []):
        lines += [f"Rows re-measured {u['date']} (load average at start "
                  f"{u['load_average'][0]:.1f}; command `{u['command']}`): "
                  + ", ".join(u["models"]) + "; the other rows are from the run above.", ""]
    for t in m["threads"]:
        lines += [f"## Batch of 100 systems (5 particles), {t} thread(s)", "",
                  "| model | config | params | fwd+bwd ms | peak mem | peer | peer ms | peer mem "
                  "| ours/peer time | speed-up | target |", "|---" * 11 + "|"]
        for name in res["ours"]:
            r = res["models"][name]
            if "error" in r and "timing" not in r:
                lines.append(f"| {name} | failed: {r['error'][:60]} |||||||||")
                continue
            peer = r.get("peer")
            if str(t) not in r.get("timing", {}):  # a merged row re-measured at other threads
                lines.append(f"| {name} | not measured at {t} thread(s) in its latest run "
                             "|||||||||")
                continue
            ours_ms = r["timing"][str(t)]["median_ms"]
            row = [name, f"`{json.dumps(r['config'])}`", str(r.get("params", "")),
                   f"{ours_ms:.1f}", _fmt_mem(r.get("peak_bytes"))]
            if peer:
                p = res["models"][peer]
                p_ms = r["peer_timing"][str(t)]["median_ms"]
                ratio = ours_ms / p_ms
                tgt = res["targets"].get(name)
                verdict = "met" if 1 / ratio >= (tgt or 0) else "NOT met"
                row += [peer, f"{p_ms:.1f}", _fmt_mem(p.get("peak_bytes")), f"{ratio:.3f}",
                        f"{1 / ratio:.1f}x", f">= {tgt}x: {verdict}" if tgt else "-"]
            else:
                row += ["-"] * 6
            lines.append("| " + " | ".join(row) + " |")
        lines.append("")
    lines += ["## Scaling: one system of N nodes, complete graph, 1 thread", "",
              "Median fwd+bwd ms (peak memory); growth = t(N)/t(smallest N).", "",
              "| model | " + " | ".join(f"N={n}" for n in res["nodes"])
              + " | growth at largest common N |",
              "|---|" + "---|" * (len(res["nodes"]) + 1)]
    for name, r in res["models"].items():
        if not r.get("scaling"):
            continue
        cells = []
        for n in res["nodes"]:
            s = next((x for x in r["scaling"] if x["nodes"] == n), None)
            cells.append("-" if s is None else
                         f"skipped ({s['skipped']})" if "skipped" in s else
                         f"{1e3 * s['median_s']:.1f} ({_fmt_mem(s['peak_bytes'])})")
        lines.append(f"| {name} | " + " | ".join(cells) + f" | {r.get('growth_note', '')} |")
    lines += ["", "Peers: " + "; ".join(f"{k}: {v}" for k, v in PEERS.items()) + ".", ""]
    notes = [f"- {name}: {NOTES[name]}" for name in res["ours"] if name in NOTES]
    if notes:
        lines += ["## Notes", "", *notes, ""]
    return "\n".join(lines)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--models", nargs="+", default=OURS, help="symformer models (peers follow)")
    ap.add_argument("--repeats", type=int, default=10)
    ap.add_argument("--slow-repeats", type=int, default=3, help="repeats for very slow peers")
    ap.add_argument("--repeats-other", type=int, default=10,
                    help="repeats at the thread counts after the first (slow peers: 1)")
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--nodes", type=int, nargs="+", default=[5, 50, 200, 1000])
    ap.add_argument("--scale-budget", type=float, default=60.0, help="seconds per model")
    ap.add_argument("--mem-cap-gib", type=float, default=4.0)
    ap.add_argument("--no-scaling", action="store_true",
                    help="skip the memory/scaling subprocesses")
    ap.add_argument("--out", default=str(HERE / "results" / "speed_nbody.json"))
    ap.add_argument("--merge", action="store_true",
                    help="replace only the rows of the models run (and their peers) in an "
                         "existing --out, keeping the other rows")
    ap.add_argument("--_worker", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args._worker:
        return worker(args._worker, args.nodes, args.scale_budget, args.mem_cap_gib * 2**30)

    res = {"machine": machine_info(args.threads), "nodes": sorted(args.nodes), "ours": [],
           "models": {}, "targets": {"egnn": 3, "se3_transformer": 20, "equiformer": 2}}
    data = nbody_batch()
    steps = {}
    for name in args.models:
        try:
            model, kind, cfg = build(name)
        except Exception as e:  # a model not registered (yet) or failing to build
            print(f"skip {name}: {type(e).__name__}: {e}", file=sys.stderr)
            res["models"][name] = {"error": f"{type(e).__name__}: {e}"}
            res["ours"].append(name)
            continue
        res["ours"].append(name)
        peer = OUR_CONFIGS[name][1]
        res["models"][name] = {"kind": kind, "config": cfg, "peer": peer,
                               "params": sum(p.numel() for p in model.parameters())}
        steps[name] = make_step(model, kind, data)
        if peer and peer not in steps:
            pm, pk, pc = build(peer)
            res["models"][peer] = {"kind": pk, "config": pc,
                                   "params": sum(p.numel() for p in pm.parameters())}
            steps[peer] = make_step(pm, pk, data)
    for t in args.threads:
        for name in [n for n in res["ours"] if n in steps]:
            peer = res["models"][name]["peer"]
            group = [name] + ([peer] if peer else [])
            first = t == args.threads[0]  # later thread counts: fewer repeats (runtime budget)
            reps = {n: (args.slow_repeats if first else 1) if n in SLOW else
                    (args.repeats if first else args.repeats_other) for n in group}
            timing = time_group(group, steps, reps, t)
            print(f"{t} thread(s): " + ", ".join(f"{n} {v['median_ms']:.1f} ms"
                                                 for n, v in timing.items()), file=sys.stderr)
            res["models"][name].setdefault("timing", {})[str(t)] = timing[name]
            if peer:
                res["models"][name].setdefault("peer_timing", {})[str(t)] = timing[peer]
                res["models"][name].setdefault("ratio_ours_over_peer", {})[str(t)] = (
                    timing[name]["median_ms"] / timing[peer]["median_ms"])
    steps.clear()
    if not args.no_scaling:
        for name in [n for n in res["models"] if "kind" in res["models"][n]]:
            w = run_worker(name, args)
            print(f"worker {name}: {w}", file=sys.stderr)
            r = res["models"][name]
            r["peak_bytes"] = (w["memory"] or {}).get("peak_bytes")
            r["scaling"], r["worker_error"] = w["scaling"], w["error"]
            r["growth"] = growth(w["scaling"])
        for name in res["ours"]:
            r, peer = res["models"][name], res["models"][name].get("peer")
            if peer and r.get("growth") and res["models"][peer].get("growth"):
                common = sorted(set(r["growth"]) & set(res["models"][peer]["growth"]))
                n = common[-1]
                g, gp = r["growth"][n], res["models"][peer]["growth"][n]
                r["growth_vs_peer"] = {"nodes": n, "ours": g, "peer": gp, "ours_over_peer": g / gp}
                r["growth_note"] = f"N={n}: {g:.1f}x vs {peer} {gp:.1f}x"
            elif r.get("growth"):
                n = max(r["growth"])
                r["growth_note"] = f"N={n}: {r['growth'][n]:.1f}x"
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    if args.merge and out.exists():
        res = merge(json.loads(out.read_text()), res)
    save_results(out, res, markdown, echo=False)
    print(f"wrote {out} and {out.with_suffix('.md')}", file=sys.stderr)


def save_results(out, res: dict, render, echo: bool = True) -> None:
    """``res`` as JSON at ``out`` and ``render(res)`` as markdown beside it (``.md``); the
    markdown is printed too unless ``echo`` is False."""
    out = Path(out)
    out.write_text(json.dumps(res, indent=1) + "\n")
    text = render(res)
    out.with_suffix(".md").write_text(text)
    if echo:
        print(text)


if __name__ == "__main__":
    main()
