"""MNIST-format (idx) readers: MNIST and Fashion-MNIST.

Both datasets ship as four gzipped (or plain) idx files with the same names::

    train-images-idx3-ubyte(.gz)  train-labels-idx1-ubyte(.gz)
    t10k-images-idx3-ubyte(.gz)   t10k-labels-idx1-ubyte(.gz)

so one reader serves both; only the folder differs. The folder is the ``root`` argument or,
when it is ``None``, the environment variable ``SYMFORMER_MNIST`` (``SYMFORMER_FASHION_MNIST``
for Fashion-MNIST; Debian's ``dataset-fashion-mnist`` package folder is tried last).
"""

from __future__ import annotations

import gzip
import os
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

__all__ = ["read_idx", "load_mnist", "mnist_root", "DATASETS"]

#: Dataset name -> (environment variable, fallback folders).
DATASETS = {
    "mnist": ("SYMFORMER_MNIST", ()),
    "fashion_mnist": ("SYMFORMER_FASHION_MNIST", ("/usr/share/dataset-fashion-mnist",
                                                  "/usr/share/fashion-mnist")),
}
_FILES = {"train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
          "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")}
# idx type codes -> numpy dtypes (big-endian on disk).
_IDX_DTYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def read_idx(path: str | os.PathLike) -> Tensor:
    """Read one idx file (gzipped when the name ends in ``.gz``) into a tensor.

    Returns
    -------
    Tensor
        uint8 images ``(N, H, W)`` or labels ``(N,)`` (other idx types keep their kind).

    Raises
    ------
    FileNotFoundError, ValueError
        Missing file; bad magic number, unknown type code, or a size that does not match the
        header (each message names the file).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"idx file {str(path)!r} does not exist")
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as f:
            raw = f.read()
    except OSError as e:
        raise ValueError(f"idx file {str(path)!r} could not be read: {e}") from e
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0:
        raise ValueError(f"{str(path)!r} is not an idx file (bad magic number)")
    code, ndim = raw[2], raw[3]
    if code not in _IDX_DTYPES:
        raise ValueError(f"{str(path)!r}: unknown idx type code 0x{code:02x}")
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise ValueError(f"{str(path)!r}: truncated idx header")
    shape = tuple(int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim))
    dtype = np.dtype(_IDX_DTYPES[code])
    expected = int(np.prod(shape)) * dtype.itemsize
    if len(raw) - header != expected:
        raise ValueError(f"{str(path)!r}: header says shape {shape} ({expected} bytes) but the "
                         f"file holds {len(raw) - header} bytes of data")
    arr = np.frombuffer(raw, dtype=dtype, offset=header).reshape(shape)
    return torch.from_numpy(arr.astype(arr.dtype.newbyteorder("="), copy=True))


def mnist_root(dataset: str = "mnist", root: str | os.PathLike | None = None) -> Path:
    """The folder holding ``dataset``'s idx files (see the module docstring)."""
    if dataset not in DATASETS:
        raise ValueError(f"dataset must be one of {sorted(DATASETS)}, got {dataset!r}")
    env, fallbacks = DATASETS[dataset]
    if root is not None:
        candidates = [Path(root)]
    else:
        candidates = [Path(p) for p in ([os.environ[env]] if os.environ.get(env) else [])]
        candidates += [Path(p) for p in fallbacks]
    for c in candidates:
        if c.is_dir():
            return c
    where = f"root={str(root)!r}" if root is not None else f"${env} and {list(fallbacks)}"
    raise FileNotFoundError(f"no {dataset} folder found ({where}); pass root= or set ${env}")


def _find(folder: Path, stem: str) -> Path:
    for name in (stem + ".gz", stem):
        if (folder / name).is_file():
            return folder / name
    raise FileNotFoundError(f"{str(folder / stem)!r}(.gz) does not exist")


def load_mnist(split: str = "train", *, dataset: str = "mnist",
               root: str | os.PathLike | None = None) -> tuple[Tensor, Tensor]:
    """Images and labels of one split.

    Parameters
    ----------
    split : {"train", "test"}
    dataset : {"mnist", "fashion_mnist"}
    root : path, optional
        Folder of the idx files (default: see the module docstring).

    Returns
    -------
    images : Tensor, shape (N, 28, 28), uint8 in [0, 255]
    labels : Tensor, shape (N,), int64 in [0, 9]
    """
    if split not in _FILES:
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    folder = mnist_root(dataset, root)
    img_path, lab_path = (_find(folder, s) for s in _FILES[split])
    images, labels = read_idx(img_path), read_idx(lab_path)
    if images.ndim != 3:
        raise ValueError(f"{str(img_path)!r}: expected images (N, H, W), got {tuple(images.shape)}")
    if labels.ndim != 1 or len(labels) != len(images):
        raise ValueError(f"{str(lab_path)!r}: expected {len(images)} labels, got shape "
                         f"{tuple(labels.shape)}")
    return images, labels.long()
