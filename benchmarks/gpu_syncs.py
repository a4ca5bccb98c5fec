"""Device synchronisations per N-body training step, and where they come from.

Each model of ``speed_nbody.OUR_CONFIGS`` runs one forward+backward on 100 N-body systems under
``torch.cuda.set_sync_debug_mode("warn")``; every warning is a point where the host waits for the
GPU (a tensor read on the host: ``int(t)``, ``bool(t)``, sizes that depend on values). Prints one
JSON line per model: the count, the source lines, and the eager step time (median of 20).

Run on a GPU machine: ``python benchmarks/gpu_syncs.py``. On a CPU there is nothing to count
(``--device cpu`` only times the steps).
"""

from __future__ import annotations

import argparse
import json
import sys
import warnings
from collections import Counter
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import gpu_speed as gs  # noqa: E402  (timing helpers)
import speed_nbody as sb  # noqa: E402


def sync_sites(step) -> Counter:
    """``file:line -> count`` of the synchronising calls made by one call of ``step``."""
    torch.cuda.set_sync_debug_mode("warn")
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            step()
    finally:
        torch.cuda.set_sync_debug_mode(0)
    return Counter(f"{w.filename.split('symformer/')[-1]}:{w.lineno}" for w in caught
                   if "synchroniz" in str(w.message))


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--systems", type=int, default=100)
    args = ap.parse_args(argv)
    device = torch.device(args.device)
    data = {k: v.to(device) for k, v in sb.nbody_batch(args.systems).items()}
    for name in sb.OUR_CONFIGS:
        model, kind, _ = sb.build(name)
        step = sb.make_step(model.to(device), kind, data)
        step()  # warm-up
        sites = sync_sites(step) if device.type == "cuda" else Counter()
        ms = gs.time_interleaved({name: step}, device, 20)[name]
        print(json.dumps({"model": name, "syncs": sum(sites.values()), "ms": round(ms, 2),
                          "sites": dict(sites)}), flush=True)


if __name__ == "__main__":
    main()
