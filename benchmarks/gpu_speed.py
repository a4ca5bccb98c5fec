"""GPU speed of symformer: tensor products against e3nn, MACE energy+forces, the N-body models.

Measured (float32, one process, on ``--device``):

1. Edge message (NequIP/MACE): ``uvu`` product of node features ``C x (0e+1o+...+L)`` with the
   edge harmonics ``1x0e+1x1o+...+1xL`` into ``C x (0e+...+L)``, per-edge weights, E edges
   (100,000; 2,000 with ``--quick``), C in {32, 64}, L in {2, 3}: e3nn ``o3.TensorProduct`` vs
   symformer's ``cg`` and ``so2`` backends (the workload of ``speed_tensor_product.py``; so2
   builds its rotations from the edge vectors inside the timed call). Forward+backward time, and
   the largest error of ``cg`` (and so2) against e3nn, relative to e3nn's largest output entry.
2. MACE potential (``create("mace", channels=C, lmax_hidden=1, avg_num_neighbors=16)``, C in
   {32, 128}) on 32 aspirin molecules (672 atoms; 4 with ``--quick``): one energy+forces
   evaluation (eval mode) and one training step (energy+forces loss, backward through the
   forces, AdamW step).
3. N-body models (egnn, torchmd_et, equiformer, symformer3d, se3_transformer; default configs)
   on the first 100 charged 5-body training systems: forward+backward of an MSE loss.

Timing: 3 warm-up calls, then the median of ``--repeats`` calls; the backends of one case take
turns call by call. On CUDA every call is bracketed by ``torch.cuda.synchronize()``, and the peak
of ``torch.cuda.max_memory_allocated`` over one more call (after resetting it) is recorded.
Every case runs in its own try/except: a failure is recorded as its error string.

Run: ``python benchmarks/gpu_speed.py --device cuda [--aspirin PATH] [--out PATH.json]``;
smoke test on CPU: ``python benchmarks/gpu_speed.py --device cpu --quick``. Writes the JSON to
``--out`` (default ``benchmarks/results/gpu_speed.json``) and a markdown table beside it.
"""

from __future__ import annotations

import argparse
import datetime
import importlib.util
import json
import platform
import statistics
import sys
import time
import traceback
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent
SHARED_ASPIRIN = HERE.parent.parent / "shared/data/rmd17/rmd17_aspirin_test_01.npz"
NBODY_MODELS = ["egnn", "torchmd_et", "equiformer", "symformer3d", "se3_transformer"]


