"""Speed of octic (D_4-equivariant) layers and models against dense ones of the same width.

1. ``OcticLinear(m, m)`` (width 8 m) against ``nn.Linear(8 m, 8 m)`` on T tokens: multiply-adds
   counted analytically and by ``torch.utils.flop_counter``, forward and forward+backward time.
   The paper ("Stronger ViTs With Octic Equivariance") reports 5.33x fewer FLOPs.
2. The octic ViT against the plain ViT of the same width, at the configs of the rotated-MNIST
   runs: parameters, forward FLOPs per image, forward+backward time per batch of 128.

Times are medians over interleaved repeats (ours, dense, ours, ...) in one process, float32,
one thread; the machine is shared, so only the ratios mean much.

Run: ``python benchmarks/images_speed.py`` -> ``benchmarks/results/images_speed.{json,md}``.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from symformer.layers.image.octic import OcticLinear, octic_linear_flops
from symformer.models import create

HERE = Path(__file__).resolve().parent


def _flops(fn) -> int:
    with FlopCounterMode(display=False) as fc:
        fn()
    return fc.get_total_flops()


def _interleaved(fns, repeats: int) -> list[float]:
    times = [[] for _ in fns]
    for _ in range(repeats):
        for i, fn in enumerate(fns):
            t = time.perf_counter()
            fn()
            times[i].append(time.perf_counter() - t)
    return [statistics.median(t) * 1e3 for t in times]


def bench_linear(copies: list[int], tokens: int, repeats: int) -> list[dict]:
    rows = []
    for m in copies:
        octic, dense = OcticLinear(m, m), nn.Linear(8 * m, 8 * m)
        xo = torch.randn(tokens, m, 8, requires_grad=True)
        xd = torch.randn(tokens, 8 * m, requires_grad=True)

        def fb(mod, x):
            return lambda: mod(x).square().sum().backward()

        with torch.no_grad():
            fwd = _interleaved([lambda: octic(xo), lambda: dense(xd)], repeats)
        both = _interleaved([fb(octic, xo), fb(dense, xd)], repeats)
        fo, fd = _flops(lambda: octic(xo)), _flops(lambda: dense(xd))
        mo, md = octic_linear_flops(m, m)
        rows.append({"width": 8 * m, "copies": m, "tokens": tokens,
                     "macs_per_token_octic": mo, "macs_per_token_dense": md,
                     "flop_ratio_analytic": md / mo, "flops_counted_octic": fo,
                     "flops_counted_dense": fd, "flop_ratio_counted": fd / fo,
                     "params_octic": sum(p.numel() for p in octic.parameters()),
                     "params_dense": sum(p.numel() for p in dense.parameters()),
                     "fwd_ms_octic": fwd[0], "fwd_ms_dense": fwd[1],
                     "fwd_speedup": fwd[1] / fwd[0], "fwdbwd_ms_octic": both[0],
                     "fwdbwd_ms_dense": both[1], "fwdbwd_speedup": both[1] / both[0]})
        print(rows[-1], file=sys.stderr)
    return rows


def bench_models(pairs: list[tuple[str, dict]], batch: int, repeats: int) -> list[dict]:
    x = torch.rand(batch, 1, 28, 28)
    y = torch.randint(0, 10, (batch,))
    models = [(n, c, create(n, **c)) for n, c in pairs]

    def step(m):
        return lambda: nn.functional.cross_entropy(m(x), y).backward()

    times = _interleaved([step(m) for _, _, m in models], repeats)
    rows = []
    for (n, c, m), t in zip(models, times):
        rows.append({"model": n, "config": c, "params": sum(p.numel() for p in m.parameters()),
                     "fwd_gflops_per_image": _flops(lambda: m(x[:1])) / 1e9,
                     "fwdbwd_ms_per_batch": t, "batch": batch})
    return rows


def write(result: dict, out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / "images_speed.json").write_text(json.dumps(result, indent=2) + "\n")
    L = ["# Octic layers and models: FLOPs and time against dense ones", "",
         f"{result['date']}; {result['machine']}; torch {result['torch']}; 1 thread, float32; "
         f"command `{result['command']}`.", "",
         "Times are medians of interleaved repeats in one process on a shared 2-core CPU (load "
         f"average at start {result['load']:.1f}); compare ratios, not absolute times.", "",
         "## OcticLinear(m, m) vs nn.Linear(8m, 8m)", "",
         f"Tokens per call: {result['linear'][0]['tokens']}. The paper reports 5.33x fewer "
         "FLOPs for its octic linear layers.", "",
         "| width | MACs/token octic | MACs/token dense | FLOP ratio (analytic) | FLOP ratio "
         "(counted) | params octic / dense | fwd ms octic / dense | fwd speed-up | fwd+bwd "
         "speed-up |", "|---|---|---|---|---|---|---|---|---|"]
    for r in result["linear"]:
        L.append(f"| {r['width']} | {r['macs_per_token_octic']} | {r['macs_per_token_dense']} | "
                 f"{r['flop_ratio_analytic']:.2f}x | {r['flop_ratio_counted']:.2f}x | "
                 f"{r['params_octic']} / {r['params_dense']} | {r['fwd_ms_octic']:.2f} / "
                 f"{r['fwd_ms_dense']:.2f} | {r['fwd_speedup']:.2f}x | "
                 f"{r['fwdbwd_speedup']:.2f}x |")
    L += ["", "## Octic ViT vs plain ViT (rotated-MNIST configs, same token width)", "",
          "| model | config | params | forward GFLOPs / image | fwd+bwd ms / batch |",
          "|---|---|---|---|---|"]
    for r in result["models"]:
        L.append(f"| {r['model']} | `{json.dumps(r['config'])}` | {r['params']} | "
                 f"{r['fwd_gflops_per_image']:.4f} | {r['fwdbwd_ms_per_batch']:.1f} |")
    L += ["", "Counted FLOPs follow torch's flop counter (2 per multiply-add; the octic layer's "
          "einsums are counted as the batched matmuls they run as). On CPU the octic layer's "
          "five small matmuls and concatenations cost more per FLOP than one large GEMM, so the "
          "measured speed-up is below the FLOP ratio; see the table.", ""]
    (out / "images_speed.md").write_text("\n".join(L))


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--copies", type=int, nargs="+", default=[8, 16, 32, 64])
    p.add_argument("--tokens", type=int, default=4096)
    p.add_argument("--repeats", type=int, default=15)
    p.add_argument("--out", default=str(HERE / "results"))
    a = p.parse_args(argv)
    torch.set_num_threads(1)
    torch.manual_seed(0)
    result = {"date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
              "machine": f"{platform.processor() or platform.machine()} "
                         f"({os.cpu_count()} logical CPUs)",
              "torch": torch.__version__, "load": os.getloadavg()[0],
              "command": "python benchmarks/images_speed.py" + (
                  " " + " ".join(argv) if argv else ""),
              "linear": bench_linear(a.copies, a.tokens, a.repeats),
              "models": bench_models([("octic_vit", {"copies": 4, "depth": 2, "heads": 2}),
                                      ("vit", {"dim": 32, "depth": 2, "heads": 2})],
                                     128, max(3, a.repeats // 3))}
    write(result, Path(a.out))
    return result


if __name__ == "__main__":
    main(sys.argv[1:])
