"""Cache blocking only where it pays: on the CPU.

Several hot paths split their rows into chunks so that a chunk's intermediates stay in a CPU
cache (sizes measured on a 2-core CPU). On a GPU each chunk costs its own kernel launches and
there is no cache to fit, so CPU-sized chunks made large inputs launch-bound: the ``so2``
backend took about 200 ms for 100,000 edges on an H200 whatever the width, 7-35x the ``cg``
backend. Elsewhere the chunks are :data:`GPU_FACTOR` times larger, a bound on the extra memory
of an unchunked intermediate rather than a cache size.
"""

from __future__ import annotations

import torch

__all__ = ["GPU_FACTOR", "block_size"]

GPU_FACTOR = 256


def block_size(cpu_size: int, device: torch.device) -> int:
    """``cpu_size`` on the CPU, ``GPU_FACTOR * cpu_size`` on any other device."""
    return cpu_size if device.type == "cpu" else GPU_FACTOR * cpu_size
