"""Tensor-product speed: symformer's backends against e3nn on identical inputs, same process.

Workloads
---------
1. Edge message (NequIP/MACE): ``uvu`` product of node features ``C x (0e+1o+...+L)`` with the
   edge harmonics ``1x0e+1x1o+...`` into ``C x (0e+...+L)`` (paths into one degree summed),
   per-edge weights. e3nn ``TensorProduct`` vs symformer ``cg`` and ``so2`` (the so2 time
   includes building the Wigner matrices from the edge vectors; e3nn and cg get the harmonics
   precomputed).
2. "The Price of Freedom" microbenchmarks, channel-wise (``uuu``), no weights, ``C`` channels:
   single-in single-out (``L x L -> L``), single-in multi-out (``L x L -> 0..2L``),
   multi-in multi-out (``0..L x 0..L -> 0..L``, natural parities: exactly the symmetric paths,
   the ones the Gaunt product has). e3nn vs ``cg``; MIMO also ``grid`` and ``gaunt`` (Gaunt
   path weights instead of CG normalisation: same paths, same cost for e3nn and cg).

Times are medians over interleaved repeats (all backends of a case take turns), so ratios are
robust to machine load. Throughput: the operation's useful multiply-adds (nonzero CG entries,
or the backend's own dense steps) x 2 / time, against ``torch.mm`` 2048 x 2048 fp32 measured
in the same run. Peak memory: in-process, ``VmHWM - VmRSS`` after ``malloc_trim`` and
resetting the peak (``/proc/self/clear_refs``), one fwd+bwd.

Run: ``OMP_NUM_THREADS=1 nice -n 5 python benchmarks/speed_tensor_product.py [--quick]``; one part
again into the committed results, e.g. ``--sections micro --micro-kinds SISO --micro-dtypes
float32 float64 --merge`` (rows of the same case, dtype and backend replaced, the rest kept).
"""

from __future__ import annotations

import argparse
import ctypes
import json
import math
import os
import platform
import shlex
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch

from symformer.primitives import clebsch_gordan, spherical_harmonics
from symformer.primitives.tp import TensorProductSpec, gaunt_spec, tensor_product


def uni(L: int, c: int, lo: int = 0, parity=None) -> str:
    return "+".join(f"{c}x{l}{'e' if (parity or (-1) ** l) == 1 else 'o'}"
                    for l in range(lo, L + 1))


def cg_macs(spec: TensorProductSpec) -> int:
    """Nonzero CG entries x channel pairs of every instruction (the useful work per sample)."""
    n = 0
    for t, (l1, l2, l3) in zip(spec.instructions, spec.paths()):
        nnz = int((clebsch_gordan(l1, l2, l3, torch.float64).abs() > 1e-12).sum())
        m1, m2, mo = (spec.irreps_in1[t.i_in1].mul, spec.irreps_in2[t.i_in2].mul,
                      spec.irreps_out[t.i_out].mul)
        n += nnz * {"uvw": m1 * m2, "uvu": m1 * m2, "uuu": m1}[spec.mode]
        n += {"uvw": m1 * m2 * mo, "uvu": m1 * m2, "uuu": m1}[spec.mode] * (2 * l3 + 1)
    return n


def status(key: str) -> int:
    return next((int(line.split()[1]) * 1024 for line in open("/proc/self/status")
                 if line.startswith(key + ":")), 0)


def peak_bytes(step) -> int:
    ctypes.CDLL("libc.so.6").malloc_trim(0)
    Path("/proc/self/clear_refs").write_text("5")              # reset the peak (VmHWM)
    base = status("VmRSS")
    step()
    return status("VmHWM") - base


#: ``--clock thread``: the thread's CPU time, which leaves out the time the process waits for a
#: core on a shared machine (not the contention for caches and memory bandwidth).
CLOCKS = {"wall": time.perf_counter, "thread": time.thread_time}


def interleaved(fns: dict, repeats: int, clock=time.perf_counter) -> dict:
    for f in fns.values():
        f()                                                         # warm-up (tables, codegen)
    times = {k: [] for k in fns}
    for _ in range(repeats):
        for k, f in fns.items():
            t = clock()
            f()
            times[k].append(clock() - t)
    return {k: statistics.median(v) for k, v in times.items()}


