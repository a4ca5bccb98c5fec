"""The charged-particle N-body task (EGNN protocol) and the gravity task of the GATr benchmark
as Lightning data modules.

Splits come from :func:`symformer.data.nbody.load_split` (3000 / 2000 / 2000 systems by default)
and are collated into flat graph batches (:func:`symformer.data.nbody.to_graph_batch`) plus the
``target`` positions. Shuffling is seeded per epoch and random rotations (``augment_rotations``)
are seeded per optimisation step, so a resumed run sees exactly the batches of an uninterrupted
one.

Gravity (:class:`GravityDataModule`, :mod:`symformer.data.gravity`): the masses take the
charges' slot of the n-body model contract, so every registered n-body model trains on it
unchanged; the extra test splits ``ood`` (shifted by 200) and ``objects`` (5 planets) are
evaluated by :func:`symformer.train.run.run_training`.
"""

from __future__ import annotations

from typing import Iterator

import lightning as L
import torch
from torch import Tensor
from torch.utils.data import DataLoader, Dataset, Sampler

from ..data import gravity, nbody

__all__ = ["NBodyDataModule", "SystemsDataset", "EpochShuffleSampler", "collate_systems",
           "random_rotations", "SPLIT_NAMES", "GravityDataModule", "GRAVITY_SPLIT_NAMES",
           "gravity_systems"]

#: our split name -> symformer.data.nbody split name
SPLIT_NAMES = {"train": "train", "val": "valid", "test": "test"}
#: our split name -> symformer.data.gravity split name
GRAVITY_SPLIT_NAMES = {"train": "train", "val": "valid", "test": "test", "ood": "ood",
                       "objects": "objects"}


class SystemsDataset(Dataset):
    """Whole systems: item ``i`` is ``dict(pos (5, 3), vel (5, 3), charges (5,), target (5, 3))``."""

    def __init__(self, data: dict[str, Tensor]):
        self.data = data

    def __len__(self) -> int:
        return self.data["pos"].shape[0]

    def __getitem__(self, i: int) -> dict[str, Tensor]:
        return {k: v[i] for k, v in self.data.items()}


def collate_systems(items: list[dict[str, Tensor]]) -> dict[str, Tensor]:
    """Systems -> flat graph batch ``dict(pos (S*5, 3), vel, charges (S*5,), batch, target)``."""
    stacked = {k: torch.stack([it[k] for it in items]) for k in items[0]}
    graph = nbody.to_graph_batch(stacked["pos"], stacked["vel"], stacked["charges"])
    graph["target"] = stacked["target"].reshape(-1, 3)
    return graph


class EpochShuffleSampler(Sampler[int]):
    """Random order drawn from ``(seed, epoch)``: the same on a resumed run as on a straight one.

    Lightning calls :meth:`set_epoch` at the start of each epoch.
    """

    def __init__(self, n: int, seed: int):
        self.n, self.seed, self.epoch = n, seed, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return self.n

    def __iter__(self) -> Iterator[int]:
        g = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch)
        return iter(torch.randperm(self.n, generator=g).tolist())


def random_rotations(n: int, generator: torch.Generator, dtype: torch.dtype) -> Tensor:
    """``n`` Haar-random rotation matrices, shape (n, 3, 3), det +1 (QR of a Gaussian)."""
    a = torch.randn(n, 3, 3, generator=generator, dtype=torch.float64)
    q, r = torch.linalg.qr(a)
    q = q * torch.sign(torch.diagonal(r, dim1=-2, dim2=-1)).unsqueeze(-2)
    q[:, :, 0] *= torch.sign(torch.linalg.det(q)).unsqueeze(-1)
    return q.to(dtype)


