"""Image data sets as float tensors in [0, 1], NCHW, with int64 labels.

Every loader returns an :class:`ImageSet`; splits are deterministic given a seed.
Resizing or padding happens only through an explicit transform from
:mod:`tosc.data.transforms`.
"""

from .base import ImageSet, SPLITS, load_dataset, dataset_names, dataset_info, DatasetInfo
from .transforms import PadTo, Resize, Grayscale, Compose

from . import fashion_mnist, cifar, folder, scenes  # noqa: F401  (register the loaders)

__all__ = [
    "ImageSet",
    "SPLITS",
    "load_dataset",
    "dataset_names",
    "dataset_info",
    "DatasetInfo",
    "PadTo",
    "Resize",
    "Grayscale",
    "Compose",
]
