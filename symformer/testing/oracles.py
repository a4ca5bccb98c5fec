"""Reference transformations of typed data, written independently of :mod:`symformer.groups`.

The oracle reads only the plain element fields documented in :mod:`symformer.groups.base`
(``matrix``, ``translation``, ``perm``, ``rot90``, ``flip``, ``shift``, ``scale``) and
transforms data with deliberately plain code: ``einsum`` with the matrix, explicit index
gathers for permutations, explicit index arithmetic for image rotations, flips, shifts and
upsampling, and for irreps features Wigner matrices ``exp(omega . X^l)`` built from scipy's
rotation vector and e3nn's so(3) generators (in float64). It never calls a group's ``act``;
tests check that the two agree, and that the Wigner matrices match e3nn's ``D_from_matrix``.

The fields of one element are applied in a fixed order: permutation (node axes), then
``matrix`` and ``translation``, then ``scale``, then ``flip``, ``rot90`` and ``shift`` for
images. This matches ``ProductGroup`` products listed in that order (e.g. ``E3() * Scaling()``,
``Dihedral(4) * CyclicShift(H, W)``); factors acting on different data commute anyway.
"""

from __future__ import annotations

import itertools
from typing import Any, Mapping

import e3nn.o3
import torch
from scipy.spatial.transform import Rotation
from torch import Tensor

from symformer._cache import tensor_cache

from symformer.groups.base import Element
from symformer.groups.types import FieldType, TypeLike, parse_type

__all__ = ["transform", "irreps_D", "uniform_D_reference", "image_rot90", "image_flip",
           "image_shift", "image_upsample", "multivector_D_reference"]

_IMAGE_KEYS = ("flip", "rot90", "shift")


def _su2_generators(l: int) -> Tensor:
    """Angular-momentum generators (x, z, -y as in e3nn) in the complex basis, complex128."""
    m = torch.arange(-l, l, dtype=torch.float64)
    raising = torch.diag(-torch.sqrt(l * (l + 1) - m * (m + 1)), diagonal=-1)
    m = torch.arange(-l + 1, l + 1, dtype=torch.float64)
    lowering = torch.diag(torch.sqrt(l * (l + 1) - m * (m - 1)), diagonal=1)
    m = torch.arange(-l, l + 1, dtype=torch.float64)
    raising, lowering = raising.to(torch.complex128), lowering.to(torch.complex128)
    return torch.stack([0.5 * (raising + lowering), torch.diag(1j * m).to(torch.complex128),
                        -0.5j * (raising - lowering)])


@tensor_cache
def _real_generators(l: int) -> Tensor:
    """e3nn's real-basis so(3) generators of degree l, (3, 2l+1, 2l+1) float64, x y z order."""
    Q = e3nn.o3.change_basis_real_to_complex(l, dtype=torch.float64)
    return torch.real(torch.conj(Q.T) @ _su2_generators(l) @ Q)


def _irreps_blocks(R: Tensor, irs: list[tuple[int, int]]) -> list[Tensor]:
    """float64 D matrices of the irreps ``(l, p)`` at orthogonal ``R`` (3, 3).

    Proper part: ``D^l = exp(omega . X^l)`` with omega scipy's rotation vector of ``det(R) R``
    and X^l e3nn's generators rebuilt in float64 (e3nn's own are float32, and its
    ``D_from_matrix`` is only ~1e-7 accurate). Improper R multiply by the parity p.
    """
    R = R.detach().cpu().double()
    det = 1.0 if float(torch.linalg.det(R)) > 0 else -1.0
    omega = torch.from_numpy(Rotation.from_matrix((det * R).numpy()).as_rotvec())
    proper = {l: torch.linalg.matrix_exp(torch.einsum("i,ijk->jk", omega, _real_generators(l)))
              for l in sorted({l for l, _ in irs})}
    return [proper[l] * (p if det < 0 else 1) for l, p in irs]


def irreps_D(R: Tensor, irreps: str) -> Tensor:
    """Representation matrix of O(3) ``irreps`` (e3nn string, mul_ir layout) at orthogonal
    ``R`` (3, 3), shape (dim, dim), in ``R``'s dtype and device (computed in float64)."""
    irs = [(ir.l, ir.p) for mul, ir in e3nn.o3.Irreps(irreps) for _ in range(mul)]
    return torch.block_diag(*_irreps_blocks(R, irs)).to(dtype=R.dtype, device=R.device)


