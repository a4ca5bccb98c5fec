"""One entry point for every tensor-product backend.

``tensor_product(x, y, spec, weights, backend="auto")`` checks shapes against the spec,
broadcasts the leading axes, and runs the chosen backend on ``mul_ir`` features:

============ ============================================= =====================================
backend      applies to                                    relation to the ``cg`` product
============ ============================================= =====================================
``cg``       every spec                                    the reference (e3nn semantics)
``so2``      channel-wise edge messages (``uvu``, y = edge identical when ``y`` is the edge
             harmonics ``1x0e+1x1o+...``)                  harmonics (or ``edge_vec`` is given)
``grid``     Gaunt specs (:func:`.grid.gaunt_spec`)        identical (exact quadrature)
``gaunt``    Gaunt specs                                   identical (FFT in a 2D Fourier basis)
``cp``       channel-wise specs on uniform irreps          exact at the default rank, an
                                                           approximation below it
============ ============================================= =====================================

``"auto"`` picks the fastest exact backend that applies (see ``benchmarks/results/
tensor_product.md``): ``so2`` when ``edge_vec`` is given and ``L1 >= 3``, ``grid`` for Gaunt
specs, otherwise ``cg``. ``cp`` is never chosen automatically.
"""

from __future__ import annotations

from torch import Tensor

from symformer._cache import tensor_cache

from ._uniform import uniform_shape_of
from .cg import broadcast_lead, cg_tensor_product_spec, flatten_lead
from .cp import cp_available, cp_tensor_product
from .gaunt import gaunt_available, gaunt_tensor_product
from .grid import grid_available, grid_tensor_product
from .so2 import so2_available, so2_tensor_product
from .spec import TensorProductSpec

__all__ = ["BACKENDS", "available_backends", "choose_backend", "tensor_product"]

BACKENDS = ("cg", "so2", "grid", "gaunt", "cp")


@tensor_cache
def _available(spec: TensorProductSpec) -> tuple[str, ...]:
    checks = {"cg": True, "so2": so2_available(spec), "grid": grid_available(spec),
              "gaunt": gaunt_available(spec), "cp": cp_available(spec)}
    return tuple(b for b in BACKENDS if checks[b])


def available_backends(spec: TensorProductSpec) -> list[str]:
    """Backends that can run ``spec`` (``cg`` always; see the module table)."""
    if not isinstance(spec, TensorProductSpec):
        raise TypeError(f"spec must be a TensorProductSpec, got {type(spec).__name__}")
    return list(_available(spec))


def choose_backend(spec: TensorProductSpec, has_edge_vec: bool = False) -> str:
    """The backend ``"auto"`` uses: ``so2`` for edge messages of degree >= 2 given their edge
    vectors (faster than ``cg`` from L = 2 on in the benchmark), ``grid`` for Gaunt specs."""
    avail = available_backends(spec)
    if has_edge_vec and "so2" in avail and uniform_shape_of(spec).L1 >= 2:
        return "so2"
    return "grid" if "grid" in avail else "cg"


def _check(name: str, t: Tensor | None, last: int) -> None:
    if t is None:
        return
    if not isinstance(t, Tensor):
        raise TypeError(f"{name} must be a tensor, got {type(t).__name__}")
    if t.dim() < 1 or t.shape[-1] != last:
        raise ValueError(f"{name} must have shape (..., {last}), got {tuple(t.shape)}")


def tensor_product(x: Tensor, y: Tensor | None, spec: TensorProductSpec,
                   weights: Tensor | None = None, backend: str = "auto", *,
                   edge_vec: Tensor | None = None, rank: int | None = None) -> Tensor:
    """The product described by ``spec``.

    Parameters
    ----------
    x : Tensor, shape (..., irreps_in1.dim)
    y : Tensor, shape (..., irreps_in2.dim)
        May be None for ``so2`` when ``edge_vec`` is given.
    spec : TensorProductSpec
    weights : Tensor, optional
        Shape (weight_numel,) for ``weight_mode="internal"``, (..., weight_numel) for
        ``"external"``; required when ``spec.weight_numel > 0``.
    backend : str
        ``"auto"`` or one of :data:`BACKENDS` that applies to ``spec``.
    edge_vec : Tensor, shape (..., 3), optional
        Edge vectors whose harmonics ``y`` are (``so2``; lets ``auto`` choose it).
    rank : int, optional
        Per-path CP rank (``cp`` only; default exact).

    Returns
    -------
    Tensor, shape (..., irreps_out.dim)
    """
    if not isinstance(spec, TensorProductSpec):
        raise TypeError(f"spec must be a TensorProductSpec, got {type(spec).__name__}")
    if backend == "auto":
        backend = choose_backend(spec, edge_vec is not None)
    elif backend not in BACKENDS:
        raise ValueError(f"backend must be 'auto' or one of {BACKENDS}, got {backend!r}")
    elif backend not in available_backends(spec):
        raise ValueError(f"backend {backend!r} does not apply to {spec}; available: "
                         f"{available_backends(spec)}")
    _check("x", x, spec.irreps_in1.dim)
    _check("y", y, spec.irreps_in2.dim)
    _check("edge_vec", edge_vec, 3)
    if y is None and not (backend == "so2" and edge_vec is not None):
        raise ValueError("y is required (only the so2 backend with edge_vec can do without)")
    if spec.weight_numel and weights is None:
        raise ValueError(f"weights are required: spec has weight_numel={spec.weight_numel}")
    if weights is not None:
        _check("weights", weights, spec.weight_numel)
        if spec.weight_mode == "internal" and weights.dim() != 1:
            raise ValueError(f"weights must have shape ({spec.weight_numel},) for "
                             f"weight_mode='internal', got {tuple(weights.shape)}")
    lead = [x.shape[:-1]] + [t.shape[:-1] for t in (y, edge_vec) if t is not None]
    if weights is not None and weights.dim() > 1:
        lead.append(weights.shape[:-1])
    batch = broadcast_lead(lead)

    def flat(t: Tensor | None) -> Tensor | None:
        return None if t is None else flatten_lead(t, batch)

    x, y, edge_vec = flat(x), flat(y), flat(edge_vec)
    if weights is not None and weights.dim() > 1:
        weights = flat(weights)
    if backend == "cg":
        out = cg_tensor_product_spec(x, y, spec, weights)
    elif backend == "so2":
        out = so2_tensor_product(x, y, spec, weights, edge_vec)
    elif backend == "grid":
        out = grid_tensor_product(x, y, spec)
    elif backend == "gaunt":
        out = gaunt_tensor_product(x, y, spec)
    else:
        out = cp_tensor_product(x, y, spec, weights, rank)
    return out.reshape(*batch, spec.irreps_out.dim)
