"""The common in-memory dataset type, seeded splits and the loader registry."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch

from .. import registry
from ..errors import ConfigError, DataError

__all__ = ["ImageSet", "SPLITS", "load_dataset", "dataset_names", "dataset_info", "DatasetInfo", "split_indices"]

SPLITS = ("train", "validation", "test")

Transform = Callable[[torch.Tensor], torch.Tensor]


@dataclass
class ImageSet(torch.utils.data.Dataset):
    """Images of one split.

    images: float32 tensor N x C x H x W, values in [0, 1].
    labels: int64 tensor N.
    indices: int64 tensor N, positions in the source split the images came from
        (the official train or test file, or the sorted file list of a folder).
    """

    name: str
    split: str
    images: torch.Tensor
    labels: torch.Tensor
    indices: torch.Tensor
    classes: list[str]
    root: str = ""  # where the files were read from

    def __post_init__(self) -> None:
        n = self.images.shape[0]
        if self.images.ndim != 4 or self.images.dtype != torch.float32:
            raise DataError(f"{self.name}: images must be float32 N x C x H x W, got {tuple(self.images.shape)}")
        if self.labels.shape != (n,) or self.indices.shape != (n,):
            raise DataError(f"{self.name}: labels and indices must have {n} entries")

    def __len__(self) -> int:
        return self.images.shape[0]

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self.images[i], self.labels[i]

    @property
    def shape(self) -> tuple[int, int, int]:
        """(C, H, W) of one image."""
        return tuple(self.images.shape[1:])  # type: ignore[return-value]

    def subset(self, limit: int | None) -> "ImageSet":
        """The first ``limit`` images (all when None), in split order."""
        if limit is None:
            return self
        if limit <= 0:
            raise ConfigError(f"limit must be positive, got {limit}")
        return dataclasses.replace(
            self, images=self.images[:limit], labels=self.labels[:limit], indices=self.indices[:limit]
        )


@dataclass
class DatasetInfo:
    name: str
    split_sizes: dict[str, int]
    image_shape: tuple[int, int, int]
    classes: list[str]
    pixel_mean: float
    pixel_std: float
    class_counts: dict[str, int]
    root: str


def split_indices(n: int, seed: int, fractions: Sequence[float]) -> list[np.ndarray]:
    """Partition ``range(n)`` by a seeded permutation into parts of the given fractions
    (the last part takes the remainder); each part is returned sorted."""
    if n <= 0:
        raise DataError("cannot split an empty dataset")
    perm = np.random.default_rng(seed).permutation(n)
    sizes = [int(round(f * n)) for f in fractions[:-1]]
    cuts = np.cumsum(sizes)
    return [np.sort(part) for part in np.split(perm, cuts)]


_Loader = Callable[..., ImageSet]


def dataset_names() -> list[str]:
    return registry.names("dataset")


def load_dataset(
    name: str,
    split: str = "train",
    *,
    root: str | Path | None = None,
    seed: int = 0,
    validation_fraction: float = 0.1,
    transform: Transform | None = None,
    limit: int | None = None,
) -> ImageSet:
    """Load one split of a registered dataset.

    ``validation`` is carved out of the official training data by a permutation
    seeded with ``seed`` (``validation_fraction`` of it); ``train`` is the rest;
    ``test`` is the official test set. ``transform`` maps an N x C x H x W batch
    to another (see :mod:`tosc.data.transforms`).
    """
    if split not in SPLITS:
        raise ConfigError(f"unknown split {split!r}; expected one of {', '.join(SPLITS)}")
    if not 0.0 < validation_fraction < 1.0:
        raise ConfigError(f"validation_fraction must be in (0, 1), got {validation_fraction}")
    loader = registry.get("dataset", name).factory
    data = loader(split=split, root=root, seed=seed, validation_fraction=validation_fraction, transform=transform)
    return data.subset(limit)


def dataset_info(name: str, *, root: str | Path | None = None, seed: int = 0) -> DatasetInfo:
    """Counts, image shape, classes and pixel statistics of the train+test images."""
    entry = registry.get("dataset", name)
    sizes: dict[str, int] = {}
    sums = 0.0
    sq_sums = 0.0
    n_pixels = 0
    class_counts: np.ndarray | None = None
    shape: tuple[int, int, int] = (0, 0, 0)
    classes: list[str] = []
    resolved_root = ""
    for split in ("train", "validation", "test"):
        data = entry.factory(split=split, root=root, seed=seed, validation_fraction=0.1, transform=None)
        sizes[split] = len(data)
        shape, classes = data.shape, data.classes
        resolved_root = data.root
        images = data.images.double()
        sums += images.sum().item()
        sq_sums += (images * images).sum().item()
        n_pixels += images.numel()
        counts = np.bincount(data.labels.numpy(), minlength=len(classes))
        class_counts = counts if class_counts is None else class_counts + counts
    mean = sums / n_pixels
    std = float(np.sqrt(max(sq_sums / n_pixels - mean * mean, 0.0)))
    assert class_counts is not None
    return DatasetInfo(
        name=name,
        split_sizes=sizes,
        image_shape=shape,
        classes=classes,
        pixel_mean=mean,
        pixel_std=std,
        class_counts={c: int(k) for c, k in zip(classes, class_counts)},
        root=str(resolved_root),
    )


def make_split(
    name: str,
    split: str,
    train_images: np.ndarray,
    train_labels: np.ndarray,
    test_images: np.ndarray,
    test_labels: np.ndarray,
    classes: list[str],
    seed: int,
    validation_fraction: float,
    root: str = "",
    transform: Transform | None = None,
) -> ImageSet:
    """Build an :class:`ImageSet` from official train/test arrays (uint8 N x C x H x W)."""
    if split == "test":
        images, labels = test_images, test_labels
        idx = np.arange(len(test_labels))
    else:
        val_idx, train_idx = split_indices(len(train_labels), seed, [validation_fraction, 1 - validation_fraction])
        idx = val_idx if split == "validation" else train_idx
        images, labels = train_images[idx], train_labels[idx]
    tensor = torch.from_numpy(np.ascontiguousarray(images)).float().div_(255.0)
    if transform is not None:
        tensor = transform(tensor)
    return ImageSet(
        name=name,
        split=split,
        images=tensor,
        labels=torch.from_numpy(np.asarray(labels, np.int64)),
        indices=torch.from_numpy(np.asarray(idx, np.int64)),
        classes=classes,
        root=root,
    )
