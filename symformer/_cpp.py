"""C++ kernels compiled at first use, with a Python fallback.

Some hot CPU paths (an EGNN layer's forward and backward) run a long, fixed sequence of small
operations; in C++ each costs less to launch and the elementwise chains fuse into single passes.
Their C++ versions live in ``symformer/models/csrc`` and are compiled by
:func:`torch.utils.cpp_extension.load` the first time they are asked for (about half a minute;
then cached by PyTorch under ``$TORCH_EXTENSIONS_DIR`` or ``~/.cache/torch_extensions``, keyed by
the source, so later processes load in milliseconds). That needs a C++ compiler and ``ninja``.

Without them, or with the environment variable ``SYMFORMER_CPP=0``, :func:`load` returns None
(with one warning naming the reason, unless disabled on purpose) and callers use their Python
path, which gives the same values.
"""

from __future__ import annotations

import functools
import os
import sys
import time
import warnings
from pathlib import Path
from types import ModuleType

__all__ = ["load", "enabled"]

_CSRC = Path(__file__).resolve().parent / "models" / "csrc"


def enabled() -> bool:
    """False when ``SYMFORMER_CPP`` is set to ``0``, ``false``, ``no`` or ``off``."""
    return os.environ.get("SYMFORMER_CPP", "1").strip().lower() not in ("0", "false", "no", "off")


@functools.lru_cache(maxsize=None)
def load(name: str) -> ModuleType | None:
    """The compiled module of ``csrc/<name>.cpp``, or None when it cannot be built here.

    Compiles on the first call in a process whose PyTorch cache lacks this exact source; the
    result (module or None) is kept for the rest of the process.
    """
    if not enabled():
        return None
    source = _CSRC / f"{name}.cpp"
    if not source.is_file():
        raise FileNotFoundError(f"name: no C++ source {source}")
    from torch.utils import cpp_extension

    # A virtual environment's ninja (pip install ninja) sits beside its python, which need not
    # be on PATH when the environment is not activated.
    bin_dir = os.path.dirname(sys.executable)
    path = os.environ.get("PATH", "")
    os.environ["PATH"] = bin_dir + os.pathsep + path if bin_dir not in path.split(os.pathsep) \
        else path
    module = f"symformer_{name}"
    _remove_stale_lock(module)
    before, start = _builds(module), time.perf_counter()
    try:
        # -fopenmp: ATen's parallel_for is a header template over OpenMP pragmas; the OpenMP
        # runtime it links (libgomp.so.1) is the one PyTorch has already loaded.
        compiled = cpp_extension.load(module, [str(source)], extra_cflags=["-O3", "-fopenmp"],
                                      extra_ldflags=["-fopenmp"], verbose=False)
        if _builds(module) != before:  # built now, not loaded from the cache: say why it took
            print(f"symformer: compiled the C++ kernels {name!r} in "
                  f"{time.perf_counter() - start:.0f} s, once per version (cached in "
                  f"{os.path.dirname(compiled.__file__)})", file=sys.stderr, flush=True)
        return compiled
    except Exception as exc:  # no compiler, no ninja, a failed build: use the Python path
        warnings.warn(f"symformer: could not compile the C++ kernels {name!r} ({exc}); using "
                      "the Python implementation (same values, slower on the CPU). Set "
                      "SYMFORMER_CPP=0 to skip this attempt.", RuntimeWarning, stacklevel=2)
        return None
    finally:
        os.environ["PATH"] = path



# A build holds a lock file in its folder; one killed outright (SIGKILL, out of memory) leaves
# it behind, and PyTorch then waits for it forever. A build takes about half a minute.
_STALE_LOCK_S = 600


def _remove_stale_lock(module: str) -> None:
    from torch.utils import cpp_extension

    try:  # a private helper of PyTorch: never let it stop the build
        lock = Path(cpp_extension._get_build_directory(module, False)) / "lock"
        if lock.exists() and time.time() - lock.stat().st_mtime > _STALE_LOCK_S:
            warnings.warn(f"symformer: removing the build lock {lock}, left {_STALE_LOCK_S} s ago "
                          "or more by a build that did not finish", RuntimeWarning, stacklevel=3)
            lock.unlink(missing_ok=True)
    except Exception:
        pass


def _builds(module: str) -> dict:
    """``{path: mtime}`` of the cached builds of ``module`` (empty if unknown)."""
    from torch.utils import cpp_extension

    try:  # a private helper of PyTorch: never let it stop the build
        build_dir = Path(cpp_extension._get_build_directory(module, False))
        return {p: p.stat().st_mtime for p in build_dir.glob(f"{module}*.so")}
    except Exception:
        return {}
