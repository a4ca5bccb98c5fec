"""Reading the packaged data sets' npz files with errors that name the file and the key."""

from __future__ import annotations

from pathlib import Path

import numpy as np

__all__ = ["read_npz"]


def read_npz(path: Path, keys: tuple[str, ...], optional: tuple[str, ...] = ()) -> dict:
    """The arrays ``keys`` (all required) and those of ``optional`` that the file holds.

    Raises ValueError naming ``path`` when the file is not a readable npz or lacks a key of
    ``keys`` (the first missing one is named, with the keys the file has).
    """
    try:
        data = np.load(path)
    except Exception as e:
        raise ValueError(f"{str(path)!r}: not a readable npz file ({e})") from e
    with data:
        missing = [k for k in keys if k not in data.files]
        if missing:
            raise ValueError(f"{str(path)!r}: key {missing[0]!r}: missing (has {data.files})")
        return {k: np.asarray(data[k]) for k in (*keys, *optional) if k in data.files}
