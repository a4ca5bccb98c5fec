"""N-body models against their peer libraries on a GPU: forward+backward per batch of systems.

The same pairs and matched configs as ``speed_nbody.py`` (egnn vs egnn-pytorch, se3_transformer vs
se3-transformer-pytorch, equiformer vs equiformer-pytorch, torchmd_et and transformer vs
En-transformer), on the first ``S`` training systems of the N-body data, float32, timed back to back
in this process (alternating repeats, ``cuda.synchronize`` around each step), median. Peak memory
is ``torch.cuda.max_memory_allocated`` during one step above the memory in use before it.

The peers are pure-Python packages; on a machine without network access they install from a
folder of wheels (``pip download --no-deps`` of the versions in the bench environment)::

    pip install --no-index --no-deps gpu_wheels/*.whl
    python benchmarks/gpu_nbody_peers.py --out gpu_nbody_peers.json

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


def peak_mib(step, device: torch.device) -> float | None:
    """CUDA memory allocated at the peak of one step above what was in use before it (MiB)."""
    if device.type != "cuda":
        return None
    gs.sync(device)
    before = torch.cuda.memory_allocated(device)
    torch.cuda.reset_peak_memory_stats(device)
    step()
    gs.sync(device)
    return (torch.cuda.max_memory_allocated(device) - before) / 2**20


def run(device: torch.device, systems: list[int], repeats: int, compile_mode: str | None = None,
        models: list[str] | None = None) -> list[dict]:
    rows = []
    for n_sys in systems:
        data = {k: v.to(device) for k, v in sb.nbody_batch(n_sys).items()}
        for ours, (config, peer) in sb.OUR_CONFIGS.items():
            if peer is None or (models and ours not in models):
                continue
            try:
                built = {name: sb.build(name)[:2] for name in (ours, peer)}
                steps = {name: sb.make_step(_compiled(m.to(device), compile_mode), kind, data)
                         for name, (m, kind) in built.items()}
                ms = gs.time_interleaved(steps, device, repeats)  # 3 warm-up calls each
                peaks = {name: peak_mib(step, device) for name, step in steps.items()}
            except Exception as e:  # noqa: BLE001 (a peer that fails is recorded, not fatal)
                rows.append({"systems": n_sys, "model": ours, "peer": peer,
                             "error": f"{type(e).__name__}: {e}"[:200]})
                print(json.dumps(rows[-1]), flush=True)
                continue
            rows.append({"systems": n_sys, "model": ours, "config": config, "peer": peer,
                         "ours_ms": ms[ours], "peer_ms": ms[peer],
                         "speedup": ms[peer] / ms[ours], "ours_peak_mib": peaks[ours],
                         "peer_peak_mib": peaks[peer]})
            print(json.dumps(rows[-1]), flush=True)
    return rows


def _compiled(module, mode: str | None):
    """``module`` itself, or through ``torch.compile`` (``mode`` "default" or another mode); the
    warm-up calls of the timing compile it."""
    if mode is None:
        return module
    return torch.compile(module, mode=None if mode == "default" else mode)


def _mib(x) -> str:
    return "-" if x is None else f"{x:.0f} MiB"


def markdown(res: dict) -> str:
    title = "# N-body models vs peer libraries on a GPU"
    if res.get("compile"):
        title += f" (both sides through torch.compile, mode {res['compile']})"
    lines = [title, "",
             f"{res['date']}; {res['device_name']}; torch {res['torch']}; float32; median of "
             f"{res['repeats']} alternating repeats; command `{res['command']}`.", "",
             "| systems | model | peer | ours ms | peer ms | speed-up | ours peak | peer peak |",
             "|---|---|---|---|---|---|---|---|"]
    for r in res["rows"]:
        if "error" in r:
            lines.append(f"| {r['systems']} | {r['model']} | {r['peer']} | failed: "
                         f"{r['error'][:80]} | | | | |")
            continue
        lines.append(f"| {r['systems']} | {r['model']} | {r['peer']} | {r['ours_ms']:.2f} | "
                     f"{r['peer_ms']:.2f} | {r['speedup']:.2f}x | {_mib(r['ours_peak_mib'])} | "
                     f"{_mib(r['peer_peak_mib'])} |")
    lines += ["", "Configs as in `speed_nbody.py`; peers: "
              + "; ".join(f"{k}: {v}" for k, v in sb.PEERS.items()) + ".", ""]
    return "\n".join(lines)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--systems", type=int, nargs="+", default=[100, 1000])
    ap.add_argument("--repeats", type=int, default=30)
    ap.add_argument("--quick", action="store_true", help="10 systems, 3 repeats (a dry run)")
    ap.add_argument("--compile", default=None,
                    help="run both sides through torch.compile with this mode ('default', "
                         "'reduce-overhead' for CUDA graphs, ...)")
    ap.add_argument("--models", nargs="+", default=None, help="symformer models (default all)")
    ap.add_argument("--out", default="gpu_nbody_peers.json")
    args = ap.parse_args(argv)
    if args.quick:
        args.systems, args.repeats = [10], 3
    device = torch.device(args.device)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU"
    res = {"date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "device_name": name,
           "torch": torch.__version__, "repeats": args.repeats, "compile": args.compile,
           "command": " ".join(["python", "benchmarks/gpu_nbody_peers.py", *sys.argv[1:]]),
           "rows": run(device, args.systems, args.repeats, args.compile, args.models)}
    sb.save_results(args.out, res, markdown)


if __name__ == "__main__":
    main()
