"""CIFAR-10 from a local directory in its standard python-pickle layout.

Expected files (in ``root`` or ``root/cifar-10-batches-py``): ``data_batch_1`` ..
``data_batch_5``, ``test_batch`` and optionally ``batches.meta``. The pickles are read
with an unpickler that only accepts the numpy and builtin types those files contain,
so a hostile pickle cannot run code.
"""

from __future__ import annotations

import functools
import io
import pickle
from pathlib import Path

import numpy as np

from .. import registry
from ..errors import CorruptFileError, DatasetNotFoundError
from .base import ImageSet, make_split

__all__ = ["CLASSES", "find_root", "read_batch"]

CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
_TRAIN = [f"data_batch_{i}" for i in range(1, 6)]
_TEST = "test_batch"

_ALLOWED = {
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    ("numpy.core.multiarray", "scalar"),
    ("numpy._core.multiarray", "scalar"),
    ("builtins", "list"),
    ("builtins", "dict"),
    ("_codecs", "encode"),
}


class _SafeUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str):  # noqa: D401
        if (module, name) in _ALLOWED:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"refusing to load {module}.{name}")


def find_root(root) -> Path:
    if root is None:
        raise DatasetNotFoundError("CIFAR-10 needs --root DIR pointing at the extracted cifar-10-batches-py folder")
    root = Path(root)
    for candidate in (root, root / "cifar-10-batches-py"):
        if all((candidate / name).is_file() for name in [*_TRAIN, _TEST]):
            return candidate
    if not root.exists():
        raise DatasetNotFoundError(f"CIFAR-10 directory {root} does not exist")
    raise DatasetNotFoundError(
        f"{root} is not a CIFAR-10 python directory: expected data_batch_1..5 and test_batch"
    )


def read_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """One pickle batch -> (uint8 N x 3 x 32 x 32, int64 N)."""
    try:
        with open(path, "rb") as handle:
            batch = _SafeUnpickler(io.BytesIO(handle.read()), encoding="bytes").load()
    except Exception as exc:  # any unpickling failure means the file is not a CIFAR batch
        raise CorruptFileError(f"{path}: not a readable CIFAR-10 pickle ({type(exc).__name__}: {exc})") from None
    if not isinstance(batch, dict):
        raise CorruptFileError(f"{path}: expected a dict, found {type(batch).__name__}")
    data = batch.get(b"data", batch.get("data"))
    labels = batch.get(b"labels", batch.get("labels"))
    if data is None or labels is None:
        raise CorruptFileError(f"{path}: missing 'data' or 'labels'")
    data = np.asarray(data)
    labels = np.asarray(labels, dtype=np.int64)
    if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3 * 32 * 32 or len(labels) != len(data):
        raise CorruptFileError(f"{path}: data must be uint8 N x 3072 with N labels, got {data.shape} {data.dtype}")
    if labels.size and (labels.min() < 0 or labels.max() >= 10):
        raise CorruptFileError(f"{path}: labels outside 0..9")
    return data.reshape(-1, 3, 32, 32), labels


@functools.lru_cache(maxsize=2)
def _read_all(root: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, list[str]]:
    parts = [read_batch(root / name) for name in _TRAIN]
    train_x = np.concatenate([p[0] for p in parts])
    train_y = np.concatenate([p[1] for p in parts])
    test_x, test_y = read_batch(root / _TEST)
    classes = list(CLASSES)
    meta = root / "batches.meta"
    if meta.is_file():
        try:
            with open(meta, "rb") as handle:
                names = _SafeUnpickler(handle, encoding="bytes").load().get(b"label_names")
            if names and len(names) == 10:
                classes = [n.decode() if isinstance(n, bytes) else str(n) for n in names]
        except Exception as exc:
            raise CorruptFileError(f"{meta}: not a readable CIFAR-10 meta pickle ({exc})") from None
    return train_x, train_y, test_x, test_y, classes


@registry.register("dataset", "cifar10", "CIFAR-10 32x32 RGB, 10 classes, from a local python-pickle directory (--root)")
def load_cifar10(*, split: str, root=None, seed: int = 0, validation_fraction: float = 0.1, transform=None) -> ImageSet:
    resolved = find_root(root)
    train_x, train_y, test_x, test_y, classes = _read_all(resolved.resolve())
    return make_split(
        "cifar10", split, train_x, train_y, test_x, test_y, classes, seed, validation_fraction,
        root=str(resolved), transform=transform,
    )
