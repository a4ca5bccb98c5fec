"""Embedding geometric objects into PGA multivectors ``[..., 16]`` and extracting them.

Conventions (see :mod:`.pga`): the plane ``n . x + d = 0`` is ``n_i e_i + d e0``; the point x is
``e123 - x e023 + y e013 - z e012`` (homogeneous: any nonzero multiple is the same point);
a direction (or translation vector) v is the ideal line ``v_1 e01 + v_2 e02 + v_3 e03``; the
line through p with direction v is the join of the points p and p + v.

Under the isometry ``g: x -> R x + t`` acting on multivectors by :func:`.pga.action_matrix`:
directions map to ``R v`` and planes to the moved plane; points and lines map to ``det(R)``
times the moved point or line (homogeneous sign), so :func:`extract_point` of a transformed
point is ``g x`` exactly.
"""

from __future__ import annotations

import torch
from torch import Tensor

from .pga import BLADE, blade_index, join, rotor, translator

__all__ = ["embed_scalar", "extract_scalar", "embed_pseudoscalar", "extract_pseudoscalar",
           "embed_point", "extract_point", "embed_direction", "extract_direction",
           "embed_plane", "extract_plane", "embed_line", "extract_line", "embed_translation",
           "extract_translation", "embed_rotation", "extract_rotation", "embed_reflection",
           "extract_reflection"]

_POINT = blade_index("e023", "e013", "e012")
_POINT_SIGN = (-1.0, 1.0, -1.0)
_IDEAL = blade_index("e01", "e02", "e03")
_VEC = blade_index("e1", "e2", "e3")
_ROT = blade_index("e23", "e13", "e12")


def _check3(x: Tensor, name: str, last: int = 3) -> None:
    if not isinstance(x, Tensor):
        raise TypeError(f"{name}: expected a torch.Tensor, got {type(x).__name__}")
    if x.ndim == 0 or x.shape[-1] != last:
        raise ValueError(f"{name}: expected shape (..., {last}), got {tuple(x.shape)}")


def _check_mv(mv: Tensor) -> None:
    _check3(mv, "mv", 16)


def _new(x: Tensor, lead: tuple[int, ...]) -> Tensor:
    return x.new_zeros(*lead, 16)


def embed_scalar(s: Tensor) -> Tensor:
    """s : Tensor, shape (...,) -> multivector (..., 16) with only the scalar blade."""
    out = _new(s, s.shape)
    out[..., BLADE["1"]] = s
    return out


def extract_scalar(mv: Tensor) -> Tensor:
    """Scalar component, shape (...,)."""
    _check_mv(mv)
    return mv[..., BLADE["1"]]


def embed_pseudoscalar(s: Tensor) -> Tensor:
    """s : Tensor, shape (...,) -> multivector (..., 16) with only the e0123 blade."""
    out = _new(s, s.shape)
    out[..., BLADE["e0123"]] = s
    return out


def extract_pseudoscalar(mv: Tensor) -> Tensor:
    """e0123 component, shape (...,)."""
    _check_mv(mv)
    return mv[..., BLADE["e0123"]]


def embed_point(x: Tensor) -> Tensor:
    """x : Tensor, shape (..., 3) -> the point trivector (..., 16) with ``e123 = 1``."""
    _check3(x, "x")
    out = _new(x, x.shape[:-1])
    out[..., BLADE["e123"]] = 1
    out[..., _POINT] = x * x.new_tensor(_POINT_SIGN)
    return out


def extract_point(mv: Tensor, threshold: float = 1e-3) -> Tensor:
    """The point (..., 3) of the trivector part of ``mv`` (..., 16): homogeneous coordinates
    divided by the e123 component, whose magnitude is clamped to ``threshold`` (sign kept)."""
    _check_mv(mv)
    w = mv[..., BLADE["e123"]:BLADE["e123"] + 1]
    w = torch.where(w < 0, -1.0, 1.0).to(w.dtype) * w.abs().clamp(min=threshold)
    return mv[..., _POINT] * mv.new_tensor(_POINT_SIGN) / w


def embed_direction(v: Tensor) -> Tensor:
    """v : Tensor, shape (..., 3) -> ideal line ``v_i e0i`` (..., 16); rotates, never
    translates."""
    _check3(v, "v")
    out = _new(v, v.shape[:-1])
    out[..., _IDEAL] = v
    return out


def extract_direction(mv: Tensor) -> Tensor:
    """The e01, e02, e03 components as a vector (..., 3)."""
    _check_mv(mv)
    return mv[..., _IDEAL]


def embed_plane(normal: Tensor, offset: Tensor) -> Tensor:
    """The plane ``normal . x + offset = 0``: normal (..., 3), offset (...,) -> (..., 16)."""
    _check3(normal, "normal")
    out = _new(normal, normal.shape[:-1])
    out[..., _VEC] = normal
    out[..., BLADE["e0"]] = offset
    return out


def extract_plane(mv: Tensor) -> tuple[Tensor, Tensor]:
    """``(normal (..., 3), offset (...,))`` of the grade-1 part of ``mv``."""
    _check_mv(mv)
    return mv[..., _VEC], mv[..., BLADE["e0"]]


def embed_line(point: Tensor, direction: Tensor) -> Tensor:
    """The line through ``point`` (..., 3) along ``direction`` (..., 3): the join of the points
    ``point`` and ``point + direction``, a bivector (..., 16)."""
    _check3(point, "point")
    _check3(direction, "direction")
    return join(embed_point(point), embed_point(point + direction))


def extract_line(mv: Tensor) -> tuple[Tensor, Tensor]:
    """``(direction, moment)`` of the bivector part, each (..., 3), with ``moment = p x
    direction`` for any point p on the line (the inverse of :func:`embed_line`)."""
    _check_mv(mv)
    direction = mv[..., _ROT] * mv.new_tensor((1.0, -1.0, 1.0))
    return direction, mv[..., _IDEAL]


def embed_translation(t: Tensor) -> Tensor:
    """The translator of ``t`` (..., 3): ``1 - t_i e0i / 2`` (..., 16)."""
    _check3(t, "t")
    return translator(t)


def extract_translation(mv: Tensor) -> Tensor:
    """The translation vector (..., 3) of a translator (normalised by its scalar part)."""
    _check_mv(mv)
    return -2 * mv[..., _IDEAL] / mv[..., BLADE["1"]:BLADE["1"] + 1]


def embed_rotation(q: Tensor) -> Tensor:
    """The rotor of the unit quaternion ``q = (w, x, y, z)`` (..., 4) -> (..., 16)."""
    _check3(q, "q", 4)
    return rotor(q)


def extract_rotation(mv: Tensor) -> Tensor:
    """The unit quaternion ``(w, x, y, z)`` (..., 4) of a rotor."""
    _check_mv(mv)
    q = torch.cat([mv[..., BLADE["1"]:BLADE["1"] + 1],
                   mv[..., _ROT] * mv.new_tensor((-1.0, 1.0, -1.0))], dim=-1)
    return q / q.norm(dim=-1, keepdim=True)


def embed_reflection(normal: Tensor, offset: Tensor) -> Tensor:
    """The versor of the reflection in the plane ``normal . x + offset = 0`` (unit-normalised
    plane vector), (..., 16)."""
    plane = embed_plane(normal, offset)
    return plane / normal.norm(dim=-1, keepdim=True)


def extract_reflection(mv: Tensor) -> tuple[Tensor, Tensor]:
    """``(unit normal (..., 3), offset (...,))`` of a reflection versor."""
    normal, offset = extract_plane(mv)
    scale = normal.norm(dim=-1)
    return normal / scale[..., None], offset / scale
