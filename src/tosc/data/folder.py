"""Any image folder with one subfolder per class (``root/<class>/<image>``).

Classes are the sorted subfolder names. Images are read with Pillow; when every
image is grayscale the set has one channel, otherwise all are converted to RGB.
All images must share one size unless a transform (e.g. ``Resize`` or ``PadTo``)
makes them equal. Splits: a permutation seeded with ``seed`` puts 20% in ``test``,
then ``validation_fraction`` of the rest in ``validation``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from .. import registry
from ..errors import DataError, DatasetNotFoundError
from ..io import image_levels, is_grey_image, open_image
from .base import ImageSet, split_indices

__all__ = ["IMAGE_SUFFIXES", "TEST_FRACTION", "scan_folder"]

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm"}
TEST_FRACTION = 0.2


def scan_folder(root: Path) -> tuple[list[str], list[tuple[Path, int]]]:
    """(class names, [(image path, label)]) in sorted order; errors on empty classes."""
    if not root.is_dir():
        raise DatasetNotFoundError(f"image folder {root} does not exist")
    classes = sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not classes:
        raise DataError(f"{root}: no class subfolders (expected root/<class>/<image>)")
    items: list[tuple[Path, int]] = []
    for label, name in enumerate(classes):
        files = sorted(p for p in (root / name).iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
        if not files:
            raise DataError(f"{root}: class folder {name!r} has no images")
        items.extend((f, label) for f in files)
    return classes, items


@registry.register("dataset", "folder", "Any image folder with one subfolder per class (--root)")
def load_folder(*, split: str, root=None, seed: int = 0, validation_fraction: float = 0.1, transform=None) -> ImageSet:
    if root is None:
        raise DatasetNotFoundError("the folder dataset needs --root DIR with one subfolder per class")
    root = Path(root)
    classes, items = scan_folder(root)
    test_idx, rest = split_indices(len(items), seed, [TEST_FRACTION, 1 - TEST_FRACTION])
    if split == "test":
        chosen = test_idx
    else:
        n_val = int(round(validation_fraction * len(rest)))
        chosen = np.sort(rest[:n_val]) if split == "validation" else np.sort(rest[n_val:])
    if len(chosen) == 0:
        raise DataError(f"{root}: too few images for a non-empty {split} split ({len(items)} images)")
    paths = [items[i][0] for i in chosen]
    images = [open_image(path) for path in paths]
    gray = all(is_grey_image(img) for img in images)
    tensors = []
    for img, path in zip(images, paths):
        tensor = torch.from_numpy(image_levels(img, path, grey=gray)).float().div_(255.0)
        tensor = tensor[None] if gray else tensor.permute(2, 0, 1)
        tensors.append(transform(tensor) if transform is not None else tensor)
    shapes = {tuple(t.shape) for t in tensors}
    if len(shapes) > 1:
        raise DataError(
            f"{root}: images have mixed sizes {sorted(shapes)[:3]}...; pass a transform such as Resize or PadTo"
        )
    return ImageSet(
        name="folder",
        split=split,
        images=torch.stack(tensors),
        labels=torch.tensor([items[i][1] for i in chosen], dtype=torch.int64),
        indices=torch.from_numpy(chosen.astype(np.int64)),
        classes=classes,
        root=str(root),
    )
