"""Real Clebsch-Gordan coefficients (Wigner 3j symbols) in symformer's real SH basis.

Construction (exact rational arithmetic, then float64):

1. complex Clebsch-Gordan coefficients ``<l1 m1 l2 m2 | l3 m3>`` by Racah's formula
   (Condon-Shortley phase);
2. change to the real basis of :mod:`.spherical_harmonics` with the unitary ``Q_l`` whose
   column for real index ``+m`` (m > 0) is ``(|-m> + (-1)^m |m>) / sqrt(2)``, for ``-m`` is
   ``i ((-1)^m |m> - |-m>) / sqrt(2)``, for 0 is ``|0>``, all times ``(-i)^l`` (the phase that
   makes the result real);
3. normalisation to unit Frobenius norm.

The result equals ``e3nn.o3.wigner_3j(l1, l2, l3)`` entry by entry (same sign), and satisfies
``einsum('ijk,ai,bj,ck->abc', C, D1, D2, D3) == C`` for the Wigner matrices of any rotation.
"""

from __future__ import annotations

from fractions import Fraction
from math import factorial, sqrt

import numpy as np
import torch
from torch import Tensor

from symformer._cache import tensor_cache

__all__ = ["clebsch_gordan", "wigner_3j", "is_triangle"]


def is_triangle(l1: int, l2: int, l3: int) -> bool:
    """Whether ``|l1 - l2| <= l3 <= l1 + l2`` (the coupling is allowed)."""
    return abs(l1 - l2) <= l3 <= l1 + l2


def _racah(j1: int, m1: int, j2: int, m2: int, j3: int, m3: int) -> float:
    """Complex-basis Clebsch-Gordan coefficient ``<j1 m1 j2 m2 | j3 m3>`` (integers)."""
    if m1 + m2 != m3 or abs(m3) > j3:
        return 0.0
    f = factorial
    pre = Fraction((2 * j3 + 1) * f(j3 + j1 - j2) * f(j3 - j1 + j2) * f(j1 + j2 - j3),
                   f(j1 + j2 + j3 + 1))
    pre *= f(j3 + m3) * f(j3 - m3) * f(j1 - m1) * f(j1 + m1) * f(j2 - m2) * f(j2 + m2)
    total = Fraction(0)
    for k in range(0, j1 + j2 - j3 + 1):
        dens = (j1 + j2 - j3 - k, j1 - m1 - k, j2 + m2 - k, j3 - j2 + m1 + k, j3 - j1 - m2 + k)
        if min(dens) < 0:
            continue
        den = f(k)
        for d in dens:
            den *= f(d)
        total += Fraction((-1) ** k, den)
    if total == 0:
        return 0.0
    return (1.0 if total > 0 else -1.0) * sqrt(float(pre * total * total))


def _real_to_complex(l: int) -> np.ndarray:
    """``Q[c, r]``: complex index ``c`` (m_c = c - l), real index ``r`` (m = r - l)."""
    q = np.zeros((2 * l + 1, 2 * l + 1), dtype=np.complex128)
    s = 1 / sqrt(2)
    q[l, l] = 1
    for m in range(1, l + 1):
        sign = (-1) ** m
        q[l - m, l + m] = s                      # real +m
        q[l + m, l + m] = sign * s
        q[l - m, l - m] = -1j * s                # real -m
        q[l + m, l - m] = 1j * sign * s
    return (-1j) ** l * q


@tensor_cache
def _cg_float64(l1: int, l2: int, l3: int) -> np.ndarray:
    cc = np.zeros((2 * l1 + 1, 2 * l2 + 1, 2 * l3 + 1))
    for m1 in range(-l1, l1 + 1):
        for m2 in range(-l2, l2 + 1):
            if abs(m1 + m2) <= l3:
                cc[l1 + m1, l2 + m2, l3 + m1 + m2] = _racah(l1, m1, l2, m2, l3, m1 + m2)
    q1, q2, q3 = _real_to_complex(l1), _real_to_complex(l2), _real_to_complex(l3)
    c = np.einsum("ij,kl,nm,ikn->jlm", q1, q2, q3.conj(), cc, optimize=True)
    c = c.real  # the imaginary part vanishes thanks to the (-i)^l phases
    return c / np.linalg.norm(c)


@tensor_cache
def _cg_cached(l1: int, l2: int, l3: int, dtype: torch.dtype, device: torch.device) -> Tensor:
    return torch.from_numpy(_cg_float64(l1, l2, l3)).to(dtype=dtype, device=device)


def clebsch_gordan(l1: int, l2: int, l3: int, dtype: torch.dtype = torch.float32,
                   device: torch.device | str | None = None) -> Tensor:
    """Real Clebsch-Gordan tensor coupling degrees ``l1 x l2 -> l3``.

    Parameters
    ----------
    l1, l2, l3 : int
        Degrees with ``|l1 - l2| <= l3 <= l1 + l2``.
    dtype, device
        Of the result; tables are cached per ``(l1, l2, l3, dtype, device)``.

    Returns
    -------
    Tensor, shape (2l1+1, 2l2+1, 2l3+1)
        Unit Frobenius norm, equal to ``e3nn.o3.wigner_3j``. The tensor is shared by the cache:
        do not modify it in place.
    """
    for name, v in (("l1", l1), ("l2", l2), ("l3", l3)):
        if isinstance(v, bool) or not isinstance(v, int) or v < 0:
            raise ValueError(f"{name} must be a non-negative int, got {v!r}")
    if not is_triangle(l1, l2, l3):
        raise ValueError(f"degrees ({l1}, {l2}, {l3}) violate |l1-l2| <= l3 <= l1+l2")
    return _cg_cached(l1, l2, l3, dtype, torch.device(device) if device is not None
                      else torch.device("cpu"))


wigner_3j = clebsch_gordan
