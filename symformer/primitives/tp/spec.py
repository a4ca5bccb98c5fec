"""Declarative tensor-product specification, shared by every backend.

A :class:`TensorProductSpec` says *what* is computed; backends (``cg``, ``so2``, ``gaunt``,
``grid``, ``cp``) say *how*. Features use e3nn's ``mul_ir`` layout at this boundary
(``x : (..., irreps_in1.dim)``), so a spec means exactly what ``e3nn.o3.TensorProduct`` with the
same irreps and instructions means, weights included:

    out[i_out][w, k] += c_ins * sum_{u, v} W[u, v, w] * sum_{i, j} CG[i, j, k] x1[u, i] x2[v, j]

with ``CG = clebsch_gordan(l1, l2, l3)`` and the channel pattern of ``mode``:

* ``"uvw"`` (fully connected): weight ``[mul1, mul2, mul_out]`` per instruction;
* ``"uvu"`` (channel-wise in x, mixing the y copies): weight ``[mul1, mul2]``, ``mul_out = mul1``;
* ``"uuu"`` (channel-wise): weight ``[mul1]``, ``mul1 = mul2 = mul_out``.

Instructions without weight use all ones. ``c_ins`` follows e3nn's ``irrep_normalization=
"component"`` and ``path_normalization="element"`` (``normalization="e3nn"``):
``c = sqrt(path_weight * dim(l3) / sum_{ins' -> same output} num_elements(ins'))`` with
``num_elements`` = ``mul1 mul2`` (uvw), ``mul2`` (uvu), 1 (uuu); or ``c = path_weight``
(``normalization="none"``). Weights are one flat vector, instruction after instruction, each
flattened in the order above (e3nn's order): shape ``(weight_numel,)`` for
``weight_mode="internal"`` (shared by all samples), ``(..., weight_numel)`` for ``"external"``
(per sample, e.g. per edge from a radial network).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from ...reps import Irreps

__all__ = ["Instruction", "TensorProductSpec", "MODES"]

MODES = ("uvw", "uvu", "uuu")


@dataclass(frozen=True)
class Instruction:
    """One path: term ``i_in1`` of x times term ``i_in2`` of y into term ``i_out``."""

    i_in1: int
    i_in2: int
    i_out: int
    has_weight: bool = True
    path_weight: float = 1.0


class TensorProductSpec:
    """What a tensor product computes (see the module docstring); immutable and hashable.

    Parameters
    ----------
    irreps_in1, irreps_in2, irreps_out : Irreps or str
    instructions : sequence of Instruction or tuples ``(i_in1, i_in2, i_out[, has_weight[,
        path_weight]])``
    mode : {"uvw", "uvu", "uuu"}
    weight_mode : {"internal", "external"}
        One weight vector shared by all samples, or one per sample.
    normalization : {"e3nn", "none"}
    """

    def __init__(self, irreps_in1, irreps_in2, irreps_out, instructions, *, mode: str = "uvu",
                 weight_mode: str = "internal", normalization: str = "e3nn"):
        self.irreps_in1, self.irreps_in2 = Irreps(irreps_in1), Irreps(irreps_in2)
        self.irreps_out = Irreps(irreps_out)
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
        if weight_mode not in ("internal", "external"):
            raise ValueError(f"weight_mode must be 'internal' or 'external', got {weight_mode!r}")
        if normalization not in ("e3nn", "none"):
            raise ValueError(f"normalization must be 'e3nn' or 'none', got {normalization!r}")
        self.mode, self.weight_mode, self.normalization = mode, weight_mode, normalization
        ins = []
        for t in instructions:
            t = t if isinstance(t, Instruction) else Instruction(*t)
            self._check(t)
            ins.append(t)
        self.instructions: tuple[Instruction, ...] = tuple(ins)
        self.path_shapes = tuple(self._shape(t) if t.has_weight else () for t in ins)
        self.weight_numel = sum(math.prod(s) for s in self.path_shapes if s)
        self.coefficients = tuple(self._coefficient(t) for t in ins)
        self._paths = tuple((self.irreps_in1[t.i_in1].ir.l, self.irreps_in2[t.i_in2].ir.l,
                             self.irreps_out[t.i_out].ir.l) for t in ins)
        slices, start = [], 0
        for s in self.path_shapes:
            n = math.prod(s) if s else 0
            slices.append(slice(start, start + n) if s else None)
            start += n
        self._slices = tuple(slices)
        self._key = (str(self.irreps_in1), str(self.irreps_in2), str(self.irreps_out),
                     self.instructions, self.mode, self.weight_mode, self.normalization)
        self._hash = hash(self._key)

    def _check(self, t: Instruction) -> None:
        n1, n2, no = len(self.irreps_in1), len(self.irreps_in2), len(self.irreps_out)
        if not (0 <= t.i_in1 < n1 and 0 <= t.i_in2 < n2 and 0 <= t.i_out < no):
            raise ValueError(f"instruction {t} indexes terms beyond irreps_in1 ({n1}), "
                             f"irreps_in2 ({n2}) or irreps_out ({no})")
        (m1, a), (m2, b), (mo, c) = (self.irreps_in1[t.i_in1], self.irreps_in2[t.i_in2],
                                     self.irreps_out[t.i_out])
        if not abs(a.l - b.l) <= c.l <= a.l + b.l or a.p * b.p != c.p:
            raise ValueError(f"instruction {t}: {a} x {b} cannot give {c}")
        if self.mode == "uvu" and m1 != mo:
            raise ValueError(f"instruction {t}: mode 'uvu' needs mul_in1 == mul_out, got "
                             f"{m1}, {mo}")
        if self.mode == "uuu" and not m1 == m2 == mo:
            raise ValueError(f"instruction {t}: mode 'uuu' needs equal multiplicities, got "
                             f"{m1}, {m2}, {mo}")

    def _shape(self, t: Instruction) -> tuple[int, ...]:
        m1, m2, mo = (self.irreps_in1[t.i_in1].mul, self.irreps_in2[t.i_in2].mul,
                      self.irreps_out[t.i_out].mul)
        return {"uvw": (m1, m2, mo), "uvu": (m1, m2), "uuu": (m1,)}[self.mode]

    def _num_elements(self, t: Instruction) -> int:
        m1, m2 = self.irreps_in1[t.i_in1].mul, self.irreps_in2[t.i_in2].mul
        return {"uvw": m1 * m2, "uvu": m2, "uuu": 1}[self.mode]

    def _coefficient(self, t: Instruction) -> float:
        if self.normalization == "none":
            return float(t.path_weight)
        fan = sum(self._num_elements(s) for s in self.instructions if s.i_out == t.i_out)
        alpha = self.irreps_out[t.i_out].ir.dim / fan if fan > 0 else 0.0
        return math.sqrt(alpha * t.path_weight)

    # --- views used by backends -------------------------------------------------------------
    def paths(self) -> list[tuple[int, int, int]]:
        """``(l1, l2, l3)`` of every instruction."""
        return list(self._paths)

    def weight_slices(self) -> list[slice | None]:
        """Slice of the flat weight vector of each instruction (None: no weight)."""
        return list(self._slices)

    def key(self) -> tuple:
        """Everything that defines the spec (equality and hashing use it)."""
        return self._key

    def __hash__(self) -> int:
        return self._hash

    def __eq__(self, other) -> bool:
        return isinstance(other, TensorProductSpec) and (
            self is other or (self._hash == other._hash and self._key == other._key))

    def __repr__(self) -> str:
        return (f"TensorProductSpec({self.irreps_in1} x {self.irreps_in2} -> {self.irreps_out}, "
                f"{len(self.instructions)} paths, mode={self.mode!r}, "
                f"weight_mode={self.weight_mode!r}, weight_numel={self.weight_numel})")

    def to_e3nn_instructions(self) -> list[tuple]:
        """Instructions for ``e3nn.o3.TensorProduct`` (with ``path_normalization='element'``)."""
        return [(t.i_in1, t.i_in2, t.i_out, self.mode, t.has_weight, t.path_weight)
                for t in self.instructions]

    # --- constructors -----------------------------------------------------------------------
    @classmethod
    def fully_connected(cls, irreps_in1, irreps_in2, irreps_out, *,
                        weight_mode: str = "internal") -> "TensorProductSpec":
        """Every allowed ``uvw`` path (e3nn's ``FullyConnectedTensorProduct``)."""
        i1, i2, io = Irreps(irreps_in1), Irreps(irreps_in2), Irreps(irreps_out)
        ins = [(a, b, c) for a, (_, ra) in enumerate(i1) for b, (_, rb) in enumerate(i2)
               for c, (_, rc) in enumerate(io) if rc in list(ra * rb)]
        return cls(i1, i2, io, ins, mode="uvw", weight_mode=weight_mode)

    @classmethod
    def channelwise(cls, irreps_in1, irreps_in2, irreps_out, *, weight_mode: str = "external",
                    mode: str = "uvu") -> "TensorProductSpec":
        """Channel-wise product summed into ``irreps_out`` (each output irrep appears once, with
        ``mul = mul_in1``): every allowed path ``(i1, i2) -> ir_out``. With ``irreps_in2`` the
        edge harmonics this is the NequIP/MACE edge message."""
        i1, i2, io = Irreps(irreps_in1), Irreps(irreps_in2), Irreps(irreps_out)
        ins = []
        for a, (ma, ra) in enumerate(i1):
            for b, (_, rb) in enumerate(i2):
                for c, (mc, rc) in enumerate(io):
                    if mc == ma and rc in list(ra * rb):
                        ins.append((a, b, c))
        return cls(i1, i2, io, ins, mode=mode, weight_mode=weight_mode)
