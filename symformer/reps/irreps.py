"""O(3) irreducible representations: immutable, hashable, data-free descriptors.

``Irrep(l, p)`` is the degree-``l`` irrep of O(3) with parity ``p`` (+1 'e', -1 'o');
``Irreps("16x0e+8x1o")`` is a direct sum in e3nn's ``mul_ir`` layout (all copies of the first
irrep, then the next, ...). Both are tuples, compare equal to e3nn's objects of the same content,
and convert with :meth:`Irreps.from_e3nn` / :meth:`Irreps.to_e3nn`.

An orthogonal matrix ``R`` acts on ``Irrep(l, p)`` by ``p^k D^l(det(R) R)`` with
``k = 0`` for rotations and ``k = 1`` for improper matrices (identical to e3nn).
"""

from __future__ import annotations

import re
from typing import Iterable, Iterator, NamedTuple

import torch
from torch import Tensor

from ..primitives.wigner import rotation_part, wigner_D_blocks

__all__ = ["Irrep", "MulIr", "Irreps"]

_IRREP_RE = re.compile(r"^(\d+)([eoy])$")
_MULIR_RE = re.compile(r"^(?:(\d+)\s*x\s*)?(\d+[eoy])$")


class Irrep(tuple):
    """Irrep of O(3): degree ``l >= 0`` and parity ``p`` in {+1, -1}.

    Built from ``Irrep(l, p)``, ``Irrep("1o")`` (``'y'`` means parity ``(-1)^l``), another
    :class:`Irrep`, an e3nn ``Irrep`` or an ``(l, p)`` pair.
    """

    def __new__(cls, l, p=None):
        if p is None:
            if isinstance(l, Irrep):
                return l
            if isinstance(l, str):
                m = _IRREP_RE.match(l.strip())
                if m is None:
                    raise ValueError(f"cannot parse irrep {l!r}: expected like '0e', '1o', '2y'")
                deg = int(m.group(1))
                par = {"e": 1, "o": -1, "y": (-1) ** deg}[m.group(2)]
                return super().__new__(cls, (deg, par))
            # tuple.__len__: e3nn's Irrep forbids len().
            if isinstance(l, tuple) and tuple.__len__(l) == 2:
                l, p = tuple.__getitem__(l, 0), tuple.__getitem__(l, 1)
            else:
                raise TypeError(f"cannot build an Irrep from {l!r}")
        if isinstance(l, bool) or not isinstance(l, int) or l < 0:
            raise ValueError(f"irrep degree l must be a non-negative int, got {l!r}")
        if p not in (1, -1):
            raise ValueError(f"irrep parity p must be +1 or -1, got {p!r}")
        return super().__new__(cls, (int(l), int(p)))

    @property
    def l(self) -> int:  # noqa: E743
        return self[0]

    @property
    def p(self) -> int:
        return self[1]

    @property
    def dim(self) -> int:
        return 2 * self[0] + 1

    def is_scalar(self) -> bool:
        return self == (0, 1)

    def __repr__(self) -> str:
        return f"{self.l}{'e' if self.p == 1 else 'o'}"

    __str__ = __repr__

    def __mul__(self, other: "Irrep") -> Iterator["Irrep"]:
        """Irreps in the tensor product ``self x other``: ``|l1-l2| .. l1+l2``, parity p1 p2."""
        other = Irrep(other)
        p = self.p * other.p
        for l in range(abs(self.l - other.l), self.l + other.l + 1):
            yield Irrep(l, p)

    def __rmul__(self, mul: int) -> "Irreps":
        if not isinstance(mul, int):
            return NotImplemented
        return Irreps([(mul, self)])

    def __add__(self, other) -> "Irreps":
        return Irreps(self) + Irreps(other)

    def D_from_matrix(self, R: Tensor) -> Tensor:
        """Representation matrices (..., 2l+1, 2l+1) of orthogonal ``R`` (..., 3, 3)."""
        rot, det = rotation_part(R)
        D = wigner_D_blocks(self.l, rot)[self.l]
        if self.p == -1:
            D = D * det[..., None, None]
        return D


