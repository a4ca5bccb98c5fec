"""The config a run folder was started with, and what a resumed run may change.

Every run writes its resolved config to ``<out>/config.yaml`` (atomically). ``--resume`` then
continues with that config: the command line only needs the run folder, and an option given
again must keep its value, except the few in :data:`RESUMABLE` (more epochs, another time limit,
other devices). A changed learning rate or model width would otherwise mix two trainings in one
folder without a word, or fail much later when the weights no longer fit.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

from .._io import atomic_write

__all__ = ["RUN_CONFIG", "RESUMABLE", "save_run_config", "stored_config", "resume_config_file",
           "check_resume", "check_unchanged"]

RUN_CONFIG = "config.yaml"
#: Keys a resumed run may change: how long and where it trains, not what it trains.
RESUMABLE = frozenset({"epochs", "time_limit_min", "max_minutes", "progress_bar", "progress",
                       "accelerator", "device", "devices", "strategy", "num_workers",
                       "eval_batch_size", "n_test", "channels_last"})


def _plain(config: dict) -> dict:
    # Through JSON: tuples become lists, so a stored config compares equal to a fresh one.
    return json.loads(json.dumps(config))


def save_run_config(out: str | Path, config: dict) -> Path:
    """Write ``config`` to ``out/config.yaml`` atomically (a temporary file, then a rename)."""
    text = yaml.safe_dump(_plain(config), sort_keys=False).encode()
    return atomic_write(Path(out) / RUN_CONFIG, lambda f: f.write(text))


def stored_config(out: str | Path) -> dict | None:
    """The config ``out`` was started with, or None for a run folder without one (runs from
    before run folders kept their config)."""
    path = Path(out) / RUN_CONFIG
    if not path.is_file():
        return None
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as err:
        raise ValueError(f"{RUN_CONFIG}: {str(path)!r} is not valid YAML ({err})") from None
    if not isinstance(data, dict):
        raise ValueError(f"{RUN_CONFIG}: {str(path)!r} must hold a mapping, got "
                         f"{type(data).__name__}")
    return data


def resume_config_file(out: str | Path, task: str) -> Path | None:
    """For ``--resume`` without ``--config``: the stored config to resolve the command line's
    options over, or None when the folder has none. A run of another task is an error."""
    stored = stored_config(out)
    if stored is None:
        return None
    if stored.get("task") != task:
        raise ValueError(f"task: {str(out)!r} holds a {stored.get('task')!r} run, not {task!r}")
    return Path(out) / RUN_CONFIG


def _flat(config: dict) -> dict[str, Any]:
    flat = {k: v for k, v in config.items() if k != "model"}
    flat.update({f"model.{k}": v for k, v in (config.get("model") or {}).items()})
    return flat


def check_resume(out: str | Path, config: dict) -> None:
    """Raise ValueError naming every key, other than :data:`RESUMABLE`, in which ``config``
    differs from the config ``out`` was started with (nothing to check without one)."""
    stored = stored_config(out)
    if stored is not None:
        check_unchanged(stored, config, repr(str(Path(out) / RUN_CONFIG)))


def check_unchanged(stored: dict, config: dict, source: str) -> None:
    """Raise ValueError naming every key, other than :data:`RESUMABLE`, in which ``config``
    differs from ``stored``, the config of the run that ``source`` (for the message) holds."""
    old, new = _flat(_plain(stored)), _flat(_plain(config))
    changed = [k for k in sorted(set(old) | set(new))
               if k not in RESUMABLE and old.get(k) != new.get(k)]
    if changed:
        diffs = "; ".join(f"{k}: {old.get(k)!r} in the run, {new.get(k)!r} now" for k in changed)
        raise ValueError(f"--resume: {source} was started with another config ({diffs}). A "
                         f"resumed run keeps its config except {', '.join(sorted(RESUMABLE))}; "
                         "start a new --out to change it")