def load_benchmark(name: str):
    """A sibling benchmark script as a module (its helpers are reused, nothing is run)."""
    spec = importlib.util.spec_from_file_location(f"_bench_{name}", HERE / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_interleaved(fns: dict, device, repeats: int, warmup: int = 3) -> dict:
    """Median milliseconds per call of each function; the functions take turns."""
    for _ in range(warmup):
        for f in fns.values():
            f()
    times = {k: [] for k in fns}
    for _ in range(repeats):
        for k, f in fns.items():
            sync(device)
            t = time.perf_counter()
            f()
            sync(device)
            times[k].append(time.perf_counter() - t)
    return {k: 1e3 * statistics.median(v) for k, v in times.items()}


def peak_mib(fn, device) -> float | None:
    """Peak allocated CUDA memory (MiB) over one call of ``fn``; None off CUDA."""
    if device.type != "cuda":
        return None
    sync(device)
    torch.cuda.reset_peak_memory_stats(device)
    fn()
    sync(device)
    return torch.cuda.max_memory_allocated(device) / 2 ** 20


def rel_error(out: torch.Tensor, ref: torch.Tensor) -> float:
    return float((out - ref).abs().max() / ref.abs().max())


def working(fns: dict, section: str, case: str) -> tuple[dict, list[dict]]:
    """The functions that run once without error, and an error row for each that does not."""
    ok, errors = {}, []
    for k, f in fns.items():
        try:
            f()
            ok[k] = f
        except Exception as e:  # noqa: BLE001
            errors.append(error_row(section, case, e, backend=k))
    return ok, errors


# ------------------------------------------------------------------------------ 1. edge message
def edge_case(L: int, C: int, E: int, device, repeats: int) -> list[dict]:
    import e3nn.o3 as o3
    from symformer.primitives import spherical_harmonics
    from symformer.primitives.tp import TensorProductSpec, tensor_product
    uni = load_benchmark("speed_tensor_product").uni
    g = torch.Generator().manual_seed(0)
    spec = TensorProductSpec.channelwise(uni(L, C), uni(L, 1), uni(L, C), weight_mode="external")
    tp = o3.TensorProduct(str(spec.irreps_in1), str(spec.irreps_in2), str(spec.irreps_out),
                          spec.to_e3nn_instructions(), internal_weights=False,
                          shared_weights=False).to(device=device, dtype=torch.float32)
    x = torch.randn(E, spec.irreps_in1.dim, generator=g).to(device).requires_grad_()
    w = torch.randn(E, spec.weight_numel, generator=g).to(device).requires_grad_()
    vec = torch.randn(E, 3, generator=g).to(device)
    y = spherical_harmonics(L, vec)
    runs = {"e3nn": lambda: tp(x, y, w), "cg": lambda: tensor_product(x, y, spec, w, "cg"),
            "so2": lambda: tensor_product(x, None, spec, w, "so2", edge_vec=vec)}
    name = f"edge uvu L={L} C={C} E={E}"

    def fwd_bwd(run):
        def step():
            out = run()
            torch.autograd.grad(out, [x, w], torch.ones_like(out))
        return step

    steps, rows = working({k: fwd_bwd(r) for k, r in runs.items()}, "edge_tp", name)
    errors = {}
    if "e3nn" in steps:
        with torch.no_grad():
            ref = runs["e3nn"]()
            errors = {k: rel_error(runs[k](), ref) for k in ("cg", "so2") if k in steps}
        del ref
    ms = time_interleaved(steps, device, repeats)
    for k in steps:
        row = {"section": "edge_tp", "case": name, "backend": k, "ms": ms[k],
               "throughput": E / ms[k] * 1e3, "throughput_unit": "edges/s",
               "peak_mib": peak_mib(steps[k], device), "L": L, "C": C, "E": E}
        if "e3nn" in ms:
            row["speedup_vs_e3nn"] = ms["e3nn"] / ms[k]
        if k in errors:
            row["max_rel_error_vs_e3nn"] = errors[k]
        if k == "cg" and k in errors:
            row["correct_1e-4"] = errors[k] <= 1e-4
            if not errors[k] <= 1e-4:
                row["note"] = f"cg differs from e3nn: max rel error {errors[k]:.2e} > 1e-4"
        rows.append(row)
    return rows


# ------------------------------------------------------------------------------ 2. MACE
def aspirin_batch(path: Path, n_mol: int, device) -> dict:
    from symformer.data.rmd17 import load_rmd17
    b = load_rmd17(path).batch(list(range(n_mol)), dtype=torch.float32)
    b["energy"] = b["energy"] - b["energy"].mean()           # only the loss scale matters here
    return {k: v.to(device) for k, v in b.items()}


def mace_case(C: int, b: dict, device, repeats: int) -> list[dict]:
    from symformer.models import create
    torch.manual_seed(0)
    model = create("mace", channels=C, lmax_hidden=1, avg_num_neighbors=16.0).to(device)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    n_graphs = int(b["num_atoms"].shape[0])

    def predict():
        return model(b["atomic_numbers"], b["pos"], b["batch"], compute_forces=True,
                     compute_stress=False, add_reference=False, num_graphs=n_graphs)

    def energy_forces():
        model.eval()
        predict()

    def train_step():
        model.train()
        out = predict()
        n = b["num_atoms"].to(out["energy"].dtype)
        loss = (((out["energy"] - b["energy"]) / n).square().mean()
                + (out["forces"] - b["forces"]).square().mean())
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    fns = {"energy+forces": energy_forces, "train step": train_step}
    ms = time_interleaved(fns, device, repeats)
    atoms = int(b["pos"].shape[0])
    return [{"section": "mace", "case": f"mace C={C} aspirin x{n_graphs} ({atoms} atoms)",
             "backend": k, "ms": ms[k], "throughput": atoms / ms[k] * 1e3,
             "throughput_unit": "atoms/s", "peak_mib": peak_mib(f, device), "C": C,
             "molecules": n_graphs, "atoms": atoms,
             "parameters": sum(p.numel() for p in model.parameters())} for k, f in fns.items()]


# ------------------------------------------------------------------------------ 3. N-body
def nbody_case(names: list[str], n_systems: int, device, repeats: int) -> list[dict]:
    from symformer.data.nbody import load_split
    from symformer.models import create
    make_step = load_benchmark("speed_nbody").make_step    # also points caches at /tmp
    data = {k: v.to(device) for k, v in load_split("train", n=n_systems,
                                                    dtype=torch.float32).items()}
    case = f"nbody fwd+bwd x{n_systems} systems"
    rows, steps, params = [], {}, {}
    for name in names:                       # a model that fails to build is recorded alone
        try:
            torch.manual_seed(0)
            model = create(name).to(device)
            steps[name] = make_step(model, "ours", data)
            params[name] = sum(p.numel() for p in model.parameters())
        except Exception as e:  # noqa: BLE001
            rows.append(error_row("nbody", case, e, backend=name))
    steps, failed = working(steps, "nbody", case)
    rows += failed
    ms = time_interleaved(steps, device, repeats)
    for name, step in steps.items():
        rows.append({"section": "nbody", "case": case,
                     "backend": name, "ms": ms[name], "throughput": n_systems / ms[name] * 1e3,
                     "throughput_unit": "systems/s", "peak_mib": peak_mib(step, device),
                     "parameters": params[name]})
    return rows


# ------------------------------------------------------------------------------ driver
def error_row(section: str, case: str, e: BaseException, backend: str = "-") -> dict:
    print(traceback.format_exc(), file=sys.stderr, flush=True)
    return {"section": section, "case": case, "backend": backend,
            "error": f"{type(e).__name__}: {e}"[:2000]}


def markdown(res: dict) -> str:
    m = res["meta"]
    lines = ["# symformer GPU speed", "",
             f"`{m['command']}`; device {m['device_name']}, torch {m['torch']}, e3nn "
             f"{m['e3nn']}, {m['dtype']}, median of {m['repeats']} interleaved calls after 3 "
             f"warm-ups; {m['date']}; wall time {m['wall_s']:.0f} s.", "",
             "| case | backend | ms | throughput | vs e3nn | peak MiB | note |",
             "|---|---|---:|---:|---:|---:|---|"]
    for r in res["rows"]:
        if "error" in r:
            lines.append(f"| {r['case']} | {r['backend']} | - | - | - | - | "
                         f"ERROR {r['error'][:150].replace('|', '/')} |")
            continue
        tp = f"{r['throughput']:.3g} {r['throughput_unit']}"
        sp = f"{r['speedup_vs_e3nn']:.2f}x" if "speedup_vs_e3nn" in r else ""
        mem = f"{r['peak_mib']:.0f}" if r.get("peak_mib") is not None else "n/a"
        note = r.get("note", "")
        if "max_rel_error_vs_e3nn" in r:
            note = (note + "; " if note else "") + f"rel err {r['max_rel_error_vs_e3nn']:.1e}"
        lines.append(f"| {r['case']} | {r['backend']} | {r['ms']:.3f} | {tp} | {sp} | {mem} "
                     f"| {note} |")
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--quick", action="store_true", help="small sizes, few repeats (smoke test)")
    p.add_argument("--repeats", type=int, default=None, help="default 15 (3 with --quick)")
    p.add_argument("--aspirin", type=Path, default=None,
                   help=f"rmd17 aspirin npz (default {SHARED_ASPIRIN} when it exists)")
    p.add_argument("--sections", nargs="+", default=["edge_tp", "mace", "nbody"])
    p.add_argument("--out", type=Path, default=HERE / "results" / "gpu_speed.json")
    args = p.parse_args(argv)
    device = torch.device(args.device)
    repeats = args.repeats or (3 if args.quick else 15)
    E = 2_000 if args.quick else 100_000
    n_mol = 4 if args.quick else 32
    torch.set_float32_matmul_precision("highest")             # no TF32: compare exact float32
    try:
        import e3nn
        e3nn_version = e3nn.__version__
    except ImportError:
        e3nn_version = None
    meta = {"command": " ".join([Path(sys.executable).name] + sys.argv),
            "date": datetime.datetime.now().isoformat(timespec="seconds"),
            "torch": torch.__version__, "e3nn": e3nn_version, "python": platform.python_version(),
            "device": str(device), "dtype": "float32", "quick": args.quick, "repeats": repeats,
            "warmup": 3, "device_name": (torch.cuda.get_device_name(device)
                                         if device.type == "cuda" else platform.processor()
                                         or platform.machine()),
            "cuda": torch.version.cuda, "threads": torch.get_num_threads(),
            "sizes": {"edge_E": E, "edge_C": [32, 64], "edge_L": [2, 3], "mace_C": [32, 128],
                      "mace_molecules": n_mol, "nbody_systems": 100}}
    res = {"meta": meta, "rows": []}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    md_path = args.out.with_suffix(".md")
    t0 = time.perf_counter()

    def save():
        meta["wall_s"] = time.perf_counter() - t0
        args.out.write_text(json.dumps(res, indent=1) + "\n")
        md_path.write_text(markdown(res))

    cases = []
    if "edge_tp" in args.sections:
        cases += [("edge_tp", f"edge uvu L={L} C={C} E={E}",
                   lambda L=L, C=C: edge_case(L, C, E, device, repeats))
                  for C in (32, 64) for L in (2, 3)]
    if "mace" in args.sections:
        path = next((q for q in (args.aspirin, SHARED_ASPIRIN) if q and q.is_file()), None)
        batch = {}

        def mace(C):
            if not batch:
                if path is None:
                    raise FileNotFoundError(f"no aspirin file: {args.aspirin} / {SHARED_ASPIRIN}")
                batch.update(aspirin_batch(path, n_mol, device))
            return mace_case(C, batch, device, repeats)
        meta["aspirin"] = str(path)
        cases += [("mace", f"mace C={C}", lambda C=C: mace(C)) for C in (32, 128)]
    if "nbody" in args.sections:
        cases.append(("nbody", "nbody fwd+bwd x100 systems",
                      lambda: nbody_case(NBODY_MODELS, 100, device, repeats)))
    for section, name, run in cases:
        t = time.perf_counter()
        try:
            rows = run()
        except Exception as e:  # noqa: BLE001
            rows = [error_row(section, name, e)]
        for r in rows:
            r["case_wall_s"] = time.perf_counter() - t
            print(f"{r['case']} | {r['backend']} | " + (f"ERROR {r['error'][:200]}"
                  if "error" in r else f"{r['ms']:.3f} ms"), flush=True)
        res["rows"] += rows
        if device.type == "cuda":
            torch.cuda.empty_cache()
        save()
    print(markdown(res))
    print(f"wrote {args.out} and {md_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