class MulIr(NamedTuple):
    """``mul`` copies of ``ir``."""

    mul: int
    ir: Irrep

    @property
    def dim(self) -> int:
        return self.mul * self.ir.dim

    def __repr__(self) -> str:
        return f"{self.mul}x{self.ir}"


def _parse(irreps) -> list[MulIr]:
    if irreps is None:
        return []
    if isinstance(irreps, Irrep):
        return [MulIr(1, irreps)]
    if isinstance(irreps, str):
        s = irreps.strip()
        if s in ("", "0"):
            return []
        out = []
        for term in s.split("+"):
            m = _MULIR_RE.match(term.strip())
            if m is None:
                raise ValueError(f"cannot parse irreps {irreps!r}: bad term {term.strip()!r} "
                                 "(expected like '16x0e', '1o' or '2x1e')")
            out.append(MulIr(int(m.group(1) or 1), Irrep(m.group(2))))
        return out
    if isinstance(irreps, Iterable):
        out = []
        for item in irreps:
            if isinstance(item, tuple) and not isinstance(item, Irrep):
                item = tuple(tuple.__getitem__(item, i) for i in range(tuple.__len__(item)))
            if isinstance(item, str):
                out.extend(_parse(item))
            elif isinstance(item, Irrep):
                out.append(MulIr(1, item))
            elif isinstance(item, tuple) and len(item) == 2 and isinstance(item[0], int) \
                    and not isinstance(item[1], int):
                if item[0] < 0:
                    raise ValueError(f"multiplicity must be >= 0, got {item[0]}")
                out.append(MulIr(int(item[0]), Irrep(item[1])))
            elif isinstance(item, tuple) and len(item) == 2:
                out.append(MulIr(1, Irrep(item)))
            else:
                raise TypeError(f"cannot read {item!r} as (mul, irrep)")
        return out
    raise TypeError(f"cannot build Irreps from {type(irreps).__name__}")


class _SortResult(NamedTuple):
    irreps: "Irreps"
    p: tuple[int, ...]
    inv: tuple[int, ...]