def matmul_peak(repeats: int) -> float:
    a, b = torch.randn(2048, 2048), torch.randn(2048, 2048)
    t = interleaved({"mm": lambda: torch.mm(a, b)}, repeats)["mm"]
    return 2 * 2048 ** 3 / t / 1e9


def fwd_bwd(run, inputs):
    def fwd():
        with torch.no_grad():
            run()
    def both():
        torch.autograd.grad(out := run(), inputs, torch.ones_like(out))
    return fwd, both


def edge_case(L: int, C: int, E: int, dtype, repeats: int, memory: bool) -> list[dict]:
    import e3nn.o3 as o3
    g = torch.Generator().manual_seed(0)
    spec = TensorProductSpec.channelwise(uni(L, C), uni(L, 1), uni(L, C), weight_mode="external")
    tp = o3.TensorProduct(str(spec.irreps_in1), str(spec.irreps_in2), str(spec.irreps_out),
                          spec.to_e3nn_instructions(), internal_weights=False,
                          shared_weights=False).to(dtype)
    x = torch.randn(E, spec.irreps_in1.dim, generator=g, dtype=dtype, requires_grad=True)
    w = torch.randn(E, spec.weight_numel, generator=g, dtype=dtype, requires_grad=True)
    vec = torch.randn(E, 3, generator=g, dtype=dtype)
    y = spherical_harmonics(L, vec)
    runs = {"e3nn": lambda: tp(x, y, w), "cg": lambda: tensor_product(x, y, spec, w, "cg"),
            "so2": lambda: tensor_product(x, None, spec, w, "so2", edge_vec=vec)}
    k = (L + 1) ** 2
    so2_macs = C * (2 * sum((2 * l + 1) ** 2 for l in range(L + 1)) + 2 * k * (L + 1))
    macs = {"e3nn": cg_macs(spec), "cg": cg_macs(spec), "so2": so2_macs}
    return measure(f"edge uvu L={L} C={C} E={E}", runs, [x, w], macs, E, repeats, memory, dtype)


