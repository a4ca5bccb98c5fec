"""C++ kernels compiled at first use, with a Python fallback.

Some hot CPU paths (an EGNN layer's forward and backward) run a long, fixed sequence of small
operations whose cost on the CPU is mostly the Python interpreter's, not the arithmetic. Their C++
versions live in ``symformer/models/csrc`` and are compiled by
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
    try:
        # -fopenmp: ATen's parallel_for is a header template over OpenMP pragmas; the OpenMP
        # runtime it links (libgomp.so.1) is the one PyTorch has already loaded.
        return cpp_extension.load(f"symformer_{name}", [str(source)],
                                  extra_cflags=["-O3", "-fopenmp"], extra_ldflags=["-fopenmp"],
                                  verbose=False)
    except Exception as exc:  # no compiler, no ninja, a failed build: use the Python path
        warnings.warn(f"symformer: could not compile the C++ kernels {name!r} ({exc}); using "
                      "the Python implementation (same values, slower on the CPU). Set "
                      "SYMFORMER_CPP=0 to skip this attempt.", RuntimeWarning, stacklevel=2)
        return None
    finally:
        os.environ["PATH"] = path
