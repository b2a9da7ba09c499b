"""Fashion-MNIST from the files of Debian's ``dataset-fashion-mnist`` package."""

from __future__ import annotations

import functools
import gzip
import os
from pathlib import Path

import numpy as np

from .. import registry
from ..errors import CorruptFileError, DatasetNotFoundError
from .base import ImageSet, make_split

__all__ = ["CLASSES", "DEFAULT_ROOTS", "find_root", "read_idx"]

CLASSES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]
DEFAULT_ROOTS = ("/usr/share/datasets/fashion-mnist",)
_FILES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}
INSTALL_HINT = "install it with: sudo apt-get install dataset-fashion-mnist (or pass --root DIR with the four idx files)"


def _locate(root: Path, stem: str) -> Path | None:
    for candidate in (root / f"{stem}.gz", root / stem):
        if candidate.is_file():
            return candidate
    return None


def find_root(root: str | os.PathLike | None = None) -> Path:
    """The directory holding the four idx files: ``root``, else $TOSC_FASHION_MNIST, else Debian's path."""
    if root is not None:
        candidates = [Path(root)]
    elif os.environ.get("TOSC_FASHION_MNIST"):
        candidates = [Path(os.environ["TOSC_FASHION_MNIST"])]
    else:
        candidates = [Path(p) for p in DEFAULT_ROOTS]
    for candidate in candidates:
        if all(_locate(candidate, stem) for stem in _FILES.values()):
            return candidate
    where = ", ".join(str(c) for c in candidates)
    raise DatasetNotFoundError(f"Fashion-MNIST files not found in {where}; {INSTALL_HINT}")


def read_idx(path: Path) -> np.ndarray:
    """Read an IDX file (optionally gzip-compressed) of unsigned bytes."""
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as handle:
            data = handle.read()
    except (OSError, EOFError) as exc:
        raise CorruptFileError(f"{path}: cannot read ({exc})") from None
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] != 0x08:
        raise CorruptFileError(f"{path}: not an IDX file of unsigned bytes")
    ndim = data[3]
    header = 4 + 4 * ndim
    if ndim == 0 or len(data) < header:
        raise CorruptFileError(f"{path}: truncated IDX header")
    shape = tuple(int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    count = int(np.prod(shape))
    if len(data) - header != count:
        raise CorruptFileError(f"{path}: expected {count} bytes of data for shape {shape}, found {len(data) - header}")
    return np.frombuffer(data, dtype=np.uint8, offset=header).reshape(shape).copy()


@functools.lru_cache(maxsize=2)
def _read_all(root: Path) -> dict[str, np.ndarray]:
    arrays = {key: read_idx(_locate(root, stem)) for key, stem in _FILES.items()}  # type: ignore[arg-type]
    for part in ("train", "test"):
        images, labels = arrays[f"{part}_images"], arrays[f"{part}_labels"]
        if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels):
            raise CorruptFileError(f"{root}: {part} images {images.shape} and labels {labels.shape} disagree")
        if labels.max(initial=0) >= len(CLASSES):
            raise CorruptFileError(f"{root}: {part} labels outside 0..9")
        arrays[f"{part}_images"] = images[:, None]  # N x 1 x 28 x 28
    return arrays


@registry.register("dataset", "fashion-mnist", "Fashion-MNIST 28x28 grayscale, 10 classes (Debian dataset-fashion-mnist)")
def load_fashion_mnist(*, split: str, root=None, seed: int = 0, validation_fraction: float = 0.1, transform=None) -> ImageSet:
    resolved = find_root(root)
    arrays = _read_all(resolved.resolve())
    return make_split(
        "fashion-mnist",
        split,
        arrays["train_images"],
        arrays["train_labels"],
        arrays["test_images"],
        arrays["test_labels"],
        CLASSES,
        seed,
        validation_fraction,
        root=str(resolved),
        transform=transform,
    )
