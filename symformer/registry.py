"""Registry of models and layers by stable name.

Every registered entry declares its symmetry group, its input and output field types (see
:mod:`symformer.groups.types`) and how to build example inputs, so that generic tests, the
``symformer check`` command and checkpoint loading drive every model alike::

    @register("egnn", group=lambda: E3() * Symmetric(5),
              in_types={"pos": "node:point", ...}, out_types="node:point",
              example_inputs=_example, description="E(n)-equivariant GNN")
    class EGNN(nn.Module): ...

    model = symformer.models.create("egnn", hidden=64)
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

import torch
from torch import nn

__all__ = ["ModelSpec", "register", "unregister", "create", "available", "spec", "config_of"]

_REGISTRY: dict[str, "ModelSpec"] = {}
_CONFIG_ATTR = "_symformer_config"


@dataclass(frozen=True)
class ModelSpec:
    """What the library knows about a registered model or layer.

    Attributes
    ----------
    name : str
        Stable registry name (checkpoints refer to it).
    factory : callable
        The class (or function) building the module from keyword-only config.
    group : callable
        Zero-argument (or ``config -> Group``) factory of the declared symmetry group.
    in_types, out_types :
        Field types of the forward's keyword inputs and of its output(s).
    example_inputs : callable
        ``(module, generator, dtype) -> dict`` of keyword inputs for ``forward``.
    kind : str
        ``"model"`` or ``"layer"``.
    float32_tolerance : float or None
        Relative equivariance tolerance of the float32 check, where the default (1e-5) is too
        tight for reasons of round-off the entry documents; None for the default.
    """

    name: str
    factory: Callable[..., nn.Module]
    group: Callable[..., Any]
    in_types: Mapping[str, Any]
    out_types: Any
    example_inputs: Callable[[nn.Module, torch.Generator, torch.dtype], dict]
    description: str = ""
    kind: str = "model"
    tags: tuple[str, ...] = field(default_factory=tuple)
    float32_tolerance: float | None = None

    def make_group(self, module: nn.Module | None = None):
        params = inspect.signature(self.group).parameters
        return self.group(module) if params else self.group()


def register(name: str, *, group: Callable[..., Any], in_types: Mapping[str, Any], out_types: Any,
             example_inputs: Callable, description: str = "", kind: str = "model",
             tags: tuple[str, ...] = (), float32_tolerance: float | None = None) -> Callable:
    """Class decorator registering a model or layer under ``name`` (see :class:`ModelSpec`)."""
    if float32_tolerance is not None and not 0 < float32_tolerance < 1:
        raise ValueError(f"float32_tolerance: expected a number in (0, 1), got "
                         f"{float32_tolerance!r}")

    def deco(factory):
        if name in _REGISTRY and _REGISTRY[name].factory is not factory:
            raise ValueError(f"a model named {name!r} is already registered")
        _REGISTRY[name] = ModelSpec(name, factory, group, dict(in_types), out_types,
                                    example_inputs, description or (factory.__doc__ or "").strip()
                                    .split("\n")[0], kind, tuple(tags), float32_tolerance)
        return factory

    return deco


def unregister(name: str) -> None:
    """Remove ``name`` from the registry (e.g. a model registered only for a test)."""
    _REGISTRY.pop(name, None)


def _ensure_loaded() -> None:
    # Importing the package registers the built-in models and layers.
    import symformer.layers  # noqa: F401
    import symformer.models  # noqa: F401


def available(kind: str | None = None) -> list[str]:
    """Names of registered entries, optionally only ``kind="model"`` or ``kind="layer"``."""
    _ensure_loaded()
    return sorted(n for n, s in _REGISTRY.items() if kind is None or s.kind == kind)


def spec(name: str) -> ModelSpec:
    """The :class:`ModelSpec` registered under ``name``."""
    _ensure_loaded()
    if name not in _REGISTRY:
        raise ValueError(f"unknown model {name!r}; available: {', '.join(available())}")
    return _REGISTRY[name]


def create(name: str, **config: Any) -> nn.Module:
    """Build the registered model ``name`` from keyword config.

    Unknown config keys raise ``TypeError`` naming the key (nothing is silently swallowed). The
    config is remembered on the module so that checkpoints can rebuild it.
    """
    s = spec(name)
    sig = inspect.signature(s.factory)
    accepts_any = any(p.kind is p.VAR_KEYWORD for p in sig.parameters.values())
    unknown = [k for k in config if k not in sig.parameters and not accepts_any]
    if unknown:
        allowed = [p for p in sig.parameters if p != "self"]
        raise TypeError(f"{name}: unknown config key(s) {unknown}; allowed: {allowed}")
    module = s.factory(**config)
    object.__setattr__(module, _CONFIG_ATTR, {"name": name, "config": dict(config)})
    return module


def config_of(module: nn.Module) -> dict:
    """``{"name": ..., "config": {...}}`` of a module built by :func:`create`."""
    cfg = getattr(module, _CONFIG_ATTR, None)
    if cfg is None:
        raise ValueError("module was not built by symformer.models.create; its config is unknown")
    return cfg