class NBodyDataModule(L.LightningDataModule):
    """Train / val / test loaders of the N-body benchmark.

    Parameters
    ----------
    n_train, n_val, n_test : int
        Systems taken from the start of each split (EGNN: 3000, 2000, 2000).
    batch_size : int
        Systems per batch (EGNN: 100).
    dtype : torch.dtype
        Floating dtype of the tensors.
    seed : int
        Seeds the shuffling and the rotation augmentation.
    augment_rotations : bool
        Rotate each training system (positions, velocities and target together) by a random
        rotation: for models that are not rotation-equivariant by construction.
    cache_dir : path, optional
        n-body cache folder (default ``$SYMFORMER_CACHE/nbody``).
    """

    def __init__(self, *, n_train: int = 3000, n_val: int = 2000, n_test: int = 2000,
                 batch_size: int = 100, dtype: torch.dtype = torch.float32, seed: int = 0,
                 augment_rotations: bool = False, num_workers: int = 0, cache_dir=None):
        super().__init__()
        for name, v in (("n_train", n_train), ("n_val", n_val), ("n_test", n_test),
                        ("batch_size", batch_size)):
            if not isinstance(v, int) or isinstance(v, bool) or v < 1:
                raise ValueError(f"{name} must be a positive int, got {v!r}")
        self.sizes = {"train": n_train, "val": n_val, "test": n_test}
        self.batch_size, self.dtype, self.seed = batch_size, dtype, seed
        self.augment_rotations, self.num_workers, self.cache_dir = (augment_rotations, num_workers,
                                                                    cache_dir)
        self.splits: dict[str, dict[str, Tensor]] = {}

    def split(self, name: str) -> dict[str, Tensor]:
        """The tensors of split ``name`` (``"train"``, ``"val"`` or ``"test"``), loaded once."""
        if name not in SPLIT_NAMES:
            raise ValueError(f"split must be one of {sorted(SPLIT_NAMES)}, got {name!r}")
        if name not in self.splits:
            self.splits[name] = nbody.load_split(SPLIT_NAMES[name], n=self.sizes[name],
                                                 cache_dir=self.cache_dir, dtype=self.dtype)
        return self.splits[name]

    def prepare_data(self) -> None:
        # Generates and caches the splits once (rank 0) before the workers read them.
        for name in SPLIT_NAMES:
            nbody.load_split(SPLIT_NAMES[name], n=1, cache_dir=self.cache_dir)

    def _loader(self, name: str, shuffle: bool) -> DataLoader:
        data = SystemsDataset(self.split(name))
        sampler = EpochShuffleSampler(len(data), self.seed) if shuffle else None
        return DataLoader(data, batch_size=self.batch_size, sampler=sampler,
                          collate_fn=collate_systems, num_workers=self.num_workers,
                          persistent_workers=self.num_workers > 0)

    def train_dataloader(self) -> DataLoader:
        return self._loader("train", shuffle=True)

    def val_dataloader(self) -> DataLoader:
        return self._loader("val", shuffle=False)

    def test_dataloader(self) -> DataLoader:
        return self._loader("test", shuffle=False)

    def on_after_batch_transfer(self, batch: dict[str, Tensor], dataloader_idx: int):
        trainer = self.trainer
        if not (self.augment_rotations and trainer is not None and trainer.training):
            return batch
        # One rotation per system, drawn from (seed, global step): reproducible across resumes.
        g = torch.Generator().manual_seed(self.seed * 1_000_003 + 7919 * trainer.global_step + 1)
        n_sys = int(batch["batch"].max()) + 1
        rot = random_rotations(n_sys, g, batch["pos"].dtype).to(batch["pos"].device)
        per_node = rot[batch["batch"]]  # [S*5, 3, 3]
        out = dict(batch)
        for key in ("pos", "vel", "target"):
            out[key] = torch.einsum("nij,nj->ni", per_node, batch[key])
        return out


def gravity_systems(split: str, n: int, dtype: torch.dtype = torch.float32) -> dict[str, Tensor]:
    """``n`` gravity systems of ``split`` (a key of :data:`GRAVITY_SPLIT_NAMES`) in the n-body
    layout: ``pos``, ``vel``, ``target`` (n, bodies, 3) and the masses as ``charges`` (n, bodies)."""
    if split not in GRAVITY_SPLIT_NAMES:
        raise ValueError(f"split must be one of {sorted(GRAVITY_SPLIT_NAMES)}, got {split!r}")
    d = gravity.gravity_split(GRAVITY_SPLIT_NAMES[split], n, dtype=dtype)
    return {"pos": d["pos"], "vel": d["vel"], "charges": d["masses"], "target": d["target"]}


class GravityDataModule(NBodyDataModule):
    """Train / val / test loaders of the gravity benchmark (:mod:`symformer.data.gravity`).

    Same parameters as :class:`NBodyDataModule` (``cache_dir`` is unused: the splits are
    simulated in about a second). ``n_ood`` and ``n_objects`` size the two extra test splits.
    """

    def __init__(self, *, n_ood: int = 5000, n_objects: int = 5000, **kwargs):
        super().__init__(**kwargs)
        self.sizes.update(ood=n_ood, objects=n_objects)

    def split(self, name: str) -> dict[str, Tensor]:
        if name not in GRAVITY_SPLIT_NAMES:
            raise ValueError(f"split must be one of {sorted(GRAVITY_SPLIT_NAMES)}, got {name!r}")
        if name not in self.splits:
            self.splits[name] = gravity_systems(name, self.sizes[name], self.dtype)
        return self.splits[name]

    def prepare_data(self) -> None:
        return None
