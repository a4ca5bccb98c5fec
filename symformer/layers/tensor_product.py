"""``EquivariantTensorProduct``: a module over :func:`symformer.primitives.tp.tensor_product`.

It owns the weights of ``weight_mode="internal"`` specs (initialised like e3nn: standard
normal, the spec's normalisation keeps outputs at unit variance) and takes per-sample weights as
a forward argument for ``"external"`` specs. The spec is given directly, or built from JSON-able
keyword config (irreps strings and a ``connection``) so that the registry and checkpoints can
rebuild it.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ..primitives.tp import TensorProductSpec, available_backends, gaunt_spec, tensor_product
from ..primitives.tp.dispatch import BACKENDS
from ..registry import register

__all__ = ["EquivariantTensorProduct"]

CONNECTIONS = ("fully_connected", "channelwise", "gaunt")


def _o3_nodes(module):
    from ..groups import O3, Symmetric
    return O3() * Symmetric(5)


def _example(module, generator: torch.Generator, dtype: torch.dtype) -> dict:
    s = module.spec
    out = {"x": torch.randn(5, s.irreps_in1.dim, generator=generator, dtype=dtype),
           "y": torch.randn(5, s.irreps_in2.dim, generator=generator, dtype=dtype)}
    if s.weight_mode == "external":
        out["weights"] = torch.randn(5, s.weight_numel, generator=generator, dtype=dtype)
    return out


_IN1, _IN2, _OUT = "3x0e+2x1o+2x2e", "1x0e+1x1o+1x2e", "2x0e+2x1o+1x1e+2x2e"


@register("equivariant_tensor_product", kind="layer", group=_o3_nodes,
          in_types={"x": f"node:{_IN1}", "y": f"node:{_IN2}"}, out_types=f"node:{_OUT}",
          example_inputs=_example,
          description="tensor product of two irreps features (spec + pluggable backend)")
class EquivariantTensorProduct(nn.Module):
    """Tensor product ``x (x) y`` described by a :class:`TensorProductSpec`.

    Parameters
    ----------
    spec : TensorProductSpec, optional
        What to compute. When omitted it is built from the keyword config below.
    backend : str
        ``"auto"`` or a backend in ``available_backends(spec)``; checked at construction.
    irreps_in1, irreps_in2, irreps_out : str
        Irreps of x, y and the output (used when ``spec`` is None).
    connection : {"fully_connected", "channelwise", "gaunt"}
        ``TensorProductSpec.fully_connected`` (uvw), ``.channelwise`` (uvu) or
        ``gaunt_spec`` (needs uniform irreps; no weights).
    weight_mode : {"internal", "external"}
    rank : int, optional
        CP rank for ``backend="cp"``.
    """

    def __init__(self, spec: TensorProductSpec | None = None, *, backend: str = "auto",
                 irreps_in1: str = _IN1, irreps_in2: str = _IN2, irreps_out: str = _OUT,
                 connection: str = "fully_connected", weight_mode: str = "internal",
                 rank: int | None = None):
        super().__init__()
        if spec is None:
            spec = self._build(irreps_in1, irreps_in2, irreps_out, connection, weight_mode)
        elif not isinstance(spec, TensorProductSpec):
            raise TypeError(f"spec must be a TensorProductSpec, got {type(spec).__name__}")
        if backend != "auto" and backend not in available_backends(spec):
            raise ValueError(f"backend {backend!r} does not apply to {spec}; available: "
                             f"{available_backends(spec)} (all: {BACKENDS})")
        self.spec, self.backend, self.rank = spec, backend, rank
        self.irreps_in1, self.irreps_in2, self.irreps_out = (spec.irreps_in1, spec.irreps_in2,
                                                             spec.irreps_out)
        if spec.weight_mode == "internal" and spec.weight_numel:
            self.weight = nn.Parameter(torch.randn(spec.weight_numel))
        else:
            self.register_parameter("weight", None)

    @staticmethod
    def _build(in1: str, in2: str, out: str, connection: str, weight_mode: str):
        if connection == "fully_connected":
            return TensorProductSpec.fully_connected(in1, in2, out, weight_mode=weight_mode)
        if connection == "channelwise":
            return TensorProductSpec.channelwise(in1, in2, out, weight_mode=weight_mode)
        if connection == "gaunt":
            from ..reps.layout import uniform_shape
            (l1, c), (l2, c2), (lo, _) = (uniform_shape(i) for i in (in1, in2, out))
            return gaunt_spec(l1, l2, lo, c, channels_y=c2)
        raise ValueError(f"connection must be one of {CONNECTIONS}, got {connection!r}")

    def forward(self, x: Tensor, y: Tensor | None = None, weights: Tensor | None = None,
                edge_vec: Tensor | None = None) -> Tensor:
        """x : (..., irreps_in1.dim); y : (..., irreps_in2.dim) (may be None with ``edge_vec``
        for the so2 backend); weights : (..., weight_numel) for external specs.
        Returns (..., irreps_out.dim)."""
        if self.spec.weight_mode == "internal":
            if weights is not None:
                raise ValueError("weights: this layer owns its weights (weight_mode='internal')")
            weights = self.weight
        return tensor_product(x, y, self.spec, weights, self.backend, edge_vec=edge_vec,
                              rank=self.rank)

    def extra_repr(self) -> str:
        return f"{self.spec}, backend={self.backend!r}"