def uniform_D_reference(R: Tensor, lmax: int) -> Tensor:
    """Block-diagonal representation of the ``uniform:lmax`` layout (degree l with parity
    (-1)^l), shape ((L+1)^2, (L+1)^2)."""
    blocks = _irreps_blocks(R, [(l, (-1) ** l) for l in range(lmax + 1)])
    return torch.block_diag(*blocks).to(dtype=R.dtype, device=R.device)


def image_flip(x: Tensor) -> Tensor:
    """Mirror along the width: ``new[..., i, j] = old[..., i, W-1-j]``."""
    W = x.shape[-1]
    return x[..., (W - 1) - torch.arange(W, device=x.device)]


def image_rot90(x: Tensor, k: int) -> Tensor:
    """``k`` quarter turns counter-clockwise (pixel (i, j) at (x, y) = (j, -i)).

    One turn maps ``[..., H, W]`` to ``[..., W, H]`` with ``new[i, j] = old[j, W-1-i]``.
    """
    for _ in range(k % 4):
        H, W = x.shape[-2], x.shape[-1]
        i = torch.arange(W, device=x.device)[:, None].expand(W, H)
        j = torch.arange(H, device=x.device)[None, :].expand(W, H)
        x = x[..., j, (W - 1) - i]
    return x


def image_shift(x: Tensor, shift: tuple[int, int]) -> Tensor:
    """Cyclic shift: ``new[i, j] = old[(i - a) mod H, (j - b) mod W]``."""
    H, W = x.shape[-2], x.shape[-1]
    rows = (torch.arange(H, device=x.device) - shift[0]) % H
    cols = (torch.arange(W, device=x.device) - shift[1]) % W
    return x[..., rows[:, None], cols[None, :]]


def image_upsample(x: Tensor, s: int) -> Tensor:
    """Nearest-neighbour upsampling by an integer: ``new[i, j] = old[i // s, j // s]``."""
    H, W = x.shape[-2], x.shape[-1]
    rows = torch.arange(H * s, device=x.device) // s
    cols = torch.arange(W * s, device=x.device) // s
    return x[..., rows[:, None], cols[None, :]]


def _permute(x: Tensor, ft: FieldType, perm: Tensor) -> Tensor:
    perm = perm.to(x.device)
    N = perm.shape[0]
    if ft.geom == "edge_index":
        inv = torch.empty_like(perm)
        inv[perm] = torch.arange(N, device=perm.device)
        return inv[x]
    for axis in ft.perm_axes:
        if x.ndim <= axis or x.shape[axis] != N:
            raise ValueError(f"oracle: a {str(ft)!r} field needs {N} nodes on axis {axis}, "
                             f"got shape {tuple(x.shape)}")
        x = x.movedim(axis, 0)[perm].movedim(0, axis)
    return x


def _refuse(ft: FieldType, keys) -> None:
    raise ValueError(f"oracle: no exact action of an element with fields {sorted(keys)} on "
                     f"{str(ft)!r} fields")


def _geometric(x: Tensor, ft: FieldType, d: Mapping[str, Tensor]) -> Tensor:
    geom = ft.geom
    if geom in ("scalar", "edge_index"):
        return x
    keys = set(d) - {"perm"}
    if not keys:
        return x
    if geom == "image":
        if "translation" in d or ("matrix" in d and "rot90" not in d):
            _refuse(ft, keys)
        if "scale" in d:
            s = float(d["scale"])
            if s != round(s) or s < 1:
                _refuse(ft, keys)
            x = image_upsample(x, int(round(s)))
        if "flip" in d and bool(d["flip"]):
            x = image_flip(x)
        if "rot90" in d:
            x = image_rot90(x, int(d["rot90"]))
        if "shift" in d:
            x = image_shift(x, (int(d["shift"][0]), int(d["shift"][1])))
        return x
    if any(k in d for k in _IMAGE_KEYS) and "matrix" not in d:
        _refuse(ft, keys)
    R = d["matrix"].to(dtype=x.dtype, device=x.device) if "matrix" in d else None
    dim = R.shape[-1] if R is not None else None
    if geom in ("point", "vector"):
        if R is not None:
            if x.shape[-1] != dim:
                raise ValueError(f"oracle: {str(ft)!r} needs last dim {dim}, got {tuple(x.shape)}")
            x = torch.einsum("ij,...j->...i", R, x)
            if geom == "point" and "translation" in d:
                x = x + d["translation"].to(dtype=x.dtype, device=x.device)
        if "scale" in d:
            x = x * d["scale"].to(dtype=x.dtype, device=x.device)
        return x
    if "scale" in d or dim != 3:
        _refuse(ft, keys)
    if geom == "pseudovector":
        if x.shape[-1] != 3:
            raise ValueError(f"oracle: 'pseudovector' needs last dim 3, got {tuple(x.shape)}")
        return torch.linalg.det(R) * torch.einsum("ij,...j->...i", R, x)
    if geom == "irreps":
        D = irreps_D(R, ft.irreps)
        if x.shape[-1] != D.shape[0]:
            raise ValueError(f"oracle: {ft.irreps!r} needs last dim {D.shape[0]}, got "
                             f"{tuple(x.shape)}")
        return torch.einsum("ij,...j->...i", D, x)
    if geom == "uniform":
        D = uniform_D_reference(R, ft.lmax)
        if x.ndim < 2 or x.shape[-2] != D.shape[0]:
            raise ValueError(f"oracle: {str(ft)!r} needs shape [..., {D.shape[0]}, C], got "
                             f"{tuple(x.shape)}")
        return torch.einsum("ij,...jc->...ic", D, x)
    if geom == "multivector":
        return _multivector(x, d, R)
    _refuse(ft, keys)