class Irreps(tuple):
    """Direct sum of O(3) irreps, e.g. ``Irreps("16x0e+8x1o")``.

    Accepts a string, an :class:`Irrep`, another ``Irreps`` (ours or e3nn's) or a sequence of
    ``(mul, irrep)`` pairs. Iteration yields :class:`MulIr` ``(mul, ir)`` pairs.
    """

    def __new__(cls, irreps=None):
        if isinstance(irreps, Irreps):
            return irreps
        return super().__new__(cls, _parse(irreps))

    # -- interop ----------------------------------------------------------------------------
    @classmethod
    def from_e3nn(cls, irreps) -> "Irreps":
        """From an ``e3nn.o3.Irreps`` (or anything with the same ``(mul, (l, p))`` content)."""
        return cls([(int(mul), Irrep(int(ir[0]), int(ir[1]))) for mul, ir in irreps])

    def to_e3nn(self):
        """The equal ``e3nn.o3.Irreps``."""
        from e3nn import o3

        return o3.Irreps(str(self))

    @classmethod
    def spherical_harmonics(cls, lmax: int, p: int = -1) -> "Irreps":
        """``1x0e + 1x1o + 1x2e + ...`` (``p = -1``) or all-even (``p = +1``), like e3nn."""
        if p not in (1, -1):
            raise ValueError(f"p must be +1 or -1, got {p!r}")
        return cls([(1, (l, p ** l)) for l in range(lmax + 1)])

    # -- sizes ------------------------------------------------------------------------------
    @property
    def dim(self) -> int:
        return sum(mi.dim for mi in self)

    @property
    def num_irreps(self) -> int:
        return sum(mi.mul for mi in self)

    @property
    def ls(self) -> list[int]:
        return [mi.ir.l for mi in self for _ in range(mi.mul)]

    @property
    def lmax(self) -> int:
        """Largest degree with nonzero multiplicity (like e3nn)."""
        ls = self.ls
        if not ls:
            raise ValueError(f"lmax of Irreps {self!r} without any irrep is undefined")
        return max(ls)

    def slices(self) -> list[slice]:
        """Slice of the ``mul_ir`` vector held by each ``(mul, ir)`` term."""
        out, start = [], 0
        for mi in self:
            out.append(slice(start, start + mi.dim))
            start += mi.dim
        return out

    # -- algebra ----------------------------------------------------------------------------
    def __add__(self, other) -> "Irreps":
        return Irreps(tuple(self) + tuple(Irreps(other)))

    def __radd__(self, other) -> "Irreps":
        return Irreps(other) + self

    def __mul__(self, other: int) -> "Irreps":
        if isinstance(other, bool) or not isinstance(other, int):
            raise TypeError(f"Irreps can be multiplied by an int only, got {type(other).__name__}")
        return Irreps(tuple(self) * other)

    __rmul__ = __mul__

    def __getitem__(self, i):
        out = super().__getitem__(i)
        return Irreps(out) if isinstance(i, slice) else out

    def __contains__(self, ir) -> bool:
        ir = Irrep(ir)
        return any(mi.ir == ir for mi in self)

    def count(self, ir) -> int:
        ir = Irrep(ir)
        return sum(mi.mul for mi in self if mi.ir == ir)

    def simplify(self) -> "Irreps":
        """Merge consecutive equal irreps and drop zero multiplicities (order kept, like e3nn)."""
        out: list[tuple[int, Irrep]] = []
        for mul, ir in self:
            if mul == 0:
                continue
            if out and out[-1][1] == ir:
                out[-1] = (out[-1][0] + mul, ir)
            else:
                out.append((mul, ir))
        return Irreps(out)

    def sort(self) -> _SortResult:
        """Stable sort by ``(l, p)``; returns ``(irreps, p, inv)`` like e3nn, where ``p[i]`` is
        the new position of term ``i`` and ``inv`` the inverse permutation."""
        order = sorted(range(len(self)), key=lambda i: (self[i].ir, i))
        inv = tuple(order)
        p = [0] * len(order)
        for new, old in enumerate(order):
            p[old] = new
        return _SortResult(Irreps([self[i] for i in order]), tuple(p), inv)

    def __repr__(self) -> str:
        return "+".join(repr(mi) for mi in self)

    __str__ = __repr__

    def __eq__(self, other) -> bool:
        if isinstance(other, str):
            try:
                other = Irreps(other)
            except (ValueError, TypeError):
                return False
        return tuple.__eq__(self, other)

    def __ne__(self, other) -> bool:
        return not self.__eq__(other)

    __hash__ = tuple.__hash__

    # -- data -------------------------------------------------------------------------------
    def randn(self, *leading: int, dtype: torch.dtype | None = None,
              generator: torch.Generator | None = None,
              device: torch.device | str | None = None) -> Tensor:
        """Standard normal features of shape ``(*leading, dim)`` ('component' normalised)."""
        return torch.randn(*leading, self.dim, dtype=dtype, generator=generator, device=device)

    def D_from_matrix(self, R: Tensor) -> Tensor:
        """Block-diagonal representation matrices of orthogonal ``R``.

        Parameters
        ----------
        R : Tensor, shape (..., 3, 3)
            Orthogonal matrices (det +-1).

        Returns
        -------
        Tensor, shape (..., dim, dim)
            ``D`` with ``x -> x @ D.T`` the action on ``mul_ir`` features ``x`` (..., dim).
        """
        rot, det = rotation_part(R)
        batch = R.shape[:-2]
        out = R.new_zeros(*batch, self.dim, self.dim)
        if self.num_irreps == 0:
            return out
        blocks = wigner_D_blocks(self.lmax, rot)
        for (mul, ir), s in zip(self, self.slices()):
            if mul == 0:
                continue
            D = blocks[ir.l]
            if ir.p == -1:
                D = D * det[..., None, None]
            eye = torch.eye(mul, dtype=R.dtype, device=R.device)
            # kron(I_mul, D): mul copies on the diagonal.
            block = torch.einsum("uv,...ij->...uivj", eye, D).reshape(*batch, s.stop - s.start,
                                                                     s.stop - s.start)
            out[..., s, s] = block
        return out
