"""``tensor_cache``: ``functools.lru_cache`` for the library's constant tables.

Tables (Clebsch-Gordan coefficients, index maps, algebra products, ...) are made once per
(arguments, dtype, device) and shared by every later call. A table first asked for inside
``torch.inference_mode`` would be an *inference tensor*, which autograd refuses to save for a
backward pass (``RuntimeError: Inference tensors cannot be saved for backward``): a model run once
for a quick prediction in inference mode could then no longer be trained or give forces. So every
miss is computed with inference mode switched off; inside ``inference_mode`` the tables are still
ordinary tensors that do not require grad.
"""

from __future__ import annotations

import functools

import torch

__all__ = ["tensor_cache", "clear_tensor_caches"]

_CACHES: list = []  # every tensor_cache, for clear_tensor_caches


def tensor_cache(fn=None, *, maxsize: int | None = None):
    """``functools.lru_cache(maxsize)`` whose misses run outside inference mode. Use as
    ``@tensor_cache`` or ``@tensor_cache(maxsize=256)``; ``cache_clear`` and ``cache_info`` work
    as for ``lru_cache``."""

    def decorate(f):
        @functools.lru_cache(maxsize=maxsize)
        @functools.wraps(f)
        def cached(*args, **kwargs):
            with torch.inference_mode(False):
                return f(*args, **kwargs)
        _CACHES.append(cached)
        return cached

    return decorate if fn is None else decorate(fn)


def clear_tensor_caches() -> None:
    """Empty every ``tensor_cache`` (tests use it to start from cold caches)."""
    for cached in _CACHES:
        cached.cache_clear()