def transform(g: Element, x: Any, ftype: TypeLike | Mapping | tuple | list) -> Any:
    """Apply the single element ``g`` (``len(g) == 1``) to ``x`` of type ``ftype``.

    ``x`` may be a tensor or a dict / list / tuple of tensors with a matching structure of
    types (a single type applies to every entry). Raises ``ValueError`` where the element has
    no exact action on the type.
    """
    if isinstance(x, Mapping):
        types = ftype if isinstance(ftype, Mapping) else {k: ftype for k in x}
        missing = [k for k in x if k not in types]
        if missing:
            raise ValueError(f"no field type given for {missing}")
        return {k: transform(g, v, types[k]) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        types = ftype if isinstance(ftype, (list, tuple)) else [ftype] * len(x)
        if len(types) != len(x):
            raise ValueError(f"{len(x)} values but {len(types)} field types")
        return type(x)(transform(g, v, t) for v, t in zip(x, types))
    if len(g) != 1:
        raise ValueError(f"transform expects a single group element, got a batch of {len(g)}")
    ft = parse_type(ftype)
    d = {k: v[0] for k, v in g.data.items()}
    if "perm" in d:
        x = _permute(x, ft, d["perm"])
    return _geometric(x, ft, d)


def multivector_D_reference(R: Tensor, t: Tensor | None = None) -> Tensor:
    """Matrix (16, 16) of ``x -> R x + t`` on PGA G(3,0,1) multivectors, from plain linear algebra.

    The isometry maps the plane ``n . x + d = 0`` (the vector ``d e0 + n_i e_i``) to
    ``(R n, d - (R n) . t)``: a 4x4 matrix ``A`` on the generators (e0, e1, e2, e3). It acts on
    the blade ``e_J`` (generators J, blade order of the ``clifford`` package: by grade, then
    lexicographic) as the wedge of the images of its generators, whose ``e_I`` coefficient is the
    minor ``det A[I, J]``. Computed in float64, returned in ``R``'s dtype and device.
    """
    R64 = R.detach().cpu().double()
    t64 = torch.zeros(3, dtype=torch.float64) if t is None else t.detach().cpu().double()
    A = torch.zeros(4, 4, dtype=torch.float64)
    A[0, 0] = 1.0
    A[0, 1:] = -(t64 @ R64)
    A[1:, 1:] = R64
    blades = [c for k in range(5) for c in itertools.combinations(range(4), k)]
    M = torch.zeros(16, 16, dtype=torch.float64)
    for i, rows in enumerate(blades):
        for j, cols in enumerate(blades):
            if len(rows) == len(cols):
                M[i, j] = torch.linalg.det(A[list(rows)][:, list(cols)]) if rows else 1.0
    return M.to(dtype=R.dtype, device=R.device)


def _multivector(x: Tensor, d: Mapping[str, Tensor], R: Tensor | None) -> Tensor:
    if "scale" in d or R is None or R.shape[-1] != 3:
        _refuse(FieldType("multivector"), set(d) - {"perm"})
    if x.shape[-1] != 16:
        raise ValueError(f"oracle: 'multivector' needs last dim 16, got {tuple(x.shape)}")
    M = multivector_D_reference(R, d.get("translation")).to(x.dtype)
    return torch.einsum("ij,...j->...i", M, x)
