"""Training configuration: task defaults, per-model YAML files and command-line overrides.

A configuration is a flat dict of training settings plus ``model`` (keyword config passed to
:func:`symformer.models.create`). It is assembled in three layers, later ones winning::

    DEFAULTS  <-  symformer/train/configs/<task>/<model>.yaml (or --config FILE)  <-  overrides

Overrides come from the command line as ``--lr 1e-3``, ``--batch-size 50``, ``--model.hidden 64``
or ``--set key=value``. Every key is checked: an unknown training key or a key the model's
constructor does not accept raises ``ValueError`` naming it.
"""

from __future__ import annotations

import copy
import inspect
from importlib import resources
from pathlib import Path
from typing import Any, Iterable

__all__ = ["DEFAULTS", "TASKS", "default_config_path", "load_config", "parse_overrides",
           "apply_overrides", "resolve_config"]

#: n-body style tasks: the charged 5-body benchmark of EGNN and GATr's gravity benchmark (same
#: settings, packaged configs under ``configs/<task>/``)
TASKS = ("nbody", "gravity")

DEFAULTS: dict[str, Any] = {
    "task": "nbody",
    "model_name": None,        # registered model name (symformer.models.available())
    "model": {},               # keyword config for symformer.models.create
    "epochs": 100,
    "batch_size": 100,
    "n_train": 3000,
    "n_val": 2000,
    "n_test": 2000,
    "optimizer": "adam",       # adam | adamw
    "lr": 5e-4,
    "weight_decay": 1e-12,
    "scheduler": "none",       # none | cosine (with linear warmup)
    "warmup_epochs": 0,
    "loss": "mse",             # mse | l1 | huber (the reported metric is always MSE)
    "grad_clip": None,         # max gradient norm, None = no clipping
    "ema_decay": None,         # e.g. 0.999: validate, test and export an EMA of the weights
    "augment_rotations": False,  # random rotations of training systems (non-equivariant models)
    "dtype": "float32",        # float32 | float64
    "precision": None,         # Lightning precision; None = from dtype
    "seed": 0,
    "deterministic": "warn",   # True | False | "warn" (deterministic where torch can be)
    "accelerator": "auto",
    "devices": "auto",
    "strategy": "auto",
    "num_workers": 0,
    "progress_bar": True,
    "equivariance_systems": 4,   # test systems used for the equivariance error in metrics.json
    "trajectory_systems": 3,     # test systems drawn in trajectory.png
}

_CHOICES = {"task": TASKS, "optimizer": ("adam", "adamw"), "scheduler": ("none", "cosine"),
            "loss": ("mse", "l1", "huber"), "dtype": ("float32", "float64"),
            "deterministic": (True, False, "warn")}


def default_config_path(task: str, model_name: str) -> Path | None:
    """The packaged YAML for ``model_name`` on ``task``, or ``None`` when there is none."""
    path = resources.files("symformer.train") / "configs" / task / f"{model_name}.yaml"
    return Path(str(path)) if path.is_file() else None


def _read_yaml(path: str | Path) -> dict:
    import yaml

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"config file {str(path)!r} does not exist")
    data = yaml.safe_load(path.read_text()) or {}
    if not isinstance(data, dict):
        raise ValueError(f"config file {str(path)!r} must hold a mapping, got {type(data).__name__}")
    return data


def _parse_value(text: str) -> Any:
    """A command-line string as YAML (``1e-3`` -> float, ``true`` -> bool, ``null`` -> None)."""
    import yaml

    try:
        value = yaml.safe_load(text)
    except yaml.YAMLError:
        return text
    if isinstance(value, str):
        try:  # YAML 1.1 reads "1e-3" as a string
            return float(value)
        except ValueError:
            return value
    return value


def parse_overrides(args: Iterable[str]) -> dict[str, Any]:
    """``["--lr", "1e-3", "--model.hidden=64", "--augment-rotations"]`` -> ``{"lr": 0.001, ...}``.

    Also accepts bare ``key=value`` items (from ``--set``). Dashes in keys become underscores; a
    flag without a value means ``true``.
    """
    args = list(args)
    out: dict[str, Any] = {}
    i = 0
    while i < len(args):
        item = args[i]
        if item.startswith("--"):
            key, eq, value = item[2:].partition("=")
            if not eq:
                if i + 1 < len(args) and not args[i + 1].startswith("--"):
                    value, i = args[i + 1], i + 1
                else:
                    value = "true"
        elif "=" in item:
            key, _, value = item.partition("=")
        else:
            raise ValueError(f"override {item!r} is not of the form --key value or key=value")
        if not key:
            raise ValueError(f"override {item!r} has an empty key")
        out[key.replace("-", "_")] = _parse_value(value)
        i += 1
    return out