def micro_case(kind: str, L: int, C: int, N: int, dtype, repeats: int,
               clock=time.perf_counter) -> list[dict]:
    import e3nn.o3 as o3
    g = torch.Generator().manual_seed(0)
    p = 1 if L % 2 == 0 else -1
    if kind == "SISO":
        i1 = i2 = f"{C}x{L}{'e' if p == 1 else 'o'}"
        io = f"{C}x{L}e"
    elif kind == "SIMO":
        i1 = i2 = f"{C}x{L}{'e' if p == 1 else 'o'}"
        io = "+".join(f"{C}x{l}e" for l in range(2 * L + 1))
    else:
        i1 = i2 = io = uni(L, C)
    spec = TensorProductSpec.channelwise(i1, i2, io, mode="uuu")
    spec = TensorProductSpec(i1, i2, io, [(t.i_in1, t.i_in2, t.i_out, False)
                                          for t in spec.instructions], mode="uuu")
    tp = o3.TensorProduct(i1, i2, io, spec.to_e3nn_instructions()).to(dtype)
    x = torch.randn(N, spec.irreps_in1.dim, generator=g, dtype=dtype, requires_grad=True)
    y = torch.randn(N, spec.irreps_in2.dim, generator=g, dtype=dtype, requires_grad=True)
    runs = {"e3nn": lambda: tp(x, y), "cg": lambda: tensor_product(x, y, spec, None, "cg")}
    macs = {"e3nn": cg_macs(spec), "cg": cg_macs(spec)}
    if kind == "MIMO":
        gs = gaunt_spec(L, L, L, C)
        runs["grid"] = lambda: tensor_product(x, y, gs, None, "grid")
        runs["gaunt"] = lambda: tensor_product(x, y, gs, None, "gaunt")
        n_pts = (3 * L // 2 + 1) * (3 * L + 1)
        macs["grid"] = C * n_pts * (3 * (L + 1) ** 2 + 1)
        M = 4 * L + 1
        macs["gaunt"] = C * (2 * (L + 1) ** 2 * M * M * 2 + 3 * M * M * int(math.log2(M) + 1) * 4)
    return measure(f"{kind} L={L} C={C} N={N}", runs, [x, y], macs, N, repeats, False, dtype,
                   clock)


def escn_case(L: int, C: int, E: int, repeats: int) -> dict:
    """eSCN SO(2) convolution with channel mixing (what the Equiformer-style model and the
    flagship run per edge): rotate, per-m dense maps of (degree, channel) with shared weights and
    a per-edge radial scale, rotate back; mmax = L, parity-odd maps included. No e3nn
    counterpart computes this function, so only throughput against the matmul peak is reported."""
    from symformer.primitives.so2 import so2_convolution, so2_num_coefficients
    g = torch.Generator().manual_seed(0)
    x = torch.randn(E, (L + 1) ** 2, C, generator=g, requires_grad=True)
    vec = torch.randn(E, 3, generator=g)
    radial = torch.randn(E, so2_num_coefficients(L, L), C, generator=g, requires_grad=True)
    s = 1 / math.sqrt((L + 1) * C)
    weights = [(torch.randn((L + 1) * C, (L + 1) * C, generator=g) * s).requires_grad_()]
    for m in range(1, L + 1):
        n = (L - m + 1) * C
        weights.append(tuple((torch.randn(n, n, generator=g) * s).requires_grad_()
                             for _ in range(2)))
    params = [weights[0]] + [w for pair in weights[1:] for w in pair]
    run = lambda: so2_convolution(x, vec, weights, L, radial)               # noqa: E731
    fwd, both = fwd_bwd(run, [x, radial] + params)
    t = interleaved({"fwd": fwd, "both": both}, repeats)
    macs = (2 * sum((2 * l + 1) ** 2 for l in range(L + 1)) * C + ((L + 1) * C) ** 2
            + sum(4 * ((L - m + 1) * C) ** 2 for m in range(1, L + 1)))
    row = {"case": f"escn conv L={L} C={C} E={E}", "fwd_s": t["fwd"], "fwdbwd_s": t["both"],
           "fwd_gflops": 2 * macs * E / t["fwd"] / 1e9}
    print(json.dumps(row), flush=True)
    return row


def measure(name, runs, inputs, macs, n, repeats, memory, dtype,
            clock=time.perf_counter) -> list[dict]:
    fb = {k: fwd_bwd(r, inputs) for k, r in runs.items()}
    t_f = interleaved({k: v[0] for k, v in fb.items()}, repeats, clock)
    t_b = interleaved({k: v[1] for k, v in fb.items()}, repeats, clock)
    rows = []
    for k in runs:
        row = {"case": name, "backend": k, "dtype": str(dtype).removeprefix("torch."),
               "fwd_s": t_f[k], "fwdbwd_s": t_b[k], "speedup_fwd_vs_e3nn": t_f["e3nn"] / t_f[k],
               "speedup_fwdbwd_vs_e3nn": t_b["e3nn"] / t_b[k],
               "fwd_gflops": 2 * macs[k] * n / t_f[k] / 1e9}
        if memory:
            row["fwdbwd_peak_mib"] = peak_bytes(fb[k][1]) / 2 ** 20
        rows.append(row)
        print(json.dumps(row), flush=True)
    return rows


def accuracy() -> dict:
    """CP error and equivariance error by rank; expressivity of every backend (float64)."""
    from symformer.groups import O3
    from symformer.primitives.tp import cp_residuals, expressivity
    from symformer.testing import equivariance_error
    g = torch.Generator().manual_seed(0)
    cp_rows = []
    for L in (2, 3):
        spec = TensorProductSpec.channelwise(uni(L, 4), uni(L, 4), uni(L, 4), mode="uuu")
        x = torch.randn(200, spec.irreps_in1.dim, generator=g, dtype=torch.float64)
        y = torch.randn(200, spec.irreps_in2.dim, generator=g, dtype=torch.float64)
        w = torch.ones(spec.weight_numel, dtype=torch.float64)
        ref = tensor_product(x, y, spec, w, "cg")
        for rank in (2, 4, 8, 16, None):
            out = tensor_product(x, y, spec, w, "cp", rank=rank)
            res = cp_residuals(spec.paths(), rank)
            eq = equivariance_error(lambda a, b: tensor_product(a, b, spec, w, "cp", rank=rank),
                                    O3(), (x[:20], y[:20]), (str(spec.irreps_in1),
                                                             str(spec.irreps_in2)),
                                    str(spec.irreps_out), n_samples=3, generator=g)
            cp_rows.append({"L": L, "rank": rank or "exact", "max_path_residual": max(res),
                            "sqrt_sum_residual2": math.sqrt(sum(r * r for r in res)),
                            "relative_error": float((out - ref).norm() / ref.norm()),
                            "equivariance_error": max(eq.values())})
            print(json.dumps(cp_rows[-1]), flush=True)
    L = 2
    full = TensorProductSpec.channelwise(uni(L, 1), uni(L, 1), uni(L, 1) + "+1x1e", mode="uuu")
    natural = TensorProductSpec.channelwise(uni(L, 1), uni(L, 1), uni(L, 1), mode="uuu")
    edge = TensorProductSpec.channelwise(uni(L, 1), uni(L, 1), uni(L, 1))
    gs = gaunt_spec(L, L, L, 1)
    expr = {}
    for label, sp, be, rank in (("cg full (with 1e)", full, "cg", None),
                                ("cg natural parity", natural, "cg", None),
                                ("grid (Gaunt)", gs, "grid", None), ("gaunt", gs, "gaunt", None),
                                ("so2 (edge harmonics)", edge, "so2", None),
                                ("cp rank 2", natural, "cp", 2), ("cp rank 4", natural, "cp", 4)):
        e = expressivity(sp, be, rank=rank, generator=torch.Generator().manual_seed(0))
        expr[label] = {"reachable_paths": len(e["reachable_paths"]),
                       "bilinear_rank": e["bilinear_rank"], "x_rank": e["x_rank"]}
    return {"cp": cp_rows, "expressivity_L2_C1": expr}


REFERENCE = {  # e3nn 0.6.0, 10,000 edges, 32 channels, fwd+bwd median, 2-core CPU (the issue)
    "uvu": {1: 0.060, 2: 0.580, 3: 2.2, 4: 7.2}, "fctp": {1: 0.033, 2: 0.194, 3: 0.790, 4: 2.6}}


def _ratios(r: dict, need: float, strict: bool = False) -> str:
    lo = min(r["speedup_fwd_vs_e3nn"], r["speedup_fwdbwd_vs_e3nn"])
    return (f"fwd x{r['speedup_fwd_vs_e3nn']:.2f}, fwd+bwd x{r['speedup_fwdbwd_vs_e3nn']:.2f}: "
            + ("met" if (lo > need if strict else lo >= need) else "NOT met"))


def markdown(out: dict) -> str:
    """Tables of the JSON results: ratios first (what is robust on a shared machine)."""
    lines = ["# Tensor products: symformer backends vs e3nn", "",
             f"Command: `{out['command']}` (seed {out['seed']}, {out['threads']} thread, torch "
             f"{out['torch']}, e3nn {out['e3nn']}); {out['date']}; wall time "
             f"{out['wall_s']:.0f} s. fp32 matmul peak measured in the run: "
             f"{out['matmul_peak_gflops']:.1f} GFLOP/s; load average at start "
             f"{out.get('load_at_start', float('nan')):.1f} on 2 cores (ratios are interleaved "
             "medians, robust to load; absolute times are not).",
             "", "Speedup = e3nn time / backend time on identical inputs (> 1: faster than e3nn). "
             "GFLOP/s counts the backend's useful multiply-adds (x2) in the forward pass.", ""]
    for run in out.get("reruns", []):  # every re-run, also those whose rows were replaced
        clock = "thread CPU" if "--clock thread" in run["command"] else "wall-clock"
        lines += [f"Re-run `{run['command']}` (commit {run.get('commit', '?')}, {run['date']}; "
                  f"wall time {run['wall_s']:.0f} s; load average at start "
                  f"{run['load_at_start']:.1f}; {clock} medians), speedup fwd / fwd+bwd: "
                  + ", ".join(f"{k} {f:.2f} / {b:.2f}"
                              for k, (f, b) in run["speedups_fwd_fwdbwd"].items()) + ".", ""]
    cases: dict[str, list] = {}
    for r in out["rows"]:
        cases.setdefault(r["case"] + " " + r["dtype"], []).append(r)
    lines += ["| case | backend | fwd ms | fwd+bwd ms | speedup fwd | speedup fwd+bwd | "
              "fwd GFLOP/s (% peak) | fwd+bwd peak MiB |", "|---|---|---|---|---|---|---|---|"]
    for name, rows in cases.items():
        for r in rows:
            mem = f"{r['fwdbwd_peak_mib']:.0f}" if "fwdbwd_peak_mib" in r else ""
            lines.append(f"| {name} | {r['backend']} | {1e3 * r['fwd_s']:.1f} | "
                         f"{1e3 * r['fwdbwd_s']:.1f} | {r['speedup_fwd_vs_e3nn']:.2f} | "
                         f"{r['speedup_fwdbwd_vs_e3nn']:.2f} | {r['fwd_gflops']:.2f} "
                         f"({100 * r['fwd_fraction_of_matmul_peak']:.1f}%) | {mem} |")
    lines += ["", "## Targets of the issue (ratios from the table above; fp32 unless stated)", ""]
    get = {(r["case"].split(" C=")[0], r["dtype"], r["backend"]): r for r in out["rows"]}
    for (case, dt, be), r in get.items():
        if case.startswith("edge") and dt == "float32" and be == "cg":
            lines.append(f"- dense CG no slower than e3nn, {case}: {_ratios(r, 1)}")
    micro = [r for (case, dt, be), r in get.items() if be == "cg" and not case.startswith("edge")]
    slow = [f"{r['case'].split(' C=')[0]} {r['dtype']}" for r in micro
            if min(r["speedup_fwd_vs_e3nn"], r["speedup_fwdbwd_vs_e3nn"]) < 1]
    lines.append(f"- dense CG no slower than e3nn, microbenchmarks: slower (fwd or fwd+bwd) in "
                 f"{len(slow)} of {len(micro)} cases: {', '.join(slow) or 'none'} (millisecond "
                 "timings at small L are noisy on the shared machine)")
    for r in micro:
        if r["case"].startswith("SISO") and int(r["case"].split("L=")[1].split()[0]) >= 5:
            lines.append(f"- dense CG (graded kernel) >= 1.1x e3nn, {r['case'].split(' C=')[0]} "
                         f"{r['dtype']}: {_ratios(r, 1.1)}")
    for L, need in ((4, 3), (6, 10)):
        r = get.get((f"edge uvu L={L}", "float32", "so2"))
        if r:
            lines.append(f"- SO(2) >= {need}x e3nn at L={L}: {_ratios(r, need)}; "
                         f"{100 * r['fwd_fraction_of_matmul_peak']:.1f}% of matmul peak (a "
                         "channel-wise product: elementwise work, bound by memory traffic)")
    for r in out.get("escn", []):
        if int(r["case"].split("L=")[1].split()[0]) >= 4:
            frac = r["fwd_fraction_of_matmul_peak"]
            lines.append(f"- SO(2) convolution > 30% of matmul peak at L >= 4, {r['case']}: "
                         f"{100 * frac:.0f}%: {'met' if frac > 0.3 else 'NOT met'}")
    for (case, dt, be), r in get.items():
        if case.startswith("MIMO") and be == "grid" and int(case.split("L=")[1]) >= 4:
            lines.append(f"- grid faster than e3nn's CG, {case}: {_ratios(r, 1, strict=True)}")
    if out.get("escn"):
        lines += ["", "## SO(2) convolution with channel mixing (eSCN), fp32", "",
                  "The per-edge operation of the Equiformer-style model and the flagship: rotate "
                  "into the edge frame, one dense (degree, channel) map per m (shared weights, "
                  "mmax = L, parity-odd maps included) with a per-edge radial scale, rotate back. "
                  "GFLOP/s counts the per-m matrix products and the block-diagonal rotations "
                  "(not the zero blocks of the dense rotation matrix).", "",
                  "| case | fwd ms | fwd+bwd ms | fwd GFLOP/s | % of matmul peak |",
                  "|---|---|---|---|---|"]
        for r in out["escn"]:
            lines.append(f"| {r['case']} | {1e3 * r['fwd_s']:.1f} | {1e3 * r['fwdbwd_s']:.1f} | "
                         f"{r['fwd_gflops']:.2f} | {100 * r['fwd_fraction_of_matmul_peak']:.1f}% |")
    acc = out.get("accuracy")
    if acc:
        lines += ["", "## CP (approximate backend): error and equivariance error by rank", "",
                  "uuu channel-wise product, 4 channels, unit weights, float64, 200 samples. "
                  "Bound: with E = sum of squared per-path CP residuals, the product error is at "
                  "most sqrt(E)|x||y| times the largest path coefficient and the equivariance "
                  "error at most twice that.", "",
                  "| L | rank | max path residual | sqrt(E) | relative error vs cg | "
                  "equivariance error |", "|---|---|---|---|---|---|"]
        for r in acc["cp"]:
            lines.append(f"| {r['L']} | {r['rank']} | {r['max_path_residual']:.2e} | "
                         f"{r['sqrt_sum_residual2']:.2e} | {r['relative_error']:.2e} | "
                         f"{r['equivariance_error']:.2e} |")
        lines += ["", "## Expressivity (\"The Price of Freedom\"), L = 2, one channel", "",
                  "| product | reachable (ir1, ir2, ir_out) blocks | bilinear rank | "
                  "rank of x -> T(x, y) |", "|---|---|---|---|"]
        for k, v in acc["expressivity_L2_C1"].items():
            lines.append(f"| {k} | {v['reachable_paths']} | {v['bilinear_rank']} | "
                         f"{v['x_rank']} |")
    lines += ["", "Published reference for e3nn 0.6.0 on a 2-core CPU (the issue; 2 threads, "
              "10,000 edges, 32 channels, fwd+bwd): uvu message "
              + ", ".join(f"L={k} {v} s" for k, v in REFERENCE["uvu"].items()) + "."]
    return "\n".join(lines) + "\n"


def command_line() -> str:
    """The command as run: thread setting and niceness from the environment, then the argv."""
    env = "".join(f"{k}={os.environ[k]} " for k in ("OMP_NUM_THREADS",) if k in os.environ)
    return env + (f"nice -n {os.nice(0)} " if os.nice(0) else "") + f"python {shlex.join(sys.argv)}"


def merge(old: dict, new: dict) -> dict:
    """``old`` with the rows of ``new`` replacing those of the same case, dtype and backend; the
    re-run is recorded in ``reruns``."""
    key = lambda r: (r["case"], r.get("dtype"), r.get("backend"))  # noqa: E731
    fresh = {key(r): r for r in new["rows"]}
    rows = [fresh.pop(key(r), r) for r in old["rows"]] + list(fresh.values())
    escn = {r["case"]: r for r in old.get("escn", []) + new["escn"]}
    run = {k: new[k] for k in ("command", "commit", "date", "wall_s", "load_at_start")}
    run["speedups_fwd_fwdbwd"] = {f"{r['case'].split(' C=')[0]} {r['dtype']} {r['backend']}": [
        round(r["speedup_fwd_vs_e3nn"], 2), round(r["speedup_fwdbwd_vs_e3nn"], 2)]
        for r in new["rows"] if r["backend"] != "e3nn"}
    return {**old, "rows": rows, "escn": list(escn.values()),
            "reruns": old.get("reruns", []) + [run]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="tiny sizes, 2 repeats: a smoke run")
    for name, default in (("--repeats", 5), ("--edges", 10000), ("--edges-small", 1000),
                          ("--micro-n", 512), ("--micro-repeats", 3), ("--micro-channels", 16)):
        ap.add_argument(name, type=int, default=default)
    # --edge-lmax-small: edge-message degrees run with --edges-small edges
    for name, default in (("--channels", [32]), ("--edge-lmax", [1, 2, 3, 4]),
                          ("--edge-lmax-small", [5, 6]), ("--micro-lmax", list(range(1, 9)))):
        ap.add_argument(name, type=int, nargs="+", default=default)
    ap.add_argument("--escn", type=str, nargs="+", default=["4:32:10000", "4:64:10000",
                                                              "6:32:2000", "6:64:2000"],
                    help="eSCN SO(2) convolution cases as L:C:E")
    for name, choices, default in (("--sections", ["edge", "micro", "escn"], None),
                                   ("--micro-kinds", ["SISO", "SIMO", "MIMO"], None),
                                   ("--micro-dtypes", ["float32", "float64"], ["float32"])):
        ap.add_argument(name, nargs="+", choices=choices, default=default or choices)
    ap.add_argument("--clock", choices=sorted(CLOCKS), default="wall",
                    help="microbenchmark timer (see CLOCKS)")
    ap.add_argument("--merge", action="store_true",
                    help="replace the re-measured rows in the existing --out JSON, keep the rest")
    ap.add_argument("--out", default="benchmarks/results/tensor_product.json")
    ap.add_argument("--from-json", help="only rewrite the markdown of an existing JSON result")
    ap.add_argument("--accuracy", action="store_true",
                    help="with --from-json: add the CP-accuracy and expressivity tables")
    a = ap.parse_args()
    if a.from_json:
        res = json.loads(Path(a.from_json).read_text())
        if a.accuracy:   # the tables added to the JSON too
            res["accuracy"] = accuracy()
            Path(a.from_json).write_text(json.dumps(res, indent=1))
        Path(a.from_json).with_suffix(".md").write_text(markdown(res))
        return
    if a.quick:
        a.repeats, a.micro_repeats, a.edges, a.edges_small, a.micro_n = 2, 2, 200, 50, 16
        a.edge_lmax, a.edge_lmax_small, a.micro_lmax, a.escn = [1, 2], [3], [1, 2], ["2:8:200"]
    torch.set_num_threads(1)
    t0, load = time.time(), os.getloadavg()[0]
    peak = matmul_peak(a.repeats)
    rows, edge = [], "edge" in a.sections
    for C in a.channels if edge else []:
        rows += sum((edge_case(L, C, a.edges, torch.float32, a.repeats, memory=True)
                     for L in a.edge_lmax), [])
        rows += sum((edge_case(L, C, a.edges_small, torch.float32, a.repeats, memory=False)
                     for L in a.edge_lmax_small), [])
    for L in a.edge_lmax[:2] if edge else []:
        rows += edge_case(L, a.channels[0], a.edges, torch.float64, a.repeats, memory=False)
    for dtype in a.micro_dtypes if "micro" in a.sections else []:
        for kind in a.micro_kinds:
            for L in a.micro_lmax:
                rows += micro_case(kind, L, a.micro_channels, a.micro_n, getattr(torch, dtype),
                                   a.micro_repeats, CLOCKS[a.clock])
    escn = [escn_case(*map(int, c.split(":")), a.repeats) for c in a.escn if "escn" in a.sections]
    peak = max(peak, matmul_peak(a.repeats))   # the machine is shared: keep the better one
    for r in rows + escn:
        r["fwd_fraction_of_matmul_peak"] = r["fwd_gflops"] / peak
    import e3nn
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                            text=True).stdout.strip()
    out = {"command": command_line(), "commit": commit, "seed": 0, "wall_s": time.time() - t0,
           "threads": 1, "date": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()),
           "load_at_start": load, "matmul_peak_gflops": peak, "torch": torch.__version__,
           "e3nn": e3nn.__version__, "machine": platform.processor() or platform.machine(),
           "rows": rows, "escn": escn}
    out = merge(json.loads(Path(a.out).read_text()), out) if a.merge else \
        {**out, "accuracy": accuracy()}
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    Path(a.out).write_text(json.dumps(out, indent=1))
    Path(a.out).with_suffix(".md").write_text(markdown(out))
    print(f"wrote {a.out} in {time.time() - t0:.0f} s")


if __name__ == "__main__":
    main()
