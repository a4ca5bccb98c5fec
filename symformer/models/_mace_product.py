"""MACE's product basis: symmetric contraction of the atomic basis ``A`` with itself.

A path couples ``nu`` copies of ``A`` (degrees ``0..lmax_in``, parity ``(-1)^l``) into degree
``L`` as a left-to-right chain of Clebsch-Gordan couplings::

    ((A_l1 (x) A_l2)_k2 (x) A_l3)_k3 ... (x) A_lnu)_L,     path = (ls, ks), ks = (k2, ..., L)

each coupling ``sqrt(2k+1) CG`` (component normalisation); intermediate degrees have any parity.
On the symmetric tensor ``A^{(x) nu}`` a chain equals its symmetrisation, and chains with sorted
leaves ``l1 <= ... <= lnu`` span every symmetric equivariant map; the basis keeps, per leaf
multiset, a maximal set of chains whose symmetrisations are linearly independent. Their number
is the multiplicity of ``V_L`` in ``Sym^nu(A)`` (MACE's generalised Clebsch-Gordan ``U``
matrices have the same span; tests compare with character integrals over O(3)).

Evaluation shares work between paths: level ``j`` computes every needed prefix of ``j`` leaves
at once from the nonzero Clebsch-Gordan entries (one gather, multiply and scatter per level).
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import torch
from torch import Tensor, nn

from symformer._cache import tensor_cache

from symformer.primitives import clebsch_gordan
from symformer.primitives._blocking import block_size

__all__ = ["SymmetricContraction", "symmetric_paths", "path_tensor"]

Path = tuple[tuple[int, ...], tuple[int, ...]]


def _chains(ls: tuple[int, ...], L: int) -> list[tuple[int, ...]]:
    """Intermediate degrees ``(k2, ..., L)`` coupling the leaves ``ls`` into ``L``."""
    out = [(ls[0],)]
    for l in ls[1:]:
        out = [ks + (k,) for ks in out for k in range(abs(ks[-1] - l), ks[-1] + l + 1)]
    return [ks[1:] for ks in out if ks[-1] == L]


def _degree(path: Path) -> int:
    """Degree of the last coupled feature of a (prefix) path."""
    ls, ks = path
    return ks[-1] if ks else ls[0]


def path_tensor(path: Path, L: int) -> np.ndarray:
    """Dense coupling tensor of ``path``: shape ``(2L+1, 2l1+1, ..., 2lnu+1)``, float64."""
    ls, ks = path
    t = np.eye(2 * ls[0] + 1)                                      # [k, i1]
    prev = ls[0]
    for l, k in zip(ls[1:], ks):
        cg = clebsch_gordan(prev, l, k, dtype=torch.float64).numpy()
        t = math.sqrt(2 * k + 1) * np.einsum("a...,abk->k...b", t, cg)
        prev = k
    if t.shape[0] != 2 * L + 1:
        raise ValueError(f"path {path} does not end in degree L={L}")
    return t


def _symmetrised(t: np.ndarray, ls: tuple[int, ...]) -> np.ndarray:
    """Average of ``t`` over the permutations of its input axes that keep the degrees."""
    perms = [p for p in itertools.permutations(range(len(ls)))
             if all(ls[i] == ls[j] for i, j in enumerate(p))]
    return sum(t.transpose(0, *(1 + i for i in p)) for p in perms) / len(perms)


@tensor_cache
def symmetric_paths(lmax_in: int, L: int, nu: int) -> tuple[Path, ...]:
    """Linearly independent symmetric couplings of ``nu`` copies of ``A`` (degrees
    ``0..lmax_in``, parity ``(-1)^l``) into degree ``L`` with parity ``(-1)^L``."""
    kept: list[Path] = []
    for ls in itertools.combinations_with_replacement(range(lmax_in + 1), nu):
        if (sum(ls) + L) % 2:
            continue
        basis: list[np.ndarray] = []
        for ks in _chains(ls, L):
            v = _symmetrised(path_tensor((ls, ks), L), ls).ravel()
            for _ in range(2):                    # Gram-Schmidt, twice for stability
                for b in basis:
                    v = v - (b @ v) * b
            if np.linalg.norm(v) > 1e-8:
                basis.append(v / np.linalg.norm(v))
                kept.append((ls, ks))
    return tuple(kept)


class SymmetricContraction(nn.Module):
    """``B_{i,L} = sum_{nu, k} w_{z_i, L, k, c} U_k . A_{i,c}^{(x) nu}`` (channel by channel).

    Parameters
    ----------
    lmax_in, lmax_out : int
        Degrees of ``A`` and of ``B``.
    channels : int
        Channels C (each channel is contracted with itself).
    correlation : int
        Largest ``nu`` (body order ``correlation + 1`` for one interaction).
    num_elements : int
        Element-dependent weights, chosen by the one-hot of each atom.
    """

    CHUNK_COLUMNS = 4096

    def __init__(self, *, lmax_in: int, lmax_out: int, channels: int, correlation: int,
                 num_elements: int):
        super().__init__()
        self.lmax_in, self.lmax_out, self.correlation = lmax_in, lmax_out, correlation
        self.paths = [[p for nu in range(1, correlation + 1)
                       for p in symmetric_paths(lmax_in, L, nu)] for L in range(lmax_out + 1)]
        self.weights = nn.ParameterList(
            nn.Parameter(torch.randn(num_elements, max(len(p), 1), channels)
                         / math.sqrt(max(len(p), 1)))
            for p in self.paths)
        # Sparse plan. Level j holds every needed prefix (ls[:j], ks[:j-1]) as rows of one
        # tensor F_j [N, R_j, C]; F_j = sum over the nonzero CG entries of
        # coef * F_{j-1}[prefix row] * A[leaf row], one gather-multiply-scatter per level.
        needed = {(ls[:j], ks[:j - 1]) for paths in self.paths for ls, ks in paths
                  for j in range(2, len(ls) + 1)}
        self.rows: dict[Path, tuple[int, int]] = {((l,), ()): (0, l * l)
                                                   for l in range(lmax_in + 1)}
        self.num_levels = max(correlation - 1, 0)
        for j in range(2, correlation + 1):
            offset, entries = 0, []
            for ls, ks in sorted(p for p in needed if len(p[0]) == j):
                prefix = (ls[:-1], ks[:-1])
                kp, l, k = _degree(prefix), ls[-1], ks[-1]
                self.rows[(ls, ks)] = (j - 1, offset)
                cg = clebsch_gordan(kp, l, k, torch.float64) * math.sqrt(2 * k + 1)
                for i, m, o in cg.nonzero().tolist():
                    entries.append((self.rows[prefix][1] + i, l * l + m, offset + o,
                                    float(cg[i, m, o])))
                offset += 2 * k + 1
            cols = list(zip(*entries)) if entries else [(), (), (), ()]
            for name, col, dt in (("left", cols[0], torch.long), ("right", cols[1], torch.long),
                                  ("out", cols[2], torch.long), ("coef", cols[3], torch.float64)):
                self.register_buffer(f"{name}_{j}", torch.tensor(col, dtype=dt),
                                     persistent=False)
            setattr(self, f"size_{j}", offset)
        # Rows of every path's output in the concatenation [A, F_2, ..., F_correlation].
        starts = [0, (lmax_in + 1) ** 2]
        for j in range(2, correlation + 1):
            starts.append(starts[-1] + getattr(self, f"size_{j}"))
        for L, paths in enumerate(self.paths):
            idx = [starts[self.rows[p][0]] + self.rows[p][1] + m for p in paths
                   for m in range(2 * L + 1)]
            self.register_buffer(f"gather_{L}", torch.tensor(idx, dtype=torch.long),
                                 persistent=False)

    def forward(self, a: Tensor, onehot: Tensor) -> Tensor:
        """a : (N, (lmax_in+1)^2, C), onehot : (N, elements) -> (N, (lmax_out+1)^2, C)."""
        # Atoms are independent: blocks of ~CHUNK_COLUMNS (atom, channel) columns keep the
        # [nnz, columns] gathers and products of every level in cache (fwd and both backwards).
        step = max(1, block_size(self.CHUNK_COLUMNS, a.device) // max(a.shape[-1], 1))
        if a.shape[0] <= step:
            return self._contract(a, onehot)
        return torch.cat([self._contract(a[s:s + step], onehot[s:s + step])
                          for s in range(0, a.shape[0], step)])

    def _contract(self, a: Tensor, onehot: Tensor) -> Tensor:
        """:meth:`forward` on one block of atoms."""
        n, c = a.shape[0], a.shape[-1]
        # Component-major [rows, N*C]: gathers and scatters move whole contiguous rows.
        at = a.transpose(0, 1).reshape(a.shape[1], n * c)
        levels, prev = [at], at
        for j in range(2, self.correlation + 1):
            coef = getattr(self, f"coef_{j}").to(a.dtype)[:, None]
            prod = (prev.index_select(0, getattr(self, f"left_{j}"))
                    * at.index_select(0, getattr(self, f"right_{j}")) * coef)  # [nnz, N*C]
            prev = at.new_zeros(getattr(self, f"size_{j}"), n * c).index_add(
                0, getattr(self, f"out_{j}"), prod)                          # [R_j, N*C]
            levels.append(prev)
        feats = torch.cat(levels, dim=0)                                     # [R, N*C]
        out = []
        for L, paths in enumerate(self.paths):
            if not paths:
                out.append(a.new_zeros(2 * L + 1, n, c))
                continue
            w = (onehot @ self.weights[L].flatten(1)).unflatten(1, (len(paths), c))  # [N, K, C]
            basis = feats.index_select(0, getattr(self, f"gather_{L}")).view(
                len(paths), 2 * L + 1, n, c)                                 # [K, 2L+1, N, C]
            out.append((basis * w.transpose(0, 1)[:, None]).sum(dim=0))       # [2L+1, N, C]
        return torch.cat(out, dim=0).transpose(0, 1)