def _coerce(key: str, value: Any, default: Any) -> Any:
    # Keep the type of a known default so that "--epochs 10" stays an int and "--lr 1" a float.
    if default is None or value is None:
        return value
    if isinstance(default, bool):
        if isinstance(value, bool):
            return value
        raise ValueError(f"config key {key!r} expects true or false, got {value!r}")
    if isinstance(default, float) and isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if isinstance(default, int) and isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(default, (int, float)) and not isinstance(value, type(default)):
        raise ValueError(f"config key {key!r} expects a number, got {value!r}")
    return value


def _model_params(model_name: str) -> dict[str, inspect.Parameter] | None:
    from ..models import spec

    params = dict(inspect.signature(spec(model_name).factory).parameters)
    params.pop("self", None)
    if any(p.kind is p.VAR_KEYWORD for p in params.values()):
        return None  # accepts anything
    return params


def apply_overrides(config: dict, overrides: dict[str, Any]) -> dict:
    """A copy of ``config`` with ``overrides`` (``"model.hidden"`` addresses model keys)."""
    config = copy.deepcopy(config)
    model_params = _model_params(config["model_name"]) if config.get("model_name") else None
    for key, value in overrides.items():
        if key == "model" and isinstance(value, dict):
            for k, v in value.items():
                config = apply_overrides(config, {f"model.{k}": v})
            continue
        if key.startswith("model."):
            sub = key[len("model."):]
            if model_params is not None:
                if sub not in model_params:
                    raise ValueError(f"unknown model config key {sub!r} for model "
                                     f"{config['model_name']!r}; allowed: {sorted(model_params)}")
                default = model_params[sub].default
                value = _coerce(key, value, None if default is inspect.Parameter.empty else default)
            config["model"][sub] = value
            continue
        if key not in DEFAULTS:
            raise ValueError(f"unknown config key {key!r}; known keys: {', '.join(sorted(DEFAULTS))}")
        value = _coerce(key, value, DEFAULTS[key])
        if key in _CHOICES and value not in _CHOICES[key]:
            raise ValueError(f"config key {key!r} must be one of {_CHOICES[key]}, got {value!r}")
        config[key] = value
    return config


def load_config(path: str | Path) -> dict:
    """Read a YAML config file into a flat override dict (``model:`` may be a nested mapping)."""
    return _read_yaml(path)


def resolve_config(task: str, model_name: str, *, config_file: str | Path | None = None,
                   overrides: dict[str, Any] | None = None) -> dict:
    """The full, checked configuration of a run.

    Parameters
    ----------
    task : str
        One of :data:`TASKS`.
    model_name : str
        A registered model name.
    config_file : path, optional
        YAML file used instead of the packaged ``configs/<task>/<model_name>.yaml``.
    overrides : dict, optional
        Final overrides, e.g. from :func:`parse_overrides`.
    """
    if task not in TASKS:
        raise ValueError(f"unknown task {task!r}; available: {', '.join(TASKS)}")
    from ..models import spec

    spec(model_name)  # unknown model -> ValueError naming it
    config = apply_overrides(DEFAULTS, {"task": task})
    config["model_name"] = model_name
    path = config_file if config_file is not None else default_config_path(task, model_name)
    if path is not None:
        file_cfg = _read_yaml(path)
        if "model_name" in file_cfg and file_cfg["model_name"] != model_name:
            raise ValueError(f"config file {str(path)!r} is for model {file_cfg['model_name']!r}, "
                             f"not {model_name!r}")
        file_cfg.pop("model_name", None)
        config = apply_overrides(config, file_cfg)
    config = apply_overrides(config, dict(overrides or {}))
    if config["model_name"] != model_name:
        raise ValueError("the model is chosen with --model, not with a model_name override")
    if config["task"] != task:
        raise ValueError(f"task: the config sets {config['task']!r} but the run is for {task!r}; "
                         "the task is chosen by the command, not by a config key")
    return config
